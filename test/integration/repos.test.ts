import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { systemAssistantId } from "../../src/domain/assistant.js";
import { AppError } from "../../src/domain/errors.js";
import type { RunKwargs } from "../../src/domain/run.js";
import { uuidv7 } from "../../src/lib/uuid.js";
import { createAssistantsRepo } from "../../src/storage/assistants.js";
import { createSql } from "../../src/storage/db.js";
import type { Sql } from "../../src/storage/db.js";
import { migrate } from "../../src/storage/migrate.js";
import { createRunsRepo } from "../../src/storage/runs.js";
import type { CreateRunInput } from "../../src/storage/runs.js";
import { createThreadsRepo } from "../../src/storage/threads.js";
import { createTestDatabase } from "../helpers/services.js";
import type { TestDatabase } from "../helpers/services.js";
import { insertRun, runInput, runKwargs } from "../helpers/runs.js";

let db: TestDatabase;
let sql: Sql;
let assistants: ReturnType<typeof createAssistantsRepo>;
let threads: ReturnType<typeof createThreadsRepo>;
let runs: ReturnType<typeof createRunsRepo>;

beforeAll(async () => {
  db = await createTestDatabase("repos");
  sql = createSql(db.uri, 8);
  await migrate(sql);
  assistants = createAssistantsRepo(sql);
  threads = createThreadsRepo(sql);
  runs = createRunsRepo(sql);
  await assistants.upsertSystem("agent");
});
afterAll(async () => {
  await sql?.end({ timeout: 5 });
  await db?.drop();
});

const kwargs = (input: unknown = { n: 1 }): RunKwargs => runKwargs({ input });

async function newThread(metadata: Record<string, unknown> = {}) {
  return threads.create({ thread_id: uuidv7(), metadata, if_exists: "raise" });
}


async function createRun(threadId: string, over: Partial<CreateRunInput> = {}) {
  return (await insertRun(runs, runInput(threadId, over))).run;
}

