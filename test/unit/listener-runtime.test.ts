/**
 * Pure helpers of the listener's runtime: the servers' environment (secrets
 * in env, never argv; the listener's own secrets never handed down), secret
 * redaction, restart backoff and poll backoff, and gateway routing.
 */
import { describe, expect, it } from "vitest";
import { publicLocation, resolveRoute, validDeploymentName } from "../../src/gateway/routes.js";
import { buildChildEnv } from "../../src/listener/child-env.js";
import type { PlatformEnv } from "../../src/listener/child-env.js";
import { databaseFor, managedDatabaseName } from "../../src/listener/database-name.js";
import { createRedactor, secretValues } from "../../src/listener/redact.js";
import { DEFAULT_RESTART_POLICY, failuresAfterExit, nextRestart, pollDelay } from "../../src/listener/restart-policy.js";
import type { DesiredDeployment, RouteSpec } from "../../src/listener/types.js";

const dep = (over: Partial<DesiredDeployment> = {}): DesiredDeployment => ({
  id: "d1",
  name: "agent",
  revisionId: "r1",
  source: { kind: "directory", path: "/srv", configFile: "langgraph.json" },
  env: { OPENAI_API_KEY: "sk-abcdef", POSTGRES_URI: "postgres://evil@x/y" },
  secretNames: ["OPENAI_API_KEY"],
  hosts: [],
  root: false,
  inheritEnv: false,
  ...over,
});
const platform: PlatformEnv = {
  postgresUri: "postgres://postgres:pw@127.0.0.1:5432/op_d1",
  redisUri: "redis://127.0.0.1:6379",
  redisKeyPrefix: "agent:",
  logLevel: "info",
  logJson: false,
  shutdownGraceSecs: 30,
};
const parent = {
  PATH: "/usr/bin",
  HOME: "/root",
  OPENPLANE_CONTROL_PLANE_API_KEY: "lsv2_listener_key",
  OPENPLANE_LISTENER_ID: "L1",
  LANGSMITH_API_KEY: "lsv2_parent",
  POSTGRES_URI_CUSTOM: "postgres://listener/db",
  LC_ALL: "C.UTF-8",
};

describe("server environment", () => {
  it("a control-plane deployment gets a minimal base, its own env, and the platform's store variables", () => {
    const env = buildChildEnv(parent, dep(), platform);
    expect(env).toEqual({
      PATH: "/usr/bin",
      HOME: "/root",
      LC_ALL: "C.UTF-8",
      LOG_LEVEL: "info",
      LOG_JSON: "false",
      BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS: "30",
      OPENAI_API_KEY: "sk-abcdef",
      POSTGRES_URI: platform.postgresUri,
      REDIS_URI: platform.redisUri,
      REDIS_KEY_PREFIX: "agent:",
    });
  });

  it("its own POSTGRES_URI_CUSTOM and REDIS_URI_CUSTOM are used as given", () => {
    const env = buildChildEnv(parent, dep({ env: { POSTGRES_URI_CUSTOM: "postgres://mine/app", REDIS_URI_CUSTOM: "redis://mine" } }), { ...platform, postgresUri: null });
    expect(env.POSTGRES_URI).toBeUndefined();
    expect(env.POSTGRES_URI_CUSTOM).toBe("postgres://mine/app");
    expect(env.REDIS_URI).toBeUndefined();
    expect(env.REDIS_KEY_PREFIX).toBeUndefined();
  });

  it("the default deployment inherits everything except the listener's own settings", () => {
    const env = buildChildEnv(parent, dep({ env: {}, inheritEnv: true }), { ...platform, redisUri: null, redisKeyPrefix: "" });
    expect(env.LANGSMITH_API_KEY).toBe("lsv2_parent");
    expect(env.OPENPLANE_CONTROL_PLANE_API_KEY).toBeUndefined();
    expect(env.OPENPLANE_LISTENER_ID).toBeUndefined();
    expect(env.POSTGRES_URI_CUSTOM).toBeUndefined();
    expect(env.POSTGRES_URI).toBe(platform.postgresUri);
    expect(env.REDIS_URI).toBeUndefined();
  });

  it("databases: managed names are stable and valid identifiers; custom and default use no managed database", () => {
    const name = managedDatabaseName("0b38e236-C02B-4553-bf4e-fa07454c7d50");
    expect(name).toMatch(/^op_[a-z0-9_]{1,60}$/);
    expect(name.length).toBeLessThanOrEqual(63);
    expect(managedDatabaseName("0b38e236-C02B-4553-bf4e-fa07454c7d50")).toBe(name);
    expect(managedDatabaseName("a")).not.toBe(managedDatabaseName("A"));
    expect(databaseFor(dep())).toEqual({ kind: "managed", name: managedDatabaseName("d1") });
    expect(databaseFor(dep({ env: { POSTGRES_URI_CUSTOM: "postgres://x/y" } }))).toEqual({ kind: "custom" });
    expect(databaseFor(dep({ inheritEnv: true }))).toEqual({ kind: "listener" });
  });
});

