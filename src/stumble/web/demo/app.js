// The stumble demo: a small service desk (sign-in, home, search, a three-step service request,
// request view, report export), instrumented with the browser SDK. Plain JS, no build step.
//
// UI versions, chosen with ?ui=1 or ?ui=2 (remembered in localStorage):
//   1.4.2  the IIN/BIN field takes exactly 12 digits as typed, and every error says "Invalid";
//   2.0.0  an input mask drops spaces and dashes while typing, a hint shows the format, and
//          each error says what to do ("Enter 12 digits only").
//
// The back end (/demo/api/...) is a stand-in with small artificial delays. It receives choices
// from closed lists and yes/no check results, never typed text: the browser tests type personal
// data into every field and show that none of it leaves the page.
'use strict';

(() => {
  const config = window.stumbleDemo || { endpoint: '', key: '', schemaVersion: 3 };
  const UI_VERSIONS = { 1: '1.4.2', 2: '2.0.0' };
  const FORM = 'service_request';
  const DAY_MS = 864e5;

  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
  const on = (selector, type, handler) => $(selector).addEventListener(type, handler);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function chooseUi() {
    const asked = new URLSearchParams(location.search).get('ui');
    try {
      if (asked in UI_VERSIONS) localStorage.setItem('demo.ui', asked);
      const stored = localStorage.getItem('demo.ui');
      return stored in UI_VERSIONS ? stored : '1';
    } catch {
      return asked in UI_VERSIONS ? asked : '1'; // storage blocked: the query alone decides
    }
  }

  const ui = chooseUi();
  const v2 = ui == '2';

  // Pages live under /demo/, but the plan's routes are the app's own (/requests/new), as in
  // the simulated history; ids (RQ-2001, export jobs) become :id, as the SDK itself does.
  const routeTemplate = (path) =>
    path
      .replace(/^\/demo(?=\/|$)/, '')
      .split('/')
      .map((segment) => (/\d{3}/.test(segment) ? ':id' : segment))
      .join('/') || '/';

  stumble.init({
    endpoint: config.endpoint,
    key: config.key,
    uiVersion: UI_VERSIONS[ui],
    schemaVersion: config.schemaVersion,
    context: { role: 'operator', division: 'hq', region: 'almaty' },
    routeTemplate,
  });

  // --- the stand-in back end --------------------------------------------------------------

  async function api(method, path, body) {
    try {
      const response = await fetch(path, {
        method,
        headers: body ? { 'content-type': 'application/json' } : undefined,
        body: body ? JSON.stringify(body) : undefined,
      });
      const data = await response.json().catch(() => ({}));
      return { ok: response.ok, status: response.status, data };
    } catch {
      return { ok: false, status: 0, data: {} };
    }
  }

  // The IIN/BIN check digit (weights 1..11, then 3..11,1,2 when the first pass gives 10).
  // The stand-in server is told whether it matches, never the number.
  function checkDigitMatches(value) {
    if (!/^\d{12}$/.test(value)) return false;
    const digits = [...value].map(Number);
    const check = (weights) => weights.reduce((sum, weight, i) => sum + weight * digits[i], 0) % 11;
    let digit = check([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    if (digit == 10) digit = check([3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2]);
    return digit != 10 && digit == digits[11];
  }

  // --- screens ----------------------------------------------------------------------------

  const SCREENS = [
    [/^\/demo\/?$/, 'home'],
    [/^\/demo\/login$/, 'login'],
    [/^\/demo\/search$/, 'search'],
    [/^\/demo\/reports$/, 'reports'],
    [/^\/demo\/requests\/new$/, 'request_create'],
    [/^\/demo\/requests\/([\w-]+)$/, 'request_view'],
  ];

  function screenOf(path) {
    for (const [pattern, screen] of SCREENS) {
      const match = pattern.exec(path);
      if (match) return [screen, match[1]];
    }
    return [];
  }

  const signedIn = () => sessionStorage.getItem('demo.signed_in') == '1';

  function render() {
    let [screen, param] = screenOf(location.pathname);
    if (!screen) {
      history.replaceState(null, '', '/demo/');
      screen = 'home';
    }
    if (!signedIn() && screen != 'login') {
      history.replaceState(null, '', '/demo/login');
      screen = 'login';
    }
    for (const section of $$('main > section')) section.hidden = section.id != 'screen-' + screen;
    $('#nav').hidden = screen == 'login';
    stumble.screen(screen);
    ENTER[screen](param);
  }

  function go(path) {
    history.pushState(null, '', path);
    render();
  }

  // --- messages: generic in 1.4.2, concrete in 2.0.0 -------------------------------------

  const CONCRETE = {
    username: () => 'Enter your user name',
    password: (validity) => (validity.valueMissing ? 'Enter your password' : 'The password has at least 6 characters'),
    iin_bin: (validity) => (validity.valueMissing ? 'Enter the IIN/BIN: 12 digits' : 'Enter 12 digits only'),
    contract_number: (validity) =>
      validity.valueMissing ? 'Enter the contract number' : 'Two letters and 4 to 8 digits, e.g. SD-204518',
    due_date: (validity) => (validity.valueMissing ? 'Choose a due date' : 'The due date cannot be in the past'),
  };

  const SERVER_MESSAGES = {
    iin_bin: 'This IIN/BIN does not exist: check the last digit against the ID card',
  };

  function explain(field) {
    if (!v2) return 'Invalid';
    const says = CONCRETE[field.name];
    return says ? says(field.validity) : 'Fill in this field';
  }

  // A field's message goes to its own slot, else to the form's.
  function message(form, name, text) {
    const slot = $(`.message[data-for="${name}"]`, form) || $('.message[data-for="form"]', form);
    if (!slot) return;
    slot.textContent = text || '';
    slot.hidden = !text;
  }

  function clearMessages(form) {
    for (const slot of $$('.message', form)) slot.hidden = true;
    form.classList.remove('tried');
  }

  // Own messages replace the browser's bubble: cancelling `invalid` hides the bubble (the
  // errors add-on has seen the event already, in the capture phase), so focus moves here.
  document.addEventListener(
    'invalid',
    (e) => {
      e.preventDefault();
      const field = e.target;
      const form = field.form;
      form.classList.add('tried');
      message(form, field.name, explain(field));
      if (form.querySelector(':invalid') == field) field.focus();
    },
    true,
  );

  document.addEventListener('input', (e) => {
    const field = e.target;
    // 2.0.0's input mask: people copy the number with the spaces or dashes it is printed with
    if (v2 && field.name == 'iin_bin') field.value = field.value.replace(/[\s-]/g, '');
    if (field.form) message(field.form, field.name, '');
  });

  // Disables a form's buttons while its request runs; returns the function that re-enables them.
  function lock(form) {
    const buttons = $$('button', form);
    for (const button of buttons) button.disabled = true;
    return () => buttons.forEach((button) => (button.disabled = false));
  }

  function localToday(offsetDays = 0) {
    const date = new Date(Date.now() + offsetDays * DAY_MS);
    date.setMinutes(date.getMinutes() - date.getTimezoneOffset());
    return date.toISOString().slice(0, 10);
  }

  // --- sign-in ----------------------------------------------------------------------------

  on('#login-form', 'submit', async (e) => {
    e.preventDefault();
    const form = e.target;
    const op = stumble.start('login');
    const release = lock(form);
    const answer = await api('POST', '/demo/api/auth/login', {});
    op.step('server_response_received');
    release();
    if (!answer.ok) {
      stumble.formSubmit('login', 1, 'fail');
      op.end('fail');
      message(form, 'form', v2 ? 'The sign-in service did not answer: try again' : 'Error');
      return;
    }
    stumble.formSubmit('login', 1, 'success');
    op.end('success');
    sessionStorage.setItem('demo.signed_in', '1');
    form.reset();
    go('/demo/');
  });

  on('#sign-out', 'click', (e) => {
    e.preventDefault();
    sessionStorage.removeItem('demo.signed_in');
    go('/demo/login');
  });

  // --- home -------------------------------------------------------------------------------

  const myRequests = () => JSON.parse(sessionStorage.getItem('demo.requests') || '[]');

  function enterHome() {
    const list = $('#my-requests');
    list.replaceChildren(...myRequests().map(resultItem));
    if (!list.children.length) list.append(Object.assign(document.createElement('li'), { textContent: 'None yet.' }));
  }

  function resultItem(request, opensAction) {
    const link = Object.assign(document.createElement('a'), {
      href: '/demo/requests/' + request.id,
      textContent: `${request.id} · ${request.title || request.request_type}`,
    });
    link.setAttribute('data-link', '');
    if (opensAction) link.setAttribute('data-stumble-action', 'search_result_opened');
    const item = document.createElement('li');
    item.append(link, ` (${request.status})`);
    return item;
  }

  // --- create a service request -----------------------------------------------------------

  let step = 1;

  function showStep(n) {
    step = n;
    for (const form of $$('#screen-request_create form.step')) form.hidden = form.dataset.stumbleStep != n;
    for (const marker of $$('[data-step-marker]')) marker.classList.toggle('current', marker.dataset.stepMarker == n);
    $(`#request-step-${n}`).querySelector('input, select, textarea').focus();
  }

  function enterRequestCreate() {
    for (const form of $$('#screen-request_create form')) {
      form.reset();
      clearMessages(form);
    }
    $('[name="due_date"]').min = localToday();
    $('#iin-hint').hidden = !v2;
    $('#iin_bin').inputMode = v2 ? 'numeric' : 'text';
    showStep(1);
  }

  on('#request-step-1', 'submit', (e) => {
    e.preventDefault();
    stumble.formSubmit(FORM, 1, 'success');
    showStep(2);
  });

  on('#request-step-2', 'submit', async (e) => {
    e.preventDefault();
    const form = e.target;
    const release = lock(form);
    const answer = await api('POST', '/demo/api/requests/check', {
      step: 2,
      iin_bin_check_digit_ok: checkDigitMatches(form.iin_bin.value),
    });
    release();
    if (!answer.ok) {
      // server-side validation: the field errors it names, else a failed step
      for (const field of answer.data.field_errors || []) {
        stumble.fieldError(FORM, field, 'server', 2);
        message(form, field, v2 ? SERVER_MESSAGES[field] : 'Invalid');
      }
      if (!answer.data.field_errors) message(form, 'iin_bin', 'The check did not answer: try again');
      stumble.formSubmit(FORM, 2, 'fail');
      return;
    }
    stumble.formSubmit(FORM, 2, 'success');
    showStep(3);
  });

  on('#request-step-3', 'submit', async (e) => {
    e.preventDefault();
    const form = e.target;
    const first = $('#request-step-1');
    const op = stumble.start('request_submit');
    const release = lock(form);
    const answer = await api('POST', '/demo/api/requests', {
      request_type: first.request_type.value,
      category: first.category.value,
      priority: form.priority.value,
    });
    op.step('server_response_received');
    release();
    if (!answer.ok) {
      stumble.formSubmit(FORM, 3, 'fail');
      op.end('fail');
      message(form, 'form', 'The request was not saved: try again');
      return;
    }
    stumble.formSubmit(FORM, 3, 'success');
    op.end('success');
    sessionStorage.setItem('demo.requests', JSON.stringify([answer.data, ...myRequests()].slice(0, 10)));
    go('/demo/requests/' + answer.data.id);
  });

  for (const back of $$('[data-back]')) back.addEventListener('click', () => showStep(step - 1));

  on('#request-step-1 [data-cancel]', 'click', () => {
    stumble.nav('cancel');
    go('/demo/');
  });

  // --- request view -----------------------------------------------------------------------

  async function enterRequestView(id) {
    $('#view-id').textContent = id;
    const details = $('#view-details');
    details.textContent = 'Loading…';
    const answer = await api('GET', '/demo/api/requests/' + encodeURIComponent(id));
    if (!answer.ok) {
      details.textContent = 'No such request.';
      return;
    }
    const rows = ['request_type', 'category', 'priority', 'status', 'created'].flatMap((name) => [
      Object.assign(document.createElement('dt'), { textContent: name.replace('_', ' ') }),
      Object.assign(document.createElement('dd'), { textContent: answer.data[name] }),
    ]);
    details.replaceChildren(...rows);
  }

  // --- search -----------------------------------------------------------------------------

  on('#search-form', 'submit', async (e) => {
    e.preventDefault();
    const form = e.target;
    const status = $('#search-status');
    const op = stumble.start('search');
    status.textContent = 'Searching…';
    const answer = await api('GET', '/demo/api/search?' + new URLSearchParams({ type: form.request_type.value }));
    op.step('server_response_received');
    if (!answer.ok) {
      op.end('fail');
      stumble.formSubmit('search_filters', 1, 'fail');
      status.textContent = 'The search did not answer: try again.';
      return;
    }
    // The text filter runs here, in the page: the typed words never leave it.
    const words = form.query.value.trim().toLowerCase();
    const hits = answer.data.results.filter((r) => `${r.id} ${r.title}`.toLowerCase().includes(words));
    $('#search-results').replaceChildren(...hits.map((request) => resultItem(request, true)));
    status.textContent = `${hits.length} found`;
    op.step('rendered');
    op.end('success');
    stumble.formSubmit('search_filters', 1, 'success');
  });

  // --- reports ----------------------------------------------------------------------------

  let exporting; // { op, id } of the export in progress

  function enterReports() {
    const form = $('#report-form');
    form.period_from.value ||= localToday(-30);
    form.period_to.value ||= localToday();
    clearMessages(form);
  }

  on('#report-form', 'submit', async (e) => {
    e.preventDefault();
    const form = e.target;
    const from = form.period_from.valueAsNumber;
    const to = form.period_to.valueAsNumber;
    if (to < from) {
      stumble.fieldError('report_params', 'period_to', 'range', 1);
      stumble.formSubmit('report_params', 1, 'fail');
      message(form, 'period_to', v2 ? 'The period ends before it starts' : 'Invalid');
      return;
    }
    stumble.formSubmit('report_params', 1, 'success');
    await exportReport(form.report_format.value, Math.round((to - from) / DAY_MS) + 1);
  });

  async function exportReport(format, days) {
    const status = $('#export-status');
    const op = stumble.start('report_export', 120000);
    const started = performance.now();
    status.textContent = 'Starting the export…';
    const job = await api('POST', '/demo/api/reports/export', { report_format: format, days });
    op.step('server_response_received');
    if (!job.ok) {
      op.end('fail');
      status.textContent = 'The export could not start: try again.';
      return;
    }
    const mine = (exporting = { op, id: job.data.id });
    $('#export-cancel').hidden = false;
    let state = job.data;
    while (state.status == 'running' && exporting == mine) {
      status.textContent = 'Preparing the report…';
      await sleep(400);
      const poll = await api('GET', '/demo/api/reports/export/' + mine.id);
      state = poll.ok ? poll.data : { status: 'failed' };
    }
    if (exporting != mine) return; // cancelled, or replaced by a newer export
    exporting = null;
    $('#export-cancel').hidden = true;
    if (state.status != 'ready') {
      op.end('fail');
      status.textContent = 'The export failed: try again.';
      return;
    }
    op.step('file_ready');
    op.end('success');
    stumble.track('report_exported', {
      report_format: format,
      rows: state.rows,
      file_size: state.file_size,
      generation_time: Math.round(performance.now() - started),
    });
    const link = Object.assign(document.createElement('a'), {
      href: `/demo/api/reports/export/${mine.id}/file`,
      textContent: `Download the report (${state.rows} rows)`,
    });
    status.replaceChildren(link);
  }

  on('#export-cancel', 'click', () => {
    if (!exporting) return;
    exporting.op.end('cancel');
    stumble.nav('cancel');
    exporting = null;
    $('#export-cancel').hidden = true;
    $('#export-status').textContent = 'Export cancelled.';
  });

  // --- start ------------------------------------------------------------------------------

  const ENTER = {
    login: () => {},
    home: enterHome,
    search: () => {},
    request_create: enterRequestCreate,
    request_view: enterRequestView,
    reports: enterReports,
  };

  document.addEventListener('click', (e) => {
    const link = e.target.closest('a[data-link]');
    if (!link || e.ctrlKey || e.metaKey || e.shiftKey) return;
    e.preventDefault();
    go(link.pathname);
  });
  addEventListener('popstate', render);

  for (const n of Object.keys(UI_VERSIONS)) $('#ui-' + n).classList.toggle('current', n == ui);
  $('#no-key').hidden = Boolean(config.key);
  setInterval(() => {
    const stats = stumble.stats();
    $('#telemetry-stats').textContent = `${stats.sent} events sent, ${stats.queued} queued`;
  }, 1000);

  render();
})();
