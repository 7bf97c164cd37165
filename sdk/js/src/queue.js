// The outgoing queue, mirrored to storage (localStorage in the browser) so events survive
// a reload or an offline spell. Capped: past the cap the oldest events are dropped and
// counted, because the newest describe what the person is doing now.

/** A queue over a Storage-like object (getItem/setItem/removeItem); storage may be missing. */
export function createQueue(storage, key = 'stumble.q', cap = 1000) {
  const queue = {
    items: [],
    dropped: 0,
    push(event) {
      const overflow = queue.items.push(event) - cap;
      if (overflow > 0) queue.dropped += queue.items.splice(0, overflow).length;
    },
    /** Removes exactly these events: by identity, since overflow may have shifted the queue. */
    remove(batch) {
      queue.items = queue.items.filter((event) => !batch.includes(event));
    },
    save() {
      try {
        if (queue.items.length) storage.setItem(key, JSON.stringify(queue.items));
        else storage.removeItem(key);
      } catch {
        // quota exceeded or storage blocked: the in-memory queue still works
      }
    },
  };
  try {
    JSON.parse(storage.getItem(key)).map(queue.push);
  } catch {
    // no storage, blocked storage or a corrupt entry: start empty
  }
  return queue;
}
