/**
 * Soak version of test/e2e/durability-redis.test.ts: `npm run test:soak`.
 *
 * Runs are created continuously on a few threads (enqueued behind each other)
 * while this file's own redis-server is alternately flushed (FLUSHALL) and
 * killed + restarted empty on the same port, several times. Afterwards every
 * run that PostgreSQL holds (including any whose create request failed while
 * Redis was away) ends `success`; per thread the runs executed in creation
 * order and never two at once; each thread's state holds every step of every
 * run exactly once.
 *
 * Then, 6 times each: Redis restarted during a run's last step (the SDK stream
 * opened before still ends: the API catches up from the log once its
 * subscriber is back), and a cancel sent while Redis restarts (the run is
 * still interrupted: the worker reads the durable flag when renewing its lease).
 */
import type { Client } from "@langchain/langgraph-sdk";
import { describe, expect, it } from "vitest";
import {
  DURABLE_GRAPH,
  durableInput,
  expectSerialPerThread,
  findRedisServer,
  readRecords,
  sleep,
  useDurableCluster,
  waitFor,
  withoutHeartbeats,
} from "../helpers/cluster.js";
import { collect, sdk } from "../e2e/support.js";

const redisBinary = await findRedisServer();
const title = "soak: runs keep flowing through repeated Redis flushes and restarts";

describe.skipIf(redisBinary === null)(title, () => {
  let client: Client;
  const durable = useDurableCluster({
    database: "soak_redis",
    logLabel: "soak-redis",
    redisBinary,
    redisKeyPrefix: "soak-redis:",
    start: async (cluster) => {
      const [api] = await Promise.all([
        cluster.startApi(),
        cluster.startWorker({ N_JOBS_PER_WORKER: "2" }),
        cluster.startWorker({ N_JOBS_PER_WORKER: "2" }),
      ]);
      // No request timeout (the SDK default): a create made while Redis is away waits for it.
      client = sdk(api.url);
    },
  });

  it("6 disruptions (FLUSHALL / kill + restart) under load: every run succeeds, FIFO per thread", async () => {
    const THREADS = 5;
    const STEPS = 3;
    const threads = await Promise.all(Array.from({ length: THREADS }, () => client.threads.create()));
    let producing = true;
    let created = 0;
    let failedCreates = 0;
    const producer = (async () => {
      let i = 0;
      while (producing) {
        const t = threads[i % THREADS]!;
        const label = `soak-redis-${i}`;
        i++;
        try {
          await client.runs.create(t.thread_id, DURABLE_GRAPH, { input: durableInput(STEPS, 80, label) });
          created++;
        } catch {
          failedCreates++; // Redis away: the run may or may not be in PostgreSQL; checked below either way
        }
        await sleep(150);
      }
    })();

    const disruptions: string[] = [];
    for (let cycle = 0; cycle < 6; cycle++) {
      await sleep(2_500);
      if (cycle % 2 === 0) {
        await durable.redis!.flushAll();
        disruptions.push("flushall");
      } else {
        await durable.redis!.kill();
        await sleep(1_000);
        await durable.redis!.start();
        disruptions.push("restart");
      }
    }
    await sleep(2_000);
    producing = false;
    await producer;

    // Every run PostgreSQL accepted, not only the ones whose create answered.
    const all = async () => (await Promise.all(threads.map((t) => client.runs.list(t.thread_id, { limit: 1000 })))).flat();
    await waitFor(
      "every run to succeed",
      async () => {
        const runs = await all();
        const bad = runs.filter((r) => r.status === "error" || r.status === "timeout" || r.status === "interrupted");
        if (bad.length) throw new Error(`runs ended badly: ${bad.map((r) => `${r.run_id}:${r.status}`).join(",")}`);
        return runs.every((r) => r.status === "success");
      },
      { timeoutMs: 180_000, intervalMs: 500 },
    );
    const runs = await all();
    expect(runs.length).toBeGreaterThanOrEqual(created);

    const records = readRecords(durable.log.file).filter((r) => r.label.startsWith("soak-redis-"));
    const order = expectSerialPerThread(records);
    for (const t of threads) {
      const mine = runs
        .filter((r) => r.thread_id === t.thread_id)
        .sort((a, b) => (a.created_at === b.created_at ? (a.run_id < b.run_id ? -1 : 1) : a.created_at < b.created_at ? -1 : 1));
      expect(order.get(t.thread_id), "execution order = creation order").toEqual(mine.map((r) => r.run_id));
      const labels = mine.map((r) => (r as { kwargs?: { input?: { label?: string } } }).kwargs?.input?.label ?? "");
      const state = await client.threads.getState<{ done: string[] }>(t.thread_id);
      if (labels.every((l) => l !== "")) {
        expect(state.values.done).toEqual(labels.flatMap((l) => Array.from({ length: STEPS }, (_, s) => `${l}:${s}`)));
      } else {
        expect(state.values.done.length).toBe(mine.length * STEPS);
      }
    }
    console.info(
      `[soak redis] ${disruptions.join(", ")}: ${runs.length} runs (${created} creates answered, ${failedCreates} failed while Redis was away) all succeeded`,
    );
  });

  it("6 restarts during a run's last step: every open stream ends", async () => {
    for (let i = 0; i < 6; i++) {
      const thread = await client.threads.create();
      const run = await client.runs.create(thread.thread_id, DURABLE_GRAPH, { input: durableInput(3, 400, `tail-${i}`) });
      const stream = collect(client.runs.joinStream(thread.thread_id, run.run_id, { lastEventId: "-1" }));
      stream.catch(() => {});
      await waitFor("the last step", () => readRecords(durable.log.file, run.run_id).some((r) => r.ev === "start" && r.step === 2));
      await durable.redis!.kill();
      await sleep(800);
      await durable.redis!.start();
      await waitFor("success", async () => (await client.runs.get(thread.thread_id, run.run_id)).status === "success", { timeoutMs: 30_000 });
      const ended = await Promise.race([stream.then(() => true), sleep(8_000).then(() => false)]);
      expect(ended, `iteration ${i}: the stream ends`).toBe(true);
      const chunks = withoutHeartbeats(await stream);
      expect((chunks.filter((c) => c.event === "values").at(-1)!.data as { done: string[] }).done).toEqual([0, 1, 2].map((s) => `tail-${i}:${s}`));
    }
  });

  it("6 cancels sent while Redis restarts: every run is interrupted", async () => {
    const latencies: number[] = [];
    for (let i = 0; i < 6; i++) {
      const thread = await client.threads.create();
      const run = await client.runs.create(thread.thread_id, DURABLE_GRAPH, { input: durableInput(20, 300, `cancel-${i}`) });
      await waitFor("step 1", () => readRecords(durable.log.file, run.run_id).some((r) => r.ev === "start" && r.step === 1));
      await durable.redis!.kill();
      const cancelled = client.runs.cancel(thread.thread_id, run.run_id, false);
      await sleep(800);
      await durable.redis!.start();
      await cancelled;
      const t0 = Date.now();
      await waitFor(`iteration ${i}: interrupted`, async () => (await client.runs.get(thread.thread_id, run.run_id)).status === "interrupted", {
        timeoutMs: 5_000,
        intervalMs: 20,
      });
      latencies.push(Date.now() - t0);
    }
    console.info(`[soak redis] cancels across Redis restarts: interrupted after ${latencies.join("/")} ms`);
  });
});
