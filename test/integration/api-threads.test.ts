import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/lib/logger.js";
import { TtlSweeper } from "../../src/lifecycle/ttl-sweeper.js";
import { createStoreRepo } from "../../src/storage/store.js";
import { createThreadCheckpointsRepo } from "../../src/storage/thread-checkpoints.js";
import { createThreadsRepo } from "../../src/storage/threads.js";
import type { TestStack } from "../helpers/app.js";
import type { TestDatabase } from "../helpers/services.js";
import type { ApiClient, Json } from "./api-support.js";
import { apiStack } from "./api-support.js";

let db: TestDatabase;
let stack: TestStack;
let api: ApiClient;

beforeAll(async () => {
  ({ db, stack, api } = await apiStack("api_threads", { worker: true }));
});
afterAll(async () => {
  await stack?.close();
  await db?.drop();
});

const snapshot = async () => ({
  threads: await stack.sql`SELECT * FROM thread ORDER BY thread_id`,
  checkpoints: (await stack.sql`SELECT count(*)::int AS n FROM checkpoints`)[0]!.n,
});

const checkpointCount = async (threadId: string) =>
  (await stack.sql`SELECT count(*)::int AS n FROM checkpoints WHERE thread_id = ${threadId}`)[0]!.n as number;

/** A counter thread that has run once to completion (three steps, several checkpoints). */
async function ranThread(metadata: Json = {}): Promise<string> {
  const t = await api.json("POST", "/threads", { metadata });
  await api.json("POST", `/threads/${t.thread_id}/runs/wait`, { assistant_id: "counter", input: { count: 1 } });
  return t.thread_id as string;
}

describe("POST /threads", () => {
  it("creates with defaults, or with an id; an existing id → 409 unless do_nothing", async () => {
    const t = await api.json("POST", "/threads", {});
    expect(t).toMatchObject({ status: "idle", metadata: {}, values: null, interrupts: {} });
    const id = randomUUID();
    const mine = await api.json("POST", "/threads", { thread_id: id, metadata: { a: 1 } });
    expect(mine.thread_id).toBe(id);
    const before = await snapshot();
    await api.fails("POST", "/threads", { thread_id: id }, 409, /already exists/);
    expect(await api.json("POST", "/threads", { thread_id: id, metadata: { a: 2 }, if_exists: "do_nothing" })).toEqual(mine);
    expect(await snapshot()).toEqual(before);
  });

  it("bad fields → 422 naming them; nothing written", async () => {
    const before = await snapshot();
    await api.fails("POST", "/threads", { thread_id: "x" }, 422, /thread_id/);
    await api.fails("POST", "/threads", { ttl: -5 }, 422, /ttl/);
    await api.fails("POST", "/threads", { ttl: { ttl: 5, strategy: "archive" } }, 422, /ttl/);
    await api.fails("POST", "/threads", { supersteps: [{ updates: [{ values: {} }] }] }, 422, /as_node/);
    expect(await snapshot()).toEqual(before);
  });

  it("stores a TTL (a bare number means strategy delete) and shows it with ?include=ttl", async () => {
    const a = await api.json("POST", "/threads", { ttl: 30 });
    expect(a).not.toHaveProperty("ttl");
    const withTtl = await api.json<{ ttl: Json; updated_at: string }>("GET", `/threads/${a.thread_id}?include=ttl`);
    expect(withTtl.ttl).toMatchObject({ strategy: "delete", ttl_minutes: 30 });
    expect(Date.parse(withTtl.ttl.expires_at as string) - Date.parse(withTtl.updated_at)).toBe(30 * 60_000);
    const b = await api.json("POST", "/threads", { ttl: { ttl: 5, strategy: "keep_latest" } });
    expect((await api.json<{ ttl: Json }>("GET", `/threads/${b.thread_id}?include=ttl`)).ttl).toMatchObject({ strategy: "keep_latest", ttl_minutes: 5 });
    const none = await api.json("POST", "/threads", {});
    expect((await api.json("GET", `/threads/${none.thread_id}?include=ttl`)).ttl).toBeNull();
    await api.fails("GET", `/threads/${none.thread_id}?include=everything`, undefined, 422, /include/);
  });

  it("applies supersteps with the graph's bulk update (one checkpoint per superstep)", async () => {
    const t = await api.json("POST", "/threads", {
      metadata: { graph_id: "counter" },
      supersteps: [
        { updates: [{ values: { count: 2, steps: ["a"] }, as_node: "one" }] },
        { updates: [{ values: { count: 3, steps: ["b"] }, as_node: "two" }] },
        { updates: [{ command: { update: { count: 4, steps: ["c"] } }, as_node: "three" }] },
      ],
    });
    expect(t.values).toEqual({ count: 9, steps: ["a", "b", "c"] });
    const state = await api.json("GET", `/threads/${t.thread_id}/state`);
    expect(state.values).toEqual({ count: 9, steps: ["a", "b", "c"] });
    const history = await api.json<Json[]>("POST", `/threads/${t.thread_id}/history`, { limit: 10 });
    expect(history.length).toBe(3);
  });

  it("supersteps without a served graph, or that the graph rejects → 422, no thread left behind", async () => {
    const before = await snapshot();
    const id = randomUUID();
    await api.fails("POST", "/threads", { thread_id: id, supersteps: [{ updates: [{ values: {}, as_node: "one" }] }] }, 422, /graph_id/);
    await api.fails(
      "POST",
      "/threads",
      { thread_id: id, metadata: { graph_id: "nope" }, supersteps: [{ updates: [{ values: {}, as_node: "one" }] }] },
      422,
      /graph_id/,
    );
    await api.fails(
      "POST",
      "/threads",
      { thread_id: id, metadata: { graph_id: "counter" }, supersteps: [{ updates: [{ values: { count: 1 }, as_node: "no_such_node" }] }] },
      422,
      /supersteps/,
    );
    expect(await snapshot()).toEqual(before);
  });
});

