import { bullmqQueue, bullmqWorker, startConsumer } from "./bullmq-backend.js";
import type { QueueBackend } from "./bullmq-backend.js";
import type { RunQueue, RunQueueConsumer } from "./run-queue.js";

const QUEUE_NAME = "runs";
const FORCED_CLOSE_WAIT_MS = 1_000;

export type { QueueBackend } from "./bullmq-backend.js";

type RunJobData = { run_id: string };
type AnyQueue = ReturnType<typeof bullmqQueue<RunJobData>>;

/** BullMQ on Redis, or on BullMQ's PostgreSQL backend when no Redis is configured. */
export function createBullmqQueue(backend: QueueBackend, onError: (err: unknown) => void): RunQueue {
  const make = {
    queue: (): AnyQueue => bullmqQueue<RunJobData>(QUEUE_NAME, backend),
    worker: (concurrency: number, processor: (job: { data: RunJobData }) => Promise<void>) =>
      bullmqWorker<RunJobData>(QUEUE_NAME, backend, concurrency, processor),
  };

  let queue: AnyQueue | null = null;
  const getQueue = () => {
    if (!queue) {
      queue = make.queue();
      queue.on("error", onError);
    }
    return queue;
  };

  return {
    async dispatch(items) {
      if (items.length === 0) return;
      await getQueue().addBulk(
        items.map((d) => ({
          name: "run",
          data: { run_id: d.run_id },
          opts: {
            // One job per run and attempt: re-dispatching a queued run is a no-op, but a job
            // left "active" by a worker that died cannot swallow the next attempt's dispatch.
            jobId: d.attempt ? `${d.run_id}.${d.attempt}` : d.run_id,
            delay: d.delay_ms > 0 ? d.delay_ms : undefined,
            removeOnComplete: true,
            removeOnFail: true,
            attempts: 1,
          },
        })),
      );
    },

    async consume(concurrency, handler): Promise<RunQueueConsumer> {
      const worker = make.worker(concurrency, (job) => handler(job.data.run_id));
      // Graceful: wait for active runs (the caller bounds that by its grace period).
      return startConsumer(worker, onError, { gracefulWaitMs: null, forcedWaitMs: FORCED_CLOSE_WAIT_MS });
    },

    async close() {
      const q = queue;
      queue = null;
      await q?.close();
    },
  };
}
