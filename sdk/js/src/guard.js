// Client-side mirror of the server's privacy guard: a string that the server would reject
// never leaves the browser. Identifiers only; no long digit runs (an IIN, a card or a phone
// number split by separators), no long hex tokens, no '@'.

const IDENTIFIER = /^[\w.:/-]+$/; // \w is [A-Za-z0-9_]
// 9+ digits once spaces, dashes, dots and parentheses between digits are ignored
const DIGIT_RUN = /\d(?:[ ().-]*\d){8}/;
const HEX_RUN = /[\da-f]{24}/i;

export const MAX_PARAMS = 16;

// Fields that are merely dropped when they fail; any other failing string drops the event.
const OPTIONAL = ['target', 'position', 'route', 'error_type', 'experiment', 'tz'];

/** True when `s` is a string the server's guard accepts (routes may be up to 200 chars). */
export const isSafe = (s, max = 64) =>
  typeof s == 'string' && s.length <= max && IDENTIFIER.test(s) && !DIGIT_RUN.test(s) && !HEX_RUN.test(s);

const isSafeParam = (v) =>
  typeof v == 'boolean' ||
  (typeof v == 'number' && Math.abs(v) <= 1e15) || // false for NaN and Infinity
  isSafe(v);

/**
 * Screens an event in place. Returns the event, or null when a required string fails.
 * Custom params: a failing entry is dropped, and at most 16 are kept.
 */
export function clean(event) {
  for (const key in event) {
    const value = event[key];
    if (typeof value == 'string') {
      if (isSafe(value, key == 'route' ? 200 : 64)) continue;
      if (!OPTIONAL.includes(key)) return null;
      delete event[key];
    } else if (key == 'params') {
      let kept = 0;
      for (const name in value) {
        if (kept < MAX_PARAMS && isSafe(name) && isSafeParam(value[name])) kept++;
        else delete value[name];
      }
    }
  }
  return event;
}
