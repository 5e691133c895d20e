/**
 * Custom auth from langgraph.json (`auth.path`, test/fixtures/auth/auth.ts),
 * applied as api.md §6.3 says: authentication on every built-in route but
 * the open ones; per-operation handlers (allow, deny, filters) on assistants,
 * threads, runs (through their thread), crons and the store; filtered
 * searches and counts in SQL; values the handlers stamp; the user in the run
 * config; hostile identities and filter keys that neither fail nor leak.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCustomAuth } from "../../src/auth/load.js";
import type { AuthContext, AuthProvider } from "../../src/auth/types.js";
import { cronRunBody } from "../../src/crons/run-body.js";
import { nextRunDate } from "../../src/crons/schedule.js";
import { readLanggraphConfig } from "../../src/graphs/config-file.js";
import { createApp } from "../../src/http/app.js";
import { createRunAuthorized } from "../../src/http/run-auth.js";
import { prepareRun } from "../../src/http/run-create.js";
import { createCronsRepo } from "../../src/storage/crons.js";
import { createTestStack } from "../helpers/app.js";
import type { TestStack } from "../helpers/app.js";
import { createTestDatabase } from "../helpers/services.js";
import type { TestDatabase } from "../helpers/services.js";
import type { Json } from "./api-support.js";

const AUTH_GRAPHS = "test/fixtures/auth/langgraph.json";

let db: TestDatabase;
let stack: TestStack;
let auth: AuthProvider;
let app: ReturnType<typeof createApp>;

beforeAll(async () => {
  db = await createTestDatabase("auth_custom");
  stack = await createTestStack({ postgresUri: db.uri, configPath: AUTH_GRAPHS, worker: true, workerConcurrency: 2 });
  const file = await readLanggraphConfig(AUTH_GRAPHS);
  auth = await loadCustomAuth(file.auth!.module!.file, file.auth!.module!.exportName);
  app = createApp({ ...stack.deps, auth });
});
afterAll(async () => {
  await stack?.close();
  await db?.drop();
});

/** A client for one user (a bearer token), or anonymous. */
function as(token?: string, extra: Record<string, string> = {}) {
  const headers: Record<string, string> = { "Content-Type": "application/json", ...extra, ...(token ? { Authorization: `Bearer ${token}` } : {}) };
  const req = (method: string, path: string, body?: unknown) =>
    app.request(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return {
    req,
    async ok<T = Json>(method: string, path: string, body?: unknown, status = 200): Promise<T> {
      const res = await req(method, path, body);
      const text = await res.text();
      expect(res.status, `${method} ${path} → ${text}`).toBe(status);
      return (text.trim() ? JSON.parse(text) : null) as T;
    },
    async fails(method: string, path: string, body: unknown, status: number, detail?: RegExp): Promise<void> {
      const res = await req(method, path, body);
      const text = await res.text();
      expect(res.status, `${method} ${path} → ${text}`).toBe(status);
      const parsed = JSON.parse(text) as { detail?: unknown };
      expect(typeof parsed.detail).toBe("string");
      if (detail) expect(parsed.detail).toMatch(detail);
    },
  };
}

const alice = as("alice-token");
const bob = as("bob-token");
const anon = as();

describe("authentication", () => {
  it("refuses requests the handler refuses, with its status, message and headers", async () => {
    await anon.fails("GET", "/threads/search", undefined, 401, /^Missing bearer token$/);
    await as("nobody").fails("POST", "/threads/search", {}, 401, /^Invalid token$/);
    const res = await as("teapot").req("POST", "/threads/search", {});
    expect(res.status).toBe(418);
    expect(res.headers.get("x-auth-reason")).toBe("teapot");
    expect(await res.json()).toEqual({ detail: "No coffee here" });
  });

  it("leaves /ok, /info, /docs, /openapi.json and CORS preflights open; everything else needs credentials", async () => {
    for (const path of ["/ok", "/info", "/docs", "/openapi.json"]) expect((await anon.req("GET", path)).status, path).toBe(200);
    const preflight = await app.request("/threads/search", {
      method: "OPTIONS",
      headers: { Origin: "https://app.example", "Access-Control-Request-Method": "POST" },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("Access-Control-Allow-Origin")).toBe("*");
    await anon.fails("GET", "/metrics", undefined, 401);
    await anon.fails("GET", "/no/such/route", undefined, 401);
    await alice.fails("GET", "/no/such/route", undefined, 404, /Not Found/);
  });

  it("never trusts x-auth-scheme: langsmith (Studio) without credentials", async () => {
    await as(undefined, { "x-auth-scheme": "langsmith" }).fails("POST", "/threads/search", {}, 401);
  });
});

describe("assistants", () => {
  it("create stamps the owner; without the permission → 403 and nothing written", async () => {
    const a = await alice.ok("POST", "/assistants", { graph_id: "counter", metadata: { x: 1 } });
    expect(a.metadata).toEqual({ x: 1, owner: "alice" });
    const [before] = await stack.sql`SELECT count(*)::int AS n FROM assistant`;
    await bob.fails("POST", "/assistants", { graph_id: "counter" }, 403, /Forbidden/);
    const [after] = await stack.sql`SELECT count(*)::int AS n FROM assistant`;
    expect(after!.n).toBe(before!.n);
  });

  it("another user's assistant is not found, for every route; its versions do not leak", async () => {
    const tag = randomUUID();
    const a = await alice.ok("POST", "/assistants", { graph_id: "counter", metadata: { tag } });
    const id = a.assistant_id as string;
    await alice.ok("PATCH", `/assistants/${id}`, { metadata: { v: 2 } });
    expect(await alice.ok<Json[]>("POST", `/assistants/${id}/versions`, {})).toHaveLength(2);
    for (const [method, path, body] of [
      ["GET", `/assistants/${id}`, undefined],
      ["PATCH", `/assistants/${id}`, { name: "mine now" }],
      ["DELETE", `/assistants/${id}`, undefined],
      ["GET", `/assistants/${id}/graph`, undefined],
      ["GET", `/assistants/${id}/schemas`, undefined],
      ["POST", `/assistants/${id}/versions`, {}],
      ["POST", `/assistants/${id}/latest`, { version: 1 }],
    ] as const) {
      await bob.fails(method, path, body, 404, /Assistant not found/);
    }
    expect(await alice.ok("GET", `/assistants/${id}`)).toMatchObject({ version: 2, metadata: { tag, v: 2, owner: "alice" } });
    // Search and count are filtered in SQL; system assistants (no owner) are hidden too.
    expect((await alice.ok<Json[]>("POST", "/assistants/search", { metadata: { tag } })).map((x) => x.assistant_id)).toEqual([id]);
    expect(await bob.ok<Json[]>("POST", "/assistants/search", { metadata: { tag } })).toEqual([]);
    expect(await bob.ok<Json[]>("POST", "/assistants/search", { graph_id: "counter" })).toEqual([]);
    expect(await alice.ok("POST", "/assistants/count", { metadata: { tag } })).toBe(1);
    expect(await bob.ok("POST", "/assistants/count", {})).toBe(0);
  });
});

describe("threads", () => {
  it("create stamps the owner; another user's thread is not found, for every route", async () => {
    const t = await alice.ok("POST", "/threads", { metadata: { topic: "x" } });
    expect(t.metadata).toEqual({ topic: "x", owner: "alice" });
    const id = t.thread_id as string;
    for (const [method, path, body] of [
      ["GET", `/threads/${id}`, undefined],
      ["PATCH", `/threads/${id}`, { metadata: { owner: "bob" } }],
      ["DELETE", `/threads/${id}`, undefined],
      ["GET", `/threads/${id}/state`, undefined],
      ["POST", `/threads/${id}/state`, { values: { user_id: "bob" } }],
      ["POST", `/threads/${id}/state/checkpoint`, { checkpoint: {} }],
      ["GET", `/threads/${id}/history`, undefined],
      ["POST", `/threads/${id}/history`, {}],
      ["POST", `/threads/${id}/copy`, undefined],
    ] as const) {
      await bob.fails(method, path, body, 404, /not found/);
    }
    expect(await bob.ok("POST", "/threads/prune", { thread_ids: [id] })).toEqual({ pruned_count: 0 });
    expect(await alice.ok("GET", `/threads/${id}`)).toMatchObject({ metadata: { topic: "x", owner: "alice" } });
  });

  it("creating over another user's thread id is a conflict (409), even with do_nothing", async () => {
    const t = await alice.ok("POST", "/threads", {});
    await bob.fails("POST", "/threads", { thread_id: t.thread_id, if_exists: "do_nothing" }, 409, /already exists/);
    await bob.fails("POST", "/threads", { thread_id: t.thread_id }, 409, /already exists/);
    expect(await alice.ok("POST", "/threads", { thread_id: t.thread_id, if_exists: "do_nothing" })).toEqual(t);
  });

  it("copy keeps the owner; search and count are filtered", async () => {
    const marker = randomUUID();
    const t = await alice.ok("POST", "/threads", { metadata: { marker } });
    const copy = await alice.ok("POST", `/threads/${t.thread_id}/copy`);
    expect(copy.metadata).toMatchObject({ marker, owner: "alice" });
    expect(await alice.ok("POST", "/threads/count", { metadata: { marker } })).toBe(2);
    expect(await bob.ok("POST", "/threads/count", { metadata: { marker } })).toBe(0);
    expect(await bob.ok<Json[]>("POST", "/threads/search", { metadata: { marker } })).toEqual([]);
  });

  it("$contains (with a list) and $eq filters select in SQL exactly what they select in memory", async () => {
    const marker = randomUUID();
    const make = (metadata: Json) => alice.ok("POST", "/threads", { metadata: { marker, ...metadata } });
    const abc = await make({ tags: ["a", "b", "c"] });
    await make({ tags: ["a"] });
    await make({ tags: "a,b" });
    const red = await make({ team: "red" });
    await make({ team: "blue" });
    await make({ team: ["red"] });
    const ids = (rows: Json[]) => rows.map((r) => r.thread_id);
    expect(ids(await as("carol-token").ok<Json[]>("POST", "/threads/search", { metadata: { marker } }))).toEqual([abc.thread_id]);
    expect(ids(await as("dave-token").ok<Json[]>("POST", "/threads/search", { metadata: { marker } }))).toEqual([red.thread_id]);
    expect(await as("carol-token").ok("POST", "/threads/count", { metadata: { marker } })).toBe(1);
  });

  it("hostile identities and filter keys neither fail nor leak (bound parameters)", async () => {
    const evil = as("evil-token");
    const mallory = as("mallory-token");
    const mine = await evil.ok("POST", "/threads", {});
    expect(mine.metadata).toEqual({ owner: "x' OR '1'='1" });
    expect((await evil.ok<Json[]>("POST", "/threads/search", { limit: 100 })).map((t) => t.thread_id)).toEqual([mine.thread_id]);
    expect(await evil.ok("POST", "/threads/count", {})).toBe(1);
    expect(await mallory.ok<Json[]>("POST", "/threads/search", {})).toEqual([]);
    expect(await mallory.ok("POST", "/threads/count", {})).toBe(0);
    await evil.fails("GET", `/threads/${(await alice.ok("POST", "/threads", {})).thread_id}`, undefined, 404);
    const [tables] = await stack.sql`SELECT count(*)::int AS n FROM thread`;
    expect(tables!.n).toBeGreaterThan(1);
  });
});

describe("runs", () => {
  it("the run's config carries the user (langgraph_auth_user*, user_id); a request cannot forge it", async () => {
    const t = await alice.ok("POST", "/threads", {});
    const values = await alice.ok("POST", `/threads/${t.thread_id}/runs/wait`, {
      assistant_id: "whoami",
      input: { user_id: null },
      config: { configurable: { langgraph_auth_user_id: "bob", langgraph_auth_permissions: ["admin"] } },
    });
    expect(values).toEqual({ user_id: "alice", display_name: "Alice", permissions: ["assistants:write"], configurable_user_id: "alice" });
    const [run] = await alice.ok<Json[]>("GET", `/threads/${t.thread_id}/runs`);
    expect(run!.metadata).toMatchObject({ owner: "alice" });
  });

  it("another user's thread: create, stream, wait, list, get, join, join stream, cancel, delete → 404", async () => {
    const t = await alice.ok("POST", "/threads", {});
    const tid = t.thread_id as string;
    const run = await alice.ok("POST", `/threads/${tid}/runs`, { assistant_id: "counter", input: { count: 1 }, after_seconds: 60 });
    const rid = run.run_id as string;
    const [before] = await stack.sql`SELECT count(*)::int AS n FROM run`;
    for (const [method, path, body] of [
      ["POST", `/threads/${tid}/runs`, { assistant_id: "counter" }],
      ["POST", `/threads/${tid}/runs/stream`, { assistant_id: "counter" }],
      ["POST", `/threads/${tid}/runs/wait`, { assistant_id: "counter" }],
      ["GET", `/threads/${tid}/runs`, undefined],
      ["GET", `/threads/${tid}/runs/${rid}`, undefined],
      ["GET", `/threads/${tid}/runs/${rid}/join`, undefined],
      ["GET", `/threads/${tid}/runs/${rid}/stream`, undefined],
      ["GET", `/runs/${rid}/join`, undefined],
      ["GET", `/runs/${rid}/stream`, undefined],
      ["POST", `/threads/${tid}/runs/${rid}/cancel`, undefined],
      ["DELETE", `/threads/${tid}/runs/${rid}`, undefined],
    ] as const) {
      await bob.fails(method, path, body, 404, /not found/i);
    }
    await bob.fails("POST", "/runs/cancel", { thread_id: tid, run_ids: [rid] }, 404, /No matching runs/);
    await bob.ok("POST", "/runs/cancel", { status: "all" }, 204);
    const [after] = await stack.sql`SELECT count(*)::int AS n FROM run`;
    expect(after!.n).toBe(before!.n);
    expect(await alice.ok("GET", `/threads/${tid}/runs/${rid}`)).toMatchObject({ status: "pending" });
    await alice.ok("POST", `/threads/${tid}/runs/${rid}/cancel`, undefined, 202);
  });

  it("a stateless run's kept thread is stamped with its creator", async () => {
    const run = await alice.ok("POST", "/runs", { assistant_id: "whoami", input: { user_id: null }, on_completion: "keep" });
    const values = await alice.ok("GET", `/runs/${run.run_id}/join`);
    expect(values).toMatchObject({ user_id: "alice" });
    expect(await alice.ok("GET", `/threads/${run.thread_id}`)).toMatchObject({ metadata: { owner: "alice" } });
    await bob.fails("GET", `/threads/${run.thread_id}`, undefined, 404);
  });
});

describe("store", () => {
  it("writes outside the user's namespaces → 403; reads and searches see only matching items", async () => {
    const ns = randomUUID();
    await alice.ok("PUT", "/store/items", { namespace: ["alice", ns], key: "k", value: { v: 1 } }, 204);
    await alice.fails("PUT", "/store/items", { namespace: ["bob", ns], key: "k", value: { v: 1 } }, 403, /Forbidden/);
    // A value cannot pose as another namespace: namespace and key win over value keys.
    await bob.ok("PUT", "/store/items", { namespace: ["bob", ns], key: "k", value: { namespace: ["alice"], v: 2 } }, 204);
    await bob.fails("PUT", "/store/items", { namespace: ["alice", ns], key: "k", value: { v: 3 } }, 403);
    await bob.fails("DELETE", "/store/items", { namespace: ["alice", ns], key: "k" }, 403);

    expect(await bob.ok("GET", `/store/items?namespace=alice.${ns}&key=k`)).toBeNull();
    expect(await alice.ok("GET", `/store/items?namespace=alice.${ns}&key=k`)).toMatchObject({ value: { v: 1 } });
    const search = async (who: ReturnType<typeof as>) =>
      (await who.ok<{ items: Json[] }>("POST", "/store/items/search", { namespace_prefix: [] , limit: 100 })).items
        .filter((i) => (i.namespace as string[]).includes(ns))
        .map((i) => (i.namespace as string[])[0]);
    expect(await search(alice)).toEqual(["alice"]);
    expect(await search(bob)).toEqual(["bob"]);
    expect((await bob.ok<{ items: Json[] }>("POST", "/store/items/search", { namespace_prefix: ["alice"] })).items).toEqual([]);
    const spaces = async (who: ReturnType<typeof as>) =>
      (await who.ok<{ namespaces: string[][] }>("POST", "/store/namespaces", { limit: 1000 })).namespaces.filter((n) => n.includes(ns));
    expect(await spaces(alice)).toEqual([["alice", ns]]);
    expect(await spaces(bob)).toEqual([["bob", ns]]);
    expect(await alice.ok("GET", `/store/items?namespace=alice.${ns}&key=k`)).toMatchObject({ value: { v: 1 } });
  });
});

describe("crons", () => {
  it("create stamps the owner and the user; another user's cron is not found; its fires run as its creator", async () => {
    const t = await alice.ok("POST", "/threads", {});
    const cron = await alice.ok("POST", `/threads/${t.thread_id}/runs/crons`, { assistant_id: "whoami", schedule: "0 0 1 1 *", input: { user_id: null } });
    expect(cron).toMatchObject({ user_id: "alice", metadata: { owner: "alice" } });
    const id = cron.cron_id as string;
    await bob.fails("GET", `/runs/crons/${id}`, undefined, 404, /not found/);
    await bob.fails("PATCH", `/runs/crons/${id}`, { enabled: false }, 404, /not found/);
    await bob.fails("DELETE", `/runs/crons/${id}`, undefined, 404, /not found/);
    await bob.fails("POST", `/threads/${t.thread_id}/runs/crons`, { assistant_id: "whoami", schedule: "0 0 1 1 *" }, 404, /not found/);
    expect(await bob.ok<Json[]>("POST", "/runs/crons/search", {})).toEqual([]);
    expect(await bob.ok("POST", "/runs/crons/count", {})).toBe(0);
    expect((await alice.ok<Json[]>("POST", "/runs/crons/search", {})).map((c) => c.cron_id)).toContain(id);

    // A fire, as the scheduler makes it: the run is created as the cron's creator.
    const claimed = await createCronsRepo(stack.sql).claimFire(id, Date.now(), (c) => nextRunDate(c));
    expect(claimed.cron).not.toBeNull();
    const c = claimed.cron!;
    const run = await createRunAuthorized({ ...stack.deps, auth }, c.auth_user as unknown as AuthContext, prepareRun(c.thread_id), cronRunBody(c));
    expect(await alice.ok("GET", `/threads/${t.thread_id}/runs/${run.run_id}/join`)).toMatchObject({ user_id: "alice" });
    expect(run.metadata).toMatchObject({ cron_id: id, owner: "alice" });
  });
});
