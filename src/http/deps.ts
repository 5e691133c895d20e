import type { AuthContext, AuthProvider } from "../auth/types.js";
import type { CronService } from "../crons/service.js";
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
  /** langgraph.json `http.app`: a Hono app mounted before the built-in routes. */
  custom?: CustomRoutes | null;
  /** langgraph.json `http.disable_*`: built-in route groups switched off. */
  disable?: Partial<Record<"assistants" | "threads" | "runs" | "store" | "meta", boolean>>;
  /** langgraph.json `http.cors`, merged over the CORS_* environment. */
  cors?: CorsFileOptions | null;
}

/** A user's Hono app (any copy of Hono: only its route list is read) and how auth applies to it. */
export interface CustomRoutes {
  app: { routes: unknown[]; fetch: unknown };
  /** `http.enable_custom_route_auth`: authenticate custom routes too. @defaultValue false */
  enableCustomRouteAuth: boolean;
  /** `http.middleware_order`: whether the app's middleware runs before authentication. @defaultValue "middleware_first" */
  middlewareOrder: "middleware_first" | "auth_first";
}

/** langgraph.json `http.cors` (api.md §5.1). */
export interface CorsFileOptions {
  allow_origins?: string[];
  allow_methods?: string[];
  allow_headers?: string[];
  allow_credentials?: boolean;
  allow_origin_regex?: string;
  expose_headers?: string[];
  max_age?: number;
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
  /** Crons: rows plus their job schedulers. */
  crons: CronService;
  /** Custom auth (langgraph.json `auth`) or the API key check; null = every request is allowed. */
  auth?: AuthProvider | null;
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
    /** The authenticated user; null or unset when auth is off or the route is open. */
    auth: AuthContext | null;
  }
}
