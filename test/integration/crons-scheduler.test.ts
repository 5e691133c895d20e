/**
 * Crons fire through BullMQ job schedulers (on BullMQ's PostgreSQL backend,
 * and on Redis when one is available): every-second crons create runs that
 * complete; end_time, disabling and deleting stop them; a fire re-reads
 * Postgres (a missing cron removes its scheduler, a duplicate fire creates one
 * run); reconcile rebuilds schedulers lost with Redis and drops stale ones.
 */
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuthContext } from "../../src/auth/types.js";
import { cronRunBody } from "../../src/crons/run-body.js";
import { createCronScheduler } from "../../src/crons/scheduler.js";
import type { CronScheduler } from "../../src/crons/scheduler.js";
import { createCronService } from "../../src/crons/service.js";
import { createApp } from "../../src/http/app.js";
import { createRunAuthorized } from "../../src/http/run-auth.js";
import { prepareRun } from "../../src/http/run-create.js";
import { createLogger } from "../../src/lib/logger.js";
import { createCronQueue } from "../../src/queue/cron-queue.js";
import type { CronQueue } from "../../src/queue/cron-queue.js";
import { createCronsRepo } from "../../src/storage/crons.js";
import { createTestStack } from "../helpers/app.js";
import type { TestStack } from "../helpers/app.js";
import { createTestDatabase, hasRedis, redisUri, uniquePrefix } from "../helpers/services.js";
import type { TestDatabase } from "../helpers/services.js";
import type { ApiClient, Json } from "./api-support.js";
import { API_GRAPHS, apiClient } from "./api-support.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const backends = hasRedis() ? (["postgres", "redis"] as const) : (["postgres"] as const);

