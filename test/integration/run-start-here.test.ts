import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uuidv7 } from "../../src/lib/uuid.js";
import { createAssistantsRepo } from "../../src/storage/assistants.js";
import type { ClaimedRun } from "../../src/storage/runs.js";
import type { TestStack } from "../helpers/app.js";
import { createTestStack } from "../helpers/app.js";
import { createTestDatabase } from "../helpers/services.js";
import type { TestDatabase } from "../helpers/services.js";
import { API_GRAPHS, apiClient } from "./api-support.js";
import type { ApiClient, Json } from "./api-support.js";

// runs.wait and runs.stream insert a run already claimed by this process's worker when it
// has a free slot and the thread has nothing in flight (migration 0007): no claim query,
// no ring. Everything else goes through the queue as before.

/**
 * Records the runs the worker took through the queue (runs.claimNext, or claimed by the
 * finish of the run before them in the slot), as opposed to at insert.
 */
function recordClaims(stack: TestStack): Set<string> {
  const viaQueue = new Set<string>();
  const runs = stack.deps.runs;
  const claimNext = runs.claimNext.bind(runs);
  runs.claimNext = async (owner: string, leaseSecs: number): Promise<ClaimedRun | null> => {
    const run = await claimNext(owner, leaseSecs);
    if (run) viaQueue.add(run.run_id);
    return run;
  };
  const finish = runs.finish.bind(runs);
  runs.finish = async (input) => {
    const result = await finish(input);
    if (result.claimed) viaQueue.add(result.claimed.run_id);
    return result;
  };
  return viaQueue;
}

const runRow = async (stack: TestStack, runId: string) => {
  const [row] = await stack.sql<Array<{ status: string; attempt: number; lease_owner: string | null; started_at: string | null; kwargs: Json }>>`
    SELECT status, attempt, lease_owner, started_at, kwargs FROM run WHERE run_id = ${runId}`;
  return row!;
};

const runIdOf = (res: Response) => /\/runs\/([0-9a-f-]{36})/.exec(res.headers.get("Content-Location") ?? "")?.[1] ?? "";

/** A stack with a worker in the same process, for the tests of one describe block. */
function stackWithWorker(name: string, configPath: string, workerConcurrency: number) {
  const s = {} as { db: TestDatabase; stack: TestStack; api: ApiClient; viaQueue: Set<string> };
  beforeAll(async () => {
    s.db = await createTestDatabase(name);
    s.stack = await createTestStack({ postgresUri: s.db.uri, configPath, worker: true, workerConcurrency });
    s.api = apiClient(s.stack);
    s.viaQueue = recordClaims(s.stack);
  });
  afterAll(async () => {
    await s.stack?.close();
    await s.db?.drop();
  });
  return s;
}

