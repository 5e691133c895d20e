import type { ClaimedRun, Dispatch } from "../storage/runs.js";

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
  /**
   * A free slot of a consumer in this process that takes runs claimed at insert (see
   * LocalSlot), or null: none here, none free, or runs may be waiting (rings not yet
   * claimed), which a new run must not overtake.
   */
  reserve(): LocalSlot | null;
  close(): Promise<void>;
}

/**
 * A held slot. Its run is inserted already claimed for `owner` (runs.create), which
 * saves the claim's round trip and the ring; then exactly one of `take` / `release`.
 */
export interface LocalSlot {
  owner: string;
  leaseSecs: number;
  /** Runs the claimed run in this slot; `claimStarted` (performance.now()) is when the insert was sent. */
  take(run: ClaimedRun, claimStarted: number): void;
  /** The run was not claimed at insert (or not inserted): the slot is free again. */
  release(): void;
}

export interface ConsumeOptions<T> {
  concurrency: number;
  claim: () => Promise<T | null>;
  /** Runs one item in a slot; see HandlerSlot for handing the slot on early. */
  handler: (item: T, slot: HandlerSlot<T>) => Promise<void>;
  /** Safety net for rings lost while the bell was unreachable. */
  pollMs: number;
  /** Lets run creation in this process hand runs claimed at insert to this consumer (RunQueue.reserve). */
  local?: { owner: string; leaseSecs: number; item: (run: ClaimedRun, claimStarted: number) => T };
}

/**
 * What a handler knows of its slot. When `wantsMore()` (runs announced to this consumer
 * wait for a slot), the handler may claim the next one as its run ends (runs.finish with
 * `claim`) and `handOver` it: it starts at once in this slot, with no claim of its own,
 * while the handler finishes its follow-up work outside the slot count.
 */
export interface HandlerSlot<T> {
  wantsMore(): boolean;
  /** At most once per handler. */
  handOver(next: T): void;
}

export interface RunQueueConsumer {
  /** Stops claiming and waits for active handlers; `force` returns without waiting. */
  close(force?: boolean): Promise<void>;
}
