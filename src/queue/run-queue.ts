import type { Dispatch } from "../storage/runs.js";

/**
 * The run queue is PostgreSQL itself: a worker claims the next eligible
 * pending run with one statement (FIFO, one running run per thread, SKIP
 * LOCKED between claimers). What travels between processes is only a
 * doorbell ("there may be work"), so a lost or duplicated ring is harmless:
 * every consumer also polls, and a claim that finds nothing costs one query.
 */
export interface RunQueue {
  /** Rings the doorbell for these runs (delayed ones when they fall due). */
  dispatch(items: Dispatch[]): Promise<void>;
  /**
   * Starts `concurrency` slots: each free slot calls `claim` when the bell
   * rings (and every `pollMs`), and hands what it got to `handler`.
   */
  consume<T>(opts: ConsumeOptions<T>): Promise<RunQueueConsumer>;
  close(): Promise<void>;
}

export interface ConsumeOptions<T> {
  concurrency: number;
  claim: () => Promise<T | null>;
  handler: (item: T) => Promise<void>;
  /** Safety net for rings lost while the bell was unreachable. */
  pollMs: number;
}

export interface RunQueueConsumer {
  /** Stops claiming and waits for active handlers; `force` returns without waiting. */
  close(force?: boolean): Promise<void>;
}
