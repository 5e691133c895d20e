/**
 * A run's checkpoints in its claim and its finish (runs.ts `checkpoints`), on real PostgreSQL:
 * - every claim path reads the claimed run's first checkpoint in its own round trip (the
 *   checkpointer's openplane_latest_checkpoint), as the checkpointer itself reads it;
 * - a finish commits the run's last checkpoint writes with its outcome, or neither.
 */
import { emptyCheckpoint, uuid6, type Checkpoint, type CheckpointMetadata } from "@langchain/langgraph-checkpoint";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uuidv7 } from "../../src/lib/uuid.js";
import { createAssistantsRepo } from "../../src/storage/assistants.js";
import { createCheckpointer, type RunAwarePostgresSaver } from "../../src/storage/checkpointer.js";
import { createSql, type Sql } from "../../src/storage/db.js";
import { migrate } from "../../src/storage/migrate.js";
import { createRunsRepo } from "../../src/storage/runs.js";
import { createThreadsRepo } from "../../src/storage/threads.js";
import { runInput } from "../helpers/runs.js";
import { createTestDatabase, type TestDatabase } from "../helpers/services.js";

let db: TestDatabase;
let sql: Sql;
let saver: RunAwarePostgresSaver;
let closeSaver: () => Promise<void>;
let runs: ReturnType<typeof createRunsRepo>;
let threads: ReturnType<typeof createThreadsRepo>;

beforeAll(async () => {
  db = await createTestDatabase("runcp");
  sql = createSql(db.uri, 4);
  const cp = createCheckpointer(db.uri, 2, () => {});
  saver = cp.saver;
  closeSaver = () => cp.pool.end();
  await migrate(sql, { before: () => saver.setup() });
  runs = createRunsRepo(sql, { checkpoints: saver.statements });
  threads = createThreadsRepo(sql);
  await createAssistantsRepo(sql).upsertSystem("agent");
}, 60_000);

afterAll(async () => {
  await sql?.end({ timeout: 5 });
  await closeSaver?.();
  await db?.drop();
});

const meta = { source: "loop", step: 0, parents: {} } as CheckpointMetadata;

/** A thread row and, unless `checkpoints` is 0, that many root checkpoints (and one in a subgraph, newest of all). */
async function thread(checkpoints: number): Promise<string> {
  const threadId = uuidv7();
  await threads.create({ thread_id: threadId, metadata: {}, if_exists: "raise" });
  let parent: string | undefined;
  for (let i = 0; i < checkpoints; i++) parent = await put(threadId, "", { n: i }, parent);
  if (checkpoints > 0) await put(threadId, "sub:1", { sub: true });
  return threadId;
}

async function put(threadId: string, ns: string, values: Record<string, unknown>, parent?: string): Promise<string> {
  const c: Checkpoint = { ...emptyCheckpoint(), id: uuid6(-1), channel_values: values, channel_versions: Object.fromEntries(Object.keys(values).map((k) => [k, 1])) };
  const versions = Object.fromEntries(Object.keys(values).map((k) => [k, 1]));
  const done = await saver.put({ configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: parent } }, c, meta, versions);
  return done.configurable!.checkpoint_id as string;
}

const input = (threadId: string) => runInput(threadId);

const done = (run_id: string, owner: string) => ({ run_id, owner, status: "success" as const, values: null, interrupts: {}, hasPendingNext: false, error: null });

/** The tuple the run would start from, primed with what its claim read. */
async function startsFrom(runId: string, threadId: string, row: Parameters<RunAwarePostgresSaver["prime"]>[2]) {
  saver.prime(runId, threadId, row);
  return saver.getTuple({ configurable: { thread_id: threadId }, metadata: { run_id: runId } });
}

