import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/index.js";

const PG = (db: string) => `postgres://u:p@127.0.0.1:5432/${db}`;
const REDIS = (db: number) => `redis://127.0.0.1:6379/${db}`;

function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error("expected loadConfig to throw");
}

describe("loadConfig: store URIs", () => {
  it("prefers POSTGRES_URI_CUSTOM over POSTGRES_URI over DATABASE_URI", () => {
    const all = { POSTGRES_URI_CUSTOM: PG("custom"), POSTGRES_URI: PG("plain"), DATABASE_URI: PG("database") };
    expect(loadConfig(all).postgresUri).toBe(PG("custom"));
    expect(loadConfig({ POSTGRES_URI: PG("plain"), DATABASE_URI: PG("database") }).postgresUri).toBe(PG("plain"));
    expect(loadConfig({ DATABASE_URI: PG("database") }).postgresUri).toBe(PG("database"));
  });

  it("prefers REDIS_URI_CUSTOM over REDIS_URI", () => {
    expect(loadConfig({ REDIS_URI_CUSTOM: REDIS(1), REDIS_URI: REDIS(2) }).redisUri).toBe(REDIS(1));
    expect(loadConfig({ REDIS_URI: REDIS(2) }).redisUri).toBe(REDIS(2));
  });

  it("treats empty strings as unset, falling through to the next variable", () => {
    const cfg = loadConfig({
      POSTGRES_URI_CUSTOM: "",
      POSTGRES_URI: "",
      DATABASE_URI: PG("database"),
      REDIS_URI_CUSTOM: "",
      REDIS_URI: REDIS(3),
      LANGGRAPH_POSTGRES_POOL_MAX_SIZE: "",
      LOG_LEVEL: "",
    });
    expect(cfg.postgresUri).toBe(PG("database"));
    expect(cfg.redisUri).toBe(REDIS(3));
    // Empty numeric/enum variables take their defaults instead of failing validation.
    expect(cfg.postgresPoolMax).toBe(20);
    expect(cfg.logLevel).toBe("info");
  });

  it("gives null URIs (embedded Postgres, no Redis) when nothing is set", () => {
    const cfg = loadConfig({ POSTGRES_URI: "", REDIS_URI: "" });
    expect(cfg.postgresUri).toBeNull();
    expect(cfg.redisUri).toBeNull();
  });

  it("accepts postgresql: and rediss: schemes", () => {
    const cfg = loadConfig({ POSTGRES_URI: "postgresql://x@h/db", REDIS_URI: "rediss://h:6380" });
    expect(cfg.postgresUri).toBe("postgresql://x@h/db");
    expect(cfg.redisUri).toBe("rediss://h:6380");
  });

  it("ignores variables it does not know", () => {
    const cfg = loadConfig({ PATH: "/usr/bin", HOME: "/root", SOMETHING_ELSE: "!!" });
    expect(cfg.postgresUri).toBeNull();
  });
});

describe("loadConfig: defaults", () => {
  it("has the documented defaults", () => {
    // toMatchObject: settings added later need their own default test, not an edit here.
    expect(loadConfig({})).toMatchObject({
      postgresUri: null,
      redisUri: null,
      redisKeyPrefix: "",
      postgresPoolMax: 20,
      dataDir: ".openplane",
      nJobsPerWorker: 10,
      runTimeoutSecs: 3600,
      runMaxAttempts: 3,
      shutdownGraceSecs: 180,
      resumableStreamTtlSecs: 120,
      runLeaseSecs: 30,
      sweepIntervalSecs: 10,
      sseHeartbeatSecs: 5,
      maxBodyBytes: 300 * 1024 * 1024,
      logLevel: "info",
      logJson: false,
      apiUrl: null,
    });
  });

  it("reads LANGGRAPH_API_URL (http or https only)", () => {
    expect(loadConfig({ LANGGRAPH_API_URL: "https://agents.example.com" }).apiUrl).toBe("https://agents.example.com");
    expect(problemsOf({ LANGGRAPH_API_URL: "ftp://x" })).toEqual([expect.stringMatching(/^LANGGRAPH_API_URL: /)]);
  });

  it("parses numbers, booleans and log levels", () => {
    const cfg = loadConfig({
      N_JOBS_PER_WORKER: "0",
      BG_JOB_MAX_RETRIES: "5",
      LOG_JSON: "TRUE",
      LOG_LEVEL: "WARNING",
      REDIS_KEY_PREFIX: "tenant-a:",
      HTTP_MAX_REQUEST_BODY_BYTES: "2048",
    });
    expect(cfg.nJobsPerWorker).toBe(0);
    expect(cfg.runMaxAttempts).toBe(5);
    expect(cfg.logJson).toBe(true);
    expect(cfg.logLevel).toBe("warn");
    expect(cfg.redisKeyPrefix).toBe("tenant-a:");
    expect(cfg.maxBodyBytes).toBe(2048);
    expect(loadConfig({ LOG_JSON: "no" }).logJson).toBe(false);
  });

  it("returns a frozen object", () => {
    const cfg = loadConfig({ POSTGRES_URI: PG("x") });
    expect(Object.isFrozen(cfg)).toBe(true);
    expect(() => {
      (cfg as { postgresUri: string | null }).postgresUri = "postgres://evil/db";
    }).toThrow(TypeError);
    expect(cfg.postgresUri).toBe(PG("x"));
  });
});

