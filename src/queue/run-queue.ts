import type { Dispatch } from "../storage/runs.js";

/**
 * The run queue is only a doorbell: a job says "try run X". Postgres decides
 * whether X may execute (claim), so duplicate or lost jobs are harmless: the
 * sweeper re-dispatches from Postgres, the source of truth.
 */
export interface RunQueue {
  dispatch(items: Dispatch[]): Promise<void>;
  /** Starts consuming with `concurrency` parallel jobs; resolves once ready. */
  consume(concurrency: number, handler: (runId: string) => Promise<void>): Promise<RunQueueConsumer>;
  close(): Promise<void>;
}

export interface RunQueueConsumer {
  /** Stops fetching new jobs and waits for active ones; `force` returns without waiting. */
  close(force?: boolean): Promise<void>;
}
