import type { Logger } from "../lib/logger.js";
import type { CronQueue, CronTiming } from "../queue/cron-queue.js";
import type { RunQueueConsumer } from "../queue/run-queue.js";
import type { CronSchedule, CronWithOwner, CronsRepo } from "../storage/crons.js";
import { nextRunDate } from "./schedule.js";

export interface CronSchedulerDeps {
  repo: CronsRepo;
  queue: CronQueue;
  /** Creates the run of one fire through the API's run-creation path (createRun). */
  createRun: (cron: CronWithOwner) => Promise<{ run_id: string; thread_id: string }>;
  logger: Logger;
  /** Fires handled at once by this process. @defaultValue 2 */
  concurrency?: number;
  /** How often schedulers are rebuilt from Postgres. @defaultValue 60000 */
  reconcileIntervalMs?: number;
}

/** created → active → stopping → stopped */
export type CronSchedulerState = "created" | "active" | "stopping" | "stopped";

/**
 * Fires crons. BullMQ job schedulers keep the timing; each fire re-reads the
 * cron in Postgres (the source of truth), so a deleted, disabled or expired
 * cron creates nothing and its scheduler is removed. A fire creates a normal
 * run and records the next run date. `reconcile` rebuilds the schedulers from
 * Postgres: at start, then periodically (a flushed Redis loses nothing).
 * Safe on every replica: BullMQ hands each fire to one consumer, and
 * `claimFire` makes a fire delivered twice create one run.
 */
export function createCronScheduler(deps: CronSchedulerDeps) {
  const log = deps.logger.child({ component: "cron-scheduler" });
  let state: CronSchedulerState = "created";
  let consumer: RunQueueConsumer | null = null;
  let timer: NodeJS.Timeout | null = null;
  let reconciling: Promise<void> | null = null;

  const timing = (c: CronSchedule): CronTiming => ({
    pattern: c.schedule,
    tz: c.timezone ?? undefined,
    endDate: c.end_time ? new Date(c.end_time) : undefined,
  });

  const sameTiming = (a: CronTiming, b: CronTiming) =>
    a.pattern === b.pattern && (a.tz ?? null) === (b.tz ?? null) && (a.endDate?.getTime() ?? null) === (b.endDate?.getTime() ?? null);

  async function fire(cronId: string, fireMs: number): Promise<void> {
    const claimed = await deps.repo.claimFire(cronId, fireMs, (c) => nextRunDate(c, Math.max(Date.now(), fireMs)));
    if (!claimed.cron) {
      if (claimed.reason !== "duplicate") {
        await deps.queue.remove(cronId).catch((err) => log.warn({ err, cron_id: cronId }, "removing a cron scheduler failed"));
        log.info({ cron_id: cronId, reason: claimed.reason }, "cron scheduler removed");
      }
      return;
    }
    try {
      const run = await deps.createRun(claimed.cron);
      log.info({ cron_id: cronId, run_id: run.run_id, thread_id: run.thread_id }, "cron fired");
    } catch (err) {
      // A fire that cannot create its run (assistant deleted, thread busy with reject...) is
      // skipped; the next fire tries again.
      log.warn({ err, cron_id: cronId }, "cron fire created no run");
    }
  }

  async function reconcileOnce(): Promise<void> {
    // Queue first, then Postgres: a cron created in between is in Postgres, so it is never removed.
    const inQueue = new Map((await deps.queue.list()).map((s) => [s.id, s]));
    const wanted = await deps.repo.schedulable();
    const ids = new Set(wanted.map((c) => c.cron_id));
    let added = 0;
    let removed = 0;
    for (const c of wanted) {
      const have = inQueue.get(c.cron_id);
      if (have && sameTiming(have, timing(c))) continue;
      await deps.queue.upsert(c.cron_id, timing(c));
      added += 1;
    }
    for (const id of inQueue.keys()) {
      if (ids.has(id)) continue;
      await deps.queue.remove(id);
      removed += 1;
    }
    if (added || removed) log.info({ added, removed }, "cron schedulers reconciled");
  }

  const reconcile = (): Promise<void> => (reconciling ??= reconcileOnce().finally(() => (reconciling = null)));

  return {
    get state(): CronSchedulerState {
      return state;
    },
    fire,
    reconcile,
    async start(): Promise<void> {
      if (state !== "created") return;
      state = "active";
      await reconcile();
      consumer = await deps.queue.consume(deps.concurrency ?? 2, fire);
      timer = setInterval(() => {
        void reconcile().catch((err) => log.warn({ err }, "cron reconcile failed"));
      }, deps.reconcileIntervalMs ?? 60_000);
      timer.unref();
    },
    /** Stops taking fires and waits for the ones in progress. */
    async stop(): Promise<void> {
      if (state === "stopped" || state === "stopping") return;
      state = "stopping";
      if (timer) clearInterval(timer);
      await consumer?.close();
      await reconciling?.catch(() => {});
      state = "stopped";
    },
  };
}

export type CronScheduler = ReturnType<typeof createCronScheduler>;
