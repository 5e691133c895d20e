/**
 * DESIGN.md "Where state lives": Redis holds only what can be rebuilt. If it is
 * flushed or restarted, no accepted run is lost: runs queue in PostgreSQL and
 * Redis only rings the workers, which also poll (invariant 1's "an accepted
 * run reaches a terminal status", with Redis wiped instead of the worker).
 *
 * Real processes on a redis-server of this file's own (so FLUSHALL and a
 * restart cannot hurt other tests): an API-only `openplane serve` and
 * `openplane worker`s, 1 s sweep.
 * - FLUSHALL while runs wait in the queue and no worker runs: a worker started
 *   afterwards executes every one of them, FIFO per thread.
 * - FLUSHALL while the only worker (concurrency 1) is busy and other runs wait:
 *   every run completes, and the SDK stream of the run in flight completes.
 * - Redis killed and started again on the same port (empty) while the worker
 *   is in the last step of a run and other runs wait: every run completes, and
 *   the SDK stream opened before the restart ends (the API catches up from
 *   the run's log after its subscriber reconnects).
 * - A cancel sent while Redis restarts still stops the run: the worker also
 *   reads the durable cancel flag when it renews its lease.
 */
import type { Client } from "@langchain/langgraph-sdk";
import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import type { CliProcess } from "../helpers/cli.js";
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
import type { Chunk } from "./support.js";
import { collect, sdk } from "./support.js";

const redisBinary = await findRedisServer();
const title = "runs survive a flushed or restarted Redis";

