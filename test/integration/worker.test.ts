/**
 * The worker against real services: lease recovery (invariant 1) and the
 * stream of a run whose lease passed to another worker (invariant 4).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemAssistantId } from "../../src/domain/assistant.js";
import type { RunKwargs } from "../../src/domain/run.js";
import { uuidv7 } from "../../src/lib/uuid.js";
import type { StreamEvent, Subscription } from "../../src/stream/bus.js";
import { createTestStack } from "../helpers/app.js";
import type { TestStack, TestStackOptions } from "../helpers/app.js";
import { createTestDatabase } from "../helpers/services.js";
import type { TestDatabase } from "../helpers/services.js";
import { insertRun as insertRunRow, runKwargs } from "../helpers/runs.js";

// Read by the slow fixture graph when it is imported (createTestStack loads graphs).
process.env.SLOW_GRAPH_SLEEP_MS = "700";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase("worker");
});
afterAll(async () => {
  await db?.drop();
});

/** A stack on this file's database for one describe block, closed after it. */
function stackForBlock(opts: Omit<TestStackOptions, "postgresUri"> = {}) {
  const s = {} as { stack: TestStack };
  beforeAll(async () => {
    s.stack = await createTestStack({ postgresUri: db.uri, ...opts });
  });
  afterAll(async () => {
    await s.stack?.close();
  });
  return s;
}