describe("PATCH /threads/{id}", () => {
  it("merges metadata, sets the TTL; Prefer: return=minimal → 204", async () => {
    const t = await api.json("POST", "/threads", { metadata: { keep: 1, over: "old" } });
    const p = await api.json("PATCH", `/threads/${t.thread_id}`, { metadata: { over: "new", add: true } });
    expect(p.metadata).toEqual({ keep: 1, over: "new", add: true });
    expect(Date.parse(p.updated_at as string)).toBeGreaterThanOrEqual(Date.parse(t.updated_at as string));
    const res = await api.request("PATCH", `/threads/${t.thread_id}`, { ttl: { ttl: 10, strategy: "keep_latest" } }, { Prefer: "return=minimal" });
    expect(res.status).toBe(204);
    expect(await res.text()).toBe("");
    const got = await api.json<{ ttl: Json; metadata: Json }>("GET", `/threads/${t.thread_id}?include=ttl`);
    expect(got.metadata).toEqual({ keep: 1, over: "new", add: true });
    expect(got.ttl).toMatchObject({ strategy: "keep_latest", ttl_minutes: 10 });
    await api.json("PATCH", `/threads/${t.thread_id}`, { ttl: null });
    expect((await api.json("GET", `/threads/${t.thread_id}?include=ttl`)).ttl).toBeNull();
  });

  it("unknown thread → 404, bad body → 422, nothing changes", async () => {
    const t = await api.json("POST", "/threads", { metadata: { x: 1 } });
    const before = await snapshot();
    await api.fails("PATCH", `/threads/${randomUUID()}`, { metadata: { a: 1 } }, 404, /not found/);
    await api.fails("PATCH", `/threads/${t.thread_id}`, { metadata: "x" }, 422, /metadata/);
    await api.fails("PATCH", `/threads/${t.thread_id}`, { ttl: 0 }, 422, /ttl/);
    await api.fails("PATCH", "/threads/nope", { metadata: {} }, 422, /thread_id/);
    expect(await snapshot()).toEqual(before);
  });
});

describe("DELETE /threads/{id}", () => {
  it("deletes the thread, its runs and checkpoints; again → 404", async () => {
    const id = await ranThread();
    expect(await checkpointCount(id)).toBeGreaterThan(0);
    expect((await api.request("DELETE", `/threads/${id}`)).status).toBe(204);
    expect(await checkpointCount(id)).toBe(0);
    expect((await stack.sql`SELECT 1 FROM run WHERE thread_id = ${id}`).length).toBe(0);
    await api.fails("DELETE", `/threads/${id}`, undefined, 404);
  });
});

