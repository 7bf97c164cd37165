import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createQueue } from '../src/queue.js';
import { FakeStorage } from './fake-storage.js';

const events = (n, from = 0) => Array.from({ length: n }, (_, i) => ({ event_id: `e${from + i}` }));
const ids = (queue) => queue.items.map((e) => e.event_id);

test('past the cap the oldest are dropped and counted', () => {
  const queue = createQueue(new FakeStorage(), 'stumble.q', 5);
  events(8).forEach(queue.push);
  assert.deepEqual(ids(queue), ['e3', 'e4', 'e5', 'e6', 'e7']);
  assert.equal(queue.dropped, 3);
});

test('the default cap is 1,000', () => {
  const queue = createQueue(new FakeStorage());
  events(1005).forEach(queue.push);
  assert.equal(queue.items.length, 1000);
  assert.equal(queue.dropped, 5);
  assert.equal(queue.items[0].event_id, 'e5');
});

test('save and reload keep order and ids', () => {
  const storage = new FakeStorage();
  const queue = createQueue(storage);
  events(3).forEach(queue.push);
  queue.save();
  assert.deepEqual(ids(createQueue(storage)), ['e0', 'e1', 'e2']);
});

test('a reload larger than the cap keeps the newest', () => {
  const storage = new FakeStorage();
  storage.setItem('stumble.q', JSON.stringify(events(7)));
  const queue = createQueue(storage, 'stumble.q', 4);
  assert.deepEqual(ids(queue), ['e3', 'e4', 'e5', 'e6']);
  assert.equal(queue.dropped, 3);
});

test('remove takes exactly the sent events, even after overflow shifted the queue', () => {
  const queue = createQueue(new FakeStorage(), 'stumble.q', 4);
  events(4).forEach(queue.push);
  const batch = queue.items.slice(0, 2); // e0, e1 in flight
  events(1, 4).forEach(queue.push); // e0 dropped while in flight
  queue.remove(batch);
  assert.deepEqual(ids(queue), ['e2', 'e3', 'e4']);
});

test('an empty queue removes its storage entry', () => {
  const storage = new FakeStorage();
  const queue = createQueue(storage);
  events(1).forEach(queue.push);
  queue.save();
  queue.remove(queue.items.slice());
  queue.save();
  assert.equal(storage.getItem('stumble.q'), null);
});

test('corrupt, missing or full storage does not break the queue', () => {
  const corrupt = new FakeStorage();
  corrupt.setItem('stumble.q', '{not json');
  assert.equal(createQueue(corrupt).items.length, 0);

  const notAnArray = new FakeStorage();
  notAnArray.setItem('stumble.q', '{"a":1}');
  assert.equal(createQueue(notAnArray).items.length, 0);

  const none = createQueue(undefined);
  events(2).forEach(none.push);
  none.save();
  assert.equal(none.items.length, 2);

  const full = new FakeStorage({ quota: 10 });
  const queue = createQueue(full);
  events(2).forEach(queue.push);
  queue.save();
  assert.equal(full.getItem('stumble.q'), null);
  assert.equal(queue.items.length, 2);
});