describe("a claim reads the claimed run's first checkpoint", () => {
  it("create with a local claim: the thread's newest root checkpoint, or null when it has none; the API's run never carries it", async () => {
    const t = await thread(3);
    const created = await runs.create({ ...input(t), claim: { owner: "w1", leaseSecs: 30 } });
    if (created.outcome !== "created") throw new Error(created.outcome);
    expect(created.claimed?.status).toBe("running");
    expect("checkpoint" in created.run).toBe(false);
    const expected = await saver.getTuple({ configurable: { thread_id: t } });
    expect(created.claimed?.checkpoint?.checkpoint_id).toBe(expected?.checkpoint.id);
    expect(await startsFrom(created.run.run_id, t, created.claimed!.checkpoint!)).toEqual(expected);

    const empty = await thread(0);
    const fresh = await runs.create({ ...input(empty), claim: { owner: "w1", leaseSecs: 30 } });
    if (fresh.outcome !== "created") throw new Error(fresh.outcome);
    expect(fresh.claimed?.checkpoint).toBeNull();
  });

  it("create that cannot claim (the thread is busy) reads nothing: the run waits, unclaimed", async () => {
    const t = await thread(1);
    await runs.create({ ...input(t), claim: { owner: "w1", leaseSecs: 30 } });
    const behind = await runs.create({ ...input(t), claim: { owner: "w1", leaseSecs: 30 } });
    if (behind.outcome !== "created") throw new Error(behind.outcome);
    expect(behind.claimed).toBeNull();
    expect(behind.run.status).toBe("pending");
  });

  it("finish handing the slot over: the next run's thread as its previous run left it", async () => {
    const t = await thread(1);
    const first = await runs.create({ ...input(t), claim: { owner: "w2", leaseSecs: 30 } });
    const second = await runs.create(input(t));
    if (first.outcome !== "created" || second.outcome !== "created") throw new Error("not created");
    // The first run writes a checkpoint, then ends (its writes are committed before its finish).
    const last = await put(t, "", { n: 99 }, first.claimed!.checkpoint!.checkpoint_id);
    const { claimed } = await runs.finish({ ...done(first.run.run_id, "w2"), claim: { owner: "w2", leaseSecs: 30 } });
    expect(claimed?.run_id).toBe(second.run.run_id);
    expect(claimed?.checkpoint?.checkpoint_id).toBe(last);
    expect(await startsFrom(claimed!.run_id, t, claimed!.checkpoint!)).toEqual(await saver.getTuple({ configurable: { thread_id: t } }));
  });

  it("claimNext: the claimed run's thread, whichever thread that is", async () => {
    const t = await thread(2);
    const pending = await runs.create(input(t));
    if (pending.outcome !== "created") throw new Error(pending.outcome);
    // Runs left pending by the tests above (none should be) would be claimed first.
    let claimed = await runs.claimNext("w3", 30);
    while (claimed && claimed.run_id !== pending.run.run_id) claimed = await runs.claimNext("w3", 30);
    expect(claimed?.checkpoint?.checkpoint_id).toBe((await saver.getTuple({ configurable: { thread_id: t } }))?.checkpoint.id);
  });

  it("without the checkpointer's statements nothing is read: the run's first read goes to PostgreSQL", async () => {
    const plain = createRunsRepo(sql);
    const t = await thread(1);
    const created = await plain.create({ ...input(t), claim: { owner: "w4", leaseSecs: 30 } });
    if (created.outcome !== "created") throw new Error(created.outcome);
    expect(created.claimed?.status).toBe("running");
    expect(created.claimed && "checkpoint" in created.claimed).toBe(false);
    const next = await plain.create(input(t));
    if (next.outcome !== "created") throw new Error(next.outcome);
    const { claimed } = await plain.finish({ ...done(created.run.run_id, "w4"), claim: { owner: "w4", leaseSecs: 30 } });
    expect(claimed?.run_id).toBe(next.run.run_id);
    expect(claimed && "checkpoint" in claimed).toBe(false);
  });
});

