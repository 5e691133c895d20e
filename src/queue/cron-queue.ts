import { bullmqQueue, bullmqWorker, startConsumer } from "./bullmq-backend.js";
import type { QueueBackend } from "./bullmq-backend.js";
import type { RunQueueConsumer } from "./run-queue.js";

const QUEUE_NAME = "crons";

/** When a cron fires, in the cron's own pattern and zone. */
export interface CronTiming {
  /** Cron expression; five fields, or six with seconds first. */
  pattern: string;
  /** IANA time zone; undefined = UTC. */
  tz?: string;
  /** No fire after this instant. */
  endDate?: Date;
}

/**
 * The schedule side of crons: one BullMQ job scheduler per cron, whose jobs
 * only say "fire cron X". Postgres stays the source of truth: a consumer
 * re-reads the cron on every fire, and the schedulers can be rebuilt from
 * Postgres at any time (e.g. after Redis was flushed).
 */
export interface CronQueue {
  /** Creates or replaces the scheduler of `cronId`. */
  upsert(cronId: string, timing: CronTiming): Promise<void>;
  remove(cronId: string): Promise<void>;
  /** Every scheduler the queue holds, with its timing. */
  list(): Promise<Array<{ id: string } & CronTiming>>;
  /** Consumes fires; `fireMs` is the instant the fire was scheduled for. */
  consume(concurrency: number, handler: (cronId: string, fireMs: number) => Promise<void>): Promise<RunQueueConsumer>;
  close(): Promise<void>;
}

type CronJobData = { cron_id: string };
type AnyQueue = ReturnType<typeof bullmqQueue<CronJobData>>;

/** BullMQ job schedulers on Redis, or on BullMQ's PostgreSQL backend without Redis. */
export function createCronQueue(backend: QueueBackend, onError: (err: unknown) => void): CronQueue {
  let queue: AnyQueue | null = null;
  const getQueue = (): AnyQueue => {
    if (!queue) {
      queue = bullmqQueue<CronJobData>(QUEUE_NAME, backend);
      queue.on("error", onError);
    }
    return queue;
  };

  return {
    async upsert(cronId, timing) {
      await getQueue().upsertJobScheduler(
        cronId,
        { pattern: timing.pattern, tz: timing.tz, endDate: timing.endDate },
        { name: "cron", data: { cron_id: cronId }, opts: { removeOnComplete: true, removeOnFail: true, attempts: 1 } },
      );
    },

    async remove(cronId) {
      await getQueue().removeJobScheduler(cronId);
    },

    async list() {
      const schedulers = await getQueue().getJobSchedulers(0, -1);
      return schedulers.map((s) => ({
        id: s.id ?? s.key,
        pattern: s.pattern ?? "",
        tz: s.tz ?? undefined,
        endDate: s.endDate ? new Date(s.endDate) : undefined,
      }));
    },

    async consume(concurrency, handler) {
      const processor = async (job: { id?: string; data: CronJobData; timestamp: number; delay?: number }) => {
        // Scheduler job ids end with the instant they were scheduled for ("repeat:<id>:<ms>").
        const fromId = Number(job.id?.split(":").pop());
        const fireMs = Number.isFinite(fromId) && fromId > 0 ? fromId : job.timestamp + (job.delay ?? 0);
        await handler(job.data.cron_id, fireMs);
      };
      const worker = bullmqWorker<CronJobData>(QUEUE_NAME, { ...backend, ...(backend.kind === "postgres" ? { poolMax: 2 } : {}) }, concurrency, processor);
      // A fire in progress only creates a run: a few seconds are plenty even for a graceful close.
      return startConsumer(worker, onError, { gracefulWaitMs: 5_000, forcedWaitMs: 1_000 });
    },

    async close() {
      const q = queue;
      queue = null;
      await q?.close();
    },
  };
}