async function waitFor(cond: () => Promise<boolean>, ms = 10_000, what = "condition") {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const kwargs = (graphId: string, runId: string, threadId: string): RunKwargs =>
  runKwargs({
    config: { configurable: { graph_id: graphId, run_id: runId, thread_id: threadId, assistant_id: systemAssistantId(graphId) } },
  });

async function insertRun(stack: TestStack, graphId: string) {
  const thread = await stack.deps.threads.create({ thread_id: uuidv7(), metadata: {}, if_exists: "raise" });
  const runId = uuidv7();
  const { run } = await insertRunRow(stack.deps.runs, {
    run_id: runId,
    thread_id: thread.thread_id,
    if_not_exists: "reject",
    assistant_id: systemAssistantId(graphId),
    graph_id: graphId,
    metadata: {},
    kwargs: kwargs(graphId, runId, thread.thread_id),
    multitask_strategy: "enqueue",
    after_seconds: 0,
  });
  return run;
}

const status = async (stack: TestStack, runId: string) =>
  (await stack.sql<{ status: string; attempt: number; lease_owner: string | null }[]>`
    SELECT status, attempt, lease_owner FROM run WHERE run_id = ${runId}`)[0]!;

/** Rings for the run now: the stack's worker claims it. */
const dispatch = (stack: TestStack, run: { run_id: string; thread_id: string }) =>
  stack.queue.dispatch([{ run_id: run.run_id, thread_id: run.thread_id, delay_ms: 0 }]);

/** A run of `graphId` on a new thread, dispatched, once the worker has it running. */
async function startRun(stack: TestStack, graphId: string) {
  const run = await insertRun(stack, graphId);
  await dispatch(stack, run);
  await waitFor(async () => (await status(stack, run.run_id)).status === "running", 10_000, "run start");
  return run;
}

/** Collects a subscription in the background; `ended` tells whether it has ended. */
function watch(sub: Subscription) {
  const events: StreamEvent[] = [];
  let ended = false;
  const done = (async () => {
    for await (const ev of sub) events.push(ev);
    ended = true;
  })();
  return { events, done, ended: () => ended };
}

describe("worker: runs of a dead worker", () => {
  let stack: TestStack;
  afterAll(async () => {
    await stack?.close();
  });

  it("a run whose worker died is reclaimed by the sweep and completes as attempt 2", async () => {
    // Build without a worker first, to play the worker that dies.
    const dead = await createTestStack({ postgresUri: db.uri, worker: false });
    let runId: string;
    try {
      const run = await insertRun(dead, "counter");
      runId = run.run_id;
      expect(await dead.deps.runs.claim(runId, "dead-worker", 30)).not.toBeNull();
      await dead.sql`UPDATE run SET lease_expires_at = now() - interval '1 second' WHERE run_id = ${runId}`;
    } finally {
      await dead.close();
    }
    // A live worker's start-up sweep finds the expired lease and runs it again.
    stack = await createTestStack({ postgresUri: db.uri });
    const sub = await stack.bus.subscribe(runId, { after: "-1" });
    const w = watch(sub);
    await waitFor(async () => (await status(stack, runId)).status === "success", 10_000, "run success");
    expect(await status(stack, runId)).toMatchObject({ status: "success", attempt: 2, lease_owner: null });
    await w.done;
    expect(w.events[0]).toMatchObject({ event: "metadata" });
    expect(JSON.parse(w.events[0]!.data)).toEqual({ run_id: runId, attempt: 2 });
    expect(JSON.parse(w.events.at(-1)!.data)).toMatchObject({ count: 3 });
  });
});

describe("worker: a run taken over by another worker", () => {
  const s = stackForBlock({ configPath: "test/fixtures/slow/langgraph.json", leaseSecs: 30 });

  it("the stale worker neither records its outcome nor ends the new holder's stream", async () => {
    const run = await startRun(s.stack, "slow");
    // The lease lapsed (say a long GC pause), the sweeper reclaimed the run and
    // another worker claimed it: it now belongs to "new-holder", which is executing it.
    await s.stack.sql`UPDATE run SET lease_owner = 'new-holder', attempt = attempt + 1 WHERE run_id = ${run.run_id}`;
    const live = watch(await s.stack.bus.subscribe(run.run_id, {}));
    // The stale worker's graph finishes (the fixture sleeps 700 ms) and tries to record it.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await status(s.stack, run.run_id)).toMatchObject({ status: "running", lease_owner: "new-holder" });
    expect(live.ended()).toBe(false);
    // The new holder's attempt ends the stream.
    await s.stack.bus.publish(run.run_id, "values", JSON.stringify({ steps: ["new"] }));
    await s.stack.deps.runs.finish({ run_id: run.run_id, owner: "new-holder", status: "success", values: { steps: ["new"] }, interrupts: {}, hasPendingNext: false, error: null });
    await s.stack.bus.finish(run.run_id);
    await live.done;
    expect(live.events.map((e) => JSON.parse(e.data) as unknown)).toContainEqual({ steps: ["new"] });
  });

  it("a run whose thread is deleted while it executes still ends its stream", async () => {
    const run = await insertRun(s.stack, "slow");
    const live = watch(await s.stack.bus.subscribe(run.run_id, { after: "-1" }));
    await dispatch(s.stack, run);
    await waitFor(async () => (await status(s.stack, run.run_id)).status === "running", 10_000, "run start");
    const res = await s.stack.app.request(`/threads/${run.thread_id}`, { method: "DELETE" });
    expect(res.status).toBe(204);
    await Promise.race([
      live.done,
      new Promise((_, reject) => setTimeout(() => reject(new Error("stream did not end")), 5_000)),
    ]);
    expect(live.ended()).toBe(true);
    expect(live.events[0]).toMatchObject({ event: "metadata" });
    expect(await s.stack.deps.runs.get(null, run.run_id)).toBeNull();
  });
});

describe("worker: a pause of the process longer than the lease", () => {
  const s = stackForBlock({ configPath: "test/fixtures/slow/langgraph.json", leaseSecs: 1 });

  it("checkpoint writes queued before it are not sent after it: the stale attempt writes nothing and records nothing", async () => {
    const run = await startRun(s.stack, "frozen");
    // Waits for the run's handler. The graph blocked the event loop past the lease: the write
    // pipeline's linger timer, due before the lease's, fired first after the pause.
    await s.stack.worker!.close(10_000);
    // Steps -1 to 1 (input, __start__, "start") may have left before the pause; the pause is
    // step 2's node ("freeze"): nothing from it on may land.
    const [row] = await s.stack.sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM checkpoints WHERE thread_id = ${run.thread_id} AND (metadata->>'step')::int >= 2`;
    expect(row!.n).toBe(0);
    // Not recorded either: another worker may hold it by now (the sweep gives it back otherwise).
    expect(await status(s.stack, run.run_id)).toMatchObject({ status: "running", attempt: 1 });
  });
});

describe("worker: the thread's state after a run", () => {
  const s = stackForBlock();

  const runOn = async (threadId: string, over: Partial<RunKwargs>) => {
    const runId = uuidv7();
    await insertRunRow(s.stack.deps.runs, {
      run_id: runId,
      thread_id: threadId,
      if_not_exists: "reject",
      assistant_id: systemAssistantId("counter"),
      graph_id: "counter",
      metadata: {},
      kwargs: { ...kwargs("counter", runId, threadId), ...over },
      multitask_strategy: "enqueue",
      after_seconds: 0,
    });
    await s.stack.queue.dispatch([{ run_id: runId, thread_id: threadId, delay_ms: 0 }]);
    await waitFor(async () => !["pending", "running"].includes((await status(s.stack, runId)).status), 10_000, "run end");
    return (await status(s.stack, runId)).status;
  };

  it("matches the checkpoint: interrupted before a node, then resumed to the end (values from the stream, no re-read)", async () => {
    const thread = await s.stack.deps.threads.create({ thread_id: uuidv7(), metadata: {}, if_exists: "raise" });
    const graph = (await s.stack.graphs.get("counter", { configurable: { thread_id: thread.thread_id } })).graph;
    const checkpointed = async () => (await graph.getState({ configurable: { thread_id: thread.thread_id } })).values;

    expect(await runOn(thread.thread_id, { input: {}, interrupt_before: ["two"] })).toBe("success");
    const paused = await s.stack.deps.threads.get(thread.thread_id);
    expect(paused).toMatchObject({ status: "interrupted", values: { count: 1, steps: ["one"] }, interrupts: {} });
    expect(paused!.values).toEqual(await checkpointed());

    expect(await runOn(thread.thread_id, { input: null })).toBe("success");
    const done = await s.stack.deps.threads.get(thread.thread_id);
    expect(done).toMatchObject({ status: "idle", values: { count: 3, steps: ["one", "two", "three"] }, interrupts: {} });
    expect(done!.values).toEqual(await checkpointed());
  });
});

describe("worker: a graph with an output schema", () => {
  const s = stackForBlock({ configPath: "test/fixtures/output-schema/langgraph.json" });

  it("caches the thread's whole state, not only the output keys it streams", async () => {
    const run = await insertRun(s.stack, "narrow");
    await dispatch(s.stack, run);
    await waitFor(async () => (await status(s.stack, run.run_id)).status === "success", 10_000, "run success");
    const thread = await s.stack.deps.threads.get(run.thread_id);
    expect(thread).toMatchObject({ status: "idle", values: { answer: "42", scratch: "working" } });
  });
});

describe("worker: a run's last checkpoint writes, committed with its outcome", () => {
  const s = stackForBlock();

  it("land with it: the thread's checkpoint holds the run's end", async () => {
    const run = await insertRun(s.stack, "counter");
    await dispatch(s.stack, run);
    await waitFor(async () => (await status(s.stack, run.run_id)).status === "success", 10_000, "run success");
    const graph = (await s.stack.graphs.get("counter", { configurable: { thread_id: run.thread_id } })).graph;
    const state = await graph.getState({ configurable: { thread_id: run.thread_id } });
    expect(state.values).toMatchObject({ count: 3 });
    expect(state.metadata).toMatchObject({ run_id: run.run_id });
  });

  it("when PostgreSQL refuses them in the finish, the run ends as error, said on its stream", async () => {
    // Refuses this run's checkpoints only inside a finish statement (not those sent while it executes).
    await s.stack.sql.unsafe(`
      CREATE OR REPLACE FUNCTION test_refuse_at_finish() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.metadata ? 'refuse_at_finish' AND current_query() LIKE '%openplane_finish_run_v2%' THEN
          RAISE EXCEPTION 'checkpoint refused at finish';
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER test_refuse_at_finish BEFORE INSERT ON checkpoints FOR EACH ROW EXECUTE FUNCTION test_refuse_at_finish();`);
    try {
      const thread = await s.stack.deps.threads.create({ thread_id: uuidv7(), metadata: {}, if_exists: "raise" });
      const runId = uuidv7();
      await insertRunRow(s.stack.deps.runs, {
        run_id: runId,
        thread_id: thread.thread_id,
        if_not_exists: "reject",
        assistant_id: systemAssistantId("counter"),
        graph_id: "counter",
        metadata: { refuse_at_finish: true },
        kwargs: kwargs("counter", runId, thread.thread_id),
        multitask_strategy: "enqueue",
        after_seconds: 0,
      });
      const events = watch(await s.stack.bus.subscribe(runId, { after: "-1" }));
      await s.stack.queue.dispatch([{ run_id: runId, thread_id: thread.thread_id, delay_ms: 0 }]);
      await waitFor(async () => !["pending", "running"].includes((await status(s.stack, runId)).status), 10_000, "run end");
      expect(await status(s.stack, runId)).toMatchObject({ status: "error", attempt: 1 });
      await events.done;
      const error = events.events.find((e) => e.event === "error");
      expect(JSON.parse(error!.data)).toMatchObject({ message: expect.stringContaining("checkpoint refused at finish") });
    } finally {
      await s.stack.sql.unsafe(`DROP TRIGGER test_refuse_at_finish ON checkpoints; DROP FUNCTION test_refuse_at_finish();`);
    }
  });
});
