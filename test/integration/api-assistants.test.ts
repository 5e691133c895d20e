import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemAssistantId } from "../../src/domain/assistant.js";
import type { TestStack } from "../helpers/app.js";
import type { TestDatabase } from "../helpers/services.js";
import type { ApiClient, Json } from "./api-support.js";
import { apiStack } from "./api-support.js";

let db: TestDatabase;
let stack: TestStack;
let api: ApiClient;

beforeAll(async () => {
  ({ db, stack, api } = await apiStack("api_assistants"));
});
afterAll(async () => {
  await stack?.close();
  await db?.drop();
});

/** Every assistant row and version row, to prove a rejected request changed nothing. */
const snapshot = async () => ({
  assistants: await stack.sql`SELECT * FROM assistant ORDER BY assistant_id`,
  versions: await stack.sql`SELECT * FROM assistant_version ORDER BY assistant_id, version`,
});

const create = (body: Json) => api.json("POST", "/assistants", body);

describe("POST /assistants", () => {
  it("creates version 1 with the defaults", async () => {
    const a = await create({ graph_id: "counter" });
    expect(a).toMatchObject({ graph_id: "counter", name: "Untitled", description: null, version: 1, config: {}, context: {}, metadata: {} });
    expect(a.assistant_id).toMatch(/^[0-9a-f-]{36}$/);
    const versions = await api.json<Json[]>("POST", `/assistants/${a.assistant_id}/versions`, {});
    expect(versions).toHaveLength(1);
    expect(versions[0]).toMatchObject({ version: 1, graph_id: "counter", name: "Untitled" });
    expect(versions[0]).not.toHaveProperty("updated_at");
  });

  it("takes assistant_id, config, context, metadata, name, description", async () => {
    const id = randomUUID();
    const a = await create({
      assistant_id: id,
      graph_id: "agent",
      config: { tags: ["x"], configurable: { k: 1 } },
      context: { model: "m" },
      metadata: { team: "a" },
      name: "Mine",
      description: "desc",
    });
    expect(a).toMatchObject({ assistant_id: id, config: { tags: ["x"], configurable: { k: 1 } }, context: { model: "m" }, metadata: { team: "a" }, name: "Mine", description: "desc" });
    expect(await api.json("GET", `/assistants/${id}`)).toEqual(a);
  });

  it("an existing id → 409 (raise, the default) and nothing changes; do_nothing returns it unchanged", async () => {
    const id = randomUUID();
    const first = await create({ assistant_id: id, graph_id: "agent", name: "first" });
    const before = await snapshot();
    await api.fails("POST", "/assistants", { assistant_id: id, graph_id: "counter", name: "second" }, 409, /already exists/);
    await api.fails("POST", "/assistants", { assistant_id: id, graph_id: "counter", if_exists: "raise" }, 409);
    expect(await snapshot()).toEqual(before);
    const again = await create({ assistant_id: id, graph_id: "counter", name: "second", if_exists: "do_nothing" });
    expect(again).toEqual(first);
    expect(await snapshot()).toEqual(before);
  });

  it("a graph this deployment does not serve → 404; bad fields → 422 naming them; nothing written", async () => {
    const before = await snapshot();
    await api.fails("POST", "/assistants", { graph_id: "nope" }, 404, /Graph "nope" not found/);
    await api.fails("POST", "/assistants", {}, 422, /graph_id/);
    await api.fails("POST", "/assistants", { graph_id: "agent", assistant_id: "not-a-uuid" }, 422, /assistant_id/);
    await api.fails("POST", "/assistants", { graph_id: "agent", if_exists: "replace" }, 422, /if_exists/);
    await api.fails("POST", "/assistants", { graph_id: "agent", metadata: [1] }, 422, /metadata/);
    await api.fails("POST", "/assistants", { graph_id: "agent", config: { recursion_limit: -1 } }, 422, /config\.recursion_limit/);
    expect(await snapshot()).toEqual(before);
  });
});

describe("GET /assistants/{id}", () => {
  it("accepts a graph id (the system assistant)", async () => {
    const a = await api.json("GET", "/assistants/agent");
    expect(a).toMatchObject({ assistant_id: systemAssistantId("agent"), graph_id: "agent", name: "agent", metadata: { created_by: "system" } });
    expect(await api.json("GET", `/assistants/${systemAssistantId("agent")}`)).toEqual(a);
  });

  it("unknown UUID → 404; neither a UUID nor a graph id → 422", async () => {
    await api.fails("GET", `/assistants/${randomUUID()}`, undefined, 404, /Assistant not found/);
    await api.fails("GET", "/assistants/not-a-graph", undefined, 422, /assistant ID/);
  });
});

