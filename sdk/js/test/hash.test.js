import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fingerprint, fnv1a, inSample, stackFrames } from '../src/hash.js';
import { letters } from '../src/ids.js';

test('FNV-1a 32-bit reference vectors', () => {
  assert.equal(fnv1a(''), 0x811c9dc5);
  assert.equal(fnv1a('a'), 0xe40c292c);
  assert.equal(fnv1a('foobar'), 0xbf9cf968);
});

test('sampling is deterministic per session', () => {
  const id = 's_' + letters(20);
  const first = inSample(id, 0.5);
  for (let i = 0; i < 10; i++) assert.equal(inSample(id, 0.5), first);
});

test('sampling keeps everyone at 1 and no one at 0', () => {
  for (let i = 0; i < 200; i++) {
    const id = 's_' + letters(20);
    assert.equal(inSample(id, 1), true);
    assert.equal(inSample(id, 0), false);
  }
});

test('sampled share is close to the rate', () => {
  const sessions = Array.from({ length: 20000 }, () => 's_' + letters(20));
  for (const rate of [0.1, 0.25, 0.5, 0.9]) {
    const share = sessions.filter((id) => inSample(id, rate)).length / sessions.length;
    assert.ok(Math.abs(share - rate) < 0.02, `rate ${rate}: share ${share}`);
  }
});

test('a lower rate keeps a subset of a higher rate', () => {
  const sessions = Array.from({ length: 2000 }, () => 's_' + letters(20));
  for (const id of sessions) if (inSample(id, 0.2)) assert.equal(inSample(id, 0.6), true);
});

const V8 = `TypeError: Cannot read properties of undefined (reading 'iin') for ivan@corp.kz
    at validateStep (https://desk.example/assets/app.3f9a.js?v=12:101:17)
    at async submitForm (https://desk.example/assets/app.3f9a.js?v=12:88:5)
    at new RequestForm (https://desk.example/assets/form.js:10:3)
    at https://desk.example/assets/main.js:1:200
    at Array.map (<anonymous>)`;

test('V8 frames: function and file basename, no line, column, query or message', () => {
  assert.deepEqual(stackFrames(V8), [
    'validateStep@app.3f9a.js',
    'submitForm@app.3f9a.js',
    'RequestForm@form.js',
    '@main.js',
    'Array.map@<anonymous>',
  ]);
});

const GECKO = `validateStep@https://desk.example/assets/app.3f9a.js?v=12:101:17
submitForm@https://desk.example/assets/app.3f9a.js?v=12:88:5
@https://desk.example/assets/main.js:1:200
`;

test('Firefox/Safari frames', () => {
  assert.deepEqual(stackFrames(GECKO), ['validateStep@app.3f9a.js', 'submitForm@app.3f9a.js', '@main.js']);
});

test('the fingerprint ignores line numbers, query strings and the message', () => {
  const moved = V8.replace(/:\d+:\d+/g, ':999:1').replace(/\?v=12/g, '?v=13').replace(/^.*\n/, 'TypeError: another message\n');
  assert.equal(fingerprint('TypeError', moved), fingerprint('TypeError', V8));
});

test('the fingerprint separates types and code paths', () => {
  const fp = fingerprint('TypeError', V8);
  assert.match(fp, /^[0-9a-f]{8}$/);
  assert.notEqual(fingerprint('RangeError', V8), fp);
  assert.notEqual(fingerprint('TypeError', V8.replace('validateStep', 'validateField')), fp);
});

test('at most 10 frames; no frames, no fingerprint', () => {
  const deep = 'Error: x\n' + Array.from({ length: 30 }, (_, i) => `    at f${i} (https://h/a.js:${i}:1)`).join('\n');
  assert.equal(stackFrames(deep).length, 10);
  assert.equal(fingerprint('Error', undefined), undefined);
  assert.equal(fingerprint('Error', 'Error: only a message'), undefined);
});
