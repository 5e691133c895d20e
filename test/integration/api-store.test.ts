import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStoreRepo } from "../../src/storage/store.js";
import type { TestStack } from "../helpers/app.js";
import type { TestDatabase } from "../helpers/services.js";
import type { ApiClient, Json } from "./api-support.js";
import { apiStack } from "./api-support.js";

let db: TestDatabase;
let stack: TestStack;
let api: ApiClient;

beforeAll(async () => {
  ({ db, stack, api } = await apiStack("api_store", { worker: true }));
});
afterAll(async () => {
  await stack?.close();
  await db?.drop();
});

const rows = async () => stack.sql`SELECT prefix, key, value, updated_at, expires_at FROM store_item ORDER BY prefix, key`;
const put = async (namespace: string[], key: string, value: Json, extra: Json = {}) => {
  const res = await api.request("PUT", "/store/items", { namespace, key, value, ...extra });
  expect(res.status, await res.clone().text()).toBe(204);
};
const get = (namespace: string[], key: string, q = "") =>
  api.json<Json | null>("GET", `/store/items?namespace=${encodeURIComponent(namespace.join("."))}&key=${encodeURIComponent(key)}${q}`);
const search = (body: Json) => api.json<{ items: Json[] }>("POST", "/store/items/search", body).then((r) => r.items);

describe("items", () => {
  it("put, get, replace, delete; a missing item is null with 200", async () => {
    const ns = ["users", randomUUID(), "prefs"];
    await put(ns, "theme", { color: "dark" });
    const item = await get(ns, "theme");
    expect(item).toMatchObject({ namespace: ns, key: "theme", value: { color: "dark" } });
    expect(Date.parse(item!.created_at as string)).not.toBeNaN();
    await put(ns, "theme", { color: "light" });
    const replaced = await get(ns, "theme");
    expect(replaced).toMatchObject({ value: { color: "light" }, created_at: item!.created_at });
    const del = await api.request("DELETE", "/store/items", { namespace: ns, key: "theme" });
    expect(del.status).toBe(204);
    expect(await get(ns, "theme")).toBeNull();
    // Deleting again is fine.
    expect((await api.request("DELETE", "/store/items", { namespace: ns, key: "theme" })).status).toBe(204);
  });

  it("namespace labels must be non-empty and free of '.'; bad items → 422; nothing written", async () => {
    const before = await rows();
    await api.fails("PUT", "/store/items", { namespace: [], key: "k", value: {} }, 422, /namespace/);
    await api.fails("PUT", "/store/items", { namespace: ["a", ""], key: "k", value: {} }, 422, /namespace/);
    await api.fails("PUT", "/store/items", { namespace: ["a.b"], key: "k", value: {} }, 422, /'\.'/);
    await api.fails("PUT", "/store/items", { namespace: ["a"], key: "", value: {} }, 422, /key/);
    await api.fails("PUT", "/store/items", { namespace: ["a"], key: "k", value: "text" }, 422, /value/);
    await api.fails("PUT", "/store/items", { namespace: ["a"], key: "k", value: {}, ttl: -1 }, 422, /ttl/);
    await api.fails("GET", "/store/items?key=k", undefined, 422, /namespace/);
    await api.fails("GET", "/store/items?namespace=a..b&key=k", undefined, 422, /namespace/);
    await api.fails("GET", "/store/items?namespace=a", undefined, 422, /key/);
    await api.fails("DELETE", "/store/items", { namespace: ["a.b"], key: "k" }, 422, /namespace/);
    expect(await rows()).toEqual(before);
  });

  it("index is accepted (no vector index here)", async () => {
    const ns = ["idx", randomUUID()];
    await put(ns, "a", { text: "x" }, { index: false });
    await put(ns, "b", { text: "x" }, { index: ["text"] });
    await put(ns, "c", { text: "x" }, { index: null });
    expect((await search({ namespace_prefix: ns })).length).toBe(3);
  });
});

