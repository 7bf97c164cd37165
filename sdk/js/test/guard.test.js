import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clean, isSafe, MAX_PARAMS } from '../src/guard.js';

const event = (fields) => ({
  event_id: '3f2a9c1e-7b4d-4e8a-9c2b-5d6e7f8a9b0c',
  event_name: 'request_next_clicked',
  kind: 'action',
  ts: 1_700_000_000_000,
  session_id: 's_abcdefghijklmnopqrst',
  screen_id: 'request_create',
  schema_version: 3,
  ui_version: 'v2.3.1',
  feature_flags: [],
  ...fields,
});

test('identifiers pass', () => {
  for (const s of ['btn_next', 'request_create', 'v2.3.1', 'a:b/c-d', 'x', 'x'.repeat(64), 'Asia/Almaty']) {
    assert.equal(isSafe(s), true, s);
  }
});

test('non-identifiers fail', () => {
  for (const s of ['', 'x'.repeat(65), 'has space', 'a'.repeat(24), 'ivan@corp.kz', 'Иван', 'a+b', 'x?y', null, undefined, 12, {}]) {
    assert.equal(isSafe(s), false, String(s));
  }
});

test('a run of 9+ digits fails, separators between digits included', () => {
  assert.equal(isSafe('12345678'), true);
  assert.equal(isSafe('id_12345678_x'), true);
  assert.equal(isSafe('123456789'), false);
  assert.equal(isSafe('iin_880101300123'), false);
  assert.equal(isSafe('123-456-789'), false);
  assert.equal(isSafe('1234.5678.9'), false);
  assert.equal(isSafe('8-701-123-45-67'), false);
  assert.equal(isSafe('1234_5678_9'), true); // '_' is not a separator
  assert.equal(isSafe('12345678a9'), true);
});

test('a hex run of 24+ fails', () => {
  assert.equal(isSafe('deadbeef'.repeat(3)), false);
  assert.equal(isSafe('DEADBEEF'.repeat(3)), false);
  assert.equal(isSafe('deadbeef'.repeat(3).slice(1)), true);
});

test('routes may be up to 200 characters', () => {
  const long = '/' + 'segment/'.repeat(20);
  assert.ok(long.length > 64 && long.length <= 200);
  assert.equal(isSafe(long), false);
  assert.equal(isSafe(long, 200), true);
  assert.deepEqual(clean(event({ route: long })).route, long);
  assert.equal('route' in clean(event({ route: '/' + 'a'.repeat(200) })), false);
});

test('a failing required field drops the event', () => {
  assert.equal(clean(event({ event_name: 'Ivan Petrov' })), null);
  assert.equal(clean(event({ screen_id: '' })), null);
  assert.equal(clean(event({ action_id: 'call_87011234567' })), null);
  assert.equal(clean(event({ form_id: '' })), null);
});

test('a failing optional field is dropped, the event kept', () => {
  const cleaned = clean(event({ action_id: 'next', target: 'ivan@corp.kz', position: 'footer', tz: 'Etc/GMT+5', experiment: 'bad value' }));
  assert.ok(cleaned);
  assert.equal(cleaned.position, 'footer');
  for (const key of ['target', 'tz', 'experiment']) assert.equal(key in cleaned, false, key);
});

test('numbers and arrays are left alone', () => {
  const cleaned = clean(event({ step: 2, attempt: 1, feature_flags: ['new_form'] }));
  assert.equal(cleaned.step, 2);
  assert.deepEqual(cleaned.feature_flags, ['new_form']);
});

test('custom params: bad entries dropped, at most 16 kept', () => {
  const params = {
    report_format: 'xlsx',
    rows: 1200,
    scheduled: false,
    comment: 'call me at 87011234567',
    email: 'a@b.kz',
    'bad key': 1,
    huge: 1e16,
    nan: NaN,
    inf: Infinity,
    nested: { a: 1 },
  };
  const cleaned = clean(event({ kind: 'custom', event_name: 'report_exported', params }));
  assert.deepEqual(cleaned.params, { report_format: 'xlsx', rows: 1200, scheduled: false });

  const many = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`p${i}`, i]));
  const kept = clean(event({ kind: 'custom', event_name: 'x', params: many })).params;
  assert.equal(Object.keys(kept).length, MAX_PARAMS);
  assert.deepEqual(Object.keys(kept), Array.from({ length: 16 }, (_, i) => `p${i}`));
});
