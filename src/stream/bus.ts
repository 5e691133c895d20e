import type { CancelAction } from "../domain/run.js";

/** One event of a run's stream. `data` is JSON text, serialised once by the worker. */
export interface StreamEvent {
  id: string;
  event: string;
  data: string;
}

export interface Subscription extends AsyncIterable<StreamEvent> {
  /** Stop after delivering what the log already holds (used when the run has already ended). */
  drainAndStop(): void;
  close(): Promise<void>;
}

export interface PublishOptions {
  rolling?: boolean;
}

/** Internal marker appended when a run's stream is complete; never sent to clients. */
export const END_EVENT = "__end__";

/**
 * Per-run event channel. Every event is appended to a bounded log (kept
 * `ttl` seconds after the run ends) and fanned out live, so a subscriber can
 * start from the beginning, after a `Last-Event-ID`, or from "now" without gaps.
 * Ids are `<ms>-<seq>`, monotonic per run.
 */
export interface RunStreamBus {
  /**
   * `rolling`: for a log that never finishes (a thread's, see thread-stream.ts): the log
   * expires `ttl` seconds after its latest event instead of lasting until finish().
   */
  publish(runId: string, event: string, data: string, opts?: PublishOptions): Promise<string>;
  /** Appends the end marker and schedules the log's expiry. */
  finish(runId: string): Promise<void>;
  /**
   * Resolves once the subscription is live, so a caller that subscribes before
   * creating a run sees every event. `after`: undefined = only events from now,
   * "-1" / "0" / "-" = from the beginning, otherwise strictly after that id.
   * `fresh`: the run id was just minted by this process and the run is not inserted yet, so
   * nothing can have been written to its log: the bus may skip reading the log (the caller
   * gets every event from the start, as with "-1").
   * `live`: the subscriber streams the events to a client as they come (SSE), see watched().
   */
  subscribe(runId: string, opts: { after?: string; fresh?: boolean; live?: boolean }): Promise<Subscription>;
  /**
   * Whether a `live` subscription in this process follows the run, whose events reach it only
   * after a round trip to the bus's store: a run executing in this process then lets its
   * first event through before the graph's first CPU-bound stretch holds up the event loop.
   */
  watched(runId: string): boolean;
  sendControl(runId: string, action: CancelAction): Promise<void>;
  /** Resolves once listening; returns the unsubscribe function. */
  onControl(runId: string, handler: (action: CancelAction) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export const isFromStart = (after: string | undefined): boolean =>
  after === "-1" || after === "0" || after === "-" || after === "0-0";

/** Orders `<ms>-<seq>` ids (also accepts bare integers). */
export function compareIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split("-").map(Number);
  const [bm = 0, bs = 0] = b.split("-").map(Number);
  return am !== bm ? am - bm : as - bs;
}

/** Monotonic `<ms>-<seq>` ids per run for one publisher process. */
export class IdClock {
  private readonly last = new Map<string, { ms: number; seq: number }>();
  next(runId: string): string {
    const now = Date.now();
    const prev = this.last.get(runId);
    const cur = !prev || now > prev.ms ? { ms: now, seq: 0 } : { ms: prev.ms, seq: prev.seq + 1 };
    this.last.set(runId, cur);
    return `${cur.ms}-${cur.seq}`;
  }
  /** Moves the clock past an id seen elsewhere (a previous attempt's events). */
  advance(runId: string, id: string): void {
    const [ms = 0, seq = 0] = id.split("-").map(Number);
    const prev = this.last.get(runId);
    if (!prev || ms > prev.ms || (ms === prev.ms && seq > prev.seq)) this.last.set(runId, { ms, seq });
  }
  forget(runId: string): void {
    this.last.delete(runId);
  }
}
