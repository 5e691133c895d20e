import { envSchema } from "./schema.js";
import type { Env } from "./schema.js";
import { parseRunsEndpoints } from "./tracing.js";
import type { TracingConfig } from "./tracing.js";

/**
 * The parsed, frozen configuration. `config/` is the only module that reads
 * environment variables; everything else receives a `Config`.
 */
export interface Config {
  /** POSTGRES_URI_CUSTOM, else POSTGRES_URI, else DATABASE_URI; null = embedded PostgreSQL. */
  postgresUri: string | null;
  /** REDIS_URI_CUSTOM, else REDIS_URI; null = no Redis (Postgres queue, in-process streams). */
  redisUri: string | null;
  redisKeyPrefix: string;
  postgresPoolMax: number;
  dataDir: string;
  nJobsPerWorker: number;
  runTimeoutSecs: number;
  runMaxAttempts: number;
  shutdownGraceSecs: number;
  resumableStreamTtlSecs: number;
  runLeaseSecs: number;
  sweepIntervalSecs: number;
  sseHeartbeatSecs: number;
  maxBodyBytes: number;
  logLevel: string;
  logJson: boolean;
  /** LangSmith tracing; null = off. Holds API keys: never log it. */
  tracing: TracingConfig | null;
  /** This deployment's own URL (relative webhooks); null = derived from --host/--port when serving. */
  apiUrl: string | null;
  /** HTTP options: MOUNT_PREFIX, CORS_ALLOW_ORIGINS (default *), CORS_ALLOW_CREDENTIALS, ALLOW_PRIVATE_NETWORK, OPENPLANE_ENABLE_TRUNCATE. */
  http: {
    mountPrefix: string;
    corsAllowOrigins: string[];
    corsAllowCredentials: boolean;
    allowPrivateNetwork: boolean;
    enableTruncate: boolean;
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/** Parses `env` once, reporting every problem together, each naming its variable. */
export function loadConfig(env: Record<string, string | undefined>): Readonly<Config> {
  // Empty strings mean "unset" (compose files often pass VAR= through).
  const present = Object.fromEntries(
    Object.keys(envSchema.shape)
      .map((k) => [k, env[k]] as const)
      .filter(([, v]) => v !== undefined && v !== ""),
  );
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => `${String(i.path[0] ?? "environment")}: ${i.message}`),
    );
  }
  const e = parsed.data;
  const problems: string[] = [];
  if (e.LANGGRAPH_POSTGRES_POOL_MAX_SIZE < 4)
    problems.push("LANGGRAPH_POSTGRES_POOL_MAX_SIZE: must be at least 4 (API, worker, checkpointer and queue share it)");
  const tracing = tracingFrom(e, problems);
  if (problems.length) throw new ConfigError(problems);
  return Object.freeze({
    postgresUri: e.POSTGRES_URI_CUSTOM ?? e.POSTGRES_URI ?? e.DATABASE_URI ?? null,
    redisUri: e.REDIS_URI_CUSTOM ?? e.REDIS_URI ?? null,
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    postgresPoolMax: e.LANGGRAPH_POSTGRES_POOL_MAX_SIZE,
    dataDir: e.OPENPLANE_DATA_DIR,
    nJobsPerWorker: e.N_JOBS_PER_WORKER,
    runTimeoutSecs: e.BG_JOB_TIMEOUT_SECS,
    runMaxAttempts: e.BG_JOB_MAX_RETRIES,
    shutdownGraceSecs: e.BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS,
    resumableStreamTtlSecs: e.RESUMABLE_STREAM_TTL_SECONDS,
    runLeaseSecs: e.OPENPLANE_RUN_LEASE_SECS,
    sweepIntervalSecs: e.OPENPLANE_SWEEP_INTERVAL_SECS,
    sseHeartbeatSecs: e.OPENPLANE_SSE_HEARTBEAT_SECS,
    maxBodyBytes: e.HTTP_MAX_REQUEST_BODY_BYTES,
    logLevel: e.LOG_LEVEL,
    logJson: e.LOG_JSON,
    apiUrl: e.LANGGRAPH_API_URL ?? null,
    tracing: tracing ? Object.freeze(tracing) : null,
    http: Object.freeze({
      mountPrefix: e.MOUNT_PREFIX ?? "",
      corsAllowOrigins: e.CORS_ALLOW_ORIGINS?.length ? e.CORS_ALLOW_ORIGINS : ["*"],
      corsAllowCredentials: e.CORS_ALLOW_CREDENTIALS,
      allowPrivateNetwork: e.ALLOW_PRIVATE_NETWORK,
      enableTruncate: e.OPENPLANE_ENABLE_TRUNCATE,
    }),
  });
}

/**
 * Tracing is on when LANGSMITH_TRACING (or LANGCHAIN_TRACING_V2) says so, or,
 * unset, when an API key or LANGSMITH_RUNS_ENDPOINTS is present (as the
 * official server does). Secret values never appear in problems.
 */
function tracingFrom(e: Env, problems: string[]): TracingConfig | null {
  const apiKey = e.LANGSMITH_API_KEY ?? e.LANGCHAIN_API_KEY ?? null;
  const endpoint = e.LANGSMITH_ENDPOINT ?? e.LANGCHAIN_ENDPOINT;
  let replicas: TracingConfig["replicas"] = [];
  if (e.LANGSMITH_RUNS_ENDPOINTS) {
    const parsed = parseRunsEndpoints(e.LANGSMITH_RUNS_ENDPOINTS);
    if ("problem" in parsed) problems.push(parsed.problem);
    else {
      if (parsed.form === "object" && endpoint) {
        problems.push("LANGSMITH_RUNS_ENDPOINTS: the {url: key} form cannot be combined with LANGSMITH_ENDPOINT (use the array form)");
      }
      replicas = parsed.replicas;
    }
  }
  const enabled = e.LANGSMITH_TRACING ?? e.LANGCHAIN_TRACING_V2 ?? (apiKey !== null || replicas.length > 0);
  if (!enabled) return null;
  if (!apiKey && replicas.length === 0) {
    problems.push("LANGSMITH_TRACING: tracing is on but neither LANGSMITH_API_KEY nor LANGSMITH_RUNS_ENDPOINTS is set");
  }
  return {
    apiUrl: (endpoint ?? "https://api.smith.langchain.com").replace(/\/+$/, ""),
    apiKey,
    project: e.LANGSMITH_PROJECT ?? e.LANGCHAIN_PROJECT ?? "default",
    replicas,
  };
}
