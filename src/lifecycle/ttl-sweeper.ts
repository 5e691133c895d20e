import type { Logger } from "../lib/logger.js";
import type { StoreRepo } from "../storage/store.js";
import type { ThreadCheckpointsRepo } from "../storage/thread-checkpoints.js";
import type { ThreadsRepo } from "../storage/threads.js";

export interface TtlSweeperDeps {
  threads: Pick<ThreadsRepo, "deleteExpired" | "takeExpiredKeepLatest">;
  threadCheckpoints: Pick<ThreadCheckpointsRepo, "keepLatest">;
  store: Pick<StoreRepo, "deleteExpired">;
  deleteCheckpoints: (threadId: string) => Promise<void>;
  logger: Logger;
  /** Time between sweeps. */
  intervalMs: number;
  /** Most threads / items handled per batch (official `sweep_limit`). */
  batchSize?: number;
}

/** created → active (sweeping on a timer) → stopped. */
export type TtlSweeperState = "created" | "active" | "stopped";

/**
 * Applies TTLs: expired threads are deleted with their checkpoints (strategy
 * `delete`) or cut down to their latest checkpoint (`keep_latest`); expired
 * store items are deleted. Threads with a pending or running run are skipped
 * until they go idle. Safe on several replicas at once: rows are claimed
 * with SKIP LOCKED, so each is handled once.
 */
export class TtlSweeper {
  private state: TtlSweeperState = "created";
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private readonly log: Logger;
  private readonly batch: number;

  constructor(private readonly deps: TtlSweeperDeps) {
    this.log = deps.logger.child({ component: "ttl-sweeper" });
    this.batch = deps.batchSize ?? 1000;
  }

  get status(): TtlSweeperState {
    return this.state;
  }

  start(): void {
    if (this.state !== "created") return;
    this.state = "active";
    this.schedule();
  }

  /** Stops the timer and waits for a sweep in progress. Idempotent. */
  async stop(): Promise<void> {
    this.state = "stopped";
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One full sweep (every expired row, batch by batch). Returns what it did. */
  async sweepOnce(): Promise<{ deletedThreads: number; prunedThreads: number; deletedItems: number }> {
    const done = { deletedThreads: 0, prunedThreads: 0, deletedItems: 0 };
    for (;;) {
      const ids = await this.deps.threads.deleteExpired(this.batch);
      for (const id of ids) await this.deps.deleteCheckpoints(id);
      done.deletedThreads += ids.length;
      if (ids.length < this.batch || this.state === "stopped") break;
    }
    for (;;) {
      const ids = await this.deps.threads.takeExpiredKeepLatest(this.batch);
      await this.deps.threadCheckpoints.keepLatest(ids);
      done.prunedThreads += ids.length;
      if (ids.length < this.batch || this.state === "stopped") break;
    }
    for (;;) {
      const n = await this.deps.store.deleteExpired(this.batch);
      done.deletedItems += n;
      if (n < this.batch || this.state === "stopped") break;
    }
    if (done.deletedThreads || done.prunedThreads || done.deletedItems) this.log.info(done, "expired data swept");
    return done;
  }

  private schedule(): void {
    if (this.state !== "active") return;
    this.timer = setTimeout(() => {
      this.running = this.sweepOnce()
        .then(() => undefined)
        .catch((err: unknown) => this.log.warn({ err }, "TTL sweep failed; retrying next interval"))
        .finally(() => {
          this.running = null;
          this.schedule();
        });
    }, this.deps.intervalMs);
    // A pending sweep must not keep the process alive.
    this.timer.unref();
  }
}
