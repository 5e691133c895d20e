import { createWorker } from "./executor/worker.js";
import type { WorkerDeps } from "./executor/worker.js";
import type { GraphRegistry } from "./graphs/registry.js";
import type { AppDeps } from "./http/deps.js";
import type { Logger } from "./lib/logger.js";
import type { RunQueue } from "./queue/run-queue.js";
import { createAssistantsRepo } from "./storage/assistants.js";
import type { RunAwarePostgresSaver } from "./storage/checkpointer.js";
import { createCheckpointsRepo } from "./storage/checkpoints.js";
import type { Sql } from "./storage/db.js";
import { createRunsRepo } from "./storage/runs.js";
import { createGraphStore } from "./storage/graph-store.js";
import { createStatsRepo } from "./storage/stats.js";
import { createStoreRepo } from "./storage/store.js";
import { createThreadCheckpointsRepo } from "./storage/thread-checkpoints.js";
import { createThreadsRepo } from "./storage/threads.js";
import { createTruncateRepo } from "./storage/truncate.js";
import { TtlSweeper } from "./lifecycle/ttl-sweeper.js";
import type { RunStreamBus } from "./stream/bus.js";

export interface ServiceInputs {
  sql: Sql;
  checkpointer: RunAwarePostgresSaver;
  bus: RunStreamBus;
  queue: RunQueue;
  graphs: GraphRegistry;
  logger: Logger;
}

type WorkerTuning = Pick<WorkerDeps, "concurrency" | "leaseSecs" | "maxAttempts" | "runTimeoutSecs" | "sweepIntervalSecs" | "selfUrl" | "tracing">;
type AppTuning = Pick<AppDeps, "version" | "sseHeartbeatMs" | "maxBodyBytes" | "shutdown" | "tracingEnabled"> & Partial<Pick<AppDeps, "http">>;

/**
 * Wires repositories, the worker and the API's dependencies from opened
 * stores. Builds only: nothing here connects, listens or starts.
 */
export function buildServices(x: ServiceInputs) {
  const assistants = createAssistantsRepo(x.sql);
  const threads = createThreadsRepo(x.sql);
  const runs = createRunsRepo(x.sql);
  const checkpoints = createCheckpointsRepo(x.sql);
  const deleteCheckpoints = (threadId: string) => x.checkpointer.deleteThread(threadId);
  const shared = { runs, threads, checkpoints, queue: x.queue, bus: x.bus, graphs: x.graphs, deleteCheckpoints, logger: x.logger };
  const threadCheckpoints = createThreadCheckpointsRepo(x.sql);
  const store = createStoreRepo(x.sql);
  // Graphs read and write the same store as the /store routes.
  x.graphs.useStore(createGraphStore(store));
  return {
    assistants,
    threads,
    runs,
    checkpoints,
    store,
    /**
     * The TTL sweeper (expired threads and store items). Built here, started
     * by the caller: `const s = services.ttlSweeper({intervalMs}); s.start();`
     * and `await s.stop()` on shutdown.
     */
    ttlSweeper: (opts: { intervalMs: number; batchSize?: number }) =>
      new TtlSweeper({ threads, threadCheckpoints, store, deleteCheckpoints, logger: x.logger, ...opts }),
    /** One system assistant per served graph (idempotent). */
    async registerGraphs(): Promise<void> {
      for (const id of x.graphs.ids) await assistants.upsertSystem(id);
    },
    worker: (tuning: WorkerTuning) => createWorker({ ...shared, ...tuning }),
    appDeps: (tuning: AppTuning): AppDeps => ({
      ...shared,
      assistants,
      threadCheckpoints,
      store,
      stats: createStatsRepo(x.sql),
      truncate: createTruncateRepo(x.sql),
      poolStats: () => [{ pool: "api", max: x.sql.options.max }, { pool: "checkpointer", ...x.checkpointer.poolStats() }],
      checkDb: async () => void (await x.sql`SELECT 1`),
      ...tuning,
    }),
  };
}

export type Services = ReturnType<typeof buildServices>;
