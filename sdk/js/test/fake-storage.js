// A tiny in-memory stand-in for localStorage/sessionStorage (the Storage interface subset
// the SDK uses). `quota` makes setItem throw like a full browser storage does.
export class FakeStorage {
  constructor({ quota = Infinity } = {}) {
    this.map = new Map();
    this.quota = quota;
  }

  getItem(key) {
    return this.map.has(key) ? this.map.get(key) : null;
  }

  setItem(key, value) {
    const text = String(value);
    if (text.length > this.quota) throw new Error('QuotaExceededError');
    this.map.set(key, text);
  }

  removeItem(key) {
    this.map.delete(key);
  }
}
