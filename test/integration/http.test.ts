import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemAssistantId } from "../../src/domain/assistant.js";
import { createApp } from "../../src/http/app.js";
import { uuidv7 } from "../../src/lib/uuid.js";
import { compareIds } from "../../src/stream/bus.js";
import { createTestStack, parseSse } from "../helpers/app.js";
import type { SseEvent, TestStack } from "../helpers/app.js";
import { createTestDatabase, hasRedis, redisSkipReason, redisUri } from "../helpers/services.js";
import type { TestDatabase } from "../helpers/services.js";
import { apiClient } from "./api-support.js";

const MAX_BODY = 64 * 1024;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

type Json = Record<string, unknown>;

/** The API test client (api-support.ts), plus SSE reads and thread creation. */
function client(stack: TestStack) {
  const api = apiClient(stack);
  return {
    ...api,
    json: (method: string, path: string, body?: unknown, expected = 200) => api.json<Json>(method, path, body, expected),
    async sse(path: string, body?: unknown, headers: Record<string, string> = {}) {
      const res = await api.request(body === undefined ? "GET" : "POST", path, body, headers);
      const text = await res.text();
      expect(res.status, `${path} → ${text}`).toBe(200);
      return { res, text, events: parseSse(text) };
    },
    async thread(metadata: Json = {}): Promise<string> {
      const t = await api.json<Json>("POST", "/threads", { metadata });
      return t.thread_id as string;
    },
  };
}

function expectWellFramed(events: SseEvent[], runId: string) {
  expect(events.length).toBeGreaterThan(1);
  expect(events[0]).toMatchObject({ event: "metadata", data: { run_id: runId, attempt: 1 } });
  for (const ev of events) expect(ev.id, `event ${ev.event} has an id`).toMatch(/^\d+-\d+$/);
  for (let i = 1; i < events.length; i++) expect(compareIds(events[i]!.id!, events[i - 1]!.id!)).toBeGreaterThan(0);
  expect(events.some((e) => e.event === "__end__")).toBe(false);
}

/** The run id from a Content-Location header (`/threads/<t>/runs/<r>` or `/runs/<r>`). */
const runIdOf = (res: Response) => res.headers.get("Content-Location")!.split("/").at(-1)!;

