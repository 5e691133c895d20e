/**
 * The doorbell between processes: `ring(n, delayMs)` tells every listening
 * process that `n` runs may be claimable after `delayMs`. Deliveries are
 * best-effort; consumers poll as well.
 */
export interface Bell {
  ring(count: number, delayMs: number): Promise<void>;
  /** Registers the listener; resolves once rings are being received. */
  listen(onRing: (count: number, delayMs: number) => void): Promise<void>;
  close(): Promise<void>;
}

/** One process (no Redis): the ring is a function call. */
export function createLocalBell(): Bell {
  const listeners = new Set<(count: number, delayMs: number) => void>();
  return {
    async ring(count, delayMs) {
      for (const l of listeners) l(count, delayMs);
    },
    async listen(onRing) {
      listeners.add(onRing);
    },
    async close() {
      listeners.clear();
    },
  };
}
