/**
 * Run invariant 1 (DESIGN.md): a run the API accepted reaches a terminal
 * status even if the worker executing it is killed with SIGKILL, and resumes
 * from its last checkpoint.
 *
 * Real processes: one API-only `openplane serve` (N_JOBS_PER_WORKER=0) and two
 * `openplane worker`s on one PostgreSQL database and one Redis key prefix,
 * with a 3 s lease and a 1 s sweep. The worker executing a run of the durable
 * fixture is SIGKILLed mid-run; the other worker takes the run over once the
 * lease lapses. The fixture's side record proves that the second attempt did
 * not redo steps the first one had checkpointed, and that the two attempts
 * never executed at the same time. An SDK stream joined before the kill sees
 * both attempts (`metadata` with attempt 1, then attempt 2) and completes.
 *
 * The many-cycle version is test/soak/durability-kill.soak.test.ts.
 */
import type { Client } from "@langchain/langgraph-sdk";
import { describe, expect, it } from "vitest";
import { DURABLE_GRAPH, durableInput, expectResumedWithoutRedo, readRecords, sleep, useDurableCluster, waitFor, withoutHeartbeats } from "../helpers/cluster.js";
import { hasRedis, redisSkipReason } from "../helpers/services.js";
import type { Chunk } from "./support.js";
import { collect, expectStrictlyIncreasingIds, sdk } from "./support.js";

const STEPS = 8;
const STEP_MS = 400;
const title = "SIGKILL of the worker executing a run";

describe.skipIf(!hasRedis())(hasRedis() ? title : `${title} (skipped: ${redisSkipReason() ?? "no Redis"})`, () => {
  let client: Client;
  const durable = useDurableCluster({
    database: "durable_kill",
    logLabel: "durable-kill",
    start: async (cluster) => {
      const [api] = await Promise.all([cluster.startApi(), cluster.startWorker(), cluster.startWorker()]);
      client = sdk(api.url);
    },
  });

  it("another worker finishes the run from its last checkpoint (attempt 2, no step redone, no overlap)", async () => {
    const c = durable.cluster;
    const thread = await client.threads.create();
    const run = await client.runs.create(thread.thread_id, DURABLE_GRAPH, {
      input: durableInput(STEPS, STEP_MS, "kill"),
      streamMode: ["values", "custom"],
      // Each step's checkpoint is written before the next step starts, so "steps completed
      // before the kill are not executed again" is exact (with the default "async" the last
      // write may still be in flight when the process dies: see the soak version).
      durability: "sync",
    });
    // A stream joined from the start, open across the kill.
    const streamed = collect(client.runs.joinStream(thread.thread_id, run.run_id, { lastEventId: "-1" }));
    streamed.catch(() => {});

    // Mid-run: step 2 has been executing for a while (steps 0 and 1 are checkpointed).
    const victimRecord = await waitFor("attempt 1 to reach step 2", () =>
      readRecords(durable.log.file, run.run_id).find((r) => r.ev === "start" && r.step === 2),
    );
    await sleep(150);
    const victim = c.byPid(victimRecord.pid);
    expect(victim, "the run executes in one of our workers").toBeDefined();
    expect(victim!.command).toBe("worker");
    const survivor = c.workers.find((w) => w !== victim)!;
    const killedAt = Date.now();
    const exit = await victim!.kill();
    expect(exit.signal).toBe("SIGKILL");

    const done = await waitFor(
      "the run to end",
      async () => {
        const r = await client.runs.get(thread.thread_id, run.run_id);
        return r.status === "pending" || r.status === "running" ? false : r;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    const recoveredMs = Date.now() - killedAt;
    expect(done.status).toBe("success");

    // Side record: attempt 1 in the victim, attempt 2 in the survivor, resumed where it stopped.
    const records = readRecords(durable.log.file, run.run_id);
    const all = expectResumedWithoutRedo(records, STEPS, { 1: killedAt });
    expect(all.map((a) => a.attempt)).toEqual([1, 2]);
    expect(all[0]!.pids).toEqual([victim!.pid]);
    expect(all[1]!.pids).toEqual([survivor.pid]);
    expect(Math.min(...all[1]!.started)).toBeGreaterThanOrEqual(2);
    console.info(
      `[durability-kill] killed attempt 1 at step ${Math.max(...all[0]!.started)}; attempt 2 resumed at step ${Math.min(...all[1]!.started)}; ` +
        `run ended ${recoveredMs} ms after the kill`,
    );

    // The stream saw both attempts, in order, with increasing ids, and completed.
    const chunks: Chunk[] = withoutHeartbeats(await streamed);
    const metas = chunks.filter((ch) => ch.event === "metadata").map((ch) => ch.data);
    expect(metas).toEqual([
      { run_id: run.run_id, attempt: 1 },
      { run_id: run.run_id, attempt: 2 },
    ]);
    expect(chunks.some((ch) => ch.event === "error")).toBe(false);
    expectStrictlyIncreasingIds(chunks as Array<{ id: string }>);
    const expected = Array.from({ length: STEPS }, (_, i) => `kill:${i}`);
    expect((chunks.filter((ch) => ch.event === "values").at(-1)!.data as { done: string[] }).done).toEqual(expected);

    // Thread state: every step once, written by attempt 2.
    const state = await client.threads.getState<{ done: string[] }>(thread.thread_id);
    expect(state.values.done).toEqual(expected);
    expect(state.metadata?.run_attempt).toBe(2);
    expect((await client.threads.get(thread.thread_id)).status).toBe("idle");
  });
});