describe("PATCH /assistants/{id}", () => {
  it("every patch makes a new latest version: metadata merged, config and context replaced", async () => {
    const a = await create({ graph_id: "counter", config: { tags: ["a"] }, context: { c: 1 }, metadata: { keep: 1, over: "old" }, name: "n1" });
    const id = a.assistant_id as string;
    const p1 = await api.json("PATCH", `/assistants/${id}`, { metadata: { over: "new", added: true }, config: { recursion_limit: 5 }, context: { d: 2 } });
    expect(p1).toMatchObject({
      version: 2,
      metadata: { keep: 1, over: "new", added: true },
      config: { recursion_limit: 5 },
      context: { d: 2 },
      name: "n1",
      created_at: a.created_at,
    });
    expect(Date.parse(p1.updated_at as string)).toBeGreaterThanOrEqual(Date.parse(a.updated_at as string));
    const p2 = await api.json("PATCH", `/assistants/${id}`, {});
    expect(p2).toMatchObject({ version: 3, metadata: p1.metadata, config: p1.config, context: p1.context });
    const p3 = await api.json("PATCH", `/assistants/${id}`, { name: "n2", description: "d", graph_id: "agent" });
    expect(p3).toMatchObject({ version: 4, name: "n2", description: "d", graph_id: "agent" });
    const versions = await api.json<Json[]>("POST", `/assistants/${id}/versions`, {});
    expect(versions.map((v) => v.version)).toEqual([4, 3, 2, 1]);
    expect(versions[3]).toMatchObject({ metadata: { keep: 1, over: "old" }, config: { tags: ["a"] }, context: { c: 1 }, name: "n1" });
  });

  it("a graph id path patches the system assistant", async () => {
    const p = await api.json("PATCH", "/assistants/counter", { metadata: { patched: true } });
    expect(p).toMatchObject({ assistant_id: systemAssistantId("counter"), metadata: { created_by: "system", patched: true }, version: 2 });
  });

  it("unknown assistant → 404; unknown graph → 404; bad body → 422; nothing changes", async () => {
    const a = await create({ graph_id: "counter" });
    const before = await snapshot();
    await api.fails("PATCH", `/assistants/${randomUUID()}`, { name: "x" }, 404);
    await api.fails("PATCH", `/assistants/${a.assistant_id}`, { graph_id: "nope" }, 404, /nope/);
    await api.fails("PATCH", `/assistants/${a.assistant_id}`, { metadata: "x" }, 422, /metadata/);
    await api.fails("PATCH", `/assistants/${a.assistant_id}`, "{bad json", 422, /JSON/);
    expect(await snapshot()).toEqual(before);
  });
});

describe("versions and latest", () => {
  it("lists newest first with a metadata filter, limit and offset", async () => {
    const a = await create({ graph_id: "counter", metadata: { step: 0 } });
    const id = a.assistant_id as string;
    for (let i = 1; i <= 4; i++) await api.json("PATCH", `/assistants/${id}`, { metadata: { step: i, even: i % 2 === 0 } });
    const page = await api.json<Json[]>("POST", `/assistants/${id}/versions`, { limit: 2, offset: 1 });
    expect(page.map((v) => v.version)).toEqual([4, 3]);
    const even = await api.json<Json[]>("POST", `/assistants/${id}/versions`, { metadata: { even: true } });
    expect(even.map((v) => v.version)).toEqual([5, 3]);
    await api.fails("POST", `/assistants/${id}/versions`, { limit: 0 }, 422, /limit/);
    await api.fails("POST", `/assistants/${randomUUID()}/versions`, {}, 404);
  });

  it("setLatest copies that version back; the next patch is max+1", async () => {
    const a = await create({ graph_id: "counter", name: "v1", config: { tags: ["one"] } });
    const id = a.assistant_id as string;
    await api.json("PATCH", `/assistants/${id}`, { name: "v2", config: { tags: ["two"] } });
    const back = await api.json("POST", `/assistants/${id}/latest`, { version: 1 });
    expect(back).toMatchObject({ version: 1, name: "v1", config: { tags: ["one"] } });
    expect(await api.json("GET", `/assistants/${id}`)).toMatchObject({ version: 1, name: "v1" });
    const next = await api.json("PATCH", `/assistants/${id}`, { metadata: { x: 1 } });
    expect(next).toMatchObject({ version: 3, name: "v1", config: { tags: ["one"] } });
  });

  it("a missing version or assistant → 404, bad version → 422; nothing changes", async () => {
    const a = await create({ graph_id: "counter" });
    const before = await snapshot();
    await api.fails("POST", `/assistants/${a.assistant_id}/latest`, { version: 9 }, 404, /version 9/);
    await api.fails("POST", `/assistants/${randomUUID()}/latest`, { version: 1 }, 404, /Assistant not found/);
    await api.fails("POST", `/assistants/${a.assistant_id}/latest`, { version: "1" }, 422, /version/);
    await api.fails("POST", `/assistants/${a.assistant_id}/latest`, {}, 422, /version/);
    expect(await snapshot()).toEqual(before);
  });
});

