/**
 * When to restart a server that exited on its own, and when to give up.
 * Pure: the random source is a parameter.
 */
export interface RestartPolicy {
  /** First delay; each further consecutive failure doubles it. */
  baseMs: number;
  /** Upper bound of one delay. */
  capMs: number;
  /** Consecutive failures after which the revision is marked failed. */
  maxFailures: number;
  /** A server that stayed healthy this long starts a fresh failure count. */
  resetAfterMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = { baseMs: 1_000, capMs: 30_000, maxFailures: 5, resetAfterMs: 60_000 };

export type RestartDecision = { restart: true; delayMs: number } | { restart: false };

/**
 * `failures` counts consecutive unexpected exits including this one.
 * Delay: base·2^(failures-1), capped, with ±20 % jitter so a fleet of
 * crashing servers does not restart in lockstep.
 */
export function nextRestart(failures: number, policy: RestartPolicy, random: () => number = Math.random): RestartDecision {
  if (failures >= policy.maxFailures) return { restart: false };
  const raw = Math.min(policy.capMs, policy.baseMs * 2 ** Math.max(0, failures - 1));
  return { restart: true, delayMs: Math.round(raw * (0.8 + 0.4 * random())) };
}

/** Consecutive failures after an exit: the count restarts when the server had been healthy for a while. */
export function failuresAfterExit(previous: number, healthyForMs: number | null, policy: RestartPolicy): number {
  return healthyForMs !== null && healthyForMs >= policy.resetAfterMs ? 1 : previous + 1;
}

/** Poll delay for a desired-state source: the interval ±20 % when healthy, exponential backoff (capped) after errors. */
export function pollDelay(consecutiveErrors: number, intervalMs: number, capMs: number, random: () => number = Math.random): number {
  const raw = consecutiveErrors === 0 ? intervalMs : Math.min(capMs, intervalMs * 2 ** Math.min(consecutiveErrors, 16));
  return Math.round(raw * (0.8 + 0.4 * random()));
}
