/**
 * Run invariants 2, 3 and 4 (DESIGN.md) across processes: two API-only
 * `openplane serve` processes and two `openplane worker`s on one PostgreSQL
 * database and one Redis prefix. Every request below goes to a different
 * process than the one executing the run.
 *
 * - Invariant 3: API 1 cancels a run executing on a worker (wait=false and
 *   wait=true); the measured latency from the cancel request to status
 *   `interrupted` is printed and bounded; the graph step in flight sees the
 *   abort signal and no later step starts. `rollback` deletes the run (404)
 *   and every checkpoint it wrote: the thread state and history show no trace.
 * - Invariant 2 (and "create on API 1, stream/join/cancel/get on API 2"): many
 *   enqueued runs over several threads all succeed; per thread they execute in
 *   creation order and never two at once (side record); a pending run
 *   cancelled through API 2 is skipped, the rest of its thread goes on.
 * - Invariant 4: a resumable stream started on API 1 and dropped mid-run is
 *   rejoined on API 2 with `lastEventId`: every later event arrives once, no
 *   gaps, increasing ids; after the run, `lastEventId: "-1"` replays it all.
 */
import type { Client } from "@langchain/langgraph-sdk";
import { describe, expect, it } from "vitest";
import {
  DURABLE_GRAPH,
  durableInput,
  expectSerialPerThread,
  readRecords,
  useDurableCluster,
  waitFor,
  withoutHeartbeats,
} from "../helpers/cluster.js";
import { hasRedis, redisSkipReason } from "../helpers/services.js";
import type { Chunk } from "./support.js";
import { collect, compareEventIds, expectStrictlyIncreasingIds, sdk } from "./support.js";

const title = "two API processes and two workers on one PostgreSQL and Redis";

const is404 = (err: unknown) => (err as { status?: number }).status === 404 || /404|not found/i.test(String(err));