describe("search and count", () => {
  const tag = randomUUID();
  beforeAll(async () => {
    await api.json("POST", "/threads", { metadata: { tag, n: 1 } });
    await api.json("POST", "/threads", { metadata: { tag, n: 2 } });
    await ranThread({ tag, n: 3 });
  });

  it("select returns only the chosen fields; values and status filter", async () => {
    const rows = await api.json<Json[]>("POST", "/threads/search", { metadata: { tag }, select: ["thread_id", "metadata"] });
    expect(rows).toHaveLength(3);
    for (const r of rows) expect(Object.keys(r).sort()).toEqual(["metadata", "thread_id"]);
    const ran = await api.json<Json[]>("POST", "/threads/search", { metadata: { tag }, values: { count: 4 } });
    expect(ran.map((r) => (r.metadata as Json).n)).toEqual([3]);
    await api.fails("POST", "/threads/search", { select: ["thread_id", "secret"] }, 422, /select/);
  });

  it("count takes metadata, values and status", async () => {
    expect(await api.json("POST", "/threads/count", { metadata: { tag } })).toBe(3);
    expect(await api.json("POST", "/threads/count", { metadata: { tag, n: 2 } })).toBe(1);
    expect(await api.json("POST", "/threads/count", { metadata: { tag }, status: "idle" })).toBe(3);
    expect(await api.json("POST", "/threads/count", { metadata: { tag }, values: { count: 4 } })).toBe(1);
    await api.fails("POST", "/threads/count", { status: "sleeping" }, 422, /status/);
  });

  it("pagination headers", async () => {
    const res = await api.request("POST", "/threads/search", { metadata: { tag }, limit: 2 });
    expect(res.headers.get("X-Pagination-Total")).toBe("3");
    expect(res.headers.get("X-Pagination-Next")).toBe("2");
  });

  it("injection attempts → 422 or no rows, never a 500", async () => {
    await api.fails("POST", "/threads/search", { sort_by: "created_at; DROP TABLE thread" }, 422, /sort_by/);
    await api.fails("POST", "/threads/search", { ids: ["' OR 1=1 --"] }, 422, /ids/);
    expect(await api.json("POST", "/threads/search", { metadata: { "tag' OR '1'='1": tag } })).toEqual([]);
    expect(await api.json("POST", "/threads/search", { values: { "count\") OR true --": 1 } })).toEqual([]);
    expect(await api.json("POST", "/threads/count", { metadata: { tag: `${tag}' OR '1'='1` } })).toBe(0);
  });
});

describe("POST /threads/{id}/copy", () => {
  it("copies metadata, state and history under a new id; runs are not copied", async () => {
    const src = await ranThread({ origin: "copy-test" });
    const copy = await api.json("POST", `/threads/${src}/copy`);
    expect(copy.thread_id).not.toBe(src);
    expect(copy).toMatchObject({ metadata: { origin: "copy-test", graph_id: "counter" }, status: "idle", values: { count: 4, steps: ["one", "two", "three"] } });

    const strip = (v: unknown): unknown => JSON.parse(JSON.stringify(v).replaceAll(src, "<id>").replaceAll(copy.thread_id as string, "<id>"));
    const [a, b] = await Promise.all([api.json("GET", `/threads/${src}/state`), api.json("GET", `/threads/${copy.thread_id}/state`)]);
    expect((b.checkpoint as Json).thread_id).toBe(copy.thread_id);
    expect(strip(b)).toEqual(strip(a));
    const [ha, hb] = await Promise.all([
      api.json<Json[]>("POST", `/threads/${src}/history`, { limit: 100 }),
      api.json<Json[]>("POST", `/threads/${copy.thread_id}/history`, { limit: 100 }),
    ]);
    expect(hb.length).toBe(ha.length);
    expect(strip(hb)).toEqual(strip(ha));
    const writes = async (id: string) => (await stack.sql`SELECT count(*)::int AS n FROM checkpoint_writes WHERE thread_id = ${id}`)[0]!.n;
    expect(await writes(copy.thread_id as string)).toBe(await writes(src));
    expect(await api.json<Json[]>("GET", `/threads/${copy.thread_id}/runs`)).toEqual([]);

    // The copy is independent: a run on it leaves the original alone.
    await api.json("POST", `/threads/${copy.thread_id}/runs/wait`, { assistant_id: "counter", input: { count: 1 } });
    expect((await api.json("GET", `/threads/${copy.thread_id}/state`)).values).toMatchObject({ count: 8 });
    expect((await api.json("GET", `/threads/${src}/state`)).values).toMatchObject({ count: 4 });
  });

  it("unknown thread → 404, nothing written", async () => {
    const before = await snapshot();
    await api.fails("POST", `/threads/${randomUUID()}/copy`, undefined, 404);
    expect(await snapshot()).toEqual(before);
  });
});

