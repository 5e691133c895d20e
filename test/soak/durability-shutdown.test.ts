/**
 * Soak version of test/e2e/durability-shutdown.test.ts (run invariant 5):
 * `npm run test:soak`.
 *
 * A rolling restart under load: runs stream continuously through the API
 * while, cycle after cycle, the worker executing some run mid-step gets
 * SIGTERM with a 1 s grace period (shorter than the runs) and a replacement
 * worker starts. Every signalled worker exits 0 within grace + a few seconds;
 * every run succeeds; every SDK stream completes without an error and ends
 * with the full state; handed-back runs resumed at the step in flight (no
 * step redone, no overlap: the graceful path flushes its checkpoint writes
 * before handing back); per thread, creation order and never two at once.
 */
import type { Client } from "@langchain/langgraph-sdk";
import { describe, expect, it } from "vitest";
import {
  DURABLE_GRAPH,
  durableInput,
  expectResumedWithoutRedo,
  expectSerialPerThread,
  readRecords,
  sleep,
  useDurableCluster,
  waitFor,
  withoutHeartbeats,
} from "../helpers/cluster.js";
import type { StepRecord } from "../helpers/cluster.js";
import { hasRedis, redisSkipReason } from "../helpers/services.js";
import type { Chunk } from "../e2e/support.js";
import { collect, expectStrictlyIncreasingIds, sdk } from "../e2e/support.js";

const title = "soak: rolling SIGTERM of workers with a grace period shorter than the runs";
const GRACE = 1;

describe.skipIf(!hasRedis())(hasRedis() ? title : `${title} (skipped: ${redisSkipReason() ?? "no Redis"})`, () => {
  let client: Client;
  const durable = useDurableCluster({
    database: "soak_shutdown",
    logLabel: "soak-shutdown",
    env: { BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS: String(GRACE), BG_JOB_MAX_RETRIES: "10" },
    start: async (cluster) => {
      const [api] = await Promise.all([cluster.startApi(), cluster.startWorker(), cluster.startWorker()]);
      client = sdk(api.url);
    },
  });

  it("8 SIGTERM cycles under streamed load: exits 0 in time, every run and stream completes, hand-backs resume without redo", async () => {
    const c = durable.cluster;
    const STEPS = 8;
    const CYCLES = 8;
    const threads = await Promise.all([0, 1, 2].map(() => client.threads.create()));
    const streams: Array<{ thread_id: string; label: string; runId: () => string | undefined; chunks: Promise<Chunk[]> }> = [];
    let producing = true;
    const producer = (async () => {
      let i = 0;
      while (producing) {
        const t = threads[i % threads.length]!;
        const label = `roll-${i++}`;
        let runId: string | undefined;
        const chunks = collect(
          client.runs.stream(t.thread_id, DURABLE_GRAPH, {
            input: durableInput(STEPS, 250, label),
            streamMode: ["values"],
            onRunCreated: (m) => void (runId = m.run_id),
          }),
        );
        chunks.catch(() => {});
        streams.push({ thread_id: t.thread_id, label, runId: () => runId, chunks });
        await sleep(700);
      }
    })();

    const exits: number[] = [];
    const signalled: Array<{ pid: number; at: number }> = [];
    const deadline = Date.now() + 5 * 60_000;
    while (exits.length < CYCLES) {
      expect(Date.now()).toBeLessThan(deadline);
      const now = Date.now();
      const last = new Map<string, StepRecord>();
      for (const r of readRecords(durable.log.file)) last.set(r.run_id, r);
      const busy = [...last.values()].find((r) => r.ev === "start" && now - r.t > 80 && c.byPid(r.pid)?.command === "worker");
      if (!busy) {
        await sleep(50);
        continue;
      }
      const victim = c.byPid(busy.pid)!;
      const at = Date.now();
      // The replacement starts while the victim drains.
      const [exit] = await Promise.all([victim.stop({ timeoutMs: 30_000 }), c.startWorker()]);
      expect(exit.code, victim.logs()).toBe(0);
      expect(exit.ms).toBeLessThan(GRACE * 1000 + 5_000);
      exits.push(exit.ms);
      signalled.push({ pid: victim.pid, at });
    }
    producing = false;
    await producer;

    const results = await Promise.all(
      streams.map(async (s) => {
        const chunks = withoutHeartbeats(await s.chunks);
        return { ...s, chunks, run_id: s.runId()! };
      }),
    );
    await waitFor(
      "every run to succeed",
      async () => (await Promise.all(results.map(async (r) => (await client.runs.get(r.thread_id, r.run_id)).status))).every((st) => st === "success"),
      { timeoutMs: 60_000, intervalMs: 250 },
    );

    const records = readRecords(durable.log.file);
    let handedBack = 0;
    for (const r of results) {
      expect(r.chunks.some((ch) => ch.event === "error"), `${r.label}: error event`).toBe(false);
      expectStrictlyIncreasingIds(r.chunks as Array<{ id: string }>);
      expect((r.chunks.filter((ch) => ch.event === "values").at(-1)!.data as { done: string[] }).done.slice(-STEPS)).toEqual(
        Array.from({ length: STEPS }, (_, i) => `${r.label}:${i}`),
      );
      const mine = records.filter((x) => x.run_id === r.run_id);
      const notBefore: Record<number, number> = {};
      for (const a of new Set(mine.map((x) => x.attempt))) {
        const pid = mine.find((x) => x.attempt === a)!.pid;
        const sig = signalled.find((s) => s.pid === pid);
        if (sig) notBefore[a] = sig.at;
      }
      const all = expectResumedWithoutRedo(mine, STEPS, notBefore);
      const metas = r.chunks.filter((ch) => ch.event === "metadata").map((ch) => (ch.data as { attempt: number }).attempt);
      expect(metas.at(-1)).toBe(all.at(-1)!.attempt);
      if (all.length > 1) handedBack++;
    }
    const order = expectSerialPerThread(records.filter((x) => x.label.startsWith("roll-")));
    for (const t of threads) {
      const mine = results.filter((r) => r.thread_id === t.thread_id);
      expect(order.get(t.thread_id)).toEqual(mine.map((r) => r.run_id));
    }
    console.info(
      `[soak shutdown] ${exits.length} SIGTERM cycles (grace ${GRACE} s), exits after ${exits.join("/")} ms; ` +
        `${results.length} streamed runs, ${handedBack} handed back and resumed`,
    );
    expect(handedBack).toBeGreaterThanOrEqual(CYCLES / 2);
  });
});
