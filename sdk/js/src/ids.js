// Random ids from crypto.getRandomValues, which (unlike randomUUID) works outside secure
// contexts too: intranet apps on plain http are common.

import { isSafe } from './guard.js';

const random = (n) => crypto.getRandomValues(new Uint8Array(n));

/** n random lowercase letters. Letters only: digits could form a run the server treats as personal data. */
export const letters = (n) => String.fromCharCode(...random(n).map((b) => 97 + (b % 26)));

/** A v4 UUID. One whose digits form a 9+ digit run would trip the server's catch-all, so it is drawn again. */
export function eventId() {
  let id;
  do id = '10000000-1000-4000-8000-100000000000'.replace(/[018]/g, (c) => (c ^ (random(1)[0] & (15 >> (c / 4)))).toString(16));
  while (!isSafe(id));
  return id;
}
