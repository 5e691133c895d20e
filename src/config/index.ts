import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
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
  /** Which variable supplied postgresUri / redisUri (named in start-up errors). */
  postgresUriVar: "POSTGRES_URI_CUSTOM" | "POSTGRES_URI" | "DATABASE_URI" | null;
  redisUriVar: "REDIS_URI_CUSTOM" | "REDIS_URI" | null;
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
  /**
   * Built-in authentication (LANGGRAPH_AUTH_TYPE): `noop` lets every request in;
   * `api_key` requires one of OPENPLANE_API_KEYS / OPENPLANE_API_KEYS_FILE. Custom
   * auth in langgraph.json replaces both. Only SHA-256 digests of the keys are kept.
   */
  auth: { type: "noop" | "api_key"; apiKeyDigests: readonly string[] };
  /** `openplane up`: where desired state comes from and how deployments are run (docs/listener.md). */
  listener: ListenerConfig;
}

/** The listener's source of desired state: a control plane, a manifest file, or ./langgraph.json. */
export type ListenerSource =
  | { kind: "control-plane"; url: string; apiKey: string | null; tenantId: string | null; listenerId: string; pollSecs: number }
  | { kind: "manifest"; path: string; pollSecs: number }
  | { kind: "langgraph-json" };

export interface ListenerConfig {
  /** OPENPLANE_CONTROL_PLANE_URL (+ _API_KEY, OPENPLANE_TENANT_ID, OPENPLANE_LISTENER_ID), else OPENPLANE_MANIFEST, else langgraph.json. */
  source: ListenerSource;
  /** OPENPLANE_DATA_RETENTION_SECS: a deleted deployment's database (one we created) is dropped after this. */
  retentionSecs: number;
  /** OPENPLANE_GATEWAY_HOLD_SECS: how long the gateway holds a request for a deployment with no server ready. */
  gatewayHoldSecs: number;
  /** OPENPLANE_RESTART_BACKOFF_MS: first restart delay of a crashed server (doubles per consecutive failure). */
  restartBackoffMs: number;
  /** OPENPLANE_RESTART_MAX_FAILURES: consecutive failures before a revision is marked failed. */
  restartMaxFailures: number;
  /** OPENPLANE_HEALTH_TIMEOUT_SECS: a server must answer /ok within this after it starts. */
  healthTimeoutSecs: number;
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
  const auth = authFrom(e, problems);
  const listenerSource = listenerSourceFrom(e, problems);
  if (problems.length) throw new ConfigError(problems);
  return Object.freeze({
    postgresUri: e.POSTGRES_URI_CUSTOM ?? e.POSTGRES_URI ?? e.DATABASE_URI ?? null,
    redisUri: e.REDIS_URI_CUSTOM ?? e.REDIS_URI ?? null,
    postgresUriVar: e.POSTGRES_URI_CUSTOM ? "POSTGRES_URI_CUSTOM" : e.POSTGRES_URI ? "POSTGRES_URI" : e.DATABASE_URI ? "DATABASE_URI" : null,
    redisUriVar: e.REDIS_URI_CUSTOM ? "REDIS_URI_CUSTOM" : e.REDIS_URI ? "REDIS_URI" : null,
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
    listener: Object.freeze({
      source: Object.freeze(listenerSource),
      retentionSecs: e.OPENPLANE_DATA_RETENTION_SECS,
      gatewayHoldSecs: e.OPENPLANE_GATEWAY_HOLD_SECS,
      restartBackoffMs: e.OPENPLANE_RESTART_BACKOFF_MS,
      restartMaxFailures: e.OPENPLANE_RESTART_MAX_FAILURES,
      healthTimeoutSecs: e.OPENPLANE_HEALTH_TIMEOUT_SECS,
    }),
    auth: Object.freeze({ type: auth.type, apiKeyDigests: Object.freeze(auth.apiKeyDigests) }),
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

/** Which source the listener reads (docs/listener.md). A control plane needs its listener id. */
function listenerSourceFrom(e: Env, problems: string[]): ListenerSource {
  if (e.OPENPLANE_CONTROL_PLANE_URL && e.OPENPLANE_MANIFEST) {
    problems.push("OPENPLANE_MANIFEST: cannot be combined with OPENPLANE_CONTROL_PLANE_URL (choose one source of deployments)");
  }
  if (e.OPENPLANE_CONTROL_PLANE_URL) {
    if (!e.OPENPLANE_LISTENER_ID) problems.push("OPENPLANE_LISTENER_ID: required with OPENPLANE_CONTROL_PLANE_URL (the listener record whose deployments to run)");
    return {
      kind: "control-plane",
      url: e.OPENPLANE_CONTROL_PLANE_URL,
      apiKey: e.OPENPLANE_CONTROL_PLANE_API_KEY ?? null,
      tenantId: e.OPENPLANE_TENANT_ID ?? null,
      listenerId: e.OPENPLANE_LISTENER_ID ?? "",
      pollSecs: e.OPENPLANE_CONTROL_PLANE_POLL_SECS,
    };
  }
  if (e.OPENPLANE_MANIFEST) return { kind: "manifest", path: e.OPENPLANE_MANIFEST, pollSecs: e.OPENPLANE_MANIFEST_POLL_SECS };
  return { kind: "langgraph-json" };
}

/** Minimum length of an API key: shorter keys are guessable. */
const MIN_API_KEY_LENGTH = 16;

/**
 * LANGGRAPH_AUTH_TYPE and the API keys. Keys come from OPENPLANE_API_KEYS
 * (comma-separated) and/or OPENPLANE_API_KEYS_FILE (one per line, `#`
 * comments). Problems name variables and positions, never key values.
 */
function authFrom(e: Env, problems: string[]): { type: "noop" | "api_key"; apiKeyDigests: string[] } {
  const keys: string[] = [];
  (e.OPENPLANE_API_KEYS ?? "").split(",").forEach((k, i) => {
    const key = k.trim();
    if (!key) return;
    if (key.length < MIN_API_KEY_LENGTH) problems.push(`OPENPLANE_API_KEYS: key #${i + 1} is shorter than ${MIN_API_KEY_LENGTH} characters`);
    keys.push(key);
  });
  if (e.OPENPLANE_API_KEYS_FILE) {
    let text = "";
    try {
      text = readFileSync(e.OPENPLANE_API_KEYS_FILE, "utf8");
    } catch {
      problems.push(`OPENPLANE_API_KEYS_FILE: cannot read ${e.OPENPLANE_API_KEYS_FILE}`);
    }
    text.split(/\r?\n/).forEach((line, i) => {
      const key = line.trim();
      if (!key || key.startsWith("#")) return;
      if (key.length < MIN_API_KEY_LENGTH) problems.push(`OPENPLANE_API_KEYS_FILE: the key on line ${i + 1} is shorter than ${MIN_API_KEY_LENGTH} characters`);
      keys.push(key);
    });
  }
  if (e.LANGGRAPH_AUTH_TYPE === "langsmith") {
    problems.push(
      "LANGGRAPH_AUTH_TYPE: langsmith needs LangSmith's control plane to verify keys, which openplane does not have; use api_key (with OPENPLANE_API_KEYS) or custom auth in langgraph.json",
    );
  }
  const type = e.LANGGRAPH_AUTH_TYPE === "api_key" ? "api_key" : "noop";
  if (type === "api_key" && keys.length === 0) {
    problems.push("OPENPLANE_API_KEYS: LANGGRAPH_AUTH_TYPE=api_key needs at least one key (or OPENPLANE_API_KEYS_FILE)");
  }
  if (type === "noop" && keys.length > 0) {
    problems.push("LANGGRAPH_AUTH_TYPE: API keys are configured but LANGGRAPH_AUTH_TYPE is noop, so nothing would check them: set it to api_key");
  }
  return { type, apiKeyDigests: [...new Set(keys)].map((k) => createHash("sha256").update(k, "utf8").digest("hex")) };
}
