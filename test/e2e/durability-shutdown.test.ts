/**
 * Run invariant 5 (DESIGN.md): SIGTERM drains. Stop taking new runs, finish or
 * hand back in-flight runs within the grace period, end open SSE streams
 * cleanly; nothing accepted is lost.
 *
 * Real processes: an API-only `openplane serve` (N_JOBS_PER_WORKER=0) streams
 * runs that separate `openplane worker`s execute (one PostgreSQL, one Redis
 * prefix, 3 s lease, 1 s sweep).
 * - Grace longer than the run: the signalled worker takes no new run, finishes
 *   its runs (attempt 1 only), the SDK stream completes, the worker exits 0.
 * - Grace shorter than the run: the run is handed back at once (not after a
 *   lease lapse) and another worker resumes it from its last checkpoint
 *   (attempt 2, no step redone, no overlap); the SDK stream opened before the
 *   signal sees both attempts and completes; the worker exits within grace + a
 *   few seconds; every accepted run succeeds.
 * - SIGTERM of the API process with an SSE stream open: the SDK iterator ends
 *   without an error, the process exits 0, the run still succeeds on the worker.
 * (`openplane up` with an embedded PostgreSQL is covered by shutdown.test.ts.)
 */
import type { Client } from "@langchain/langgraph-sdk";
import { describe, expect, it } from "vitest";
import type { CliProcess } from "../helpers/cli.js";
import {
  DURABLE_GRAPH,
  attempts,
  durableInput,
  expectResumedWithoutRedo,
  readRecords,
  useDurableCluster,
  waitFor,
  withoutHeartbeats,
} from "../helpers/cluster.js";
import { hasRedis, redisSkipReason } from "../helpers/services.js";
import type { Chunk } from "./support.js";
import { collect, expectStrictlyIncreasingIds, sdk } from "./support.js";

const title = "SIGTERM of workers and API processes with runs in flight and streams open";