describe.skipIf(redisBinary === null)(redisBinary ? title : `${title} (skipped: no redis-server on PATH)`, () => {
  let client: Client;
  /** The one worker (concurrency 1), started by the first test after the flush. */
  let worker: CliProcess | undefined;
  const prefix = "durable-redis:";
  const durable = useDurableCluster({
    database: "durable_redis",
    logLabel: "durable-redis",
    redisBinary,
    redisKeyPrefix: prefix,
    start: async (cluster) => {
      client = sdk((await cluster.startApi()).url);
    },
  });

  const keyCount = async () => {
    const c = new Redis(durable.redis!.uri, { maxRetriesPerRequest: 1 });
    c.on("error", () => {});
    try {
      return (await c.keys(`${prefix}*`)).length;
    } finally {
      c.disconnect();
    }
  };

  const statusOf = async (threadId: string, runId: string) => (await client.runs.get(threadId, runId)).status;

  const waitAllSuccess = async (runs: Array<{ thread_id: string; run_id: string }>, timeoutMs = 40_000) => {
    await waitFor(
      "every run to succeed",
      async () => {
        const statuses = await Promise.all(runs.map((r) => statusOf(r.thread_id, r.run_id)));
        const bad = statuses.filter((s) => s === "error" || s === "timeout" || s === "interrupted");
        if (bad.length) throw new Error(`runs ended badly: ${statuses.join(",")}`);
        return statuses.every((s) => s === "success");
      },
      { timeoutMs, intervalMs: 200 },
    );
  };

  /** A long run on its own thread, plus short runs on other threads queued behind it (worker concurrency 1). */
  const busyWorkerWithBacklog = async (label: string, atStep: number) => {
    const busyThread = await client.threads.create();
    const busy = await client.runs.create(busyThread.thread_id, DURABLE_GRAPH, { input: durableInput(8, 300, `${label}-busy`), streamMode: ["values"] });
    const stream = collect(client.runs.joinStream(busyThread.thread_id, busy.run_id, { lastEventId: "-1" }));
    stream.catch(() => {});
    await waitFor(`${label}: the busy run to start step ${atStep}`, () =>
      readRecords(durable.log.file, busy.run_id).some((r) => r.ev === "start" && r.step === atStep),
    );
    const queued = [];
    for (let i = 0; i < 3; i++) {
      const t = await client.threads.create();
      queued.push(await client.runs.create(t.thread_id, DURABLE_GRAPH, { input: durableInput(2, 100, `${label}-q${i}`) }));
    }
    for (const r of queued) expect(await statusOf(r.thread_id, r.run_id)).toBe("pending");
    return { busy, queued, stream };
  };

  it("FLUSHALL with runs queued and no worker running: a worker started later runs them all, FIFO per thread", async () => {
    const threads = await Promise.all([0, 1, 2].map(() => client.threads.create()));
    const runs = [];
    for (const [i, t] of threads.entries()) {
      runs.push(await client.runs.create(t.thread_id, DURABLE_GRAPH, { input: durableInput(2, 150, `a${i}-1`) }));
    }
    // Enqueued behind the first run of thread 0.
    runs.push(await client.runs.create(threads[0]!.thread_id, DURABLE_GRAPH, { input: durableInput(2, 150, "a0-2") }));
    for (const r of runs) expect(await statusOf(r.thread_id, r.run_id)).toBe("pending");

    await durable.redis!.flushAll();
    expect(await keyCount()).toBe(0);

    worker = await durable.cluster.startWorker({ N_JOBS_PER_WORKER: "1" });
    await waitAllSuccess(runs);
    const order = expectSerialPerThread(readRecords(durable.log.file).filter((r) => r.label.startsWith("a")));
    expect(order.get(threads[0]!.thread_id)).toEqual([runs[0]!.run_id, runs[3]!.run_id]);
    const state = await client.threads.getState<{ done: string[] }>(threads[0]!.thread_id);
    expect(state.values.done).toEqual(["a0-1:0", "a0-1:1", "a0-2:0", "a0-2:1"]);
  });

  it("FLUSHALL while the worker is busy and runs wait behind it: every run completes, the open stream too", async () => {
    // The worker of the previous test (concurrency 1).
    const { busy, queued, stream } = await busyWorkerWithBacklog("b", 1);
    await durable.redis!.flushAll();
    await waitAllSuccess([busy, ...queued]);
    expect(worker!.alive()).toBe(true);

    const chunks: Chunk[] = withoutHeartbeats(await stream);
    expect(chunks.some((c) => c.event === "error")).toBe(false);
    const last = chunks.filter((c) => c.event === "values").at(-1)?.data as { done: string[] } | undefined;
    expect(last?.done).toEqual(Array.from({ length: 8 }, (_, i) => `b-busy:${i}`));
  });

  it("Redis killed and restarted on the same port (empty) during a run's last step: every run completes, its open stream ends", async () => {
    // In its last step: its final events, end marker included, are published while the API's
    // subscriber may still be reconnecting; the API must catch up from the log, or the stream hangs.
    const { busy, queued, stream } = await busyWorkerWithBacklog("c", 7);
    await durable.redis!.kill();
    await sleep(1_000);
    await durable.redis!.start();
    await waitAllSuccess([busy, ...queued], 60_000);
    expect(worker!.alive()).toBe(true);
    // The stream opened before the restart ends too.
    const ended = await Promise.race([stream.then(() => true), sleep(10_000).then(() => false)]);
    expect(ended, "the stream opened before the Redis restart ends").toBe(true);
    const state = await client.threads.getState<{ done: string[] }>(busy.thread_id);
    expect(state.values.done).toEqual(Array.from({ length: 8 }, (_, i) => `c-busy:${i}`));
    // The API still works against the new Redis: a fresh run streams end to end.
    const t = await client.threads.create();
    const chunks = withoutHeartbeats(
      await collect(client.runs.stream(t.thread_id, DURABLE_GRAPH, { input: durableInput(1, 50, "c-after"), streamMode: ["values"] })),
    );
    expect(chunks[0]!.event).toBe("metadata");
    expect((chunks.at(-1)!.data as { done: string[] }).done).toEqual(["c-after:0"]);
  });

  it("a cancel sent while Redis restarts still stops the run (durable flag, not only pub/sub)", async () => {
    const thread = await client.threads.create();
    const run = await client.runs.create(thread.thread_id, DURABLE_GRAPH, { input: durableInput(20, 300, "d") });
    await waitFor("the run to start step 1", () => readRecords(durable.log.file, run.run_id).some((r) => r.ev === "start" && r.step === 1));
    await durable.redis!.kill();
    // Accepted by the API (the flag is in PostgreSQL); the live signal waits for Redis.
    const cancelled = client.runs.cancel(thread.thread_id, run.run_id, false);
    await sleep(800);
    await durable.redis!.start();
    await cancelled;
    const t0 = Date.now();
    await waitFor("status interrupted", async () => (await client.runs.get(thread.thread_id, run.run_id)).status === "interrupted", {
      timeoutMs: 5_000,
      intervalMs: 20,
    });
    console.info(`[durability-redis] cancel across a Redis restart: interrupted ${Date.now() - t0} ms after the cancel returned`);
    expect(readRecords(durable.log.file, run.run_id).filter((r) => r.ev === "end").length).toBeLessThan(20);
    // Still a clean, prompt SIGTERM after all that (nothing in flight: well within the 10 s grace;
    // BullMQ's own close can hang after a Redis restart and must not hold the exit).
    const exit = await worker!.stop();
    expect(exit.code, worker!.logs()).toBe(0);
    expect(exit.ms).toBeLessThan(9_000);
    console.info(`[durability-redis] worker SIGTERM after the Redis restarts: exit 0 after ${exit.ms} ms`);
  });
});