async function waitFor(cond: () => Promise<boolean>, ms = 10_000, what = "condition") {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs the happy-path API checks against a stack built by `make`. */
function happyPath(name: string, make: () => Promise<TestStack>) {
  describe(`runs over HTTP (${name})`, () => {
    let stack: TestStack;
    let api: ReturnType<typeof client>;
    beforeAll(async () => {
      stack = await make();
      api = client(stack);
    });
    afterAll(async () => {
      await stack?.close();
    });

    it("POST /threads/{id}/runs/wait returns the final values and records the outcome", async () => {
      const threadId = await api.thread({ owner: "test" });
      const res = await api.request("POST", `/threads/${threadId}/runs/wait`, { assistant_id: "counter", input: {} });
      expect(res.status).toBe(200);
      expect(JSON.parse(await res.text())).toEqual({ count: 3, steps: ["one", "two", "three"] });
      const runId = runIdOf(res);
      expect(res.headers.get("Content-Location")).toBe(`/threads/${threadId}/runs/${runId}`);
      expect(res.headers.get("Location")).toBe(`/threads/${threadId}/runs/${runId}/join`);
      await waitFor(async () => (await api.json("GET", `/threads/${threadId}/runs/${runId}`)).status === "success", 5_000, "run success");
      const thread = await api.json("GET", `/threads/${threadId}`);
      expect(thread).toMatchObject({
        status: "idle",
        values: { count: 3, steps: ["one", "two", "three"] },
        metadata: { owner: "test", graph_id: "counter", assistant_id: systemAssistantId("counter") },
      });
    });

    it("the agent graph answers a message with plain message dicts", async () => {
      const threadId = await api.thread();
      const values = await api.json("POST", `/threads/${threadId}/runs/wait`, {
        assistant_id: systemAssistantId("agent"),
        input: { messages: [{ role: "human", content: "hello" }] },
      });
      const messages = values.messages as Json[];
      expect(messages).toHaveLength(2);
      expect(messages[0]).toMatchObject({ type: "human", content: "hello" });
      expect(messages[1]).toMatchObject({ type: "ai", content: "You said: hello" });
      expect(messages[1]).not.toHaveProperty("lc");
    });

    it("a second run on the thread continues from its checkpoint", async () => {
      const threadId = await api.thread();
      await api.json("POST", `/threads/${threadId}/runs/wait`, { assistant_id: "counter", input: {} });
      const second = await api.json("POST", `/threads/${threadId}/runs/wait`, { assistant_id: "counter", input: {} });
      expect(second).toEqual({ count: 6, steps: ["one", "two", "three", "one", "two", "three"] });
    });

    it("POST /threads/{id}/runs/stream frames SSE: metadata first, an id on every event, Content-Location", async () => {
      const threadId = await api.thread();
      const { res, events } = await api.sse(`/threads/${threadId}/runs/stream`, {
        assistant_id: "counter",
        input: {},
        stream_mode: ["values", "updates"],
      });
      expect(res.headers.get("Content-Type")).toMatch(/^text\/event-stream/);
      const runId = runIdOf(res);
      expect(runId).toMatch(UUID_RE);
      expect(res.headers.get("Content-Location")).toBe(`/threads/${threadId}/runs/${runId}`);
      expect(res.headers.get("Location")).toBe(`/threads/${threadId}/runs/${runId}/stream`);
      expectWellFramed(events, runId);
      const updates = events.filter((e) => e.event === "updates").map((e) => Object.keys(e.data as Json));
      expect(updates).toEqual([["one"], ["two"], ["three"]]);
      expect(events.filter((e) => e.event === "values").at(-1)!.data).toEqual({ count: 3, steps: ["one", "two", "three"] });
    });

    it("a single stream_mode string is accepted", async () => {
      const threadId = await api.thread();
      const { events } = await api.sse(`/threads/${threadId}/runs/stream`, { assistant_id: "counter", input: {}, stream_mode: "updates" });
      expect(new Set(events.map((e) => e.event))).toEqual(new Set(["metadata", "updates"]));
    });

    it("joining a finished run's stream with Last-Event-ID replays exactly the later events", async () => {
      const threadId = await api.thread();
      const first = await api.sse(`/threads/${threadId}/runs/stream`, {
        assistant_id: "counter",
        input: {},
        stream_mode: ["values", "updates"],
      });
      const runId = runIdOf(first.res);
      expect(first.events.length).toBeGreaterThan(4);
      const cut = 2;
      const resumed = await api.sse(`/threads/${threadId}/runs/${runId}/stream`, undefined, {
        "Last-Event-ID": first.events[cut]!.id!,
      });
      expect(resumed.events).toEqual(first.events.slice(cut + 1));
      expect(resumed.res.headers.get("Content-Location")).toBe(`/threads/${threadId}/runs/${runId}`);
      // Without Last-Event-ID, joining a finished run ends at once.
      const live = await api.sse(`/threads/${threadId}/runs/${runId}/stream`);
      expect(live.events).toEqual([]);
    });

    it("a failing run streams an error event and leaves the thread in error", async () => {
      const threadId = await api.thread();
      // No input on a thread without checkpoints: the graph refuses to start.
      const { res, events } = await api.sse(`/threads/${threadId}/runs/stream`, { assistant_id: "counter" });
      const runId = runIdOf(res);
      expectWellFramed(events, runId);
      const error = events.at(-1)!;
      expect(error.event).toBe("error");
      expect(error.data).toMatchObject({ error: expect.any(String), message: expect.any(String) });
      await waitFor(async () => (await api.json("GET", `/threads/${threadId}/runs/${runId}`)).status === "error", 5_000, "run error");
      expect(await api.json("GET", `/threads/${threadId}`)).toMatchObject({ status: "error" });
      // /wait reports the failure in the body, as the official server does.
      const waited = await api.json("POST", `/threads/${threadId}/runs/wait`, { assistant_id: "counter" });
      expect(waited).toMatchObject({ __error__: { error: (error.data as Json).error } });
    });

    it("stateless /runs/stream runs on a temporary thread that is deleted afterwards", async () => {
      const before = await stack.counts();
      const { res, events } = await api.sse("/runs/stream", { assistant_id: "counter", input: {} });
      const runId = runIdOf(res);
      expect(res.headers.get("Content-Location")).toBe(`/runs/${runId}`);
      expectWellFramed(events, runId);
      expect(events.at(-1)).toMatchObject({ event: "values", data: { count: 3 } });
      await waitFor(async () => (await stack.counts()).thread === before.thread, 5_000, "temporary thread deletion");
    });

    it("stateless /runs/wait with on_completion=keep keeps the thread", async () => {
      const res = await api.request("POST", "/runs/wait", { assistant_id: "counter", input: {}, on_completion: "keep" });
      expect(res.status).toBe(200);
      expect(JSON.parse(await res.text())).toMatchObject({ count: 3 });
      const run = await api.json("GET", `/runs/${runIdOf(res)}/join`);
      expect(run).toMatchObject({ count: 3 });
    });

    it("enqueued runs on one thread run one after another, in order", async () => {
      const threadId = await api.thread();
      const created = [];
      for (let i = 0; i < 3; i++) created.push(await api.json("POST", `/threads/${threadId}/runs`, { assistant_id: "counter", input: {} }));
      expect(created.every((r) => r.status === "pending")).toBe(true);
      const last = await api.json("GET", `/threads/${threadId}/runs/${created[2]!.run_id as string}/join`);
      expect(last).toEqual({ count: 9, steps: Array.from({ length: 3 }, () => ["one", "two", "three"]).flat() });
      const rows = await stack.sql<{ run_id: string; status: string; started_at: string; ended_at: string }[]>`
        SELECT run_id, status, started_at, ended_at FROM run WHERE thread_id = ${threadId} ORDER BY started_at`;
      expect(rows.map((r) => r.run_id)).toEqual(created.map((r) => r.run_id));
      expect(rows.every((r) => r.status === "success")).toBe(true);
      for (let i = 1; i < rows.length; i++) expect(Date.parse(rows[i]!.started_at)).toBeGreaterThanOrEqual(Date.parse(rows[i - 1]!.ended_at));
    });
  });
}

// ------------------------------------------------------------------------------------------------

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase("http");
});
afterAll(async () => {
  await db?.drop();
});

