// Turns a path into a template: identifiers in URLs are personal data or unbounded
// cardinality, so numeric, UUID, long-hex and odd-looking segments become ':id'.

// A segment kept as is: identifier characters (\w is [A-Za-z0-9_]), at most 40 of them...
const PLAIN_SEGMENT = /^[\w.:-]{1,40}$/;
// ...unless it has a run of 3+ digits, is all digits, or is a UUID or a long hex token.
const ID_SEGMENT = /\d{3}|^\d+$|^[\da-f-]{16,}$/i;

const isIdSegment = (segment) =>
  segment != '' && (!PLAIN_SEGMENT.test(segment) || ID_SEGMENT.test(segment));

/** '/requests/12345/edit?x=1#top' → '/requests/:id/edit' */
export const templatePath = (path) =>
  String(path).split(/[?#]/)[0].split('/')
    .map((segment) => (isIdSegment(segment) ? ':id' : segment))
    .join('/') || '/';