describe("runs started at insert", () => {
  const s = stackWithWorker("start_here", API_GRAPHS, 2);

  it("a waited run on an idle thread starts in this process without a claim and finishes as attempt 1", async () => {
    const t = await s.api.json<{ thread_id: string }>("POST", "/threads", {});
    const res = await s.api.request("POST", `/threads/${t.thread_id}/runs/wait`, { assistant_id: "counter", input: { count: 1 } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ count: 4, steps: ["one", "two", "three"] });
    const runId = runIdOf(res);
    const row = await runRow(s.stack, runId);
    expect(row).toMatchObject({ status: "success", attempt: 1, lease_owner: null });
    expect(row.started_at).not.toBeNull();
    expect(s.viaQueue.has(runId)).toBe(false);
    const thread = await s.api.json<Json>("GET", `/threads/${t.thread_id}`);
    expect(thread.status).toBe("idle");
  });

  it("a streamed stateless run too; its temporary thread is removed as before", async () => {
    const before = await s.stack.counts();
    const res = await s.api.request("POST", "/runs/stream", { assistant_id: "counter", input: { count: 0 }, stream_mode: ["values"] });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain("event: metadata");
    expect(text).toContain('"steps":["one","two","three"]');
    const runId = runIdOf(res);
    expect(s.viaQueue.has(runId)).toBe(false);
    await expect.poll(async () => (await s.stack.counts()).thread, { timeout: 5_000 }).toBe(before.thread);
  });

  it("a background run is not: its response says pending, as the official server's does, and the queue claims it", async () => {
    const t = await s.api.json<{ thread_id: string }>("POST", "/threads", {});
    const run = await s.api.json<{ run_id: string; status: string }>("POST", `/threads/${t.thread_id}/runs`, { assistant_id: "counter", input: { count: 1 } });
    expect(run.status).toBe("pending");
    await s.api.json("GET", `/threads/${t.thread_id}/runs/${run.run_id}/join`);
    expect((await runRow(s.stack, run.run_id)).status).toBe("success");
    expect(s.viaQueue.has(run.run_id)).toBe(true);
  });

  it("an assistant changed by another process is read again before the run is inserted", async () => {
    const a = await s.api.json<{ assistant_id: string }>("POST", "/assistants", { graph_id: "counter", config: { configurable: { tier: "one" } } });
    const t = await s.api.json<{ thread_id: string }>("POST", "/threads", {});
    const wait = async () => {
      const res = await s.api.request("POST", `/threads/${t.thread_id}/runs/wait`, { assistant_id: a.assistant_id, input: { count: 0 } });
      return { res, id: runIdOf(res) };
    };
    const first = await wait();
    expect(first.res.status).toBe(200);
    const configurable = (row: { kwargs: Json }) => (row.kwargs.config as { configurable: Json }).configurable;
    expect(configurable(await runRow(s.stack, first.id)).tier).toBe("one");

    // Another replica's repository (its own cache) patches the assistant: this process's copy is stale.
    const elsewhere = createAssistantsRepo(s.stack.sql);
    await elsewhere.patch(a.assistant_id, { config: { configurable: { tier: "two" } } });
    const second = await wait();
    expect(second.res.status).toBe(200);
    expect(configurable(await runRow(s.stack, second.id)).tier).toBe("two");

    // Deleted elsewhere: the run is refused and nothing is written.
    await elsewhere.delete(a.assistant_id);
    const before = await s.stack.counts();
    const third = await s.api.request("POST", `/threads/${t.thread_id}/runs/wait`, { assistant_id: a.assistant_id, input: { count: 0 } });
    expect(third.status).toBe(404);
    expect((await third.json()) as Json).toMatchObject({ detail: expect.stringContaining(a.assistant_id) });
    expect(await s.stack.counts()).toEqual(before);
  });

  it("an assistant cached while its graph was not served here is read again once another replica moves it", async () => {
    const elsewhere = createAssistantsRepo(s.stack.sql);
    const a = await elsewhere.create({ assistant_id: uuidv7(), graph_id: "served-elsewhere", config: {}, context: {}, metadata: {}, name: "x", description: null, if_exists: "raise" });
    const t = await s.api.json<{ thread_id: string }>("POST", "/threads", {});
    const body = { assistant_id: a.assistant_id, input: { count: 0 } };
    await s.api.fails("POST", `/threads/${t.thread_id}/runs/wait`, body, 422, /not served here/);
    await elsewhere.patch(a.assistant_id, { graph_id: "counter" });
    expect((await s.api.request("POST", `/threads/${t.thread_id}/runs/wait`, body)).status).toBe(200);
  });

  it("a claimed insert whose reply is lost is handed back at once and still runs", async () => {
    const runs = s.stack.deps.runs;
    const real = runs.create.bind(runs);
    let lost = "";
    runs.create = async (input) => {
      const created = await real(input);
      runs.create = real;
      if (created.outcome === "created") lost = created.run.run_id;
      throw new Error("connection reset after commit");
    };
    const t = await s.api.json<{ thread_id: string }>("POST", "/threads", {});
    const res = await s.api.request("POST", `/threads/${t.thread_id}/runs/wait`, { assistant_id: "counter", input: { count: 0 } });
    expect(res.status).toBe(500);
    expect(lost).not.toBe("");
    // Back to pending right away (not after the 30 s lease), then taken through the queue.
    await expect.poll(async () => (await runRow(s.stack, lost)).status, { timeout: 10_000 }).toBe("success");
    expect(s.viaQueue.has(lost)).toBe(true);
  });

  it("a failed insert gives the slot back: the worker still runs as many runs at once as it has slots", async () => {
    const missing = uuidv7();
    for (let i = 0; i < 4; i++) {
      const res = await s.api.request("POST", `/threads/${missing}/runs/wait`, { assistant_id: "counter", input: { count: 0 } });
      expect(res.status).toBe(404);
    }
    const threads = await Promise.all([0, 1].map(() => s.api.json<{ thread_id: string }>("POST", "/threads", {})));
    const results = await Promise.all(
      threads.map((t) => s.api.request("POST", `/threads/${t.thread_id}/runs/wait`, { assistant_id: "counter", input: { count: 0 } })),
    );
    for (const res of results) {
      expect(res.status).toBe(200);
      expect(s.viaQueue.has(runIdOf(res))).toBe(false);
    }
  });
});

describe("runs started at insert: busy threads and full slots", () => {
  const s = stackWithWorker("start_here_busy", "test/fixtures/slow/langgraph.json", 1);

  it("a run behind one in flight on its thread waits its turn; one arriving while every slot is busy goes through the queue", async () => {
    const t = await s.api.json<{ thread_id: string }>("POST", "/threads", {});
    const other = await s.api.json<{ thread_id: string }>("POST", "/threads", {});
    const body = { assistant_id: "slow", input: { steps: [] } };
    const first = s.api.request("POST", `/threads/${t.thread_id}/runs/wait`, body);
    // The first run holds the only slot (it started at insert: it shows as running at once).
    await expect
      .poll(async () => (await s.api.json<Array<{ status: string }>>("GET", `/threads/${t.thread_id}/runs`)).map((r) => r.status), { timeout: 5_000 })
      .toEqual(["running"]);
    const behind = s.api.request("POST", `/threads/${t.thread_id}/runs/wait`, { ...body, multitask_strategy: "enqueue" });
    const elsewhere = s.api.request("POST", `/threads/${other.thread_id}/runs/wait`, body);
    const [r1, r2, r3] = await Promise.all([first, behind, elsewhere]);
    for (const res of [r1, r2, r3]) expect(res.status).toBe(200);
    expect(await Promise.all([r1, r2, r3].map((r) => r.json()))).toEqual([
      { steps: ["start", "slept"] },
      { steps: ["start", "slept", "start", "slept"] },
      { steps: ["start", "slept"] },
    ]);
    const [id1, id2, id3] = [r1, r2, r3].map(runIdOf);
    expect(s.viaQueue.has(id1!)).toBe(false);
    expect(s.viaQueue.has(id2!)).toBe(true);
    expect(s.viaQueue.has(id3!)).toBe(true);
    // FIFO on the thread: the second run started after the first ended.
    const order = await s.stack.sql<Array<{ run_id: string; after_previous: boolean | null }>>`
      SELECT run_id, started_at >= lag(ended_at) OVER (ORDER BY started_at) AS after_previous
      FROM run WHERE thread_id = ${t.thread_id} ORDER BY started_at`;
    expect(order).toEqual([
      { run_id: id1, after_previous: null },
      { run_id: id2, after_previous: true },
    ]);
    for (const id of [id1, id2, id3]) expect(await runRow(s.stack, id!)).toMatchObject({ status: "success", attempt: 1 });
  });
});
