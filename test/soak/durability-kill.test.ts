/**
 * Soak version of test/e2e/durability-kill.test.ts (run invariant 1, with 2 and
 * 3 in the mix): `npm run test:soak`.
 *
 * - 12+ SIGKILL cycles over a stream of runs on a few threads (several runs
 *   queued per thread): each cycle kills a worker that is mid-step in some
 *   run and starts a replacement. Every run ends `success`; every killed
 *   attempt is followed by another; attempts never overlapped; runs created
 *   with `durability: "sync"` never redid a step (with the default "async" a
 *   step whose checkpoint write was still in flight may be redone: counted and
 *   printed); per thread the runs executed in creation order, never
 *   two at once; each run's SDK stream (joined from the start) saw every
 *   attempt's `metadata` in order and completed; thread states hold every
 *   step exactly once.
 * - A cancel sent while the run's worker is dead (lease not lapsed yet) still
 *   stops the run: the next attempt reads the durable cancel flag.
 * - A worker paused past its lease (SIGSTOP) and woken again (SIGCONT) gives
 *   the run up: it starts no further step, the run completes once on the new
 *   attempt. (It may still finish the step it was in when paused, while the
 *   new attempt runs: leases are not fencing tokens; measured and printed.)
 * - Bounded attempts: a run whose worker is killed on every attempt ends
 *   `error` after BG_JOB_MAX_RETRIES attempts, and its stream ends.
 */
