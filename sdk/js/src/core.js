// The browser side of the core bundle: capture, envelope, delivery. Pure logic lives in the
// sibling modules so that node can test it; this file is the glue to the DOM and network.
// JS errors, fetch/XHR outcomes and form validation errors live in the errors add-on
// (errors.js), Web Vitals in vitals.js.
//
// Never captured: element text, input values, coordinates, query strings, fragments,
// error messages, cookies, anything that fingerprints the browser.

import { clean, isSafe } from './guard.js';
import { templatePath } from './route.js';
import { inSample } from './hash.js';
import { backoffDelay, isRefusal, isRetryable, parseRetryAfter } from './backoff.js';
import { createQueue } from './queue.js';
import { eventId, letters } from './ids.js';

const win = window;
const doc = document;
const SESSION_KEY = 'stumble.s';
const IDLE_MS = 30 * 60 * 1000;
// The server's time-zone pattern, simplified: IANA names never break its length limits.
const TIME_ZONE = /^(UTC|[A-Z][A-Za-z_]+(\/[\w+-]+){1,2})$/;
// Taken when the script runs, before any add-on wraps fetch: the SDK's own requests are
// never timed or reported. The `stumble` init key tells add-ons the same thing.
const nativeFetch = win.fetch;
// The collector needs no cookies, so none are sent even when it shares the app's origin.
const NO_COOKIES = { credentials: 'omit', stumble: 1 };

let store;
try {
  store = localStorage; // throws when blocked by privacy settings: no persistence then
} catch {
  // keep store undefined
}
const queue = createQueue(store);

let options; // init options; set once
let live = false; // capturing: false before init and after the kill switch
let configured = false; // /v1/config has answered and capture is on
let ready; // settles once /v1/config has answered or failed
let sampleRate = 1;
let flushMs = 3000;
let maxBatch = 20;
let retryTimer;
let retries = 0;
let sending;
let session;
let common; // the fields every event repeats, fixed at init
let explicitScreen;
let lastView;
let reportedOverflow = 0;
let leaving; // set during the task in which the page was hidden
const counts = { sent: 0, rejected: 0, dropped: 0 };
const forms = {};

// data-stumble-<name> of an element (or of nothing)
const attr = (el, name) => el?.getAttribute('data-stumble-' + name);

function sessionId() {
  const now = Date.now();
  if (!session?.id || now - session.t > IDLE_MS) session = { id: 's_' + letters(20) };
  session.t = now;
  try {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  } catch {
    // private mode: the session lives in memory only
  }
  return session.id;
}

const screenOf = (el) =>
  explicitScreen ||
  attr(el?.closest('[data-stumble-screen]'), 'screen') ||
  attr(doc.querySelector('[data-stumble-screen]'), 'screen') || // <body> comes before its children
  'unknown';

const endpoint = (name) =>
  (options.endpoint || '').replace(/\/$/, '') + '/v1/' + name + '?key=' + encodeURIComponent(options.key);

// A request's path → its template; no path → the page's route. The app's routeTemplate
// (path, 'api' | 'page') may answer first, e.g. with its router's matched pattern.
function routeOf(path) {
  const type = path ? 'api' : 'page';
  path ||= location.pathname;
  return options.routeTemplate?.(path, type) || templatePath(path);
}

function emit(kind, fields, el, name = kind) {
  if (!live) return;
  const event = {
    event_id: eventId(), event_name: name, kind, ts: Date.now(), session_id: sessionId(), screen_id: screenOf(el),
    ...common,
    ...fields,
  };
  if (!inSample(event.session_id, sampleRate)) return;
  if (!clean(event)) return counts.dropped++;
  queue.push(event);
  if (leaving) beacon();
  else if (queue.items.length >= maxBatch && !retryTimer) send();
}

// --- delivery -------------------------------------------------------------------------

const body = (batch) => JSON.stringify({ sent_at: Date.now(), events: batch });

