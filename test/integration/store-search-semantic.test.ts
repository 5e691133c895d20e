/**
 * Semantic search in the store (langgraph.json `store.index`): items are
 * embedded on PUT by the fixture's deterministic bag-of-words embedder and
 * ranked by cosine similarity on `POST /store/items/search` with `query`.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigFileError, readLanggraphConfig } from "../../src/graphs/config-file.js";
import { loadStoreIndex, StoreIndexError } from "../../src/graphs/embeddings.js";
import type { StoreIndex } from "../../src/graphs/embeddings.js";
import { createApp } from "../../src/http/app.js";
import { createGraphStore } from "../../src/storage/graph-store.js";
import { createStoreRepo } from "../../src/storage/store.js";
import { textsToIndex } from "../../src/storage/store-vectors.js";
import type { TestStack } from "../helpers/app.js";
import { createTestStack } from "../helpers/app.js";
import { createTestDatabase } from "../helpers/services.js";
import type { TestDatabase } from "../helpers/services.js";
import type { ApiClient, Json } from "./api-support.js";
import { apiClient } from "./api-support.js";

const FIXTURES = "test/fixtures/store-index";
const CONFIG = `${FIXTURES}/langgraph.json`;

let db: TestDatabase;
let stack: TestStack;
let api: ApiClient;
let index: StoreIndex;

beforeAll(async () => {
  db = await createTestDatabase("store_search_semantic");
  stack = await createTestStack({ postgresUri: db.uri, configPath: CONFIG, worker: false });
  const file = await readLanggraphConfig(CONFIG);
  index = await loadStoreIndex(file.store!.index!);
  // The same wiring as src/bin: the store repository carries the loaded index.
  const app = createApp({ ...stack.deps, store: createStoreRepo(stack.sql, { index }) });
  api = apiClient({ app });
});
afterAll(async () => {
  await stack?.close();
  await db?.drop();
});

const put = async (namespace: string[], key: string, value: Json, extra: Json = {}) => {
  const res = await api.request("PUT", "/store/items", { namespace, key, value, ...extra });
  expect(res.status, await res.clone().text()).toBe(204);
};
const search = (body: Json) => api.json<{ items: Json[] }>("POST", "/store/items/search", body).then((r) => r.items);
const vectors = (ns: string[]) =>
  stack.sql<{ key: string; field: string; dims: number }[]>`
    SELECT key, field, cardinality(embedding) AS dims FROM store_vector WHERE prefix = ${ns.join(".")} ORDER BY key, field`;

describe("config", () => {
  it("parses store.index (fields default to $) and loads both embedder forms", async () => {
    const file = await readLanggraphConfig(CONFIG);
    expect(file.store?.index).toMatchObject({ dims: 16, fields: ["text"], embed: { kind: "module", exportName: "embed" } });
    const obj = await readLanggraphConfig(`${FIXTURES}/langgraph.embeddings-object.json`);
    expect(obj.store?.index?.fields).toEqual(["$"]);
    const loaded = await loadStoreIndex(obj.store!.index!);
    expect((await loaded.embedder.embedQuery("cats")).length).toBe(16);
    expect((await loaded.embedder.embedDocuments(["a", "b"])).length).toBe(2);
  });

  it("dims mismatch is a clear startup error", async () => {
    const file = await readLanggraphConfig(`${FIXTURES}/langgraph.wrong-dims.json`);
    const err = await loadStoreIndex(file.store!.index!).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreIndexError);
    expect((err as Error).message).toMatch(/store\.index\.dims is 16 but .*embedEight returns vectors of 8 dimensions/);
  });

  it("openai: needs OPENAI_API_KEY (checked at startup, no network call)", async () => {
    const file = await readLanggraphConfig(`${FIXTURES}/langgraph.openai.json`);
    expect(file.store?.index?.embed).toEqual({ kind: "openai", model: "text-embedding-3-small" });
    await expect(loadStoreIndex(file.store!.index!, {})).rejects.toThrow(/OPENAI_API_KEY is not set/);
    const ok = await loadStoreIndex(file.store!.index!, { OPENAI_API_KEY: "sk-test" });
    expect(ok).toMatchObject({ dims: 1536, source: "openai:text-embedding-3-small" });
  });

  it("a bad export or a bad store.index is rejected with its path", async () => {
    const file = await readLanggraphConfig(CONFIG);
    const ref = file.store!.index!;
    const bad = { ...ref, embed: { ...(ref.embed as Extract<typeof ref.embed, { kind: "module" }>), exportName: "notAnEmbedder", spec: "./embed.ts:notAnEmbedder" } };
    await expect(loadStoreIndex(bad)).rejects.toThrow(/must be a function .* or an object with embedDocuments/);
    await expect(loadStoreIndex({ ...bad, embed: { ...bad.embed, exportName: "missing" } })).rejects.toThrow(/no export named "missing"/);

    const { mkdtemp, writeFile } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const dir = await mkdtemp(`${tmpdir()}/op-store-index-`);
    const write = (store: unknown) => writeFile(`${dir}/langgraph.json`, JSON.stringify({ graphs: { g: "./g.ts:g" }, store }));
    await write({ index: { dims: 0, embed: "./e.ts:e" } });
    await expect(readLanggraphConfig(`${dir}/langgraph.json`)).rejects.toThrow(ConfigFileError);
    await expect(readLanggraphConfig(`${dir}/langgraph.json`)).rejects.toThrow(/store\.index\.dims/);
    await write({ index: { dims: 4 } });
    await expect(readLanggraphConfig(`${dir}/langgraph.json`)).rejects.toThrow(/store\.index\.embed/);
    await write({ ttl: { default_ttl: 5 } });
    expect((await readLanggraphConfig(`${dir}/langgraph.json`)).store).toEqual({ index: null });
  });
});

describe("field paths", () => {
  it("$, keys, indexes and wildcards", () => {
    const v = { text: "hello", meta: { title: "t" }, tags: ["a", "b"], n: 3 };
    expect(textsToIndex(v, ["$"])).toEqual([{ field: "$", text: JSON.stringify(v) }]);
    expect(textsToIndex(v, ["text", "meta.title", "n", "missing.x"])).toEqual([
      { field: "text", text: "hello" },
      { field: "meta.title", text: "t" },
      { field: "n", text: "3" },
    ]);
    expect(textsToIndex(v, ["tags[*]", "tags[-1]"])).toEqual([
      { field: "tags[0]", text: "a" },
      { field: "tags[1]", text: "b" },
    ]);
  });
});

describe("POST /store/items/search with query", () => {
  it("ranks the relevant item first, with a score", async () => {
    const ns = ["sem", randomUUID()];
    await put(ns, "cats", { text: "cats purr and chase mice" });
    await put(ns, "rockets", { text: "rockets launch satellites into orbit" });
    await put(ns, "soup", { text: "tomato soup recipe with basil" });
    const items = await search({ namespace_prefix: ns, query: "rockets orbit" });
    expect(items.map((i) => i.key)).toContain("rockets");
    expect(items[0]).toMatchObject({ key: "rockets", namespace: ns, value: { text: "rockets launch satellites into orbit" } });
    expect(typeof items[0]!.score).toBe("number");
    expect(items[0]!.score as number).toBeGreaterThan(items[1]!.score as number);
    expect(items[0]!.score as number).toBeLessThanOrEqual(1 + 1e-9);
    const cats = await search({ namespace_prefix: ns, query: "cats chase mice" });
    expect(cats[0]!.key).toBe("cats");
    // Without a query: listed newest first, no score.
    const listed = await search({ namespace_prefix: ns });
    expect(listed.map((i) => i.key)).toEqual(["soup", "rockets", "cats"]);
    expect(listed[0]).not.toHaveProperty("score");
  });

  it("limit and offset page through the ranking", async () => {
    const ns = ["sem", randomUUID()];
    await put(ns, "a", { text: "apple banana cherry" });
    await put(ns, "b", { text: "apple banana" });
    await put(ns, "c", { text: "zebra" });
    const all = await search({ namespace_prefix: ns, query: "apple banana cherry", limit: 10 });
    expect(all.length).toBe(3);
    expect(all[0]!.key).toBe("a");
    const page = await search({ namespace_prefix: ns, query: "apple banana cherry", limit: 1, offset: 1 });
    expect(page.map((i) => i.key)).toEqual([all[1]!.key]);
  });

  it("index: false items are not returned for a query, but are listed; a field list overrides store.index.fields", async () => {
    const ns = ["sem", randomUUID()];
    await put(ns, "hidden", { text: "rockets orbit" }, { index: false });
    await put(ns, "titled", { text: "nothing relevant", title: "rockets orbit" }, { index: ["title"] });
    await put(ns, "plain", { text: "rockets orbit moon" });
    expect((await vectors(ns)).map((v) => [v.key, v.field, v.dims])).toEqual([
      ["plain", "text", 16],
      ["titled", "title", 16],
    ]);
    const found = await search({ namespace_prefix: ns, query: "rockets orbit" });
    expect(found.map((i) => i.key).sort()).toEqual(["plain", "titled"]);
    expect(found[0]!.key).toBe("titled"); // its title is exactly the query
    expect((await search({ namespace_prefix: ns })).map((i) => i.key).sort()).toEqual(["hidden", "plain", "titled"]);

    // Re-putting with index: false drops the vectors; re-putting indexed brings them back.
    await put(ns, "plain", { text: "rockets orbit moon" }, { index: false });
    expect((await search({ namespace_prefix: ns, query: "rockets orbit" })).map((i) => i.key)).toEqual(["titled"]);
    await put(ns, "plain", { text: "rockets orbit moon" });
    expect((await search({ namespace_prefix: ns, query: "rockets orbit" })).map((i) => i.key).sort()).toEqual(["plain", "titled"]);
  });

  it("an item without the indexed field has no vector and is not returned for a query", async () => {
    const ns = ["sem", randomUUID()];
    await put(ns, "nofield", { body: "rockets orbit" });
    expect(await vectors(ns)).toEqual([]);
    expect(await search({ namespace_prefix: ns, query: "rockets" })).toEqual([]);
  });

  it("namespace prefix and filters combine with the query", async () => {
    const root = randomUUID();
    await put(["sem2", root, "u1"], "r1", { text: "rockets orbit", kind: "space", rank: 1 });
    await put(["sem2", root, "u1"], "r2", { text: "rockets orbit moon", kind: "space", rank: 5 });
    await put(["sem2", root, "u1"], "s1", { text: "rockets orbit", kind: "food", rank: 9 });
    await put(["sem2", root, "u2"], "r3", { text: "rockets orbit", kind: "space", rank: 1 });
    await put(["sem2", `${root}x`], "r4", { text: "rockets orbit", kind: "space", rank: 1 });

    const u1 = await search({ namespace_prefix: ["sem2", root, "u1"], query: "rockets orbit" });
    expect(u1.map((i) => i.key).sort()).toEqual(["r1", "r2", "s1"]);
    const root_ = await search({ namespace_prefix: ["sem2", root], query: "rockets orbit" });
    expect(root_.map((i) => i.key).sort()).toEqual(["r1", "r2", "r3", "s1"]); // not r4: prefix is label-wise
    const space = await search({ namespace_prefix: ["sem2", root], query: "rockets orbit", filter: { kind: "space" } });
    expect(space.map((i) => i.key).sort()).toEqual(["r1", "r2", "r3"]);
    const ranked = await search({ namespace_prefix: ["sem2", root], query: "rockets orbit", filter: { kind: "space", rank: { $gte: 2 } } });
    expect(ranked.map((i) => i.key)).toEqual(["r2"]);
  });

  it("deleting an item removes its vectors; expired items are not returned", async () => {
    const ns = ["sem", randomUUID()];
    await put(ns, "gone", { text: "rockets orbit" });
    await put(ns, "short", { text: "rockets orbit" }, { ttl: 1 });
    expect((await vectors(ns)).map((v) => v.key)).toEqual(["gone", "short"]);
    expect((await api.request("DELETE", "/store/items", { namespace: ns, key: "gone" })).status).toBe(204);
    expect((await vectors(ns)).map((v) => v.key)).toEqual(["short"]);
    await stack.sql`UPDATE store_item SET expires_at = now() - interval '1 second' WHERE prefix = ${ns.join(".")} AND key = 'short'`;
    expect(await search({ namespace_prefix: ns, query: "rockets orbit" })).toEqual([]);
    await createStoreRepo(stack.sql).deleteExpired(1000);
    expect(await vectors(ns)).toEqual([]);
  });

  it("without store.index, query is still a clear 422", async () => {
    await stack.deps.store.put(["sem", "plain"], "k", { text: "x" }, null);
    const res = await stack.app.request("/store/items/search", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ namespace_prefix: ["sem"], query: "x" }),
    });
    expect(res.status).toBe(422);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/store\.index/);
  });

  it("ranks at most maxSemanticScan indexed items: the most recently updated", async () => {
    const bounded = createStoreRepo(stack.sql, { index, maxSemanticScan: 2 });
    const ns = ["sem", randomUUID()];
    await bounded.put(ns, "old-best", { text: "rockets orbit" }, null);
    await bounded.put(ns, "newer", { text: "tomato soup" }, null);
    await bounded.put(ns, "newest", { text: "rockets launch" }, null);
    const q = { namespacePrefix: ns, filter: [], limit: 10, offset: 0, refreshTtl: false, query: "rockets orbit" };
    expect((await bounded.search(q)).map((i) => i.key).sort()).toEqual(["newer", "newest"]);
    expect((await createStoreRepo(stack.sql, { index }).search(q))[0]!.key).toBe("old-best");
  });

  it("an embedder failure on PUT is a clear error and writes nothing", async () => {
    const failing = createStoreRepo(stack.sql, {
      index: { ...index, source: "broken", embedder: { embedDocuments: () => Promise.reject(new Error("boom")), embedQuery: () => Promise.reject(new Error("boom")) } },
    });
    const ns = ["sem", randomUUID()];
    await expect(failing.put(ns, "k", { text: "x" }, null)).rejects.toThrow(/store index \(broken\): embedding the item failed: boom/);
    expect(await stack.deps.store.get(ns, "k", false)).toBeNull();
  });
});

describe("graphs (config.store)", () => {
  it("search with query ranks by similarity and carries score; put honours index", async () => {
    const store = createGraphStore(createStoreRepo(stack.sql, { index }));
    const ns = ["graph-sem", randomUUID()];
    await store.put(ns, "cats", { text: "cats purr and chase mice" });
    await store.put(ns, "rockets", { text: "rockets launch satellites into orbit" });
    await store.put(ns, "hidden", { text: "rockets launch satellites into orbit" }, false);
    const found = await store.search(ns, { query: "rockets orbit" });
    expect(found.map((i) => i.key)).toEqual(["rockets", "cats"]);
    expect(typeof found[0]!.score).toBe("number");
    // The batch form LangGraph's AsyncBatchedStore uses.
    const [batch] = (await store.batch([{ namespacePrefix: ns, query: "cats mice", limit: 1 }])) as Array<Array<{ key: string }>>;
    expect(batch!.map((i) => i.key)).toEqual(["cats"]);
    // Without an index, a query is refused.
    await expect(createGraphStore(createStoreRepo(stack.sql)).search(ns, { query: "x" })).rejects.toThrow(/store\.index/);
  });
});