describe("DELETE /assistants/{id}", () => {
  it("deletes the assistant and its versions; again → 404", async () => {
    const a = await create({ graph_id: "agent" });
    const id = a.assistant_id as string;
    await api.json("PATCH", `/assistants/${id}`, {});
    const res = await api.request("DELETE", `/assistants/${id}`);
    expect(res.status).toBe(204);
    await api.fails("GET", `/assistants/${id}`, undefined, 404);
    await api.fails("POST", `/assistants/${id}/versions`, {}, 404);
    expect((await stack.sql`SELECT 1 FROM assistant_version WHERE assistant_id = ${id}`).length).toBe(0);
    await api.fails("DELETE", `/assistants/${id}`, undefined, 404);
  });

  it("delete_threads=true also deletes its threads and their checkpoints, and only those", async () => {
    const a = await create({ graph_id: "counter" });
    const id = a.assistant_id as string;
    const mine = await api.json("POST", "/threads", {
      metadata: { graph_id: "counter", assistant_id: id },
      supersteps: [{ updates: [{ values: { count: 1 }, as_node: "one" }] }],
    });
    const other = await api.json("POST", "/threads", {
      metadata: { graph_id: "counter", assistant_id: randomUUID() },
      supersteps: [{ updates: [{ values: { count: 2 }, as_node: "one" }] }],
    });
    const checkpoints = async (t: Json) => (await stack.sql`SELECT 1 FROM checkpoints WHERE thread_id = ${t.thread_id as string}`).length;
    expect(await checkpoints(mine)).toBeGreaterThan(0);
    expect((await api.request("DELETE", `/assistants/${id}?delete_threads=true`)).status).toBe(204);
    await api.fails("GET", `/threads/${mine.thread_id}`, undefined, 404);
    expect(await checkpoints(mine)).toBe(0);
    expect(await api.json("GET", `/threads/${other.thread_id}`)).toMatchObject({ thread_id: other.thread_id });
    expect(await checkpoints(other)).toBeGreaterThan(0);
  });

  it("without delete_threads the threads stay", async () => {
    const a = await create({ graph_id: "counter" });
    const t = await api.json("POST", "/threads", { metadata: { assistant_id: a.assistant_id } });
    expect((await api.request("DELETE", `/assistants/${a.assistant_id}?delete_threads=false`)).status).toBe(204);
    await api.json("GET", `/threads/${t.thread_id}`);
    await api.fails("DELETE", `/assistants/${randomUUID()}?delete_threads=maybe`, undefined, 422, /delete_threads/);
  });
});