describe.skipIf(!hasRedis())(hasRedis() ? title : `${title} (skipped: ${redisSkipReason() ?? "no Redis"})`, () => {
  let api1: Client;
  let api2: Client;
  const durable = useDurableCluster({
    database: "durable_cluster",
    logLabel: "durable-cluster",
    start: async (cluster) => {
      const [a1, a2] = await Promise.all([cluster.startApi(), cluster.startApi(), cluster.startWorker(), cluster.startWorker()]);
      api1 = sdk(a1.url);
      api2 = sdk(a2.url);
    },
  });

  /** A 20-step run created on API 2, at step 2 on some worker. */
  const runningRun = async (label: string, threadId?: string) => {
    const thread = threadId ?? (await api2.threads.create()).thread_id;
    const run = await api2.runs.create(thread, DURABLE_GRAPH, { input: durableInput(20, 300, label) });
    const at = await waitFor(`${label} to reach step 2`, () => readRecords(durable.log.file, run.run_id).find((r) => r.ev === "start" && r.step === 2));
    expect(durable.cluster.byPid(at.pid)?.command, "executed by a worker process").toBe("worker");
    return { thread, run };
  };

  /** After a cancel at `cancelledAt`: the step in flight aborted, nothing started later. Returns the abort delay. */
  const expectStoppedPromptly = (runId: string, cancelledAt: number) => {
    const records = readRecords(durable.log.file, runId);
    const aborts = records.filter((r) => r.ev === "abort");
    expect(aborts.length, "the step in flight saw the abort signal").toBe(1);
    expect(records.filter((r) => r.ev === "start" && r.t > aborts[0]!.t)).toEqual([]);
    return { abortMs: aborts[0]!.t - cancelledAt, stepsDone: records.filter((r) => r.ev === "end").length };
  };

  describe("cancel reaches the executing worker promptly (invariant 3)", () => {
    it("wait=false: status interrupted shortly after the request; progress so far is kept", async () => {
      const { thread, run } = await runningRun("cancel-nowait");
      const t0 = performance.now();
      const cancelledAt = Date.now();
      await api1.runs.cancel(thread, run.run_id, false);
      const returnedMs = performance.now() - t0;
      await waitFor(
        "status interrupted",
        async () => (await api1.runs.get(thread, run.run_id)).status === "interrupted",
        { timeoutMs: 10_000, intervalMs: 10 },
      );
      const latencyMs = performance.now() - t0;
      const { abortMs, stepsDone } = expectStoppedPromptly(run.run_id, cancelledAt);
      console.info(
        `[durability-cluster] cancel wait=false: request returned in ${returnedMs.toFixed(0)} ms, ` +
          `step aborted on the worker after ${abortMs} ms, status interrupted after ${latencyMs.toFixed(0)} ms`,
      );
      expect(latencyMs).toBeLessThan(3_000);
      // An interrupted run keeps the checkpoints it wrote.
      const state = await api2.threads.getState<{ done: string[] }>(thread);
      expect(state.values.done).toEqual(Array.from({ length: stepsDone }, (_, i) => `cancel-nowait:${i}`));
    });

    it("wait=true: the request returns once the run stopped; it is interrupted by then", async () => {
      const { thread, run } = await runningRun("cancel-wait");
      const t0 = performance.now();
      const cancelledAt = Date.now();
      await api1.runs.cancel(thread, run.run_id, true);
      const latencyMs = performance.now() - t0;
      expect((await api1.runs.get(thread, run.run_id)).status).toBe("interrupted");
      const { abortMs } = expectStoppedPromptly(run.run_id, cancelledAt);
      console.info(`[durability-cluster] cancel wait=true: step aborted after ${abortMs} ms, request returned (run interrupted) after ${latencyMs.toFixed(0)} ms`);
      expect(latencyMs).toBeLessThan(3_000);
    });

    it("rollback: the run disappears (404) and the thread shows no trace of it", async () => {
      const thread = (await api2.threads.create()).thread_id;
      await api2.runs.wait(thread, DURABLE_GRAPH, { input: durableInput(2, 20, "base") });
      const before = await api2.threads.getState<{ done: string[] }>(thread);
      expect(before.values.done).toEqual(["base:0", "base:1"]);

      const { run } = await runningRun("rolled-back", thread);
      const t0 = performance.now();
      await api1.runs.cancel(thread, run.run_id, false, "rollback");
      await waitFor(
        "the run to be deleted",
        async () => {
          try {
            await api2.runs.get(thread, run.run_id);
            return false;
          } catch (err) {
            if (is404(err)) return true;
            throw err;
          }
        },
        { timeoutMs: 10_000, intervalMs: 10 },
      );
      console.info(`[durability-cluster] cancel rollback: run gone (404) after ${(performance.now() - t0).toFixed(0)} ms`);
      expectStoppedPromptly(run.run_id, Date.now() - 10_000);

      const after = await api2.threads.getState<{ done: string[] }>(thread);
      expect(after.values).toEqual(before.values);
      expect(after.checkpoint.checkpoint_id).toBe(before.checkpoint.checkpoint_id);
      const history = await api2.threads.getHistory(thread, { limit: 100 });
      expect(history.length).toBeGreaterThan(0);
      expect(history.filter((s) => s.metadata?.run_id === run.run_id)).toEqual([]);
      const runs = await api2.runs.list(thread);
      expect(runs.map((r) => r.run_id)).not.toContain(run.run_id);
      expect((await api1.threads.get(thread)).status).toBe("idle");
    });
  });

  it("many enqueued runs over several threads: all succeed, FIFO per thread, never two at once (invariant 2)", async () => {
    const THREADS = 4;
    const PER_THREAD = 3;
    const threads = await Promise.all(Array.from({ length: THREADS }, () => api1.threads.create()));
    const created: Array<Array<{ run_id: string; label: string }>> = threads.map(() => []);
    // Interleaved creation on API 1; each thread's runs queue behind its first.
    for (let k = 0; k < PER_THREAD; k++) {
      for (const [i, t] of threads.entries()) {
        const label = `fifo-t${i}-r${k}`;
        // The run cancelled below is delayed, so it is certainly still pending when cancelled,
        // however slow the machine (its neighbours may already have run by then).
        const delay = i === 0 && k === 1 ? { afterSeconds: 60 } : {};
        const run = await api1.runs.create(t.thread_id, DURABLE_GRAPH, { input: durableInput(3, 100, label), multitaskStrategy: "enqueue", ...delay });
        created[i]!.push({ run_id: run.run_id, label });
      }
    }
    // A pending run cancelled through API 2 is skipped; the thread goes on.
    const skipped = created[0]![1]!;
    expect((await api2.runs.get(threads[0]!.thread_id, skipped.run_id)).status).toBe("pending");
    await api2.runs.cancel(threads[0]!.thread_id, skipped.run_id, false);
    expect((await api2.runs.get(threads[0]!.thread_id, skipped.run_id)).status).toBe("interrupted");

    // Join / stream on API 2 what API 1 created.
    const streamed = collect(api2.runs.joinStream(threads[1]!.thread_id, created[1]![2]!.run_id, { lastEventId: "-1" }));
    await Promise.all(
      threads.flatMap((t, i) =>
        created[i]!.filter((r) => r !== skipped).map(async (r) => {
          const values = (await api2.runs.join(t.thread_id, r.run_id)) as { done?: string[] };
          expect(values.done?.slice(-3)).toEqual([0, 1, 2].map((s) => `${r.label}:${s}`));
        }),
      ),
    );
    for (const [i, t] of threads.entries()) {
      for (const r of created[i]!) {
        expect((await api2.runs.get(t.thread_id, r.run_id)).status).toBe(r === skipped ? "interrupted" : "success");
      }
    }
    const chunks = withoutHeartbeats(await streamed);
    expect(chunks[0]).toMatchObject({ event: "metadata", data: { run_id: created[1]![2]!.run_id, attempt: 1 } });
    expect(chunks.some((c) => c.event === "error")).toBe(false);

    const records = readRecords(durable.log.file).filter((r) => r.label.startsWith("fifo-"));
    const order = expectSerialPerThread(records);
    for (const [i, t] of threads.entries()) {
      const expected = created[i]!.filter((r) => r !== skipped);
      expect(order.get(t.thread_id), `execution order on thread ${i}`).toEqual(expected.map((r) => r.run_id));
      const state = await api2.threads.getState<{ done: string[] }>(t.thread_id);
      expect(state.values.done).toEqual(expected.flatMap((r) => [0, 1, 2].map((s) => `${r.label}:${s}`)));
      expect((await api2.threads.get(t.thread_id)).status).toBe("idle");
    }
    // Both workers took part.
    expect(new Set(records.map((r) => r.pid)).size).toBe(2);
  });

  it("a resumable stream dropped on API 1 is rejoined on API 2 with lastEventId: once each, no gaps (invariant 4)", async () => {
    const thread = (await api1.threads.create()).thread_id;
    const controller = new AbortController();
    let runId: string | undefined;
    const firstPart: Chunk[] = [];
    try {
      for await (const ch of api1.runs.stream(thread, DURABLE_GRAPH, {
        input: durableInput(10, 200, "resume"),
        streamMode: ["values", "updates", "custom"],
        streamResumable: true,
        signal: controller.signal,
        onRunCreated: (m) => void (runId = m.run_id),
      })) {
        if ((ch as Chunk).event === "") continue;
        firstPart.push(ch as Chunk);
        if (firstPart.length === 6) {
          controller.abort();
          break;
        }
      }
    } catch (err) {
      if (!controller.signal.aborted) throw err;
    }
    expect(firstPart.length).toBe(6);
    expect(firstPart[0]!.event).toBe("metadata");
    const lastEventId = firstPart.at(-1)!.id!;
    expect(lastEventId).toBeTruthy();
    // The run goes on without the client (on_disconnect defaults to continue).
    expect(["pending", "running"]).toContain((await api2.runs.get(thread, runId!)).status);

    const rest = withoutHeartbeats(await collect(api2.runs.joinStream(thread, runId!, { lastEventId })));
    expect(rest.length).toBeGreaterThan(0);
    expect(compareEventIds(rest[0]!.id!, lastEventId)).toBeGreaterThan(0);
    const joined = [...firstPart, ...rest];
    expectStrictlyIncreasingIds(joined as Array<{ id: string }>);
    expect(rest.some((c) => c.event === "error")).toBe(false);
    expect((rest.filter((c) => c.event === "values").at(-1)!.data as { done: string[] }).done).toEqual(
      Array.from({ length: 10 }, (_, i) => `resume:${i}`),
    );
    expect((await api1.runs.get(thread, runId!)).status).toBe("success");

    // After the end, "-1" replays everything: exactly the events seen in the two parts.
    const replay = withoutHeartbeats(await collect(api2.runs.joinStream(thread, runId!, { lastEventId: "-1" })));
    expect(replay.map((c) => c.id)).toEqual(joined.map((c) => c.id));
    expect(replay).toEqual(joined);
    // And from API 1 too, from the middle.
    const tail = withoutHeartbeats(await collect(api1.runs.joinStream(thread, runId!, { lastEventId })));
    expect(tail).toEqual(rest);
  });
});
