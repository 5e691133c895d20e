import type { GraphRegistry } from "../graphs/registry.js";
import type { Logger } from "../lib/logger.js";
import type { RunQueue } from "../queue/run-queue.js";
import type { AssistantsRepo } from "../storage/assistants.js";
import type { CheckpointsRepo } from "../storage/checkpoints.js";
import type { RunsRepo } from "../storage/runs.js";
import type { ThreadsRepo } from "../storage/threads.js";
import type { RunStreamBus } from "../stream/bus.js";

/** Everything the HTTP API needs, injected by the caller (src/bin). */
export interface AppDeps {
  assistants: AssistantsRepo;
  threads: ThreadsRepo;
  runs: RunsRepo;
  checkpoints: CheckpointsRepo;
  queue: RunQueue;
  bus: RunStreamBus;
  graphs: GraphRegistry;
  /** Deletes every checkpoint of a thread (the checkpointer owns those tables). */
  deleteCheckpoints: (threadId: string) => Promise<void>;
  /** Answers /ok?check_db=1. */
  checkDb: () => Promise<void>;
  logger: Logger;
  version: string;
  /** Runs are traced to LangSmith (advertised in /info). */
  tracingEnabled: boolean;
  sseHeartbeatMs: number;
  maxBodyBytes: number;
  /** Aborted when the server starts shutting down: open streams end cleanly. */
  shutdown: AbortSignal;
}

declare module "hono" {
  interface ContextVariableMap {
    deps: AppDeps;
  }
}