describe.skipIf(!hasRedis())(hasRedis() ? title : `${title} (skipped: ${redisSkipReason() ?? "no Redis"})`, () => {
  let api: CliProcess;
  let client: Client;
  const durable = useDurableCluster({
    database: "durable_shutdown",
    logLabel: "durable-shutdown",
    start: async (cluster) => {
      api = await cluster.startApi();
      client = sdk(api.url);
    },
  });

  const expectedDone = (label: string, n: number) => Array.from({ length: n }, (_, i) => `${label}:${i}`);

  /** Starts a streamed run and a background run; resolves once the streamed one is at `step`. */
  const startRuns = async (label: string, steps: number, ms: number, atStep: number) => {
    const thread = await client.threads.create();
    let runId: string | undefined;
    const stream = collect(
      client.runs.stream(thread.thread_id, DURABLE_GRAPH, {
        input: durableInput(steps, ms, label),
        streamMode: ["values"],
        onRunCreated: (meta) => void (runId = meta.run_id),
      }),
    );
    stream.catch(() => {});
    const bgThread = await client.threads.create();
    const bg = await client.runs.create(bgThread.thread_id, DURABLE_GRAPH, { input: durableInput(steps, ms, `${label}-bg`) });
    const at = await waitFor(`${label}: the streamed run to reach step ${atStep}`, () =>
      runId ? readRecords(durable.log.file, runId).find((r) => r.ev === "start" && r.step === atStep) : undefined,
    );
    await waitFor(`${label}: the background run to start`, () => readRecords(durable.log.file, bg.run_id).length > 0);
    return { thread, runId: runId!, stream, bg, executor: at.pid };
  };

  it("grace longer than the run: no new run is taken, the runs finish, the stream completes, exit 0", async () => {
    const c = durable.cluster;
    const GRACE = 15;
    // The only worker, so both runs are in flight in it.
    const victim = await c.startWorker({ BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS: String(GRACE) });
    const { thread, runId, stream, bg, executor } = await startRuns("long", 12, 300, 1);
    expect(executor).toBe(victim.pid);
    expect(readRecords(durable.log.file, bg.run_id)[0]!.pid).toBe(victim.pid);
    const stopping = victim.stop({ timeoutMs: (GRACE + 20) * 1000 });

    // A run created while it drains waits for another worker (this one, grace 1 s, serves the next test too).
    const t2 = await client.threads.create();
    const late = await client.runs.create(t2.thread_id, DURABLE_GRAPH, { input: durableInput(2, 50, "late") });
    await c.startWorker({ BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS: "1" });

    const chunks: Chunk[] = withoutHeartbeats(await stream);
    expect(chunks.some((ch) => ch.event === "error")).toBe(false);
    expect(chunks.filter((ch) => ch.event === "metadata").map((ch) => ch.data)).toEqual([{ run_id: runId, attempt: 1 }]);
    expect((chunks.at(-1)!.data as { done: string[] }).done).toEqual(expectedDone("long", 12));

    const exit = await stopping;
    expect(exit.code, victim.logs()).toBe(0);
    expect(exit.ms).toBeLessThan(GRACE * 1000);
    expect(victim.logs()).not.toMatch(/handed back/);
    console.info(`[durability-shutdown] long grace: the worker drained and exited after ${exit.ms} ms`);

    await waitFor("the late run to succeed", async () => (await client.runs.get(t2.thread_id, late.run_id)).status === "success");
    const lateRecords = readRecords(durable.log.file, late.run_id);
    expect(lateRecords.length).toBeGreaterThan(0);
    expect(lateRecords.every((r) => r.pid !== victim.pid), "the draining worker took a new run").toBe(true);

    expect((await client.runs.get(thread.thread_id, runId)).status).toBe("success");
    expect(attempts(readRecords(durable.log.file, runId)).map((a) => a.attempt)).toEqual([1]);
    await waitFor("the background run to succeed", async () => (await client.runs.get(bg.thread_id, bg.run_id)).status === "success");
    expect(attempts(readRecords(durable.log.file, bg.run_id)).map((a) => a.attempt)).toEqual([1]);
  });

  it("grace shorter than the run: the run is handed back, another worker resumes it, the stream sees both attempts", async () => {
    const c = durable.cluster;
    const GRACE = 1;
    // Two workers with a 1 s grace period (one from the previous test): either may get the run.
    await c.startWorker({ BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS: String(GRACE) });
    expect(c.workers.filter((w) => w.alive()).length).toBe(2);
    const STEPS = 12;
    const { thread, runId, stream, bg, executor } = await startRuns("short", STEPS, 400, 2);
    const victim = c.byPid(executor)!;
    const survivor = c.workers.find((w) => w.alive() && w !== victim)!;
    const signalledAt = Date.now();
    const exit = await victim.stop({ timeoutMs: 30_000 });
    expect(exit.code, victim.logs()).toBe(0);
    expect(exit.ms, "exits within the grace period plus a few seconds").toBeLessThan(GRACE * 1000 + 5_000);
    expect(victim.logs()).toMatch(/handed back/);

    const chunks: Chunk[] = withoutHeartbeats(await stream);
    expect(chunks.some((ch) => ch.event === "error")).toBe(false);
    expect(chunks.filter((ch) => ch.event === "metadata").map((ch) => ch.data)).toEqual([
      { run_id: runId, attempt: 1 },
      { run_id: runId, attempt: 2 },
    ]);
    expectStrictlyIncreasingIds(chunks as Array<{ id: string }>);
    expect((chunks.at(-1)!.data as { done: string[] }).done).toEqual(expectedDone("short", STEPS));
    expect((await client.runs.get(thread.thread_id, runId)).status).toBe("success");

    const all = expectResumedWithoutRedo(readRecords(durable.log.file, runId), STEPS, { 1: signalledAt });
    expect(all.map((a) => a.attempt)).toEqual([1, 2]);
    expect(all[0]!.pids).toEqual([victim.pid]);
    expect(all[0]!.aborted.length, "the step in flight saw the abort signal").toBe(1);
    expect(all[1]!.pids).toEqual([survivor.pid]);
    // Handed back, not left for the lease (3 s) to lapse.
    const pickupMs = all[1]!.firstStart - all[0]!.lastEvent;
    console.info(`[durability-shutdown] short grace: worker exited after ${exit.ms} ms; attempt 2 started ${pickupMs} ms after attempt 1 stopped`);
    expect(pickupMs).toBeLessThan(2_500);

    // The background run (wherever it ran) is not lost either.
    await waitFor("the background run to succeed", async () => (await client.runs.get(bg.thread_id, bg.run_id)).status === "success", {
      timeoutMs: 30_000,
    });
    expect((await client.threads.getState<{ done: string[] }>(bg.thread_id)).values.done).toEqual(expectedDone("short-bg", STEPS));
  });

  it("SIGTERM of an API process with an SSE stream open: the stream ends cleanly, exit 0, the run still succeeds", async () => {
    const c = durable.cluster;
    if (!c.workers.some((w) => w.alive())) await c.startWorker();
    const api2 = await c.startApi();
    const client2 = sdk(api2.url);
    const thread = await client.threads.create();
    let runId: string | undefined;
    const chunks: Chunk[] = [];
    let sawFirst!: () => void;
    const first = new Promise<void>((r) => (sawFirst = r));
    const streamed = (async () => {
      for await (const ch of client2.runs.stream(thread.thread_id, DURABLE_GRAPH, {
        input: durableInput(8, 300, "api"),
        streamMode: ["values"],
        onRunCreated: (m) => void (runId = m.run_id),
      })) {
        chunks.push(ch as Chunk);
        if (ch.event === "values") sawFirst();
      }
    })();
    streamed.catch(() => sawFirst());
    await first;

    const exit = await api2.stop({ timeoutMs: 20_000 });
    // The SDK iterator completed without throwing.
    await expect(streamed).resolves.toBeUndefined();
    expect(exit.code, api2.logs()).toBe(0);
    expect(exit.ms).toBeLessThan(5_000);
    expect(withoutHeartbeats(chunks)[0]!.event).toBe("metadata");

    // The run was never the API's: it finishes on the worker.
    await waitFor("the run to succeed", async () => (await client.runs.get(thread.thread_id, runId!)).status === "success", {
      timeoutMs: 20_000,
    });
    expect((await client.threads.getState<{ done: string[] }>(thread.thread_id)).values.done).toEqual(expectedDone("api", 8));
  });
});
