import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventId, letters } from '../src/ids.js';
import { isSafe } from '../src/guard.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('event ids are v4 UUIDs that pass the guard', () => {
  const seen = new Set();
  for (let i = 0; i < 5000; i++) {
    const id = eventId();
    assert.match(id, UUID_V4);
    assert.equal(isSafe(id), true, id);
    seen.add(id);
  }
  assert.equal(seen.size, 5000);
});

test('session ids are letters only', () => {
  for (let i = 0; i < 1000; i++) {
    const id = 's_' + letters(20);
    assert.match(id, /^s_[a-z]{20}$/);
    assert.equal(isSafe(id), true);
  }
});