describe("search and count", () => {
  const tag = randomUUID();
  beforeAll(async () => {
    await create({ graph_id: "agent", name: "Alpha helper", metadata: { tag, kind: "x", n: 1 } });
    await create({ graph_id: "counter", name: "Beta 100% sure", metadata: { tag, kind: "y", n: 2 } });
    await create({ graph_id: "counter", name: "Gamma_helper", metadata: { tag, kind: "x", n: 3 } });
  });

  const search = (body: Json) => api.json<Json[]>("POST", "/assistants/search", { metadata: { tag }, ...body });

  it("filters by metadata containment, graph_id and case-insensitive name substring", async () => {
    expect((await search({})).length).toBe(3);
    expect((await search({ metadata: { tag, kind: "x" } })).map((a) => a.name).sort()).toEqual(["Alpha helper", "Gamma_helper"]);
    expect((await search({ graph_id: "counter" })).map((a) => a.name).sort()).toEqual(["Beta 100% sure", "Gamma_helper"]);
    expect((await search({ name: "HELPER" })).length).toBe(2);
    // LIKE wildcards in the name match literally.
    expect((await search({ name: "100%" })).map((a) => a.name)).toEqual(["Beta 100% sure"]);
    expect((await search({ name: "a_h" })).map((a) => a.name)).toEqual(["Gamma_helper"]);
    expect((await search({ name: "%" })).length).toBe(1);
  });

  it("sorts by any allowed field in either order (default created_at desc)", async () => {
    expect((await search({})).map((a) => a.name)).toEqual(["Gamma_helper", "Beta 100% sure", "Alpha helper"]);
    expect((await search({ sort_by: "name", sort_order: "asc" })).map((a) => a.name)).toEqual(["Alpha helper", "Beta 100% sure", "Gamma_helper"]);
    expect((await search({ sort_by: "graph_id", sort_order: "desc" })).map((a) => a.graph_id)).toEqual(["counter", "counter", "agent"]);
    for (const sort_by of ["assistant_id", "created_at", "updated_at"]) expect((await search({ sort_by })).length).toBe(3);
  });

  it("pages with X-Pagination-Total / X-Pagination-Next", async () => {
    const first = await api.request("POST", "/assistants/search", { metadata: { tag }, limit: 2, sort_by: "name", sort_order: "asc" });
    expect(first.headers.get("X-Pagination-Total")).toBe("3");
    expect(first.headers.get("X-Pagination-Next")).toBe("2");
    expect(((await first.json()) as Json[]).map((a) => a.name)).toEqual(["Alpha helper", "Beta 100% sure"]);
    const last = await api.request("POST", "/assistants/search", { metadata: { tag }, limit: 2, offset: 2, sort_by: "name", sort_order: "asc" });
    expect(last.headers.get("X-Pagination-Total")).toBe("3");
    expect(last.headers.get("X-Pagination-Next")).toBeNull();
    expect(((await last.json()) as Json[]).map((a) => a.name)).toEqual(["Gamma_helper"]);
  });

  it("select returns only the chosen fields", async () => {
    const rows = await search({ select: ["assistant_id", "name"] });
    expect(rows).toHaveLength(3);
    for (const r of rows) expect(Object.keys(r).sort()).toEqual(["assistant_id", "name"]);
  });

  it("count takes the same filters", async () => {
    expect(await api.json("POST", "/assistants/count", { metadata: { tag } })).toBe(3);
    expect(await api.json("POST", "/assistants/count", { metadata: { tag }, graph_id: "counter", name: "GAMMA" })).toBe(1);
    expect(await api.json("POST", "/assistants/count", { metadata: { tag: randomUUID() } })).toBe(0);
    await api.fails("POST", "/assistants/count", { metadata: 3 }, 422, /metadata/);
  });

  it("injection attempts: sort fields and select → 422, metadata and name → no rows, never a 500", async () => {
    await api.fails("POST", "/assistants/search", { sort_by: "name; DROP TABLE assistant" }, 422, /sort_by/);
    await api.fails("POST", "/assistants/search", { sort_by: "(SELECT 1)" }, 422, /sort_by/);
    await api.fails("POST", "/assistants/search", { sort_order: "asc; --" }, 422, /sort_order/);
    await api.fails("POST", "/assistants/search", { select: ["name", "pg_sleep(1)"] }, 422, /select/);
    await api.fails("POST", "/assistants/search", { limit: "1; DELETE FROM assistant" }, 422, /limit/);
    for (const metadata of [{ "tag' OR '1'='1": tag }, { tag: "x' OR 1=1 --" }, { "a\"b": { "$ne": 1 } }]) {
      expect(await api.json("POST", "/assistants/search", { metadata })).toEqual([]);
    }
    expect(await api.json("POST", "/assistants/search", { metadata: { tag }, name: "' OR 1=1 --" })).toEqual([]);
    expect(await api.json("POST", "/assistants/count", { graph_id: "agent' OR '1'='1" })).toBe(0);
    expect((await stack.sql`SELECT count(*)::int AS n FROM assistant`)[0]!.n).toBeGreaterThan(3);
  });

  it("bad limits → 422", async () => {
    await api.fails("POST", "/assistants/search", { limit: 1001 }, 422, /limit/);
    await api.fails("POST", "/assistants/search", { offset: -1 }, 422, /offset/);
  });
});