describe.each(backends)("crons on BullMQ's %s backend", (backend) => {
  // Every case on the embedded default (PostgreSQL); on Redis, firing and reconcile (runtime).
  const full = backend === "postgres";
  let db: TestDatabase;
  let stack: TestStack;
  let api: ApiClient;
  let queue: CronQueue;
  let scheduler: CronScheduler;
  let redis: Redis | null = null;

  beforeAll(async () => {
    db = await createTestDatabase(`crons_fire_${backend}`);
    stack = await createTestStack({ postgresUri: db.uri, configPath: API_GRAPHS, worker: true, workerConcurrency: 4 });
    const logger = createLogger({ level: "silent", json: true });
    if (backend === "redis") {
      redis = new Redis(redisUri(), { maxRetriesPerRequest: null });
      queue = createCronQueue({ kind: "redis", connection: redis, prefix: `${uniquePrefix("cron")}:bull` }, () => {});
    } else {
      queue = createCronQueue({ kind: "postgres", uri: db.uri, schema: uniquePrefix("cq").replace(/-/g, "_"), poolMax: 2 }, () => {});
    }
    const repo = createCronsRepo(stack.sql);
    api = apiClient({ app: createApp({ ...stack.deps, crons: createCronService({ repo, queue, logger }) }) });
    scheduler = createCronScheduler({
      repo,
      queue,
      logger,
      reconcileIntervalMs: 60_000,
      createRun: (cron) => createRunAuthorized(stack.deps, (cron.auth_user as AuthContext | null) ?? null, prepareRun(cron.thread_id), cronRunBody(cron)),
    });
    await scheduler.start();
  });

  afterAll(async () => {
    await scheduler?.stop();
    await queue?.close();
    await redis?.quit();
    await stack?.close();
    await db?.drop();
  });

  const runsOf = async (cronId: string) =>
    stack.sql<{ run_id: string; thread_id: string; status: string }[]>`
      SELECT run_id, thread_id, status FROM run WHERE metadata->>'cron_id' = ${cronId} ORDER BY created_at`;
  const successes = async (cronId: string, n: number) => {
    const rows = await runsOf(cronId);
    return rows.filter((r) => r.status === "success").length >= n ? rows : null;
  };
  const scheduled = async () => (await queue.list()).map((s) => s.id);
  /** Waits out a fire that may be in flight, then proves no new run appears for `ms`. */
  async function expectQuiet(cronId: string, ms = 2_200) {
    await sleep(400);
    const before = (await runsOf(cronId)).length;
    await sleep(ms);
    expect((await runsOf(cronId)).length).toBe(before);
  }

  it("a stateless cron every second creates runs that complete (threads kept); deleting it stops it", async () => {
    const cron = await api.json("POST", "/runs/crons", {
      assistant_id: "counter",
      schedule: "*/1 * * * * *",
      input: { count: 1 },
      on_run_completed: "keep",
      metadata: { case: "stateless" },
    });
    expect(await scheduled()).toContain(cron.cron_id);
    const runs = await waitFor("two successful cron runs", () => successes(cron.cron_id as string, 2));
    // One new thread per fire, kept, holding the run's result.
    expect(new Set(runs.map((r) => r.thread_id)).size).toBe(runs.length);
    const thread = await api.json("GET", `/threads/${runs[0]!.thread_id}`);
    expect(thread).toMatchObject({ status: "idle", values: { count: 4, steps: ["one", "two", "three"] } });
    const fresh = await api.json("GET", `/runs/crons/${cron.cron_id}`);
    expect(Date.parse(fresh.next_run_date as string)).toBeGreaterThan(Date.parse(cron.next_run_date as string));

    await api.json("DELETE", `/runs/crons/${cron.cron_id}`, undefined, 204);
    expect(await scheduled()).not.toContain(cron.cron_id);
    await expectQuiet(cron.cron_id as string);
  });

  it.runIf(full)("on_run_completed delete (the default) removes each fire's thread after its run", async () => {
    const assistant = await api.json("POST", "/assistants", { graph_id: "counter", name: `cron-${randomUUID()}` });
    const cron = await api.json("POST", "/runs/crons", { assistant_id: assistant.assistant_id, schedule: "*/1 * * * * *", input: { count: 1 } });
    await waitFor("a fire", async () => (await stack.sql`SELECT 1 FROM cron WHERE cron_id = ${cron.cron_id as string} AND last_fire_ms IS NOT NULL`).length > 0);
    await api.json("PATCH", `/runs/crons/${cron.cron_id}`, { enabled: false });
    await waitFor("the fires' threads to be deleted", async () => {
      const [row] = await stack.sql`SELECT count(*)::int AS n FROM thread WHERE metadata->>'assistant_id' = ${assistant.assistant_id as string}`;
      return row!.n === 0;
    });
  });

  it.runIf(full)("a thread cron queues runs on its thread; disabling stops it, enabling resumes it", async () => {
    const thread = await api.json("POST", "/threads", {});
    const cron = await api.json("POST", `/threads/${thread.thread_id}/runs/crons`, {
      assistant_id: "counter",
      schedule: "*/1 * * * * *",
      input: { count: 1 },
    });
    const runs = await waitFor("two successful runs on the thread", () => successes(cron.cron_id as string, 2));
    expect(runs.every((r) => r.thread_id === thread.thread_id)).toBe(true);
    const listed = await api.json<Json[]>("GET", `/threads/${thread.thread_id}/runs`);
    expect(listed.length).toBeGreaterThanOrEqual(2);

    const off = await api.json("PATCH", `/runs/crons/${cron.cron_id}`, { enabled: false });
    expect(off).toMatchObject({ enabled: false, next_run_date: null });
    expect(await scheduled()).not.toContain(cron.cron_id);
    await expectQuiet(cron.cron_id as string);

    const count = (await runsOf(cron.cron_id as string)).length;
    await api.json("PATCH", `/runs/crons/${cron.cron_id}`, { enabled: true });
    await waitFor("a run after re-enabling", async () => (await runsOf(cron.cron_id as string)).length > count);
    await api.json("DELETE", `/runs/crons/${cron.cron_id}`, undefined, 204);
  });

  it.runIf(full)("end_time stops a cron: no run after it, no next run date", async () => {
    const end = new Date(Date.now() + 2_500).toISOString();
    const cron = await api.json("POST", "/runs/crons", {
      assistant_id: "counter",
      schedule: "*/1 * * * * *",
      input: { count: 1 },
      on_run_completed: "keep",
      end_time: end,
    });
    await waitFor("a run before the end", () => successes(cron.cron_id as string, 1));
    await sleep(Math.max(0, Date.parse(end) - Date.now()) + 300);
    const runs = await runsOf(cron.cron_id as string);
    expect(runs.length).toBeGreaterThanOrEqual(1);
    expect(runs.length).toBeLessThanOrEqual(4);
    await expectQuiet(cron.cron_id as string, 1_500);
    const fresh = await api.json("GET", `/runs/crons/${cron.cron_id}`);
    expect(fresh.next_run_date).toBeNull();
    await scheduler.reconcile();
    expect(await scheduled()).not.toContain(cron.cron_id);
  });

  it("reconcile rebuilds a lost scheduler (Redis flushed) and removes stale ones; a fire re-reads Postgres", async () => {
    const cron = await api.json("POST", "/runs/crons", {
      assistant_id: "counter",
      schedule: "*/1 * * * * *",
      input: { count: 1 },
      on_run_completed: "keep",
    });
    await waitFor("a run", async () => (await runsOf(cron.cron_id as string)).length > 0);
    // The queue loses the scheduler; Postgres still has the cron.
    await queue.remove(cron.cron_id as string);
    const stale = randomUUID();
    await queue.upsert(stale, { pattern: "0 0 1 1 *" });
    await expectQuiet(cron.cron_id as string, 1_500);

    await scheduler.reconcile();
    const ids = await scheduled();
    expect(ids).toContain(cron.cron_id);
    expect(ids).not.toContain(stale);
    const count = (await runsOf(cron.cron_id as string)).length;
    await waitFor("runs again after reconcile", async () => (await runsOf(cron.cron_id as string)).length > count);
    await api.json("DELETE", `/runs/crons/${cron.cron_id}`, undefined, 204);

    // A fire for a cron Postgres no longer has creates nothing and drops its scheduler.
    await queue.upsert(stale, { pattern: "0 0 1 1 *" });
    await scheduler.fire(stale, Date.now());
    expect(await scheduled()).not.toContain(stale);
  });

  it.runIf(full)("a fire delivered twice creates one run; an older fire none", async () => {
    const cron = await api.json("POST", "/runs/crons", { assistant_id: "counter", schedule: "0 0 1 1 *", input: { count: 1 }, on_run_completed: "keep" });
    const at = Date.now();
    await scheduler.fire(cron.cron_id as string, at);
    await scheduler.fire(cron.cron_id as string, at);
    await scheduler.fire(cron.cron_id as string, at - 1_000);
    expect((await runsOf(cron.cron_id as string)).length).toBe(1);
    await api.json("DELETE", `/runs/crons/${cron.cron_id}`, undefined, 204);
  });
});
