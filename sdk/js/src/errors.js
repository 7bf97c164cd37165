// Optional bundle (/sdk/stumble-errors.js), automatic error capture:
// - uncaught JS errors and unhandled rejections;
// - fetch/XHR outcomes: an 'api' timing per request, an 'http' or 'network' error per failure;
// - form validation errors from the Constraint Validation API (`invalid` events).
// Reports through window.stumble; load it after the core script.
//
// An error is reported by class: its constructor name and a fingerprint of normalised
// stack frames; a field error by its validity flag. No message and no value is ever read.

import { fingerprint } from './hash.js';

const win = window;
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

const sdk = () => win.stumble || {};

function reportError(error) {
  const name = error != null && error.constructor && error.constructor.name;
  const type = IDENTIFIER.test(name) ? name : undefined;
  sdk().error?.('js', { error_type: type, fingerprint: fingerprint(type, error && error.stack) });
}

// The path of a request (string, URL or Request); the core turns it into a template.
function pathOf(input) {
  try {
    return new URL((input && input.url) || input, location.href).pathname;
  } catch {
    // not a URL: no route
  }
}

// status 0: the request never got an answer
function reportRequest(input, started, status) {
  const path = pathOf(input);
  if (status) sdk().vital?.('api', performance.now() - started, undefined, path);
  if (!(status < 400)) sdk().error?.(status ? 'http' : 'network', { http_status: status || undefined, path });
}

const nativeFetch = win.fetch;
win.fetch = function (input, init) {
  // The SDK marks its own requests: they are never reported (that would feed itself).
  if (init && init.stumble) return nativeFetch.apply(win, arguments);
  const started = performance.now();
  return nativeFetch.apply(win, arguments).then(
    (response) => (reportRequest(input, started, response.status), response),
    (error) => {
      if (error.name != 'AbortError') reportRequest(input, started, 0); // an abort is the app's choice
      throw error;
    },
  );
};

const xhr = XMLHttpRequest.prototype;
const { open, send } = xhr;
xhr.open = function (method, url) {
  this._stumbleUrl = url;
  return open.apply(this, arguments);
};
xhr.send = function () {
  const started = performance.now();
  // 'abort' is the app's choice and not reported; a timeout counts as a network failure.
  for (const type of ['load', 'error', 'timeout']) {
    this.addEventListener(type, () => reportRequest(this._stumbleUrl, started, type == 'load' ? this.status : 0));
  }
  return send.apply(this, arguments);
};

// data-stumble-<name> of the nearest element that has one
function near(el, name) {
  const found = el.closest('[data-stumble-' + name + ']');
  return found && found.getAttribute('data-stumble-' + name);
}

// [form id, step] of a form or of one of its fields
function formOf(el) {
  return [near(el, 'form') || (el.form || el).getAttribute('id') || '', +near(el, 'step') || 1];
}

// ValidityState flag → field error class. Flags are read in IDL order (valueMissing first),
// so a missing value wins over a format problem; customError and anything new → 'other'.
const VALIDITY_CLASSES = {
  valueMissing: 'required', typeMismatch: 'format', patternMismatch: 'format', badInput: 'format',
  rangeUnderflow: 'range', rangeOverflow: 'range', stepMismatch: 'range', tooLong: 'too_long', tooShort: 'too_short',
};

function validityClass(validity) {
  for (const flag in validity) if (validity[flag]) return VALIDITY_CLASSES[flag] || 'other';
}

// All `invalid` events of one validation pass are dispatched in the same task: one attempt.
const burst = new Set();

function onInvalid(e) {
  const el = e.target;
  const [form, step] = formOf(el);
  const key = form + ':' + step;
  if (!burst.has(key)) {
    burst.add(key);
    sdk().attempt?.(form, step);
    setTimeout(() => burst.delete(key));
  }
  const field = el.getAttribute('data-stumble-field') || el.getAttribute('name') || el.getAttribute('id') || '';
  sdk().fieldError?.(form, field, validityClass(el.validity), step);
}

document.addEventListener('invalid', onInvalid, true);
// A native submit (it only happens once validation passed) starts a new attempt.
document.addEventListener('submit', (e) => sdk().attempt?.(...formOf(e.target)), true);
win.addEventListener('error', (e) => reportError(e.error));
win.addEventListener('unhandledrejection', (e) => reportError(e.reason));
