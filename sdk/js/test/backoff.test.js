import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, isRefusal, isRetryable, parseRetryAfter } from '../src/backoff.js';

test('the ceiling doubles from 3 s and stops at 30 min', () => {
  const ceilings = Array.from({ length: 12 }, (_, attempt) => backoffDelay(attempt, 0, () => 1));
  assert.deepEqual(ceilings, [3000, 6000, 12000, 24000, 48000, 96000, 192000, 384000, 768000, 1536000, 1800000, 1800000]);
});

test('full jitter: anywhere between 0 and the ceiling', () => {
  assert.equal(backoffDelay(5, 0, () => 0), 0);
  assert.equal(backoffDelay(2, 0, () => 0.5), 6000);
  for (let i = 0; i < 1000; i++) {
    const delay = backoffDelay(3);
    assert.ok(delay >= 0 && delay < 24000, String(delay));
  }
});

test('Retry-After is a floor', () => {
  assert.equal(backoffDelay(0, 10, () => 1), 10000);
  assert.equal(backoffDelay(10, 10, () => 1), 1800000);
});

test('Retry-After parsing: delta-seconds only', () => {
  assert.equal(parseRetryAfter('120'), 120);
  assert.equal(parseRetryAfter(' 5 '), 5);
  assert.equal(parseRetryAfter(null), 0);
  assert.equal(parseRetryAfter(''), 0);
  assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT'), 0);
});

test('retry on network errors, 429 and 5xx only', () => {
  for (const status of [undefined, 0, 429, 500, 502, 503, 504]) assert.equal(isRetryable(status), true, String(status));
  for (const status of [200, 202, 204, 400, 401, 403, 404, 413, 422]) assert.equal(isRetryable(status), false, String(status));
});

test('401 and 403 are refusals that stop the page; other answers are not', () => {
  assert.ok(isRefusal(401));
  assert.ok(isRefusal(403));
  for (const status of [undefined, 0, 200, 202, 400, 404, 413, 429, 503]) assert.ok(!isRefusal(status), String(status));
});
