// FNV-1a: tiny, deterministic, good enough to group errors and to sample sessions.

/** 32-bit FNV-1a of a string's UTF-16 code units, as an unsigned integer. */
export function fnv1a(text) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** Deterministic sampling: the same session is always in or always out at a given rate. */
export const inSample = (sessionId, rate) => fnv1a(sessionId) / 2 ** 32 < rate;

// V8: "    at fn (https://h/app.js?v=2:10:5)" or "    at https://h/app.js:10:5"
const V8_FRAME = /^\s*at (?:(.+?) \()?(.+?)\)?\s*$/;
// Firefox and Safari: "fn@https://h/app.js:10:5"
const GECKO_FRAME = /^\s*(.*?)@(.+?)\s*$/;

// Function name and file basename only: line and column numbers shift with every build
// and query strings carry cache-busters (or worse), so neither belongs in a group key.
function normaliseFrame(match) {
  const name = (match[1] || '').replace(/^(async|new) /, '');
  const file = match[2].replace(/:\d+/g, '').replace(/[?#].*/, '').split('/').pop();
  return name + '@' + file;
}

/** The normalised frames of a stack, top first, at most 10. Never the message. */
export function stackFrames(stack) {
  const text = String(stack || '');
  // A V8 stack starts with "Type: message" and the message may contain '@': when the
  // stack is V8-shaped, only "at" lines are frames.
  const pattern = /^\s*at /m.test(text) ? V8_FRAME : GECKO_FRAME;
  const frames = [];
  for (const line of text.split('\n')) {
    const match = line.match(pattern);
    if (match && frames.push(normaliseFrame(match)) == 10) break;
  }
  return frames;
}

/** 8 lowercase hex digits grouping errors of one type thrown from the same code path. */
export function fingerprint(errorType, stack) {
  const frames = stackFrames(stack);
  if (frames.length) return fnv1a((errorType || '') + '\n' + frames.join('\n')).toString(16).padStart(8, '0');
}
