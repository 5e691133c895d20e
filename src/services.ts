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
import { createThreadsRepo } from "./storage/threads.js";
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
type AppTuning = Pick<AppDeps, "version" | "sseHeartbeatMs" | "maxBodyBytes" | "shutdown" | "tracingEnabled">;

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
  return {
    assistants,
    threads,
    runs,
    checkpoints,
    /** One system assistant per served graph (idempotent). */
    async registerGraphs(): Promise<void> {
      for (const id of x.graphs.ids) await assistants.upsertSystem(id);
    },
    worker: (tuning: WorkerTuning) => createWorker({ ...shared, ...tuning }),
    appDeps: (tuning: AppTuning): AppDeps => ({
      ...shared,
      assistants,
      checkDb: async () => void (await x.sql`SELECT 1`),
      ...tuning,
    }),
  };
}

export type Services = ReturnType<typeof buildServices>;
