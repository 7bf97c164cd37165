// Retry schedule: exponential backoff with full jitter, so a fleet of browsers that lost
// the collector at the same moment does not come back in lockstep.

const BASE_MS = 3000;
const CAP_MS = 30 * 60 * 1000;

/**
 * Delay before retry number `attempt` (0-based): uniform in [0, min(cap, base * 2^attempt)],
 * but never shorter than the server's Retry-After (seconds).
 */
export const backoffDelay = (attempt, retryAfterSeconds = 0, random = Math.random) =>
  Math.max(random() * Math.min(CAP_MS, BASE_MS * 2 ** attempt), retryAfterSeconds * 1000);

/** Retry-After as delta-seconds; a missing header, an HTTP date or garbage counts as 0. */
export const parseRetryAfter = (header) => +header || 0;

/**
 * 401 and 403: a revoked or disabled key, or an origin the key does not allow. Nothing this
 * page sends can be accepted, so it stops as it does for the kill switch.
 */
export const isRefusal = (status) => status == 401 || status == 403;

/** Network errors, 429 and 5xx are worth retrying; any other answer is final. */
export const isRetryable = (status) => !status || status == 429 || status >= 500;