// The embedded default: in-process bus, BullMQ on PostgreSQL.
happyPath("memory bus, postgres queue", () => createTestStack({ postgresUri: db.uri, bus: "memory", queue: "postgres", maxBodyBytes: MAX_BODY }));

describe.skipIf(!hasRedis())(`with Redis${hasRedis() ? "" : ` (skipped: ${redisSkipReason()})`}`, () => {
  happyPath("redis bus, redis queue", () =>
    createTestStack({ postgresUri: db.uri, redisUri: redisUri(), bus: "redis", queue: "redis", maxBodyBytes: MAX_BODY }),
  );
});

describe("validation and errors over HTTP", () => {
  let stack: TestStack;
  let api: ReturnType<typeof client>;
  let threadId: string;
  beforeAll(async () => {
    stack = await createTestStack({ postgresUri: db.uri, maxBodyBytes: MAX_BODY });
    api = client(stack);
    threadId = await api.thread();
  });
  afterAll(async () => {
    await stack?.close();
  });

  /** Sends a request that must fail with `status`, and proves it wrote nothing. */
  async function rejected(method: string, path: string, body: unknown, status: number): Promise<string> {
    const before = await stack.counts();
    const res = await api.request(method, path, body);
    const text = await res.text();
    expect(res.status, `${method} ${path} → ${text}`).toBe(status);
    expect(res.headers.get("Content-Type")).toMatch(/^application\/json/);
    const detail = (JSON.parse(text) as { detail?: unknown }).detail;
    expect(typeof detail).toBe("string");
    expect((detail as string).length).toBeGreaterThan(0);
    // Give a wrongly accepted run time to show up before counting.
    await new Promise((r) => setTimeout(r, 20));
    expect(await stack.counts()).toEqual(before);
    return detail as string;
  }

  const runEndpoints = (tid: string) => [`/threads/${tid}/runs`, `/threads/${tid}/runs/stream`, `/threads/${tid}/runs/wait`];

  it("bad JSON → 422", async () => {
    for (const path of [...runEndpoints(threadId), "/runs/wait", "/threads"]) {
      expect(await rejected("POST", path, '{"assistant_id": "counter",', 422)).toMatch(/JSON/);
    }
  });

  it("a NUL character anywhere in a body (PostgreSQL cannot store it) → 422 naming where", async () => {
    const cases: [string, string, unknown, string][] = [
      ["POST", `/threads/${threadId}/runs/wait`, { assistant_id: "counter", input: { messages: [{ content: "a\u0000b" }] } }, "input.messages.0.content"],
      ["POST", `/threads/${threadId}/runs`, { assistant_id: "counter", metadata: { note: "x\u0000" } }, "metadata.note"],
      ["POST", "/runs/wait", { assistant_id: "counter", config: { configurable: { "k\u0000": 1 } } }, "config.configurable.k"],
      ["POST", "/threads", { metadata: { a: "\u0000" } }, "metadata.a"],
      ["POST", "/assistants", { graph_id: "counter", name: "n\u0000" }, "name"],
      ["PUT", "/store/items", { namespace: ["ns"], key: "k", value: { v: "\u0000" } }, "value.v"],
    ];
    for (const [method, path, body, where] of cases) {
      const detail = await rejected(method, path, body, 422);
      expect(detail).toContain(where);
      expect(detail).toMatch(/NUL/);
    }
    const before = await stack.counts();
    const q = await api.request("GET", "/store/items?namespace=ns&key=k%00");
    expect(q.status).toBe(422);
    expect(((await q.json()) as { detail: string }).detail).toMatch(/query: key: .*NUL/);
    expect(await stack.counts()).toEqual(before);
    // An escaped backslash before "u0000" is plain text, not a NUL.
    const res = await api.request("POST", "/threads", { metadata: { path: "C:\\u0000" } });
    expect(res.status).toBe(200);
  });

  it("missing assistant_id → 422 naming assistant_id", async () => {
    for (const path of [...runEndpoints(threadId), "/runs/stream"]) {
      expect(await rejected("POST", path, { input: {} }, 422)).toContain("assistant_id");
    }
  });

  it("unknown or unsupported stream_mode → 422 naming stream_mode", async () => {
    for (const path of runEndpoints(threadId)) {
      expect(await rejected("POST", path, { assistant_id: "counter", stream_mode: ["values", "bogus"] }, 422)).toContain("stream_mode");
      expect(await rejected("POST", path, { assistant_id: "counter", stream_mode: 7 }, 422)).toContain("stream_mode");
    }
  });

  it("other invalid fields → 422 naming the field", async () => {
    const path = `/threads/${threadId}/runs`;
    expect(await rejected("POST", path, { assistant_id: "counter", multitask_strategy: "queue" }, 422)).toContain("multitask_strategy");
    expect(await rejected("POST", path, { assistant_id: "counter", after_seconds: -1 }, 422)).toContain("after_seconds");
    expect(await rejected("POST", path, { assistant_id: "counter", config: { recursion_limit: "x" } }, 422)).toContain("recursion_limit");
    expect(await rejected("POST", path, { assistant_id: "counter", checkpoint_id: "nope" }, 422)).toContain("checkpoint_id");
    expect(await rejected("POST", "/threads", { thread_id: "nope" }, 422)).toContain("thread_id");
  });

  it("non-UUID thread id → 422", async () => {
    for (const path of runEndpoints("not-a-uuid")) {
      expect(await rejected("POST", path, { assistant_id: "counter" }, 422)).toContain("thread_id");
    }
    expect(await rejected("GET", "/threads/not-a-uuid", undefined, 422)).toContain("thread_id");
  });

  it("unknown thread → 404", async () => {
    const missing = uuidv7();
    for (const path of runEndpoints(missing)) {
      expect(await rejected("POST", path, { assistant_id: "counter" }, 404)).toContain(missing);
    }
    await rejected("GET", `/threads/${missing}`, undefined, 404);
    await rejected("GET", `/threads/${threadId}/runs/${uuidv7()}`, undefined, 404);
  });

  it("unknown assistant or graph → 404", async () => {
    for (const path of [...runEndpoints(threadId), "/runs", "/runs/stream", "/runs/wait"]) {
      expect(await rejected("POST", path, { assistant_id: uuidv7() }, 404)).toMatch(/assistant/i);
      expect(await rejected("POST", path, { assistant_id: "no_such_graph" }, 404)).toContain("no_such_graph");
    }
    await rejected("GET", `/assistants/${uuidv7()}`, undefined, 404);
  });

  it("multitask reject on a busy thread → 409, nothing written", async () => {
    const busy = await api.thread();
    // A delayed run keeps the thread busy without executing during the test.
    await api.json("POST", `/threads/${busy}/runs`, { assistant_id: "counter", after_seconds: 3600 });
    for (const path of runEndpoints(busy)) {
      expect(await rejected("POST", path, { assistant_id: "counter", multitask_strategy: "reject" }, 409)).toMatch(/already running/);
    }
  });

  it("creating an existing thread → 409; if_exists=do_nothing returns it", async () => {
    await rejected("POST", "/threads", { thread_id: threadId }, 409);
    const same = await api.json("POST", "/threads", { thread_id: threadId, if_exists: "do_nothing" });
    expect(same.thread_id).toBe(threadId);
  });

  it("a body over maxBodyBytes → 413", async () => {
    const big = { assistant_id: "counter", input: { blob: "x".repeat(MAX_BODY + 1) } };
    expect(await rejected("POST", `/threads/${threadId}/runs`, big, 413)).toMatch(/exceeds/);
    await rejected("POST", "/threads", { metadata: { blob: "y".repeat(MAX_BODY * 2) } }, 413);
    // Just under the limit is fine.
    const fits = { metadata: { blob: "z".repeat(MAX_BODY - 100) } };
    await api.json("POST", "/threads", fits);
  });

  it("GET /ok and /ok?check_db=1", async () => {
    expect(await api.json("GET", "/ok")).toEqual({ ok: true });
    expect(await api.json("GET", "/ok?check_db=1")).toEqual({ ok: true });
    expect(await api.json("GET", "/ok?check_db=true")).toEqual({ ok: true });
  });

  it("/ok?check_db=1 → 503 when the database is unreachable", async () => {
    const broken = createApp({ ...stack.deps, checkDb: () => Promise.reject(new Error("connection refused")) });
    const res = await broken.request("/ok?check_db=1");
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ detail: "Database is not reachable" });
    // Without check_db the liveness probe does not touch the database.
    expect((await broken.request("/ok")).status).toBe(200);
  });

  it("unknown route → 404 JSON {detail}", async () => {
    for (const [method, path] of [["GET", "/nope"], ["POST", "/threads/x/y/z"], ["DELETE", "/ok"]] as const) {
      const res = await api.request(method, path);
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ detail: "Not Found" });
    }
  });
});