describe("redaction", () => {
  it("removes secret values (and URI passwords) from text; short values are left alone", () => {
    const redact = createRedactor(secretValues({ OPENAI_API_KEY: "sk-abcdef", DB_URI: "postgres://u:p%40ss-word@h/d", MODE: "on", NAME: "agent" }, ["MODE"]));
    expect(redact("key sk-abcdef and p@ss-word in postgres://u:p%40ss-word@h/d, mode on, agent")).toBe("key *** and *** in ***, mode on, agent");
  });
});

describe("backoff", () => {
  const p = { ...DEFAULT_RESTART_POLICY, baseMs: 1000, capMs: 8000, maxFailures: 5 };
  it("restart delays double (±20 %), are capped, and give up after maxFailures", () => {
    const mid = () => 0.5;
    expect([1, 2, 3, 4].map((n) => nextRestart(n, p, mid))).toEqual([1000, 2000, 4000, 8000].map((delayMs) => ({ restart: true, delayMs })));
    expect(nextRestart(5, p, mid)).toEqual({ restart: false });
    expect((nextRestart(1, p, () => 0) as { delayMs: number }).delayMs).toBe(800);
    expect((nextRestart(1, p, () => 1) as { delayMs: number }).delayMs).toBe(1200);
  });
  it("a server that stayed healthy long enough starts a fresh count", () => {
    expect(failuresAfterExit(3, null, p)).toBe(4);
    expect(failuresAfterExit(3, 1_000, p)).toBe(4);
    expect(failuresAfterExit(3, p.resetAfterMs, p)).toBe(1);
  });
  it("polls at the interval while healthy, backs off exponentially (capped) while failing", () => {
    expect(pollDelay(0, 10_000, 300_000, () => 0.5)).toBe(10_000);
    expect(pollDelay(1, 10_000, 300_000, () => 0.5)).toBe(20_000);
    expect(pollDelay(3, 10_000, 300_000, () => 0.5)).toBe(80_000);
    expect(pollDelay(30, 10_000, 300_000, () => 0.5)).toBe(300_000);
    expect(pollDelay(0, 10_000, 300_000, () => 0)).toBe(8_000);
  });
});

describe("gateway routing", () => {
  const r = (name: string, over: Partial<RouteSpec> = {}): RouteSpec => ({
    deploymentId: name, name, hosts: [], root: false, revisionId: "r", upstream: "http://127.0.0.1:1", unavailable: null, ...over,
  });
  const routes = [r("agent"), r("other", { hosts: ["other.example.com"] }), r("default", { root: true })];

  it.each([
    ["/agent/threads/1?x=1", undefined, "agent", "/agent", "/threads/1?x=1"],
    ["/agent", undefined, "agent", "/agent", "/"],
    ["/agent?x=1", undefined, "agent", "/agent", "/?x=1"],
    ["/threads", "other.example.com:8000", "other", "", "/threads"],
    ["/agent/ok", "OTHER.example.com", "other", "", "/agent/ok"],
    ["/threads/1/runs", "localhost:2024", "default", "", "/threads/1/runs"],
    ["/", undefined, "default", "", "/"],
  ])("%s (Host %s) → %s, prefix %j, upstream path %j", (url, host, name, prefix, path) => {
    expect(resolveRoute(routes, host, url)).toMatchObject({ route: { name }, prefix, path });
  });

  it("without a root deployment, unknown paths resolve to nothing", () => {
    expect(resolveRoute([r("agent")], undefined, "/threads")).toBeNull();
  });

  it("absolute Location/Content-Location values naming the upstream become public; relative ones stay (the SDKs prefix them)", () => {
    expect(publicLocation("http://127.0.0.1:5001/threads/t/runs/r", "http://127.0.0.1:5001", "/agent")).toBe("/agent/threads/t/runs/r");
    expect(publicLocation("/threads/t/runs/r/stream", "http://127.0.0.1:5001", "/agent")).toBe("/threads/t/runs/r/stream");
    expect(publicLocation("https://elsewhere.example/x", "http://127.0.0.1:5001", "/agent")).toBe("https://elsewhere.example/x");
  });

  it.each([["agent", true], ["a-1", true], ["Agent", false], ["threads", false], ["-a", false], ["a".repeat(64), false]])("name %j valid: %s", (n, ok) => {
    expect(validDeploymentName(n)).toBe(ok);
  });
});
