import { Queue, Worker, createPostgresBackend } from "bullmq";
import type { Processor } from "bullmq";
import type { Redis } from "ioredis";

/** Where BullMQ keeps its queues: Redis, or BullMQ's PostgreSQL backend when no Redis is configured. */
export type QueueBackend =
  | { kind: "redis"; connection: Redis; prefix: string }
  | { kind: "postgres"; uri: string; schema: string; poolMax: number };

// The Postgres-backed classes are generic over their backend; callers only use the common API.
type AnyQueue<T> = Queue<T, void, string, any, any>;
type AnyWorker<T> = Worker<T, void, string, any, any, any>;

const pgConnection = (b: Extract<QueueBackend, { kind: "postgres" }>, max: number) => ({
  connectionString: b.uri,
  schema: b.schema,
  max,
  // BullMQ's own schema migrations, serialised by its advisory lock.
  migrate: true,
});

/** A producer for `name` on `backend`. */
export function bullmqQueue<T>(name: string, backend: QueueBackend): AnyQueue<T> {
  return backend.kind === "redis"
    ? new Queue<T>(name, { connection: backend.connection, prefix: backend.prefix })
    : (new Queue(name, { connection: pgConnection(backend, 2) }, createPostgresBackend) as unknown as AnyQueue<T>);
}

/** A consumer of `name` on `backend`, not yet running (`autorun: false`). */
export function bullmqWorker<T>(name: string, backend: QueueBackend, concurrency: number, processor: Processor<T, void>): AnyWorker<T> {
  return backend.kind === "redis"
    ? new Worker<T, void>(name, processor, { connection: backend.connection, prefix: backend.prefix, concurrency, autorun: false })
    : (new Worker(
        name,
        processor as never,
        { connection: pgConnection(backend, Math.max(2, backend.poolMax)), concurrency, autorun: false },
        createPostgresBackend,
      ) as unknown as AnyWorker<T>);
}

/**
 * Runs `worker` and returns its close handle. BullMQ memoizes close(), so a
 * graceful close cannot be escalated, and it can hang for good: if the
 * worker's blocking connection is "reconnecting" (Redis restarted), ioredis
 * never emits the "end" BullMQ waits for. So each close stops waiting after
 * a bound (`gracefulWaitMs` null = wait for active jobs as long as it takes).
 */
export async function startConsumer(
  worker: AnyWorker<any>,
  onError: (err: unknown) => void,
  bounds: { gracefulWaitMs: number | null; forcedWaitMs: number },
): Promise<{ close(force?: boolean): Promise<void> }> {
  worker.on("error", onError);
  void worker.run().catch(onError);
  await worker.waitUntilReady();
  let closing: Promise<void> | null = null;
  return {
    close: (force = false) => {
      closing ??= worker.close(force);
      const waitMs = force ? bounds.forcedWaitMs : bounds.gracefulWaitMs;
      if (waitMs === null) return closing;
      return Promise.race([closing, new Promise<void>((r) => setTimeout(r, waitMs).unref())]);
    },
  };
}
