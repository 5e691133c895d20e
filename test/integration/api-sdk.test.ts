/**
 * The official JS SDK against a real listening server: proves the wire
 * format (bodies, status codes, headers) of the assistant, thread and store
 * routes is what `@langchain/langgraph-sdk` expects.
 */
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { serve } from "@hono/node-server";
import type { ServerType } from "@hono/node-server";
import { Client } from "@langchain/langgraph-sdk";
import type { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/http/app.js";
import type { TestStack } from "../helpers/app.js";
import type { TestDatabase } from "../helpers/services.js";
import { apiStack } from "./api-support.js";

let db: TestDatabase;
let stack: TestStack;
const servers: ServerType[] = [];

async function listen(app: Hono): Promise<string> {
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s));
  });
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const sdk = (apiUrl: string) => new Client({ apiUrl, apiKey: null, callerOptions: { maxRetries: 0 } });

let client: Client;

beforeAll(async () => {
  ({ db, stack } = await apiStack("api_sdk", { worker: true }));
  client = sdk(await listen(stack.app));
});
afterAll(async () => {
  for (const s of servers) {
    (s as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
    await new Promise((r) => s.close(r));
  }
  await stack?.close();
  await db?.drop();
});

describe("SDK: assistants", () => {
  it("create, get, update, versions, setLatest, search, count, delete", async () => {
    const tag = randomUUID();
    const a = await client.assistants.create({ graphId: "counter", name: "sdk", metadata: { tag }, config: { tags: ["t"] } });
    expect(a).toMatchObject({ graph_id: "counter", name: "sdk", version: 1, metadata: { tag } });
    expect(await client.assistants.get(a.assistant_id)).toEqual(a);
    const same = await client.assistants.create({ graphId: "counter", assistantId: a.assistant_id, ifExists: "do_nothing" });
    expect(same).toEqual(a);
    await expect(client.assistants.create({ graphId: "counter", assistantId: a.assistant_id })).rejects.toThrow(/409/);

    const u = await client.assistants.update(a.assistant_id, { metadata: { more: 1 }, name: "sdk2" });
    expect(u).toMatchObject({ version: 2, name: "sdk2", metadata: { tag, more: 1 } });
    const versions = await client.assistants.getVersions(a.assistant_id);
    expect(versions.map((v) => v.version)).toEqual([2, 1]);
    const latest = await client.assistants.setLatest(a.assistant_id, 1);
    expect(latest).toMatchObject({ version: 1, name: "sdk" });

    await client.assistants.create({ graphId: "agent", name: "sdk other", metadata: { tag } });
    const found = await client.assistants.search({ metadata: { tag }, limit: 1, sortBy: "name", sortOrder: "asc", includePagination: true });
    expect(found.assistants.map((x) => x.name)).toEqual(["sdk"]);
    expect(found.next).toBe("1");
    const picked = await client.assistants.search({ metadata: { tag }, select: ["assistant_id", "graph_id"] });
    expect(Object.keys(picked[0]!).sort()).toEqual(["assistant_id", "graph_id"]);
    expect(await client.assistants.count({ metadata: { tag } })).toBe(2);
    expect(await client.assistants.count({ metadata: { tag }, graphId: "agent" })).toBe(1);

    await client.assistants.delete(a.assistant_id);
    await expect(client.assistants.get(a.assistant_id)).rejects.toThrow(/404/);
  });

  it("getGraph, getSchemas, getSubgraphs", async () => {
    const graph = await client.assistants.getGraph("nested", { xray: true });
    expect(graph.nodes.map((n) => n.id)).toContain("gp_two:p_two:i_one");
    expect((await client.assistants.getGraph("nested")).nodes.map((n) => n.id)).toEqual(["__start__", "gp_one", "gp_two", "__end__"]);
    const schemas = await client.assistants.getSchemas("nested");
    expect(schemas.graph_id).toBe("nested");
    expect(schemas.state_schema).toMatchObject({ properties: { topic: { type: "string" } } });
    const subs = await client.assistants.getSubgraphs("nested", { recurse: true });
    expect(Object.keys(subs).sort()).toEqual(["gp_two", "gp_two|p_two"]);
    const one = await client.assistants.getSubgraphs("nested", { namespace: "gp_two" });
    expect(Object.keys(one)).toEqual(["gp_two"]);
  });
});

describe("SDK: threads", () => {
  it("create (graphId, ttl, supersteps), update, search, count, getHistory, copy, delete", async () => {
    const tag = randomUUID();
    const t = await client.threads.create({
      graphId: "counter",
      metadata: { tag },
      ttl: 60,
      supersteps: [{ updates: [{ values: { count: 5 }, asNode: "one" }] }],
    });
    expect(t).toMatchObject({ metadata: { tag, graph_id: "counter" }, values: { count: 5 } });
    const updated = await client.threads.update(t.thread_id, { metadata: { extra: true }, ttl: { ttl: 30, strategy: "delete" } });
    expect(updated.metadata).toMatchObject({ tag, extra: true });

    await client.runs.wait(t.thread_id, "counter", { input: { count: 1 } });
    const history = await client.threads.getHistory(t.thread_id, { limit: 100 });
    expect(history.length).toBeGreaterThan(2);
    expect(history[0]!.values).toMatchObject({ count: 9 });

    const copy = await client.threads.copy(t.thread_id);
    expect(copy.thread_id).not.toBe(t.thread_id);
    expect((await client.threads.getState(copy.thread_id)).values).toEqual((await client.threads.getState(t.thread_id)).values);
    expect((await client.threads.getHistory(copy.thread_id, { limit: 100 })).length).toBe(history.length);

    const found = await client.threads.search({ metadata: { tag }, select: ["thread_id"] });
    expect(found.map((x) => x.thread_id).sort()).toEqual([t.thread_id, copy.thread_id].sort());
    expect(await client.threads.count({ metadata: { tag } })).toBe(2);

    await client.threads.delete(copy.thread_id);
    await expect(client.threads.get(copy.thread_id)).rejects.toThrow(/404/);
  });
});

describe("SDK: store", () => {
  it("putItem, getItem, searchItems, listNamespaces, deleteItem", async () => {
    const root = randomUUID();
    await client.store.putItem([root, "prefs"], "theme", { color: "dark", size: 3 });
    await client.store.putItem([root, "prefs"], "lang", { code: "fr", size: 1 }, { ttl: 10 });
    const item = await client.store.getItem([root, "prefs"], "theme");
    expect(item).toMatchObject({ namespace: [root, "prefs"], key: "theme", value: { color: "dark" } });
    expect(item!.createdAt).toBe((item as unknown as { created_at: string }).created_at);
    expect(await client.store.getItem([root, "prefs"], "lang", { refreshTtl: false })).toMatchObject({ key: "lang" });
    const { items } = await client.store.searchItems([root], { filter: { size: { $gt: 2 } } });
    expect(items.map((i) => i.key)).toEqual(["theme"]);
    const { namespaces } = await client.store.listNamespaces({ prefix: [root] });
    expect(namespaces).toEqual([[root, "prefs"]]);
    await client.store.deleteItem([root, "prefs"], "theme");
    expect(await client.store.getItem([root, "prefs"], "theme")).toBeNull();
  });
});

describe("SDK under MOUNT_PREFIX", () => {
  it("runs, streams and reads through the prefixed base URL", async () => {
    const base = await listen(createApp({ ...stack.deps, http: { mountPrefix: "/lg" } }));
    const prefixed = sdk(`${base}/lg`);
    const t = await prefixed.threads.create();
    let created: string | undefined;
    const result = await prefixed.runs.wait(t.thread_id, "counter", { input: { count: 1 }, onRunCreated: ({ run_id }) => void (created = run_id) });
    expect(result).toMatchObject({ count: 4 });
    expect(created).toMatch(/^[0-9a-f-]{36}$/);
    const events: string[] = [];
    for await (const ev of prefixed.runs.stream(t.thread_id, "counter", { input: { count: 1 }, streamMode: "updates" })) events.push(ev.event);
    expect(events[0]).toBe("metadata");
    expect(events.filter((e) => e === "updates")).toHaveLength(3);
    expect((await prefixed.assistants.search({ graphId: "counter" })).length).toBeGreaterThan(0);
  });
});
