/**
 * `openplane worker`'s health app (createWorkerApp) on real stores: /ok follows
 * the worker's state, `?check_db=1` names the store that fails (PostgreSQL or
 * Redis, each pointed at a closed port) without leaking its credentials, and
 * /metrics serves process and pool metrics but not the database-wide run gauges.
 */
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StoreCheck } from "../../src/http/health.js";
import { createWorkerApp } from "../../src/http/worker-app.js";
import type { WorkerAppDeps } from "../../src/http/worker-app.js";
import { createSql } from "../../src/storage/db.js";
import type { Sql } from "../../src/storage/db.js";
import { createTestStack } from "../helpers/app.js";
import type { TestStack } from "../helpers/app.js";
import { freePort } from "../helpers/ports.js";
import { createTestDatabase, hasRedis, redisSkipReason, redisUri } from "../helpers/services.js";
import type { TestDatabase } from "../helpers/services.js";

const SECRET = "hunter2-do-not-leak";
const title = "openplane worker health app";

describe.skipIf(!hasRedis())(hasRedis() ? title : `${title} (skipped: ${redisSkipReason() ?? "no Redis"})`, () => {
  let db: TestDatabase;
  let stack: TestStack;
  let redis: Redis;
  let deadRedis: Redis;
  let deadSql: Sql;
  const logLines: string[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => void logLines.push(line) });

  beforeAll(async () => {
    db = await createTestDatabase("worker_app");
    stack = await createTestStack({ postgresUri: db.uri, redisUri: redisUri(), bus: "redis", queue: "redis" });
    redis = new Redis(redisUri(), { maxRetriesPerRequest: null, lazyConnect: true });
    await redis.connect();
    // Nothing listens on these ports: the stores are down, and their URIs carry a password.
    const [pgPort, redisPort] = [await freePort(), await freePort()];
    deadSql = createSql(`postgres://openplane:${SECRET}@127.0.0.1:${pgPort}/openplane`, 1);
    deadRedis = new Redis(`redis://:${SECRET}@127.0.0.1:${redisPort}/0`, { maxRetriesPerRequest: null, lazyConnect: true });
    deadRedis.on("error", () => {});
    void deadRedis.connect().catch(() => {});
  });

  afterAll(async () => {
    deadRedis?.disconnect();
    await deadSql?.end({ timeout: 1 });
    await redis?.quit();
    await stack?.close();
    await db?.drop();
  });

  const postgres = (): StoreCheck => ({ name: "PostgreSQL", check: () => stack.sql`SELECT 1` });
  const livePing = (): StoreCheck => ({ name: "Redis", check: () => redis.ping() });
  const app = (over: Partial<WorkerAppDeps> = {}) =>
    createWorkerApp({
      state: () => stack.worker!.state,
      stores: [postgres(), livePing()],
      poolStats: () => [{ pool: "api", max: stack.sql.options.max }],
      logger,
      ...over,
    });

  const get = async (a: ReturnType<typeof app>, path: string) => {
    const res = await a.request(path);
    return { status: res.status, body: (await res.json()) as unknown };
  };

  it("answers 200 while the worker is active, with and without check_db", async () => {
    expect(stack.worker!.state).toBe("active");
    const a = app();
    expect(await get(a, "/ok")).toEqual({ status: 200, body: { ok: true } });
    expect(await get(a, "/ok?check_db=1")).toEqual({ status: 200, body: { ok: true } });
    expect(await get(a, "/ok?check_db=true")).toEqual({ status: 200, body: { ok: true } });
  });

  it("check_db names the store that is down, and never its URI or password", async () => {
    const deadPostgres: StoreCheck = { name: "PostgreSQL", check: () => deadSql`SELECT 1` };
    const deadPing: StoreCheck = { name: "Redis", check: () => deadRedis.ping() };
    logLines.length = 0;

    const started = Date.now();
    const redisDown = await get(app({ stores: [postgres(), deadPing] }), "/ok?check_db=1");
    // ioredis queues the PING while it reconnects: the check's own timeout answers.
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(redisDown).toEqual({ status: 503, body: { detail: "Redis is not reachable" } });

    expect(await get(app({ stores: [deadPostgres, livePing()] }), "/ok?check_db=1")).toEqual({
      status: 503,
      body: { detail: "PostgreSQL is not reachable" },
    });
    expect(await get(app({ stores: [deadPostgres, deadPing] }), "/ok?check_db=1")).toEqual({
      status: 503,
      body: { detail: "PostgreSQL and Redis are not reachable" },
    });
    // Liveness (no check_db) does not touch the stores.
    expect(await get(app({ stores: [deadPostgres, deadPing] }), "/ok")).toEqual({ status: 200, body: { ok: true } });

    const logs = logLines.join("");
    expect(logs).toContain('"store":"Redis"');
    expect(logs).toContain('"store":"PostgreSQL"');
    expect(logs).not.toContain(SECRET);
    expect(logs).not.toContain("127.0.0.1");
  });

  it("serves /metrics: process and pool metrics, not the database-wide run gauges", async () => {
    const a = app();
    await a.request("/ok");
    const res = await a.request("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/^openplane_process_cpu_user_seconds_total \d/m);
    expect(text).toContain('openplane_db_pool_connections{pool="api",kind="max"} 4');
    expect(text).toMatch(/^openplane_http_requests_total\{method="GET",route="\/ok",status="200"\} 1$/m);
    expect(text).not.toContain("openplane_runs");
    const json = await a.request("/metrics?format=json");
    expect(json.headers.get("content-type")).toBe("application/json");
    expect(Array.isArray(await json.json())).toBe(true);
  });

  it("follows MOUNT_PREFIX like the API; other paths are 404 JSON", async () => {
    const a = app({ mountPrefix: "/langgraph/" });
    expect(await get(a, "/langgraph/ok")).toEqual({ status: 200, body: { ok: true } });
    expect(await get(a, "/ok")).toEqual({ status: 404, body: { detail: "Not Found" } });
    expect(await get(app(), "/threads")).toEqual({ status: 404, body: { detail: "Not Found" } });
  });

  it("answers 503 once the worker has stopped, even with healthy stores", async () => {
    const a = app();
    await stack.worker!.close(1_000);
    expect(stack.worker!.state).toBe("stopped");
    expect(await get(a, "/ok")).toEqual({ status: 503, body: { detail: "Worker is stopped" } });
    expect(await get(a, "/ok?check_db=1")).toEqual({ status: 503, body: { detail: "Worker is stopped" } });
  });
});