async function drain() {
  while (live && queue.items.length) {
    if (queue.dropped > reportedOverflow) {
      // A plan has no event for "the SDK lost data"; an error of kind 'unavailable' is
      // accepted by any plan and shows up with the other errors. The count is in stats().
      error('unavailable', { error_type: 'sdk_queue_overflow' });
      reportedOverflow = queue.dropped; // after: this report may itself push one out
    }
    const batch = queue.items.slice(0, maxBatch);
    const text = body(batch);
    let response;
    try {
      // A string body is sent as text/plain: a simple request, no CORS preflight.
      response = await nativeFetch(endpoint('batch'), { ...NO_COOKIES, method: 'POST', body: text, keepalive: text.length < 6e4 });
    } catch {
      // network error: retried below
    }
    const status = response?.status;
    // A page may run on a config it got before the kill switch (browsers cache /v1/config):
    // the collector's refusal stops it just the same.
    if (isRefusal(status)) return applyConfig({ status });
    if (isRetryable(status)) {
      queue.save();
      const retryAfter = parseRetryAfter(response?.headers.get('Retry-After')); // none: 0
      retryTimer = setTimeout(flush, backoffDelay(retries++, retryAfter));
      return;
    }
    // Accepted, or refused for good (other 4xx): either way these are never sent again.
    queue.remove(batch);
    counts[response.ok ? 'sent' : 'rejected'] += batch.length;
    retries = 0;
  }
  queue.save();
}

const send = () => (sending ||= ready.then(drain).finally(() => (sending = 0)));

// Before /v1/config has answered, or while the collector is failing, the events stay in
// localStorage for the next page to send.
function beacon() {
  queue.save();
  while (configured && !retryTimer && queue.items.length) {
    const batch = queue.items.slice(0, maxBatch);
    if (!navigator.sendBeacon(endpoint('batch'), body(batch))) break;
    queue.remove(batch);
    counts.sent += batch.length;
  }
  queue.save();
}

// The page was hidden or is going away: hand the queue to sendBeacon, and so too any event
// emitted by the other listeners of the same event (web-vitals reports then).
function onLeave() {
  leaving ||= setTimeout(() => (leaving = 0));
  beacon();
}

// The collector's refusals ({error, status: 401 | 403}: a revoked or disabled key, a refused
// origin) stop the page like the kill switch.
function applyConfig(config) {
  if (config.enabled === false || isRefusal(config.status)) {
    live = false; // kill switch: stop capturing, stop sending, forget what is queued
    queue.items = [];
    return queue.save();
  }
  if (config.sample_rate >= 0) sampleRate = config.sample_rate; // a rate above 1 keeps all
  flushMs = config.flush_interval_ms || flushMs;
  maxBatch = config.max_batch_events || maxBatch;
  queue.items = queue.items.filter((event) => inSample(event.session_id, sampleRate));
  configured = true;
  setInterval(() => retryTimer || send(), flushMs); // periodic sends start once the config is known
}

// --- capture --------------------------------------------------------------------------

// A screen view when the screen or the route template changed since the last one;
// referrer_screen is the last one's screen (screen ids hold no spaces).
function view() {
  const route = live && routeOf();
  const current = screenOf() + ' ' + route;
  if (route && current != lastView) {
    emit('screen_view', { route, referrer_screen: lastView?.split(' ')[0] });
    lastView = current;
  }
}

// The next screen's DOM is usually rendered just after the URL changes.
const routeChanged = () => setTimeout(() => explicitScreen || view());

function onClick(e) {
  const el = e.target.closest?.('[data-stumble-action]');
  const action = attr(el, 'action');
  if (action) emit('action', { action_id: action, target: attr(el, 'target'), position: attr(el, 'position') }, el, action);
}

// Attempts are counted per form and step. attempt() starts one (the errors add-on calls it
// on a native submit and on a burst of `invalid` events); formSubmit() reports the current
// one and closes it; fieldError() belongs to the current one, or starts one after a close.
function currentAttempt(key, fresh) {
  const form = (forms[key] ||= { n: 0, closed: 1 });
  if (fresh || form.closed) {
    form.n++;
    form.closed = 0;
  }
  return form.n;
}