describe("POST /threads/prune", () => {
  it("strategy delete removes threads with their checkpoints; unknown ids count nothing", async () => {
    const a = await ranThread();
    const b = await ranThread();
    const res = await api.json("POST", "/threads/prune", { thread_ids: [a, b, randomUUID()] });
    expect(res).toEqual({ pruned_count: 2 });
    for (const id of [a, b]) {
      await api.fails("GET", `/threads/${id}`, undefined, 404);
      expect(await checkpointCount(id)).toBe(0);
    }
  });

  it("strategy keep_latest keeps only the newest checkpoint; the state is unchanged and runs continue from it", async () => {
    const id = await ranThread();
    const before = await api.json("GET", `/threads/${id}/state`);
    expect(await checkpointCount(id)).toBeGreaterThan(1);
    expect(await api.json("POST", "/threads/prune", { thread_ids: [id], strategy: "keep_latest" })).toEqual({ pruned_count: 1 });
    expect(await checkpointCount(id)).toBe(1);
    const after = await api.json("GET", `/threads/${id}/state`);
    expect(after.values).toEqual(before.values);
    expect(after.checkpoint).toEqual(before.checkpoint);
    expect(await api.json<Json[]>("POST", `/threads/${id}/history`, {})).toHaveLength(1);
    await api.json("POST", `/threads/${id}/runs/wait`, { assistant_id: "counter", input: { count: 1 } });
    expect((await api.json("GET", `/threads/${id}/state`)).values).toMatchObject({ count: 8 });
  });

  it("bad bodies → 422, nothing changes", async () => {
    const before = await snapshot();
    await api.fails("POST", "/threads/prune", {}, 422, /thread_ids/);
    await api.fails("POST", "/threads/prune", { thread_ids: [] }, 422, /thread_ids/);
    await api.fails("POST", "/threads/prune", { thread_ids: ["x"] }, 422, /thread_ids/);
    await api.fails("POST", "/threads/prune", { thread_ids: [randomUUID()], strategy: "all" }, 422, /strategy/);
    expect(await snapshot()).toEqual(before);
  });
});

describe("TTL sweeper", () => {
  const sweeper = () =>
    new TtlSweeper({
      threads: createThreadsRepo(stack.sql),
      threadCheckpoints: createThreadCheckpointsRepo(stack.sql),
      store: createStoreRepo(stack.sql),
      deleteCheckpoints: stack.deps.deleteCheckpoints,
      logger: createLogger({ level: "silent", json: true }),
      intervalMs: 20,
    });
  const expire = (id: string) => stack.sql`UPDATE thread SET ttl_expires_at = now() - interval '1 second' WHERE thread_id = ${id}`;

  it("delete: expired idle threads go with their checkpoints; fresh and busy ones stay", async () => {
    const expired = await ranThread();
    const fresh = await ranThread();
    const busy = await ranThread();
    for (const id of [expired, fresh, busy]) await api.json("PATCH", `/threads/${id}`, { ttl: 60 });
    await expire(expired);
    await expire(busy);
    await stack.sql`UPDATE thread SET status = 'busy' WHERE thread_id = ${busy}`;
    const done = await sweeper().sweepOnce();
    expect(done.deletedThreads).toBeGreaterThanOrEqual(1);
    await api.fails("GET", `/threads/${expired}`, undefined, 404);
    expect(await checkpointCount(expired)).toBe(0);
    await api.json("GET", `/threads/${fresh}`);
    await api.json("GET", `/threads/${busy}`);
    await stack.sql`UPDATE thread SET status = 'idle' WHERE thread_id = ${busy}`;
  });

  it("keep_latest: prunes to the latest checkpoint and waits for the next activity", async () => {
    const id = await ranThread();
    await api.json("PATCH", `/threads/${id}`, { ttl: { ttl: 60, strategy: "keep_latest" } });
    await expire(id);
    await sweeper().sweepOnce();
    expect(await checkpointCount(id)).toBe(1);
    expect((await api.json<{ ttl: Json }>("GET", `/threads/${id}?include=ttl`)).ttl).toMatchObject({ strategy: "keep_latest", expires_at: null });
    // Activity (a run) sets a new expiry.
    await api.json("POST", `/threads/${id}/runs/wait`, { assistant_id: "counter", input: { count: 1 } });
    const ttl = (await api.json<{ ttl: Json }>("GET", `/threads/${id}?include=ttl`)).ttl;
    expect(Date.parse(ttl.expires_at as string)).toBeGreaterThan(Date.now() + 59 * 60_000);
  });

  it("activity refreshes the expiry", async () => {
    const t = await api.json("POST", "/threads", { ttl: 1 });
    await expire(t.thread_id as string);
    await api.json("PATCH", `/threads/${t.thread_id}`, { metadata: { touched: true } });
    await sweeper().sweepOnce();
    const got = await api.json<{ ttl: Json }>("GET", `/threads/${t.thread_id}?include=ttl`);
    expect(Date.parse(got.ttl.expires_at as string)).toBeGreaterThan(Date.now());
  });

  it("runs on its interval once started and stops cleanly", async () => {
    const t = await api.json("POST", "/threads", { ttl: 1 });
    await expire(t.thread_id as string);
    const s = sweeper();
    s.start();
    expect(s.status).toBe("active");
    const deadline = Date.now() + 5_000;
    while ((await stack.sql`SELECT 1 FROM thread WHERE thread_id = ${t.thread_id as string}`).length > 0) {
      if (Date.now() > deadline) throw new Error("sweeper did not delete the expired thread");
      await new Promise((r) => setTimeout(r, 20));
    }
    await s.stop();
    await s.stop();
    expect(s.status).toBe("stopped");
  });
});
