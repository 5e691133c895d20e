import type { GraphRegistry } from "../graphs/registry.js";
import type { Logger } from "../lib/logger.js";
import type { RunQueue } from "../queue/run-queue.js";
import type { AssistantsRepo } from "../storage/assistants.js";
import type { CheckpointsRepo } from "../storage/checkpoints.js";
import type { RunsRepo } from "../storage/runs.js";
import type { StatsRepo } from "../storage/stats.js";
import type { StoreRepo } from "../storage/store.js";
import type { ThreadCheckpointsRepo } from "../storage/thread-checkpoints.js";
import type { ThreadsRepo } from "../storage/threads.js";
import type { TruncateRepo } from "../storage/truncate.js";
import type { RunStreamBus } from "../stream/bus.js";

/** One database pool's size, as far as its driver tells (GET /metrics). */
export interface PoolStat {
  pool: string;
  max: number;
  total?: number;
  idle?: number;
  waiting?: number;
}

/** HTTP-level options (env: MOUNT_PREFIX, CORS_*, ALLOW_PRIVATE_NETWORK, OPENPLANE_ENABLE_TRUNCATE). */
export interface HttpOptions {
  /** Serve every route under this path ("" = at the root). */
  mountPrefix: string;
  /** Allowed CORS origins; ["*"] allows any. */
  corsAllowOrigins: string[];
  corsAllowCredentials: boolean;
  /** Answer Chrome's Private-Network-Access preflights (dev only). */
  allowPrivateNetwork: boolean;
  /** Enables POST /internal/truncate (test suites only). */
  enableTruncate: boolean;
}

/** Everything the HTTP API needs, injected by the caller (src/bin). */
export interface AppDeps {
  assistants: AssistantsRepo;
  threads: ThreadsRepo;
  runs: RunsRepo;
  checkpoints: CheckpointsRepo;
  /** Thread copy and keep_latest prune on the checkpointer's tables. */
  threadCheckpoints: ThreadCheckpointsRepo;
  store: StoreRepo;
  stats: StatsRepo;
  truncate: TruncateRepo;
  /** Database pool sizes for /metrics. */
  poolStats: () => PoolStat[];
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
  /** Defaults: no prefix, CORS for any origin, no private network, no truncate. */
  http?: Partial<HttpOptions>;
}

declare module "hono" {
  interface ContextVariableMap {
    deps: AppDeps;
  }
}