// Every handler is inert when capture is off: emit(), view() and flush() check `live`,
// beacon() checks `configured`.
function listen() {
  for (const method of ['pushState', 'replaceState']) {
    const original = history[method];
    history[method] = function () {
      const result = original.apply(this, arguments);
      routeChanged();
      return result;
    };
  }
  doc.addEventListener('click', onClick, true);
  win.addEventListener('popstate', () => (nav('back'), routeChanged()));
  win.addEventListener('online', flush);
  win.addEventListener('pagehide', onLeave);
  doc.addEventListener('visibilitychange', () => doc.visibilityState == 'hidden' && onLeave());
}

function commonFields(opts) {
  const context = {};
  // device_type and browser are left to the server, which derives them from the User-Agent
  for (const key of ['role', 'division', 'region']) {
    if (isSafe(opts.context?.[key])) context[key] = opts.context[key];
  }
  const tz = win.Intl?.DateTimeFormat().resolvedOptions().timeZone; // no Intl: no time zone
  return {
    schema_version: opts.schemaVersion,
    ui_version: opts.uiVersion,
    feature_flags: (opts.flags || []).filter((flag) => isSafe(flag)).slice(0, 32),
    experiment: opts.experiment,
    tz: TIME_ZONE.test(tz) ? tz : undefined,
    context,
  };
}

// --- public API -----------------------------------------------------------------------

export function init(opts) {
  if (options) return;
  options = opts;
  flushMs = opts.flushInterval || flushMs;
  maxBatch = opts.maxBatch || maxBatch;
  try {
    session = JSON.parse(sessionStorage.getItem(SESSION_KEY));
  } catch {
    // no session yet, or unreadable: a new one is made
  }
  common = commonFields(opts);
  ready = nativeFetch(endpoint('config'), NO_COOKIES)
    .then((response) => response.json())
    .catch(() => 0)
    .then((config) => applyConfig(config || {})); // unreachable or odd: the defaults
  live = true;
  listen();
  setTimeout(view); // after the app's start-up code, which may call screen()
}

/** Declares the current screen; from then on the app owns screen views. */
export function screen(id) {
  explicitScreen = id;
  view();
}

export const track = (name, params) => emit('custom', { params: { ...params } }, 0, name);

export const nav = (kind) => emit('navigation', { nav: kind });

/** A Web Vital or a timing; `path` (a request's, for metric 'api') becomes the route. */
export const vital = (metric, value, rating, path) =>
  emit('vital', { metric, value, rating, route: routeOf(path) });

/** An error by class only: kind, and optionally error_type, fingerprint, http_status, path. */
export const error = (kind, fields = {}) =>
  emit('error', { ...fields, error_kind: kind, path: undefined, route: routeOf(fields.path) });

/** Starts a new submit attempt of a form step; returns its number (1, 2, ...). */
export const attempt = (form, step = 1) => currentAttempt(form + ':' + step, 1);

export function formSubmit(form, step = 1, status = 'success') {
  const key = form + ':' + step;
  emit('form_submit', { form_id: form, step, attempt: currentAttempt(key), status });
  forms[key].closed = 1;
}

export const fieldError = (form, field, type = 'server', step = 1) =>
  emit('field_error', { form_id: form, field_id: field, error_type: type, attempt: currentAttempt(form + ':' + step), step });

/** Starts a timed operation; it ends by itself as 'timeout' after `timeoutMs` (default 60 s). */
export function start(operation, timeoutMs) {
  const ids = { operation_id: 'o_' + letters(16), operation };
  const started = performance.now();
  let open = 1;
  const end = (status = 'success') => {
    if (!open) return;
    open = 0;
    clearTimeout(timeout);
    emit('operation_end', { ...ids, status, duration_ms: Math.round(performance.now() - started) });
  };
  const timeout = setTimeout(end, timeoutMs || 6e4, 'timeout');
  emit('operation_start', ids);
  return { step: (name) => open && emit('operation_step', { ...ids, step_name: name }), end };
}

/** Sends everything queued now, skipping any backoff wait; resolves when done or failed. */
export async function flush() {
  clearTimeout(retryTimer);
  retryTimer = 0;
  if (live) return send();
}

export const stats = () => ({
  ...counts,
  queued: queue.items.length,
  overflow: queue.dropped,
});