describe("TTL", () => {
  it("an expired item is gone at once; the sweeper deletes the row", async () => {
    const ns = ["ttl", randomUUID()];
    await put(ns, "short", { v: 1 }, { ttl: 1 });
    await put(ns, "forever", { v: 2 });
    await stack.sql`UPDATE store_item SET expires_at = now() - interval '1 second' WHERE prefix = ${ns.join(".")} AND key = 'short'`;
    expect(await get(ns, "short")).toBeNull();
    expect((await search({ namespace_prefix: ns })).map((i) => i.key)).toEqual(["forever"]);
    expect(await createStoreRepo(stack.sql).deleteExpired(100)).toBeGreaterThanOrEqual(1);
    expect((await stack.sql`SELECT key FROM store_item WHERE prefix = ${ns.join(".")}`).map((r) => r.key)).toEqual(["forever"]);
  });

  it("reads refresh the expiry unless refresh_ttl=false", async () => {
    const ns = ["ttl", randomUUID()];
    await put(ns, "k", { v: 1 }, { ttl: 10 });
    const expiry = async () => Date.parse((await stack.sql`SELECT expires_at FROM store_item WHERE prefix = ${ns.join(".")}`)[0]!.expires_at as string);
    await stack.sql`UPDATE store_item SET expires_at = now() + interval '1 minute' WHERE prefix = ${ns.join(".")}`;
    const low = await expiry();
    await get(ns, "k", "&refresh_ttl=false");
    await search({ namespace_prefix: ns, refresh_ttl: false });
    expect(await expiry()).toBe(low);
    await get(ns, "k");
    expect(await expiry()).toBeGreaterThan(Date.now() + 9 * 60_000);
    await stack.sql`UPDATE store_item SET expires_at = now() + interval '1 minute' WHERE prefix = ${ns.join(".")}`;
    await search({ namespace_prefix: ns });
    expect(await expiry()).toBeGreaterThan(Date.now() + 9 * 60_000);
  });
});

describe("POST /store/items/search", () => {
  const root = randomUUID();
  beforeAll(async () => {
    await put([root, "a"], "1", { n: 1, kind: "x", tags: ["p"], nested: { deep: true } });
    await put([root, "a"], "2", { n: 2, kind: "y" });
    await put([root, "a", "sub"], "3", { n: 3, kind: "x" });
    await put([root, "b"], "4", { n: 4, kind: "x", name: "o'brien" });
    // A namespace whose first label only starts like `root`: must not match the prefix.
    await put([`${root}x`, "a"], "5", { n: 5, kind: "x" });
    await put(["pct%", "a"], "6", { n: 6 });
  });
  const keys = (items: Json[]) => items.map((i) => i.key).sort();

  it("matches whole labels of the namespace prefix", async () => {
    expect(keys(await search({ namespace_prefix: [root] }))).toEqual(["1", "2", "3", "4"]);
    expect(keys(await search({ namespace_prefix: [root, "a"] }))).toEqual(["1", "2", "3"]);
    expect(keys(await search({ namespace_prefix: [root, "a", "sub"] }))).toEqual(["3"]);
    expect(await search({ namespace_prefix: ["pct_"] })).toEqual([]);
    expect(keys(await search({ namespace_prefix: ["pct%"] }))).toEqual(["6"]);
  });

  it("filters by equality and by $eq/$ne/$gt/$gte/$lt/$lte on top-level value keys", async () => {
    const f = async (filter: Json) => keys(await search({ namespace_prefix: [root], filter }));
    expect(await f({ kind: "x" })).toEqual(["1", "3", "4"]);
    expect(await f({ kind: "x", n: 3 })).toEqual(["3"]);
    expect(await f({ tags: ["p"] })).toEqual(["1"]);
    expect(await f({ nested: { deep: true } })).toEqual(["1"]);
    expect(await f({ n: { $gt: 2 } })).toEqual(["3", "4"]);
    expect(await f({ n: { $gte: 2, $lt: 4 } })).toEqual(["2", "3"]);
    expect(await f({ n: { $lte: 1 } })).toEqual(["1"]);
    expect(await f({ kind: { $ne: "x" } })).toEqual(["2"]);
    expect(await f({ kind: { $eq: "y" } })).toEqual(["2"]);
    expect(await f({ missing: { $ne: 1 } })).toEqual(["1", "2", "3", "4"]);
    expect(await f({ name: "o'brien" })).toEqual(["4"]);
  });

  it("pages newest first", async () => {
    const all = await search({ namespace_prefix: [root], limit: 10 });
    expect(all.map((i) => i.key)).toEqual(["4", "3", "2", "1"]);
    expect((await search({ namespace_prefix: [root], limit: 2, offset: 1 })).map((i) => i.key)).toEqual(["3", "2"]);
  });

  it("injection attempts in filters → 422 or no rows, never a 500 or other rows", async () => {
    const before = await rows();
    for (const filter of [
      { "kind' OR '1'='1": "x" },
      { "kind') OR true --": "x" },
      { kind: "x' OR '1'='1" },
      { "value->>'kind'": "x" },
      { kind: { $eq: "x'); DELETE FROM store_item; --" } },
    ]) {
      expect(await search({ namespace_prefix: [root], filter })).toEqual([]);
    }
    await api.fails("POST", "/store/items/search", { filter: { n: { $where: "1=1" } } }, 422, /filter\.n\.\$where/);
    await api.fails("POST", "/store/items/search", { filter: { n: { $gt: 1, lt: 2 } } }, 422, /filter\.n/);
    await api.fails("POST", "/store/items/search", { filter: { $or: [] } }, 422, /filter/);
    await api.fails("POST", "/store/items/search", { filter: { "": 1 } }, 422, /filter/);
    await api.fails("POST", "/store/items/search", { namespace_prefix: ["a' OR 1=1 --."] }, 422, /namespace/);
    await api.fails("POST", "/store/items/search", { limit: 0 }, 422, /limit/);
    expect(await rows()).toEqual(before);
  });

  it("a semantic query → 422 explaining that no index is configured", async () => {
    await api.fails("POST", "/store/items/search", { namespace_prefix: [root], query: "dark mode" }, 422, /store\.index/);
  });
});