describe("loadConfig: errors", () => {
  it("reports every bad variable together, each message naming its variable", () => {
    const problems = problemsOf({
      POSTGRES_URI: "mysql://h/db",
      REDIS_URI: "not a url",
      N_JOBS_PER_WORKER: "many",
      LOG_LEVEL: "loud",
      LOG_JSON: "maybe",
    });
    expect(problems).toHaveLength(5);
    for (const name of ["POSTGRES_URI", "REDIS_URI", "N_JOBS_PER_WORKER", "LOG_LEVEL", "LOG_JSON"]) {
      expect(problems.filter((p) => p.startsWith(`${name}:`)), name).toHaveLength(1);
    }
    expect(problems.find((p) => p.startsWith("POSTGRES_URI:"))).toMatch(/postgres:\/\//);
  });

  it("puts every problem in the error message", () => {
    try {
      loadConfig({ REDIS_URI_CUSTOM: "http://h", BG_JOB_TIMEOUT_SECS: "0" });
      expect.unreachable("loadConfig should throw");
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const msg = (err as Error).message;
      expect(msg).toContain("REDIS_URI_CUSTOM");
      expect(msg).toContain("BG_JOB_TIMEOUT_SECS");
    }
  });

  it("validates a lower-priority URI even when a higher one is set", () => {
    // A typo in a fallback variable is still a typo: it is reported, not silently ignored.
    expect(problemsOf({ POSTGRES_URI_CUSTOM: PG("ok"), DATABASE_URI: "nope" })).toEqual([
      expect.stringMatching(/^DATABASE_URI: /),
    ]);
  });

  it("rejects a pool too small to share, naming the variable", () => {
    const problems = problemsOf({ LANGGRAPH_POSTGRES_POOL_MAX_SIZE: "3" });
    expect(problems).toEqual([expect.stringMatching(/^LANGGRAPH_POSTGRES_POOL_MAX_SIZE: .*at least 4/)]);
    expect(loadConfig({ LANGGRAPH_POSTGRES_POOL_MAX_SIZE: "4" }).postgresPoolMax).toBe(4);
  });

  it("rejects non-integer and out-of-range numbers", () => {
    expect(problemsOf({ BG_JOB_MAX_RETRIES: "1.5" })).toEqual([expect.stringMatching(/^BG_JOB_MAX_RETRIES: /)]);
    expect(problemsOf({ OPENPLANE_RUN_LEASE_SECS: "1" })).toEqual([expect.stringMatching(/^OPENPLANE_RUN_LEASE_SECS: /)]);
    expect(problemsOf({ HTTP_MAX_REQUEST_BODY_BYTES: "10" })).toEqual([
      expect.stringMatching(/^HTTP_MAX_REQUEST_BODY_BYTES: /),
    ]);
  });

  it("rejects a Redis key prefix with unsafe characters", () => {
    expect(problemsOf({ REDIS_KEY_PREFIX: "a b{c}" })).toEqual([expect.stringMatching(/^REDIS_KEY_PREFIX: /)]);
  });
});