const runRow = async (runId: string) => {
  const [row] = await sql<
    { status: string; attempt: number; lease_owner: string | null; lease_expires_at: string | null; ended_at: string | null; started_at: string | null }[]
  >`SELECT status, attempt, lease_owner, lease_expires_at, ended_at, started_at FROM run WHERE run_id = ${runId}`;
  return row!;
};
const runCount = async (threadId: string) =>
  (await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM run WHERE thread_id = ${threadId}`)[0]!.n;
const expireLease = (runId: string) =>
  sql`UPDATE run SET lease_expires_at = now() - interval '1 second' WHERE run_id = ${runId}`;

async function appError(p: Promise<unknown>): Promise<AppError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  return err as AppError;
}

const finishInput = (run_id: string, owner: string, over: Partial<Parameters<typeof runs.finish>[0]> = {}) => ({
  run_id,
  owner,
  status: "success" as const,
  values: null,
  interrupts: {},
  hasPendingNext: false,
  error: null,
  ...over,
});

// ------------------------------------------------------------------------------------------------

describe("assistants repo", () => {
  it("upserts the system assistant once, idempotently, even concurrently", async () => {
    await Promise.all(Array.from({ length: 5 }, () => assistants.upsertSystem("counter")));
    await assistants.upsertSystem("counter");
    const id = systemAssistantId("counter");
    const rows = await sql`SELECT assistant_id FROM assistant WHERE graph_id = 'counter'`;
    expect(rows.map((r) => r.assistant_id)).toEqual([id]);
    const versions = await sql`SELECT version FROM assistant_version WHERE assistant_id = ${id}`;
    expect(versions.map((r) => r.version)).toEqual([1]);
    const a = await assistants.get(id);
    expect(a).toMatchObject({ assistant_id: id, graph_id: "counter", name: "counter", version: 1, metadata: { created_by: "system" } });
    expect(a!.created_at).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it("never overwrites an existing system assistant", async () => {
    const id = systemAssistantId("agent");
    await sql`UPDATE assistant SET name = 'renamed' WHERE assistant_id = ${id}`;
    await assistants.upsertSystem("agent");
    expect((await assistants.get(id))!.name).toBe("renamed");
    await sql`UPDATE assistant SET name = 'agent' WHERE assistant_id = ${id}`;
  });

  it("resolves a graph id or an assistant id; unknown ones are NOT_FOUND", async () => {
    const graphs = new Set(["agent"]);
    expect((await assistants.resolve("agent", graphs)).assistant_id).toBe(systemAssistantId("agent"));
    expect((await assistants.resolve(systemAssistantId("agent"), graphs)).graph_id).toBe("agent");
    expect((await appError(assistants.resolve("nope", graphs))).code).toBe("NOT_FOUND");
    expect((await appError(assistants.resolve(uuidv7(), graphs))).code).toBe("NOT_FOUND");
    expect(await assistants.get("not-a-uuid")).toBeNull();
  });

  it("searches by graph id and metadata with a total", async () => {
    await assistants.upsertSystem("counter");
    const byGraph = await assistants.search({ graph_id: "counter", limit: 10, offset: 0 });
    expect(byGraph.items.map((a) => a.graph_id)).toEqual(["counter"]);
    expect(byGraph.total).toBe(1);
    const all = await assistants.search({ metadata: { created_by: "system" }, limit: 1, offset: 0 });
    expect(all.items).toHaveLength(1);
    expect(all.total).toBe(2);
    expect((await assistants.search({ metadata: { created_by: "someone" }, limit: 10, offset: 0 })).total).toBe(0);
  });
});

// ------------------------------------------------------------------------------------------------

describe("threads repo", () => {
  it("creates a thread with defaults", async () => {
    const id = uuidv7();
    const t = await threads.create({ thread_id: id, metadata: { owner: "a" }, if_exists: "raise" });
    expect(t).toMatchObject({ thread_id: id, metadata: { owner: "a" }, status: "idle", values: null, interrupts: {}, error: null, config: {} });
    expect(await threads.get(id)).toEqual(t);
  });

  it("if_exists=raise → CONFLICT; do_nothing → the existing thread, unchanged", async () => {
    const t = await newThread({ v: 1 });
    const err = await appError(threads.create({ thread_id: t.thread_id, metadata: { v: 2 }, if_exists: "raise" }));
    expect(err.code).toBe("CONFLICT");
    const same = await threads.create({ thread_id: t.thread_id, metadata: { v: 3 }, if_exists: "do_nothing" });
    expect(same).toEqual(t);
  });

  it("searches by metadata containment, status and ids, with totals and pagination", async () => {
    const tag = uuidv7();
    const a = await newThread({ tag, kind: "x", nested: { deep: 1, other: true } });
    const b = await newThread({ tag, kind: "y" });
    const c = await newThread({ tag, kind: "x" });
    await newThread({ tag: "someone else", kind: "x" });
    await sql`UPDATE thread SET status = 'busy' WHERE thread_id = ${b.thread_id}`;

    const base = { limit: 10, offset: 0, sort_by: "created_at", sort_order: "asc" } as const;
    const byTag = await threads.search({ ...base, metadata: { tag } });
    expect(byTag.total).toBe(3);
    expect(byTag.items.map((t) => t.thread_id)).toEqual([a.thread_id, b.thread_id, c.thread_id]);

    const xs = await threads.search({ ...base, metadata: { tag, kind: "x" } });
    expect(xs.items.map((t) => t.thread_id)).toEqual([a.thread_id, c.thread_id]);
    const nested = await threads.search({ ...base, metadata: { tag, nested: { deep: 1 } } });
    expect(nested.items.map((t) => t.thread_id)).toEqual([a.thread_id]);

    const busy = await threads.search({ ...base, metadata: { tag }, status: "busy" });
    expect(busy.items.map((t) => t.thread_id)).toEqual([b.thread_id]);
    expect(busy.total).toBe(1);

    const byIds = await threads.search({ ...base, ids: [c.thread_id, a.thread_id, uuidv7()] });
    expect(byIds.items.map((t) => t.thread_id)).toEqual([a.thread_id, c.thread_id]);
    expect(byIds.total).toBe(2);

    const desc = await threads.search({ ...base, metadata: { tag }, sort_order: "desc" });
    expect(desc.items.map((t) => t.thread_id)).toEqual([c.thread_id, b.thread_id, a.thread_id]);
    const byId = await threads.search({ ...base, metadata: { tag }, sort_by: "thread_id" });
    expect(byId.items.map((t) => t.thread_id)).toEqual([a.thread_id, b.thread_id, c.thread_id].sort());

    const page1 = await threads.search({ ...base, metadata: { tag }, limit: 2, offset: 0 });
    const page2 = await threads.search({ ...base, metadata: { tag }, limit: 2, offset: 2 });
    expect(page1.total).toBe(3);
    expect(page2.total).toBe(3);
    expect(page1.items.map((t) => t.thread_id)).toEqual([a.thread_id, b.thread_id]);
    expect(page2.items.map((t) => t.thread_id)).toEqual([c.thread_id]);
    const beyond = await threads.search({ ...base, metadata: { tag }, offset: 10 });
    expect(beyond).toEqual({ items: [], total: 3 });
  });

  it("searches by cached values", async () => {
    const tag = uuidv7();
    const a = await newThread({ tag });
    await newThread({ tag });
    await sql`UPDATE thread SET "values" = ${sql.json({ count: 3, steps: ["one"] })} WHERE thread_id = ${a.thread_id}`;
    const found = await threads.search({ metadata: { tag }, values: { count: 3 }, limit: 10, offset: 0, sort_by: "created_at", sort_order: "desc" });
    expect(found.items.map((t) => t.thread_id)).toEqual([a.thread_id]);
  });

  it("deletes a thread and its runs", async () => {
    const t = await newThread();
    await createRun(t.thread_id);
    expect(await threads.delete(t.thread_id)).toBe(true);
    expect(await threads.get(t.thread_id)).toBeNull();
    expect(await runCount(t.thread_id)).toBe(0);
    expect(await threads.delete(t.thread_id)).toBe(false);
  });
});

// ------------------------------------------------------------------------------------------------

describe("runs repo: create", () => {
  it("inserts a pending run and marks the thread busy with its graph", async () => {
    const t = await newThread({ user: "u1" });
    const { run, inflight } = await insertRun(runs, runInput(t.thread_id, { metadata: { m: 1 } }));
    expect(inflight).toEqual([]);
    expect(run).toMatchObject({ thread_id: t.thread_id, status: "pending", metadata: { m: 1 }, multitask_strategy: "enqueue", assistant_id: systemAssistantId("agent") });
    expect(run.kwargs).toEqual(kwargs());
    const thread = await threads.get(t.thread_id);
    expect(thread).toMatchObject({ status: "busy", metadata: { user: "u1", graph_id: "agent", assistant_id: systemAssistantId("agent") } });
    expect(await runs.get(t.thread_id, run.run_id)).toEqual(run);
    expect(await runs.get(null, run.run_id)).toEqual(run);
    expect(await runs.get(uuidv7(), run.run_id)).toBeNull();
  });

  it("on a missing thread → NOT_FOUND, and nothing is written", async () => {
    const threadId = uuidv7();
    const err = await appError(insertRun(runs, runInput(threadId)));
    expect(err.code).toBe("NOT_FOUND");
    expect(err.message).toContain(threadId);
    expect(await threads.get(threadId)).toBeNull();
    expect(await runCount(threadId)).toBe(0);
  });

  it("if_not_exists=create makes the thread", async () => {
    const threadId = uuidv7();
    const { run } = await insertRun(runs, runInput(threadId, { if_not_exists: "create" }));
    expect(run.thread_id).toBe(threadId);
    expect(await threads.get(threadId)).toMatchObject({ status: "busy", metadata: { graph_id: "agent" } });
  });

  it("reports in-flight runs; multitask reject → CONFLICT and nothing inserted", async () => {
    const t = await newThread();
    const first = await createRun(t.thread_id);
    const { inflight } = await insertRun(runs, runInput(t.thread_id));
    expect(inflight).toEqual([first.run_id]);
    expect(await runCount(t.thread_id)).toBe(2);
    const err = await appError(insertRun(runs, runInput(t.thread_id, { multitask_strategy: "reject" })));
    expect(err.code).toBe("CONFLICT");
    expect(await runCount(t.thread_id)).toBe(2);
  });

  it("multitask reject on an idle thread is accepted", async () => {
    const t = await newThread();
    const { run } = await insertRun(runs, runInput(t.thread_id, { multitask_strategy: "reject" }));
    expect(run.multitask_strategy).toBe("reject");
  });

  it("concurrent reject-strategy creates on one thread: exactly one is accepted", async () => {
    const t = await newThread();
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, () => insertRun(runs, runInput(t.thread_id, { multitask_strategy: "reject" }))),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expect((r.reason as AppError).code).toBe("CONFLICT");
    expect(await runCount(t.thread_id)).toBe(1);
  });

  it("lists a thread's runs newest first", async () => {
    const t = await newThread();
    const a = await createRun(t.thread_id);
    const b = await createRun(t.thread_id);
    const c = await createRun(t.thread_id);
    expect((await runs.list(t.thread_id, 10, 0)).map((r) => r.run_id)).toEqual([c.run_id, b.run_id, a.run_id]);
    expect((await runs.list(t.thread_id, 1, 1)).map((r) => r.run_id)).toEqual([b.run_id]);
  });
});

describe("runs repo: create (assistant token, claim at insert)", () => {
  const claim = { owner: "local-worker", leaseSecs: 30 };
  const tokenOf = async () => (await assistants.resolveForRun("agent", new Set(["agent"]), true)).token;

  it("inserts a run that can start now already claimed: running, attempt 1, leased, started", async () => {
    const t = await newThread();
    const created = await runs.create({ ...runInput(t.thread_id), claim });
    if (created.outcome !== "created") throw new Error(created.outcome);
    expect(created.run.status).toBe("running");
    expect(created.claimed).toMatchObject({ run_id: created.run.run_id, attempt: 1, lease_owner: "local-worker", cancel_action: null });
    expect(created.run).not.toHaveProperty("lease_owner");
    const row = await runRow(created.run.run_id);
    expect(row).toMatchObject({ status: "running", attempt: 1, lease_owner: "local-worker" });
    expect(row.started_at).not.toBeNull();
    const [lease] = await sql<{ ok: boolean }[]>`
      SELECT lease_expires_at BETWEEN now() + interval '25 seconds' AND now() + interval '35 seconds' AS ok FROM run WHERE run_id = ${created.run.run_id}`;
    expect(lease!.ok).toBe(true);
    // No other worker can take it, and its holder finishes it as usual.
    expect(await runs.claim(created.run.run_id, "other", 30)).toBeNull();
    expect((await runs.finish({ run_id: created.run.run_id, owner: "local-worker", status: "success", values: {}, interrupts: {}, hasPendingNext: false, error: null })).finished).toBe(true);
  });

  it("leaves a run pending when its thread has one in flight, or it is delayed", async () => {
    const t = await newThread();
    const first = await runs.create({ ...runInput(t.thread_id), claim });
    const behind = await runs.create({ ...runInput(t.thread_id), claim });
    if (first.outcome !== "created" || behind.outcome !== "created") throw new Error("not created");
    expect(behind.claimed).toBeNull();
    expect(behind.run.status).toBe("pending");
    expect(behind.inflight).toEqual([first.run.run_id]);
    const other = await newThread();
    const delayed = await runs.create({ ...runInput(other.thread_id, { after_seconds: 5 }), claim });
    if (delayed.outcome !== "created") throw new Error(delayed.outcome);
    expect(delayed.claimed).toBeNull();
    expect((await runRow(delayed.run.run_id)).status).toBe("pending");
  });

  it("refuses, writing nothing, when the assistant changed since its token was read", async () => {
    const token = await tokenOf();
    const t = await newThread();
    const ok = await runs.create({ ...runInput(t.thread_id), assistant_token: token });
    expect(ok.outcome).toBe("created");
    // A change to the assistant (here an empty patch: a new version) moves the token.
    await assistants.patch(systemAssistantId("agent"), {});
    const fresh = await tokenOf();
    expect(fresh).not.toBe(token);
    const threadId = uuidv7();
    const stale = await runs.create({ ...runInput(threadId, { if_not_exists: "create" }), assistant_token: token, claim });
    expect(stale).toEqual({ outcome: "stale" });
    expect(await threads.get(threadId)).toBeNull();
    expect(await runCount(threadId)).toBe(0);
    expect((await runs.create({ ...runInput(threadId, { if_not_exists: "create" }), assistant_token: fresh })).outcome).toBe("created");
  });
});

// ------------------------------------------------------------------------------------------------

describe("runs repo: claim", () => {
  it("takes a pending run: running, attempt 1, leased to the owner", async () => {
    const t = await newThread();
    const run = await createRun(t.thread_id);
    const claimed = await runs.claim(run.run_id, "w1", 30);
    expect(claimed).toMatchObject({ run_id: run.run_id, status: "running", attempt: 1, lease_owner: "w1", cancel_action: null });
    const leaseMs = Date.parse(claimed!.lease_expires_at!) - Date.now();
    expect(leaseMs).toBeGreaterThan(25_000);
    expect(leaseMs).toBeLessThan(31_000);
    expect((await runRow(run.run_id)).started_at).not.toBeNull();
    // Claiming again (a duplicate job) does nothing while the lease holds.
    expect(await runs.claim(run.run_id, "w2", 30)).toBeNull();
    expect(await runs.running(t.thread_id)).toEqual([run.run_id]);
  });

  it("returns null for an unknown or finished run", async () => {
    expect(await runs.claim(uuidv7(), "w1", 30)).toBeNull();
    const t = await newThread();
    const run = await createRun(t.thread_id);
    await runs.claim(run.run_id, "w1", 30);
    await runs.finish(finishInput(run.run_id, "w1"));
    expect(await runs.claim(run.run_id, "w1", 30)).toBeNull();
  });

  it("will not start a second run on a thread while the first runs", async () => {
    const t = await newThread();
    const a = await createRun(t.thread_id);
    const b = await createRun(t.thread_id);
    expect(await runs.claim(a.run_id, "w1", 30)).not.toBeNull();
    expect(await runs.claim(b.run_id, "w2", 30)).toBeNull();
    expect((await runRow(b.run_id)).status).toBe("pending");
    await runs.finish(finishInput(a.run_id, "w1"));
    expect(await runs.claim(b.run_id, "w2", 30)).toMatchObject({ run_id: b.run_id, attempt: 1 });
  });

  it("keeps FIFO order: a newer pending run is not claimed before an older one", async () => {
    const t = await newThread();
    const older = await createRun(t.thread_id);
    const newer = await createRun(t.thread_id);
    expect(await runs.claim(newer.run_id, "w1", 30)).toBeNull();
    expect(await runs.claim(older.run_id, "w1", 30)).not.toBeNull();
  });

  it("runs on different threads do not block each other", async () => {
    const [t1, t2] = [await newThread(), await newThread()];
    const a = await createRun(t1.thread_id);
    const b = await createRun(t2.thread_id);
    const [ca, cb] = await Promise.all([runs.claim(a.run_id, "w1", 30), runs.claim(b.run_id, "w2", 30)]);
    expect(ca).not.toBeNull();
    expect(cb).not.toBeNull();
  });

  it("concurrent claims on one thread: exactly one wins, every time", async () => {
    for (let i = 0; i < 15; i++) {
      const t = await newThread();
      const a = await createRun(t.thread_id);
      const b = await createRun(t.thread_id);
      // Two workers got a's job (duplicate delivery), two more got b's.
      const results = await Promise.all([
        runs.claim(b.run_id, "w1", 30),
        runs.claim(a.run_id, "w2", 30),
        runs.claim(a.run_id, "w3", 30),
        runs.claim(b.run_id, "w4", 30),
      ]);
      const winners = results.filter((r) => r !== null);
      expect(winners, `iteration ${i}`).toHaveLength(1);
      expect(winners[0]!.run_id).toBe(a.run_id); // FIFO: the older one
      expect(winners[0]!.attempt).toBe(1);
      const running = await sql`SELECT run_id FROM run WHERE thread_id = ${t.thread_id} AND status = 'running'`;
      expect(running).toHaveLength(1);
    }
  });

  it("concurrent reclaims of an expired lease: exactly one wins, attempt counted once", async () => {
    for (let i = 0; i < 10; i++) {
      const t = await newThread();
      const run = await createRun(t.thread_id);
      await runs.claim(run.run_id, "dead", 30);
      await expireLease(run.run_id);
      const results = await Promise.all(["w1", "w2", "w3"].map((w) => runs.claim(run.run_id, w, 30)));
      const winners = results.filter((r) => r !== null);
      expect(winners, `iteration ${i}`).toHaveLength(1);
      expect(winners[0]!.attempt).toBe(2);
      expect((await runRow(run.run_id)).attempt).toBe(2);
    }
  });

  it("after_seconds delays the claim until the run is due", async () => {
    const t = await newThread();
    const run = await createRun(t.thread_id, { after_seconds: 0.6 });
    expect(Date.parse(run.created_at) - Date.now()).toBeGreaterThan(300);
    expect(await runs.claim(run.run_id, "w1", 30)).toBeNull();
    await new Promise((r) => setTimeout(r, 700));
    expect(await runs.claim(run.run_id, "w1", 30)).toMatchObject({ run_id: run.run_id, status: "running" });
  });

  it("a delayed run does not hold back a later-due run on the same thread", async () => {
    const t = await newThread();
    const delayed = await createRun(t.thread_id, { after_seconds: 60 });
    const now = await createRun(t.thread_id);
    expect(await runs.claim(delayed.run_id, "w1", 30)).toBeNull();
    expect(await runs.claim(now.run_id, "w1", 30)).not.toBeNull();
  });
});

// ------------------------------------------------------------------------------------------------

describe("runs repo: heartbeat, finish, release, reclaim", () => {
  it("heartbeat extends the lease only for its owner", async () => {
    const t = await newThread();
    const run = await createRun(t.thread_id);
    await runs.claim(run.run_id, "w1", 5);
    const before = Date.parse((await runRow(run.run_id)).lease_expires_at!);
    expect(await runs.heartbeat(run.run_id, "w1", 60)).toBe(true);
    const after = Date.parse((await runRow(run.run_id)).lease_expires_at!);
    expect(after - before).toBeGreaterThan(50_000);
    expect(await runs.heartbeat(run.run_id, "intruder", 60)).toBe(false);
    await runs.finish(finishInput(run.run_id, "w1"));
    expect(await runs.heartbeat(run.run_id, "w1", 60)).toBe(false);
  });

  it("finish success → run success, thread idle with cached values", async () => {
    const t = await newThread();
    const run = await createRun(t.thread_id);
    await runs.claim(run.run_id, "w1", 30);
    const res = await runs.finish(finishInput(run.run_id, "w1", { values: { count: 3 } }));
    expect(res).toEqual({ finished: true, next: null, claimed: null });
    const row = await runRow(run.run_id);
    expect(row).toMatchObject({ status: "success", lease_owner: null, lease_expires_at: null });
    expect(row.ended_at).not.toBeNull();
    expect(await threads.get(t.thread_id)).toMatchObject({ status: "idle", values: { count: 3 }, error: null, interrupts: {} });
  });

  it("finish with values null keeps the cached values", async () => {
    const t = await newThread();
    const r1 = await createRun(t.thread_id);
    await runs.claim(r1.run_id, "w1", 30);
    await runs.finish(finishInput(r1.run_id, "w1", { values: { keep: true } }));
    const r2 = await createRun(t.thread_id);
    await runs.claim(r2.run_id, "w1", 30);
    await runs.finish(finishInput(r2.run_id, "w1", { status: "interrupted", values: null }));
    expect(await threads.get(t.thread_id)).toMatchObject({ status: "idle", values: { keep: true } });
  });

  it("finish error → thread error with the error recorded", async () => {
    const t = await newThread();
    const run = await createRun(t.thread_id);
    await runs.claim(run.run_id, "w1", 30);
    const error = { error: "ValueError", message: "bad" };
    await runs.finish(finishInput(run.run_id, "w1", { status: "error", error }));
    expect((await runRow(run.run_id)).status).toBe("error");
    expect(await threads.get(t.thread_id)).toMatchObject({ status: "error", error });
  });

  it("finish timeout → thread error", async () => {
    const t = await newThread();
    const run = await createRun(t.thread_id);
    await runs.claim(run.run_id, "w1", 30);
    await runs.finish(finishInput(run.run_id, "w1", { status: "timeout", error: { error: "TimeoutError", message: "slow" } }));
    expect((await runRow(run.run_id)).status).toBe("timeout");
    expect((await threads.get(t.thread_id))!.status).toBe("error");
  });

  it("finish with a pending interrupt → thread interrupted with its interrupts", async () => {
    const t = await newThread();
    const run = await createRun(t.thread_id);
    await runs.claim(run.run_id, "w1", 30);
    const interrupts = { task1: [{ value: "approve?", id: "i1" }] };
    await runs.finish(finishInput(run.run_id, "w1", { values: { a: 1 }, interrupts, hasPendingNext: true }));
    expect(await threads.get(t.thread_id)).toMatchObject({ status: "interrupted", interrupts, values: { a: 1 } });
  });

  it("finish returns the thread's next pending run and keeps the thread busy", async () => {
    const t = await newThread();
    const a = await createRun(t.thread_id);
    const b = await createRun(t.thread_id);
    const c = await createRun(t.thread_id);
    await runs.claim(a.run_id, "w1", 30);
    const res = await runs.finish(finishInput(a.run_id, "w1", { values: { x: 1 } }));
    // attempt: how many times the run was tried so far (part of its queue job id).
    expect(res).toEqual({ finished: true, next: { run_id: b.run_id, thread_id: t.thread_id, delay_ms: 0, attempt: 0 }, claimed: null });
    expect(await threads.get(t.thread_id)).toMatchObject({ status: "busy", values: { x: 1 } });
    await runs.claim(b.run_id, "w1", 30);
    expect((await runs.finish(finishInput(b.run_id, "w1"))).next?.run_id).toBe(c.run_id);
  });

  it("finish reports the delay of a delayed next run", async () => {
    const t = await newThread();
    const a = await createRun(t.thread_id);
    await runs.claim(a.run_id, "w1", 30);
    const b = await createRun(t.thread_id, { after_seconds: 30 });
    const { next } = await runs.finish(finishInput(a.run_id, "w1"));
    expect(next?.run_id).toBe(b.run_id);
    expect(next!.delay_ms).toBeGreaterThan(25_000);
    expect(next!.delay_ms).toBeLessThanOrEqual(30_000);
  });

  it("finish by a worker that lost the lease changes nothing", async () => {
    const t = await newThread();
    const run = await createRun(t.thread_id);
    await runs.claim(run.run_id, "w1", 30);
    expect(await runs.finish(finishInput(run.run_id, "w2", { status: "error" }))).toEqual({ finished: false, next: null, claimed: null });
    expect((await runRow(run.run_id)).status).toBe("running");
    expect((await threads.get(t.thread_id))!.status).toBe("busy");
  });

  it("release hands a run back to pending; the next claim is attempt 2", async () => {
    const t = await newThread();
    const run = await createRun(t.thread_id);
    await runs.claim(run.run_id, "w1", 30);
    expect(await runs.release(run.run_id, "other")).toBeNull();
    expect(await runs.release(run.run_id, "w1")).toEqual({ run_id: run.run_id, thread_id: t.thread_id, delay_ms: 0, attempt: 1 });
    expect(await runRow(run.run_id)).toMatchObject({ status: "pending", lease_owner: null, lease_expires_at: null, attempt: 1 });
    expect(await runs.release(run.run_id, "w1")).toBeNull();
    expect(await runs.claim(run.run_id, "w2", 30)).toMatchObject({ attempt: 2, lease_owner: "w2" });
  });

  it("reclaimExpired moves expired-lease runs back to pending, then to error after max attempts", async () => {
    const t = await newThread();
    const run = await createRun(t.thread_id);
    const healthy = await createRun((await newThread()).thread_id);
    await runs.claim(healthy.run_id, "alive", 30);

    await runs.claim(run.run_id, "dead1", 30);
    await expireLease(run.run_id);
    let res = await runs.reclaimExpired(2);
    expect(res.requeued).toContainEqual({ run_id: run.run_id, thread_id: t.thread_id, delay_ms: 0, attempt: 1 });
    expect(res.failed).not.toContain(run.run_id);
    expect(res.requeued.map((d) => d.run_id)).not.toContain(healthy.run_id);
    expect(await runRow(run.run_id)).toMatchObject({ status: "pending", attempt: 1, lease_owner: null });
    expect((await threads.get(t.thread_id))!.status).toBe("busy");

    await runs.claim(run.run_id, "dead2", 30);
    await expireLease(run.run_id);
    res = await runs.reclaimExpired(2);
    expect(res.failed).toContain(run.run_id);
    expect(res.requeued.map((d) => d.run_id)).not.toContain(run.run_id);
    const row = await runRow(run.run_id);
    expect(row).toMatchObject({ status: "error", attempt: 2, lease_owner: null });
    expect(row.ended_at).not.toBeNull();
    expect(await threads.get(t.thread_id)).toMatchObject({ status: "error", error: { error: "RunAttemptsExceeded" } });
    expect((await runRow(healthy.run_id)).status).toBe("running");
  });

  it("reclaimExpired keeps a thread busy when it still has pending runs", async () => {
    const t = await newThread();
    const a = await createRun(t.thread_id);
    const b = await createRun(t.thread_id);
    await runs.claim(a.run_id, "dead", 30);
    await expireLease(a.run_id);
    const res = await runs.reclaimExpired(1);
    expect(res.failed).toContain(a.run_id);
    expect((await threads.get(t.thread_id))!.status).toBe("busy");
    expect(await runs.claim(b.run_id, "w1", 30)).not.toBeNull();
  });

  it("failExhausted records an error outcome", async () => {
    const t = await newThread();
    const run = await createRun(t.thread_id);
    await runs.claim(run.run_id, "w1", 30);
    await runs.failExhausted(run.run_id, "w1");
    expect((await runRow(run.run_id)).status).toBe("error");
    expect(await threads.get(t.thread_id)).toMatchObject({ status: "error", error: { error: "RunAttemptsExceeded" } });
  });
});

// ------------------------------------------------------------------------------------------------

describe("runs repo: claimNext (the queue)", () => {
  // Each test starts with no pending runs in the database (other tests leave some).
  beforeEach(async () => {
    await sql`DELETE FROM run WHERE status = 'pending'`;
  });

  it("takes the oldest eligible run: one per thread, FIFO, never behind a running run or before it is due", async () => {
    const busy = await newThread();
    const t1 = await newThread();
    const t2 = await newThread();
    const running = await createRun(busy.thread_id);
    expect(await runs.claim(running.run_id, "w0", 30)).not.toBeNull();
    const blocked = await createRun(busy.thread_id);
    const later = await createRun(t2.thread_id, { after_seconds: 60 });
    const a1 = await createRun(t1.thread_id);
    const a2 = await createRun(t1.thread_id);
    const b1 = await createRun(t2.thread_id);
    const first = await runs.claimNext("w1", 30);
    expect(first).toMatchObject({ run_id: a1.run_id, status: "running", attempt: 1, lease_owner: "w1", cancel_action: null });
    // A delayed run is ordered by when it falls due: b1 goes first on t2.
    expect((await runs.claimNext("w1", 30))?.run_id).toBe(b1.run_id);
    // a2 waits behind a1 (running), `later` behind b1 and its due time, `blocked` behind `running`.
    expect(await runs.claimNext("w1", 30)).toBeNull();
    await runs.finish(finishInput(a1.run_id, "w1"));
    expect((await runs.claimNext("w2", 30))?.run_id).toBe(a2.run_id);
    await runs.finish(finishInput(running.run_id, "w0"));
    expect((await runs.claimNext("w2", 30))?.run_id).toBe(blocked.run_id);
    expect(await runs.claimNext("w2", 30)).toBeNull();
    expect((await runRow(later.run_id)).status).toBe("pending");
  });

  it("concurrent claimers each get a different run, at most one per thread", async () => {
    const threadsIds = await Promise.all([newThread(), newThread(), newThread()]).then((ts) => ts.map((t) => t.thread_id));
    const heads: string[] = [];
    for (const id of threadsIds) {
      heads.push((await createRun(id)).run_id);
      await createRun(id);
    }
    const got = await Promise.all(Array.from({ length: 6 }, (_, i) => runs.claimNext(`w${i}`, 30)));
    const claimed = got.filter((r) => r !== null);
    expect(claimed.map((r) => r.run_id).sort()).toEqual([...heads].sort());
    expect(new Set(claimed.map((r) => r.thread_id)).size).toBe(3);
  });

  it("returns null when nothing is pending", async () => {
    expect(await runs.claimNext("w1", 30)).toBeNull();
  });
});

describe("runs repo: finish and claim the next run in one round trip", () => {
  beforeEach(async () => {
    await sql`DELETE FROM run WHERE status = 'pending'`;
  });
  const claim = { owner: "w2", leaseSecs: 30 };

  it("claims the oldest eligible run of any thread, as claimNext would, and still reports the thread's own next", async () => {
    const t = await newThread();
    const other = await newThread();
    const run = await createRun(t.thread_id);
    await runs.claim(run.run_id, "w1", 30);
    const elsewhere = await createRun(other.thread_id);
    const behind = await createRun(t.thread_id);
    const result = await runs.finish({ ...finishInput(run.run_id, "w1"), claim });
    expect(result.finished).toBe(true);
    expect(result.claimed).toMatchObject({ run_id: elsewhere.run_id, thread_id: other.thread_id, status: "running", attempt: 1, lease_owner: "w2", cancel_action: null });
    expect(result.claimed!.created_at).toBe(elsewhere.created_at);
    expect(result.next).toEqual({ run_id: behind.run_id, thread_id: t.thread_id, attempt: 0, delay_ms: 0 });
    expect((await runRow(run.run_id)).status).toBe("success");
    expect((await runRow(elsewhere.run_id)).status).toBe("running");
  });

  it("may claim the finished run's own next: it is then not also reported to ring for", async () => {
    const t = await newThread();
    const run = await createRun(t.thread_id);
    await runs.claim(run.run_id, "w1", 30);
    const behind = await createRun(t.thread_id);
    const result = await runs.finish({ ...finishInput(run.run_id, "w1"), claim });
    expect(result).toMatchObject({ finished: true, next: null, claimed: { run_id: behind.run_id, lease_owner: "w2" } });
    expect((await threads.get(t.thread_id))!.status).toBe("busy");
  });

  it("claims nothing when nothing is eligible, or when the finish is not this worker's", async () => {
    const t = await newThread();
    const run = await createRun(t.thread_id);
    await runs.claim(run.run_id, "w1", 30);
    const waiting = await createRun((await newThread()).thread_id);
    expect(await runs.finish({ ...finishInput(run.run_id, "someone-else"), claim })).toEqual({ finished: false, next: null, claimed: null });
    expect((await runRow(waiting.run_id)).status).toBe("pending");
    await runs.claim(waiting.run_id, "w3", 30);
    expect(await runs.finish({ ...finishInput(run.run_id, "w1"), claim })).toEqual({ finished: true, next: null, claimed: null });
    expect((await threads.get(t.thread_id))!.status).toBe("idle");
  });
});

describe("runs repo: finish sets the thread's status", () => {
  // othersActive (another run pending on the thread), failed, hasPendingNext → thread status
  it.each([
    [false, false, false, "idle"],
    [false, false, true, "interrupted"],
    [false, true, false, "error"],
    [false, true, true, "error"], // error wins over an interrupt
    [true, false, false, "busy"], // other active runs keep the thread busy
    [true, false, true, "busy"],
    [true, true, false, "busy"],
    [true, true, true, "busy"],
  ] as const)("othersActive=%s failed=%s hasPendingNext=%s → %s", async (othersActive, failed, hasPendingNext, expected) => {
    const t = await newThread();
    const run = await createRun(t.thread_id);
    await runs.claim(run.run_id, "w1", 30);
    const other = othersActive ? await createRun(t.thread_id) : null;
    const error = failed ? { error: "ValueError", message: "boom" } : null;
    const result = await runs.finish(finishInput(run.run_id, "w1", { status: failed ? "error" : "success", hasPendingNext, error }));
    expect(result).toEqual({
      finished: true,
      next: other ? { run_id: other.run_id, thread_id: t.thread_id, attempt: 0, delay_ms: 0 } : null,
      claimed: null,
    });
    expect((await threads.get(t.thread_id))!.status).toBe(expected);
  });
});

describe("runs repo: finish racing a run created on the same thread", () => {
  it("a run inserted while the finish waits for the thread's lock is seen: thread busy, returned as next", async () => {
    const t = await newThread();
    const first = await createRun(t.thread_id);
    await runs.claim(first.run_id, "w1", 30);
    const second = uuidv7();
    let finishing: Promise<Awaited<ReturnType<typeof runs.finish>>> | undefined;
    // Plays a run creation in progress: holds the thread's lock with the new run inserted, uncommitted.
    await sql.begin(async (tx) => {
      await tx`SELECT thread_id FROM thread WHERE thread_id = ${t.thread_id} FOR UPDATE`;
      await tx`INSERT INTO run (run_id, thread_id, assistant_id, kwargs) VALUES (${second}, ${t.thread_id}, ${systemAssistantId("agent")}, ${tx.json(kwargs() as never)})`;
      finishing = runs.finish(finishInput(first.run_id, "w1"));
      await new Promise((r) => setTimeout(r, 300)); // the finish is now waiting for the lock
    });
    expect(await finishing).toEqual({ finished: true, next: { run_id: second, thread_id: t.thread_id, attempt: 0, delay_ms: 0 }, claimed: null });
    expect((await threads.get(t.thread_id))!.status).toBe("busy");
  });
});