describe("POST /store/namespaces", () => {
  const root = randomUUID();
  beforeAll(async () => {
    await put([root, "users", "u1", "prefs"], "k", {});
    await put([root, "users", "u2", "prefs"], "k", {});
    await put([root, "users", "u2", "memories"], "k", {});
    await put([root, "docs"], "k", {});
  });
  const list = (body: Json) => api.json<{ namespaces: string[][] }>("POST", "/store/namespaces", body).then((r) => r.namespaces);

  it("lists by prefix, suffix (with * wildcards) and max_depth, with limit/offset", async () => {
    expect(await list({ prefix: [root] })).toEqual([
      [root, "docs"],
      [root, "users", "u1", "prefs"],
      [root, "users", "u2", "memories"],
      [root, "users", "u2", "prefs"],
    ]);
    expect(await list({ prefix: [root], suffix: ["prefs"] })).toEqual([
      [root, "users", "u1", "prefs"],
      [root, "users", "u2", "prefs"],
    ]);
    expect(await list({ prefix: [root, "users", "*", "memories"] })).toEqual([[root, "users", "u2", "memories"]]);
    expect(await list({ prefix: [root], suffix: ["*", "prefs"] })).toEqual([
      [root, "users", "u1", "prefs"],
      [root, "users", "u2", "prefs"],
    ]);
    expect(await list({ prefix: [root], max_depth: 2 })).toEqual([
      [root, "docs"],
      [root, "users"],
    ]);
    expect(await list({ prefix: [root], limit: 1, offset: 1 })).toEqual([[root, "users", "u1", "prefs"]]);
    expect(await list({ prefix: [root, "nope"] })).toEqual([]);
    expect((await list({})).length).toBeGreaterThanOrEqual(4);
  });

  it("bad bodies → 422", async () => {
    await api.fails("POST", "/store/namespaces", { max_depth: 0 }, 422, /max_depth/);
    await api.fails("POST", "/store/namespaces", { prefix: ["a.b"] }, 422, /prefix/);
    await api.fails("POST", "/store/namespaces", { suffix: [""] }, 422, /suffix/);
    await api.fails("POST", "/store/namespaces", { limit: 5000 }, 422, /limit/);
  });
});

describe("the store inside graphs", () => {
  it("graph nodes read and write the same store through config.store", async () => {
    const user = randomUUID();
    const visit = () => api.json("POST", "/runs/wait", { assistant_id: "memory", input: { user } });
    expect(await visit()).toMatchObject({ result: { visits: 1 } });
    const second = await visit();
    expect(second).toMatchObject({ result: { visits: 2 } });
    expect((second.result as { busy: string[] }).busy).toContain(`memories/${user}`);
    expect(await get(["memories", user], "visits")).toMatchObject({ value: { count: 2 } });
    await put(["memories", user], "visits", { count: 41 });
    expect(await visit()).toMatchObject({ result: { visits: 42 } });
  });
});
