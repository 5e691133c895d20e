import { z } from "zod";

const bool = z
  .enum(["true", "false", "1", "0", "yes", "no", "TRUE", "FALSE", "True", "False"])
  .transform((v) => ["true", "1", "yes"].includes(v.toLowerCase()));

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const uri = (schemes: string[]) =>
  z.string().refine(
    (v) => {
      try {
        return schemes.includes(new URL(v).protocol);
      } catch {
        return false;
      }
    },
    { message: `must be a URL starting with ${schemes.map((s) => `${s}//`).join(" or ")}` },
  );

/**
 * Every environment variable openplane reads. Names follow the official
 * LangGraph server where one exists. Each key is documented in README.md.
 */
export const envSchema = z.object({
  POSTGRES_URI_CUSTOM: uri(["postgres:", "postgresql:"]).optional(),
  POSTGRES_URI: uri(["postgres:", "postgresql:"]).optional(),
  DATABASE_URI: uri(["postgres:", "postgresql:"]).optional(),
  REDIS_URI_CUSTOM: uri(["redis:", "rediss:"]).optional(),
  REDIS_URI: uri(["redis:", "rediss:"]).optional(),
  REDIS_KEY_PREFIX: z.string().regex(/^[A-Za-z0-9_.:-]*$/, "may only contain letters, digits and _ . : -").default(""),
  LANGGRAPH_POSTGRES_POOL_MAX_SIZE: int(2, 1000).default(20),
  OPENPLANE_DATA_DIR: z.string().min(1).default(".openplane"),
  N_JOBS_PER_WORKER: int(0, 1000).default(10),
  BG_JOB_TIMEOUT_SECS: int(1, 7 * 24 * 3600).default(3600),
  BG_JOB_MAX_RETRIES: int(1, 100).default(3),
  BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS: int(0, 3600).default(180),
  RESUMABLE_STREAM_TTL_SECONDS: int(1, 7 * 24 * 3600).default(120),
  OPENPLANE_RUN_LEASE_SECS: int(2, 3600).default(30),
  OPENPLANE_SWEEP_INTERVAL_SECS: int(1, 3600).default(10),
  OPENPLANE_SSE_HEARTBEAT_SECS: int(1, 300).default(5),
  HTTP_MAX_REQUEST_BODY_BYTES: int(1024, 2 ** 31).default(300 * 1024 * 1024),
  LANGGRAPH_API_URL: uri(["http:", "https:"]).optional(),
  MOUNT_PREFIX: z
    .string()
    .regex(/^\/?([A-Za-z0-9._~-]+\/?)*$/, "must be a URL path such as /api (letters, digits and . _ ~ - between slashes)")
    .optional(),
  CORS_ALLOW_ORIGINS: z
    .string()
    .transform((v) => v.split(",").map((o) => o.trim()).filter(Boolean))
    .refine((list) => list.every((o) => o === "*" || /^https?:\/\/[^/\s]+$/.test(o)), {
      message: "must be * or a comma-separated list of origins such as https://app.example.com",
    })
    .optional(),
  CORS_ALLOW_CREDENTIALS: bool.default(false),
  ALLOW_PRIVATE_NETWORK: bool.default(false),
  OPENPLANE_ENABLE_TRUNCATE: bool.default(false),
  LANGSMITH_TRACING: bool.optional(),
  LANGCHAIN_TRACING_V2: bool.optional(),
  LANGSMITH_API_KEY: z.string().min(1).optional(),
  LANGCHAIN_API_KEY: z.string().min(1).optional(),
  LANGSMITH_ENDPOINT: uri(["http:", "https:"]).optional(),
  LANGCHAIN_ENDPOINT: uri(["http:", "https:"]).optional(),
  LANGSMITH_PROJECT: z.string().min(1).optional(),
  LANGCHAIN_PROJECT: z.string().min(1).optional(),
  // Parsed in config/index.ts (its value holds API keys: never echoed in messages).
  LANGSMITH_RUNS_ENDPOINTS: z.string().optional(),
  // The listener (`openplane up`); see docs/listener.md. The API key is a secret: never echoed.
  OPENPLANE_CONTROL_PLANE_URL: uri(["http:", "https:"]).optional(),
  OPENPLANE_CONTROL_PLANE_API_KEY: z.string().min(1).optional(),
  OPENPLANE_TENANT_ID: z.string().min(1).optional(),
  OPENPLANE_LISTENER_ID: z.string().min(1).optional(),
  OPENPLANE_CONTROL_PLANE_POLL_SECS: int(1, 3600).default(10),
  OPENPLANE_MANIFEST: z.string().min(1).optional(),
  OPENPLANE_MANIFEST_POLL_SECS: int(1, 3600).default(10),
  OPENPLANE_DATA_RETENTION_SECS: int(0, 10 * 365 * 24 * 3600).default(7 * 24 * 3600),
  OPENPLANE_GATEWAY_HOLD_SECS: int(0, 600).default(30),
  OPENPLANE_RESTART_BACKOFF_MS: int(10, 600_000).default(1_000),
  OPENPLANE_RESTART_MAX_FAILURES: int(1, 100).default(5),
  OPENPLANE_HEALTH_TIMEOUT_SECS: int(1, 3600).default(120),
  LOG_LEVEL: z
    .string()
    .transform((v) => v.toLowerCase())
    .pipe(z.enum(["trace", "debug", "info", "warn", "warning", "error", "fatal", "silent"]))
    .transform((v) => (v === "warning" ? "warn" : v))
    .default("info"),
  LOG_JSON: bool.default(false),
  // Built-in authentication when langgraph.json has no `auth` (README "Authentication").
  // The keys are secrets: parsed in config/index.ts, never echoed in messages.
  LANGGRAPH_AUTH_TYPE: z.enum(["noop", "api_key", "langsmith"], { error: "must be noop or api_key" }).default("noop"),
  OPENPLANE_API_KEYS: z.string().optional(),
  OPENPLANE_API_KEYS_FILE: z.string().min(1).optional(),
});

export type Env = z.infer<typeof envSchema>;