import type { Client } from "@langchain/langgraph-sdk";
import { describe, expect, it } from "vitest";
import {
  DURABLE_GRAPH,
  attempts,
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

const title = "soak: SIGKILL of workers, many cycles";

interface Tracked {
  thread_id: string;
  run_id: string;
  label: string;
  stream: Promise<Chunk[]>;
  /** attempt -> when its worker was killed */
  killedAt: Record<number, number>;
  durability: "sync" | "async";
}

describe.skipIf(!hasRedis())(hasRedis() ? title : `${title} (skipped: ${redisSkipReason() ?? "no Redis"})`, () => {
  let client: Client;
  const durable = useDurableCluster({
    database: "soak_kill",
    logLabel: "soak-kill",
    env: { BG_JOB_MAX_RETRIES: "10" },
    start: async (cluster) => {
      const [api] = await Promise.all([cluster.startApi(), cluster.startWorker(), cluster.startWorker()]);
      client = sdk(api.url);
    },
  });

  it("12+ kill cycles over several runs and threads: every run succeeds, resumed without redo, FIFO per thread", async () => {
    const c = durable.cluster;
    const STEPS = 10;
    const STEP_MS = 300;
    const TARGET_KILLS = 12;
    const MAX_KILLS_PER_RUN = 3;
    const threads = await Promise.all([0, 1, 2].map(() => client.threads.create()));
    const tracked: Tracked[] = [];
    let round = 0;
    const createRound = async () => {
      for (const [i, t] of threads.entries()) {
        for (let k = 0; k < 2; k++) {
          const label = `soak-t${i}-r${round}-${k}`;
          // Half the runs checkpoint synchronously (no step may be redone), half with the default "async".
          const durability = k === 0 ? "sync" : "async";
          const run = await client.runs.create(t.thread_id, DURABLE_GRAPH, {
            input: durableInput(STEPS, STEP_MS, label),
            streamMode: ["values"],
            durability,
          });
          const stream = collect(client.runs.joinStream(t.thread_id, run.run_id, { lastEventId: "-1" }));
          stream.catch(() => {});
          tracked.push({ thread_id: t.thread_id, run_id: run.run_id, label, stream, killedAt: {}, durability });
        }
      }
      round++;
    };
    await createRound();

    let kills = 0;
    const deadline = Date.now() + 8 * 60_000;
    while (kills < TARGET_KILLS) {
      expect(Date.now(), `only ${kills} kills before the deadline`).toBeLessThan(deadline);
      // A run mid-step in a live worker: its last record is a start at least 120 ms old.
      const now = Date.now();
      const byRun = new Map<string, StepRecord>();
      for (const r of readRecords(durable.log.file)) byRun.set(r.run_id, r);
      // Spread the kills (at most MAX_KILLS_PER_RUN per run, well below BG_JOB_MAX_RETRIES):
      // prefer the run killed least so far.
      const target = tracked
        .filter((t) => {
          const last = byRun.get(t.run_id);
          if (Object.keys(t.killedAt).length >= MAX_KILLS_PER_RUN) return false;
          return last?.ev === "start" && now - last.t > 120 && c.byPid(last.pid)?.command === "worker";
        })
        .sort((a, b) => Object.keys(a.killedAt).length - Object.keys(b.killedAt).length)[0];
      if (!target) {
        // Nothing to kill right now: keep enough runs in flight.
        const statuses = await Promise.all(tracked.map(async (t) => (await client.runs.get(t.thread_id, t.run_id)).status));
        const unfinished = tracked.filter((t, i) => (statuses[i] === "pending" || statuses[i] === "running") && Object.keys(t.killedAt).length < MAX_KILLS_PER_RUN);
        if (unfinished.length < 2) await createRound();
        await sleep(50);
        continue;
      }
      const victimPid = byRun.get(target.run_id)!.pid;
      const victim = c.byPid(victimPid)!;
      const killedAt = Date.now();
      await victim.kill();
      kills++;
      // Every run whose current attempt was executing in the victim lost that attempt.
      const recs = readRecords(durable.log.file);
      for (const t of tracked) {
        const last = recs.filter((r) => r.run_id === t.run_id).at(-1);
        if (last && last.pid === victimPid && last.ev !== "end") t.killedAt[last.attempt] = killedAt;
        else if (last && last.pid === victimPid) {
          // Between steps in the victim: the attempt still died, unless the run had already finished.
          const status = (await client.runs.get(t.thread_id, t.run_id)).status;
          if (status === "running" || status === "pending") t.killedAt[last.attempt] = killedAt;
        }
      }
      // Keep two workers alive.
      await c.startWorker();
    }

    // Everything ends, successfully.
    await waitFor(
      "every run to succeed",
      async () => {
        const statuses = await Promise.all(tracked.map(async (t) => (await client.runs.get(t.thread_id, t.run_id)).status));
        const bad = statuses.filter((s) => s === "error" || s === "timeout" || s === "interrupted");
        if (bad.length) throw new Error(`runs ended badly: ${statuses.join(",")}`);
        return statuses.every((s) => s === "success");
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    );

    const records = readRecords(durable.log.file);
    let resumed = 0;
    let redoneAsync = 0;
    for (const t of tracked) {
      const mine = records.filter((r) => r.run_id === t.run_id);
      const all = expectResumedWithoutRedo(mine, STEPS, t.killedAt, { strict: t.durability === "sync" });
      redoneAsync += all.redone;
      const killedAttempts = Object.keys(t.killedAt).map(Number);
      // An attempt killed before it recorded anything leaves no trace in the side record:
      // the attempt numbers may skip, but every killed attempt that ran is followed by another.
      for (const a of killedAttempts) expect(all.some((x) => x.attempt > a), `${t.label}: attempt after ${a}`).toBe(true);
      if (all.length > 1) resumed++;
      const chunks = withoutHeartbeats(await t.stream);
      expect(chunks.some((ch) => ch.event === "error")).toBe(false);
      expectStrictlyIncreasingIds(chunks as Array<{ id: string }>);
      const metaAttempts = chunks.filter((ch) => ch.event === "metadata").map((ch) => (ch.data as { attempt: number }).attempt);
      expect(metaAttempts, `${t.label}: metadata attempts`).toEqual([...metaAttempts].sort((a, b) => a - b));
      expect(metaAttempts.at(-1)).toBe(all.at(-1)!.attempt);
      expect((chunks.filter((ch) => ch.event === "values").at(-1)!.data as { done: string[] }).done.slice(-STEPS)).toEqual(
        Array.from({ length: STEPS }, (_, i) => `${t.label}:${i}`),
      );
    }
    const order = expectSerialPerThread(records.filter((r) => r.label.startsWith("soak-")));
    for (const th of threads) {
      const mine = tracked.filter((t) => t.thread_id === th.thread_id);
      expect(order.get(th.thread_id)).toEqual(mine.map((t) => t.run_id));
      const state = await client.threads.getState<{ done: string[] }>(th.thread_id);
      expect(state.values.done).toEqual(mine.flatMap((t) => Array.from({ length: STEPS }, (_, i) => `${t.label}:${i}`)));
    }
    console.info(
      `[soak kill] ${kills} SIGKILL cycles over ${tracked.length} runs (${resumed} resumed at least once, ${round} rounds); ` +
        `steps redone: 0 with durability "sync", ${redoneAsync} with "async"`,
    );
    expect(resumed, "several runs were resumed").toBeGreaterThanOrEqual(4);
  });

  it("a cancel sent while the run's worker is dead stops the run once its lease lapses", async () => {
    const c = durable.cluster;
    while (c.workers.filter((w) => w.alive()).length < 2) await c.startWorker();
    const thread = await client.threads.create();
    const run = await client.runs.create(thread.thread_id, DURABLE_GRAPH, { input: durableInput(20, 300, "dead-cancel") });
    const at = await waitFor("step 2", () => readRecords(durable.log.file, run.run_id).find((r) => r.ev === "start" && r.step === 2));
    await sleep(100);
    const killedAt = Date.now();
    await c.byPid(at.pid)!.kill();
    await client.runs.cancel(thread.thread_id, run.run_id, false);
    await waitFor("status interrupted", async () => (await client.runs.get(thread.thread_id, run.run_id)).status === "interrupted", {
      timeoutMs: 20_000,
      intervalMs: 50,
    });
    const stoppedMs = Date.now() - killedAt;
    const later = readRecords(durable.log.file, run.run_id).filter((r) => r.t > killedAt);
    expect(later.filter((r) => r.ev === "end"), "no step completed after the cancel").toEqual([]);
    console.info(`[soak kill] cancel of an orphaned run: interrupted ${stoppedMs} ms after the kill (lease 3 s)`);
    await c.startWorker();
  });


  it("a worker paused past its lease (SIGSTOP) gives the run up when it wakes; the run finishes once, on the new attempt", async () => {
    const c = durable.cluster;
    while (c.workers.filter((w) => w.alive()).length < 2) await c.startWorker();
    const thread = await client.threads.create();
    const STEPS = 12;
    const run = await client.runs.create(thread.thread_id, DURABLE_GRAPH, { input: durableInput(STEPS, 300, "paused"), durability: "sync" });
    const at = await waitFor("step 2", () => readRecords(durable.log.file, run.run_id).find((r) => r.ev === "start" && r.step === 2));
    await sleep(100);
    const paused = c.byPid(at.pid)!;
    process.kill(paused.pid, "SIGSTOP");
    try {
      await waitFor("attempt 2 to start", () => readRecords(durable.log.file, run.run_id).some((r) => r.attempt === 2), { timeoutMs: 20_000 });
      await sleep(500);
    } finally {
      process.kill(paused.pid, "SIGCONT");
    }
    const wokeAt = Date.now();
    await waitFor("the run to succeed", async () => (await client.runs.get(thread.thread_id, run.run_id)).status === "success", { timeoutMs: 30_000 });
    await waitFor("the paused worker to give the run up", () => /reason=lease_lost|"reason":"lease_lost"/.test(paused.logs()), { timeoutMs: 10_000 });

    const records = readRecords(durable.log.file, run.run_id);
    const stale = records.filter((r) => r.attempt === 1 && r.t >= wokeAt);
    // On waking, the paused attempt may only finish the step it was in (its timer was already
    // due); it starts nothing new: its next lease renewal fails and it aborts.
    expect(stale.filter((r) => r.ev === "start"), "the woken worker started a new step").toEqual([]);
    const state = await client.threads.getState<{ done: string[] }>(thread.thread_id);
    expect(state.values.done).toEqual(Array.from({ length: STEPS }, (_, i) => `paused:${i}`));
    expect(state.metadata?.run_attempt).toBe(2);
    const seen = stale.map((r) => `${r.ev} step ${r.step} at +${r.t - wokeAt} ms`);
    console.info(`[soak kill] paused worker: after SIGCONT it recorded [${seen.join(", ")}], then gave the run up (lease_lost)`);
    await paused.kill();
  });
});

describe.skipIf(!hasRedis())("soak: a run killed on every attempt ends error after BG_JOB_MAX_RETRIES", () => {
  let client: Client;
  const MAX = 2;
  const durable = useDurableCluster({
    database: "soak_attempts",
    logLabel: "soak-attempts",
    env: { BG_JOB_MAX_RETRIES: String(MAX) },
    start: async (cluster) => {
      const [api] = await Promise.all([cluster.startApi(), cluster.startWorker(), cluster.startWorker()]);
      client = sdk(api.url);
    },
  });

  it(`kills attempts 1..${MAX}: the run ends error, the thread shows the error, the stream ends`, async () => {
    const c = durable.cluster;
    const thread = await client.threads.create();
    const run = await client.runs.create(thread.thread_id, DURABLE_GRAPH, { input: durableInput(20, 300, "doomed") });
    const stream = collect(client.runs.joinStream(thread.thread_id, run.run_id, { lastEventId: "-1" }));
    stream.catch(() => {});
    for (let attempt = 1; attempt <= MAX; attempt++) {
      const rec = await waitFor(
        `attempt ${attempt} to run a step`,
        () => readRecords(durable.log.file, run.run_id).find((r) => r.attempt === attempt && r.ev === "start"),
        { timeoutMs: 30_000 },
      );
      await sleep(100);
      await c.byPid(rec.pid)!.kill();
      await c.startWorker();
    }
    await waitFor("status error", async () => (await client.runs.get(thread.thread_id, run.run_id)).status === "error", { timeoutMs: 20_000 });
    const t = await client.threads.get(thread.thread_id);
    expect(t.status).toBe("error");
    await sleep(2_000);
    expect(attempts(readRecords(durable.log.file, run.run_id)).map((a) => a.attempt)).toEqual([1, 2]);
    const ended = await Promise.race([stream.then(() => true), sleep(10_000).then(() => false)]);
    expect(ended, "the stream of the failed run ends").toBe(true);
  });
});
