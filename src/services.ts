import type { AuthContext, AuthProvider } from "./auth/types.js";
import { cronRunBody } from "./crons/run-body.js";
import { createCronScheduler } from "./crons/scheduler.js";
import type { CronSchedulerDeps } from "./crons/scheduler.js";
import { createCronService } from "./crons/service.js";
import { createWorker } from "./executor/worker.js";
import type { WorkerDeps } from "./executor/worker.js";
import type { StoreIndex } from "./graphs/embeddings.js";
import type { GraphRegistry } from "./graphs/registry.js";
import type { AppDeps, PoolStat } from "./http/deps.js";
import { createRunAuthorized } from "./http/run-auth.js";
import { prepareRun } from "./http/run-create.js";
import type { Logger } from "./lib/logger.js";
import type { CronQueue } from "./queue/cron-queue.js";
import type { RunQueue } from "./queue/run-queue.js";
import { createAssistantsRepo } from "./storage/assistants.js";
import type { RunAwarePostgresSaver } from "./storage/checkpointer.js";
import { createCheckpointsRepo } from "./storage/checkpoints.js";
import { createCronsRepo } from "./storage/crons.js";
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
  /** Job schedulers for crons; without it crons are stored but never fire. */
  cronQueue?: CronQueue | null;
  /** Custom auth or the API key check; null = open. */
  auth?: AuthProvider | null;
  /** langgraph.json `store.index`, loaded (loadStoreIndex); null = no semantic search. */
  storeIndex?: StoreIndex | null;
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
  // The checkpointer's setup (always run before our migrations) creates the function claims read with.
  const runs = createRunsRepo(x.sql, { checkpoints: x.checkpointer.statements });
  const checkpoints = createCheckpointsRepo(x.sql);
  const deleteCheckpoints = (threadId: string) => x.checkpointer.deleteThread(threadId);
  const shared = { runs, threads, checkpoints, queue: x.queue, bus: x.bus, graphs: x.graphs, deleteCheckpoints, logger: x.logger };
  const threadCheckpoints = createThreadCheckpointsRepo(x.sql);
  const store = createStoreRepo(x.sql, { index: x.storeIndex ?? null });
  const crons = createCronService({ repo: createCronsRepo(x.sql), queue: x.cronQueue ?? null, logger: x.logger });
  const auth = x.auth ?? null;
  // Graphs read and write the same store as the /store routes.
  x.graphs.useStore(createGraphStore(store));
  const poolStats = (): PoolStat[] => [{ pool: "api", max: x.sql.options.max }, { pool: "checkpointer", ...x.checkpointer.poolStats() }];
  const checkDb = async () => void (await x.sql`SELECT 1`);
  return {
    assistants,
    threads,
    runs,
    checkpoints,
    store,
    /** Database pool sizes (GET /metrics of the API and of a worker). */
    poolStats,
    /** A `SELECT 1` on our pool (GET /ok?check_db=1). */
    checkDb,
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
    worker: (tuning: WorkerTuning) =>
      createWorker({
        ...shared,
        writeBehind: (runId) => x.checkpointer.writeBehind(runId),
        primeCheckpoint: (runId, threadId, row) => x.checkpointer.prime(runId, threadId, row),
        guardWrites: (runId, attempt, check) => x.checkpointer.guard(runId, attempt, check),
        writesWithOutcome: true,
        ...tuning,
      }),
    /**
     * Fires crons (needs `cronQueue`): each fire creates a run through the
     * API's creation path, as the user who created the cron. Started by the
     * caller (`await s.start()`, `await s.stop()`), where workers run.
     */
    cronScheduler: (tuning: Pick<CronSchedulerDeps, "concurrency" | "reconcileIntervalMs"> = {}) => {
      if (!x.cronQueue) throw new Error("cronScheduler needs a cronQueue");
      const runDeps = { ...shared, assistants, auth };
      return createCronScheduler({
        repo: crons.repo,
        queue: x.cronQueue,
        logger: x.logger,
        ...tuning,
        createRun: (cron) =>
          createRunAuthorized(runDeps, (cron.auth_user as AuthContext | null) ?? null, prepareRun(cron.thread_id), cronRunBody(cron)),
      });
    },
    appDeps: (tuning: AppTuning): AppDeps => ({
      ...shared,
      assistants,
      threadCheckpoints,
      store,
      stats: createStatsRepo(x.sql),
      truncate: createTruncateRepo(x.sql),
      crons,
      auth,
      poolStats,
      checkDb,
      ...tuning,
    }),
  };
}

export type Services = ReturnType<typeof buildServices>;