describe("graph, schemas, subgraphs", () => {
  it("GET /graph draws nodes and edges; xray expands subgraphs (true = all levels, n = n levels)", async () => {
    const plain = await api.json<{ nodes: Json[]; edges: Json[] }>("GET", "/assistants/counter/graph");
    expect(plain.nodes.map((n) => n.id)).toEqual(["__start__", "one", "two", "three", "__end__"]);
    expect(plain.nodes.find((n) => n.id === "__start__")).toMatchObject({ type: "schema" });
    expect(plain.nodes.find((n) => n.id === "one")).toMatchObject({ type: "runnable", data: { name: "one" } });
    expect(plain.edges).toContainEqual({ source: "__start__", target: "one", conditional: false });

    const ids = async (q: string) => (await api.json<{ nodes: Json[] }>("GET", `/assistants/nested/graph${q}`)).nodes.map((n) => n.id);
    expect(await ids("")).toEqual(["__start__", "gp_one", "gp_two", "__end__"]);
    expect(await ids("?xray=false")).toEqual(["__start__", "gp_one", "gp_two", "__end__"]);
    expect(await ids("?xray=1")).toEqual(["__start__", "gp_one", "gp_two:p_one", "gp_two:p_two", "__end__"]);
    expect(await ids("?xray=true")).toEqual(["__start__", "gp_one", "gp_two:p_one", "gp_two:p_two:i_one", "gp_two:p_two:i_two", "__end__"]);
    expect(await ids("?xray=2")).toEqual(await ids("?xray=true"));
    await api.fails("GET", "/assistants/nested/graph?xray=maybe", undefined, 422, /xray/);
  });

  it("GET /graph works for a created assistant and 404s for an unknown one", async () => {
    const a = await create({ graph_id: "agent" });
    const g = await api.json<{ nodes: Json[] }>("GET", `/assistants/${a.assistant_id}/graph`);
    expect(g.nodes.map((n) => n.id)).toEqual(["__start__", "agent", "__end__"]);
    await api.fails("GET", `/assistants/${randomUUID()}/graph`, undefined, 404);
  });

  it("GET /schemas: zod states through LangGraph's helpers, with the context schema", async () => {
    const s = await api.json<Record<string, Json>>("GET", "/assistants/nested/schemas");
    expect(s.graph_id).toBe("nested");
    expect(s.state_schema).toMatchObject({ type: "object", properties: { topic: { type: "string", description: "What to count" }, count: { type: "number", default: 0 } } });
    expect(s.input_schema).toMatchObject({ type: "object", properties: { topic: { type: "string" } } });
    expect(s.output_schema).toMatchObject({ type: "object", properties: { count: { type: "number" } } });
    expect(s.context_schema).toMatchObject({ type: "object", properties: { model_name: { type: "string" } } });
    expect(s.config_schema).toEqual(s.context_schema);
  });

  it("GET /schemas: Annotation states are described channel by channel", async () => {
    const s = await api.json<Record<string, Json>>("GET", "/assistants/counter/schemas");
    expect(s.state_schema).toEqual({ type: "object", title: "State", properties: { count: { type: "number", default: 0 }, steps: { type: "array", default: [] } } });
    expect(s.input_schema).toMatchObject({ properties: { count: {}, steps: {} } });
    expect(s.context_schema).toBeNull();
    const agent = await api.json<Record<string, Json>>("GET", "/assistants/agent/schemas");
    expect(agent.state_schema).toMatchObject({ properties: { messages: { type: "array" } } });
  });

  it("GET /subgraphs: direct children, recurse joins namespaces with |, both key sets", async () => {
    const direct = await api.json<Record<string, Json>>("GET", "/assistants/nested/subgraphs");
    expect(Object.keys(direct)).toEqual(["gp_two"]);
    const all = await api.json<Record<string, Json>>("GET", "/assistants/nested/subgraphs?recurse=true");
    expect(Object.keys(all).sort()).toEqual(["gp_two", "gp_two|p_two"]);
    for (const v of Object.values(all)) {
      expect(v.state).toMatchObject({ properties: { topic: { type: "string" } } });
      expect(v.state_schema).toEqual(v.state);
      for (const k of ["input", "output", "config", "input_schema", "output_schema", "config_schema", "context_schema"]) expect(v).toHaveProperty(k);
    }
    const one = await api.json<Record<string, Json>>("GET", `/assistants/nested/subgraphs/${encodeURIComponent("gp_two|p_two")}?recurse=true`);
    expect(Object.keys(one)).toEqual(["gp_two|p_two"]);
    expect(await api.json("GET", "/assistants/counter/subgraphs")).toEqual({});
    await api.fails("GET", "/assistants/nested/subgraphs?recurse=sometimes", undefined, 422, /recurse/);
  });
});