describe("a finish commits the run's last checkpoint writes with its outcome", () => {
  /** A running run on a thread with one checkpoint, and the writes its next put would make (unsent). */
  async function runWithTail() {
    const t = await thread(1);
    const created = await runs.create({ ...input(t), claim: { owner: "w5", leaseSecs: 30 } });
    if (created.outcome !== "created" || !created.claimed) throw new Error("not claimed");
    const runId = created.run.run_id;
    const pipeline = saver.writeBehind(runId);
    const c: Checkpoint = { ...emptyCheckpoint(), id: uuid6(-1), channel_values: { n: 42 }, channel_versions: { n: 2 } };
    const parent = created.claimed.checkpoint!.checkpoint_id;
    const put = await saver.put({ configurable: { thread_id: t, checkpoint_ns: "", checkpoint_id: parent }, metadata: { run_id: runId } }, c, meta, { n: 2 });
    const tail = await pipeline.take();
    expect(tail.length).toBe(1);
    return { t, runId, tail, id: put.configurable!.checkpoint_id as string, parent };
  }
  const latestId = async (t: string) => (await saver.getTuple({ configurable: { thread_id: t } }))?.checkpoint.id;
  const status = async (runId: string) => (await runs.get(null, runId))?.status;

  it("both land in one statement", async () => {
    const { t, runId, tail, id } = await runWithTail();
    expect(await latestId(t)).not.toBe(id); // taken, not sent
    const res = await runs.finish({ ...done(runId, "w5"), values: { n: 42 }, writes: tail });
    expect(res.finished).toBe(true);
    expect(await status(runId)).toBe("success");
    const tuple = await saver.getTuple({ configurable: { thread_id: t } });
    expect(tuple?.checkpoint.id).toBe(id);
    expect(tuple?.checkpoint.channel_values).toEqual({ n: 42 });
  });

  it("a worker that no longer holds the run records nothing, and its writes do not land", async () => {
    const { t, runId, tail, parent } = await runWithTail();
    const res = await runs.finish({ ...done(runId, "someone-else"), writes: tail });
    expect(res.finished).toBe(false);
    expect(await status(runId)).toBe("running");
    expect(await latestId(t)).toBe(parent);
  });

  it("a worker whose run is taken over while its finish waits for the thread lands nothing", async () => {
    const { t, runId, tail, parent } = await runWithTail();
    // Hold the thread's lock: the finish statement starts, then waits for it.
    const holder = await sql.reserve();
    try {
      await holder`BEGIN`;
      await holder`SELECT 1 FROM thread WHERE thread_id = ${t} FOR UPDATE`;
      const finishing = runs.finish({ ...done(runId, "w5"), writes: tail });
      await new Promise((r) => setTimeout(r, 300));
      // Meanwhile the run's lease lapsed and another worker took it.
      await sql`UPDATE run SET lease_owner = 'w-next', attempt = attempt + 1 WHERE run_id = ${runId}`;
      await holder`COMMIT`;
      expect((await finishing).finished).toBe(false);
    } finally {
      holder.release();
    }
    expect(await latestId(t)).toBe(parent);
  });

  it("a write PostgreSQL refuses fails the finish: the outcome is not recorded, the run stays running", async () => {
    const { t, runId, tail, parent } = await runWithTail();
    const bad = tail.map((w) => (w.kind === "put" ? { ...w, checkpoint: '{"bad": "\\u0000"}' } : w));
    await expect(runs.finish({ ...done(runId, "w5"), writes: bad })).rejects.toThrow(/unicode/i);
    expect(await status(runId)).toBe("running");
    expect(await latestId(t)).toBe(parent);
  });

  it("the next run claimed on the same thread reads its checkpoint itself; one on another thread gets it", async () => {
    const { t, runId, tail } = await runWithTail();
    const behind = await runs.create(input(t));
    if (behind.outcome !== "created") throw new Error(behind.outcome);
    const { claimed } = await runs.finish({ ...done(runId, "w5"), writes: tail, claim: { owner: "w5", leaseSecs: 30 } });
    expect(claimed?.run_id).toBe(behind.run.run_id);
    expect(claimed && "checkpoint" in claimed).toBe(false);

    const other = await runWithTail();
    const elsewhere = await thread(2);
    const waiting = await runs.create(input(elsewhere));
    if (waiting.outcome !== "created") throw new Error(waiting.outcome);
    // The oldest eligible pending run is claimed: ours, unless an earlier test left one.
    const res = await runs.finish({ ...done(other.runId, "w5"), writes: other.tail, claim: { owner: "w5", leaseSecs: 30 } });
    expect(res.claimed?.run_id).toBe(waiting.run.run_id);
    expect(res.claimed?.checkpoint?.checkpoint_id).toBe(await latestId(elsewhere));
  });

  it("writes without the checkpointer's statements are refused before anything is sent", async () => {
    const { runId, tail } = await runWithTail();
    await expect(createRunsRepo(sql).finish({ ...done(runId, "w5"), writes: tail })).rejects.toThrow(/no checkpoint statements/);
    expect(await status(runId)).toBe("running");
  });
});
