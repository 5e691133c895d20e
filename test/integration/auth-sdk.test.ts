/**
 * Custom auth through the official JS SDK against a real listening server:
 * each user is a `Client` with an Authorization header; runs stream, wait and
 * join as their creator; another user's resources answer 404 (403 for store
 * writes), and the SDK surfaces those statuses.
 */
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { serve } from "@hono/node-server";
import type { ServerType } from "@hono/node-server";
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCustomAuth } from "../../src/auth/load.js";
import { readLanggraphConfig } from "../../src/graphs/config-file.js";
import { createApp } from "../../src/http/app.js";
import { createTestStack } from "../helpers/app.js";
import type { TestStack } from "../helpers/app.js";
import { createTestDatabase } from "../helpers/services.js";
import type { TestDatabase } from "../helpers/services.js";

const AUTH_GRAPHS = "test/fixtures/auth/langgraph.json";

let db: TestDatabase;
let stack: TestStack;
let server: ServerType;
let url: string;

beforeAll(async () => {
  db = await createTestDatabase("auth_sdk");
  stack = await createTestStack({ postgresUri: db.uri, configPath: AUTH_GRAPHS, worker: true, workerConcurrency: 2 });
  const file = await readLanggraphConfig(AUTH_GRAPHS);
  const app = createApp({ ...stack.deps, auth: await loadCustomAuth(file.auth!.module!.file, file.auth!.module!.exportName) });
  server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s));
  });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  if (server) {
    (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
    await new Promise((r) => server.close(r));
  }
  await stack?.close();
  await db?.drop();
});

const client = (token?: string) =>
  new Client({
    apiUrl: url,
    apiKey: null,
    defaultHeaders: token ? { Authorization: `Bearer ${token}` } : {},
    callerOptions: { maxRetries: 0 },
  });

describe("the official SDK with custom auth", () => {
  it("runs stream, wait and join as their creator", async () => {
    const alice = client("alice-token");
    const thread = await alice.threads.create({ metadata: { via: "sdk" } });
    expect(thread.metadata).toEqual({ via: "sdk", owner: "alice" });
    const chunks = [];
    for await (const chunk of alice.runs.stream(thread.thread_id, "whoami", { input: { user_id: null }, streamMode: "values" })) chunks.push(chunk);
    expect(chunks[0]!.event).toBe("metadata");
    expect(chunks.at(-1)).toMatchObject({ event: "values", data: { user_id: "alice", display_name: "Alice" } });
    expect(await alice.runs.wait(thread.thread_id, "whoami", { input: { user_id: null } })).toMatchObject({ user_id: "alice" });
    const run = await alice.runs.create(thread.thread_id, "whoami", { input: { user_id: null } });
    expect(await alice.runs.join(thread.thread_id, run.run_id)).toMatchObject({ user_id: "alice" });
    expect((await alice.threads.search({ metadata: { via: "sdk" } })).map((t) => t.thread_id)).toEqual([thread.thread_id]);
  });

  it("another user gets 404 for the thread and its runs, 403 for foreign store writes; no credentials → 401", async () => {
    const alice = client("alice-token");
    const bob = client("bob-token");
    const thread = await alice.threads.create();
    const run = await alice.runs.create(thread.thread_id, "whoami", { input: { user_id: null } });
    await expect(bob.threads.get(thread.thread_id)).rejects.toThrow(/404/);
    await expect(bob.runs.wait(thread.thread_id, "whoami", { input: {} })).rejects.toThrow(/404/);
    await expect(bob.runs.get(thread.thread_id, run.run_id)).rejects.toThrow(/404/);
    await expect(bob.runs.join(thread.thread_id, run.run_id)).rejects.toThrow(/404/);
    await expect(bob.runs.list(thread.thread_id)).rejects.toThrow(/404/);
    await expect(bob.runs.cancel(thread.thread_id, run.run_id)).rejects.toThrow(/404/);
    await expect(async () => {
      for await (const _ of bob.runs.stream(thread.thread_id, "whoami", { input: {} })) {
        // never reached
      }
    }).rejects.toThrow(/404/);
    expect(await bob.threads.search()).toEqual([]);

    const ns = randomUUID();
    await alice.store.putItem(["alice", ns], "k", { v: 1 });
    await expect(bob.store.putItem(["alice", ns], "k", { v: 2 })).rejects.toThrow(/403/);
    expect(await bob.store.getItem(["alice", ns], "k")).toBeNull();
    expect((await alice.store.getItem(["alice", ns], "k"))?.value).toEqual({ v: 1 });

    await expect(client().threads.search()).rejects.toThrow(/401/);
    expect((await fetch(`${url}/info`)).status).toBe(200);
  });

  it("crons through the SDK: created as the user, hidden from others", async () => {
    const alice = client("alice-token");
    const thread = await alice.threads.create();
    const cron = await alice.crons.createForThread(thread.thread_id, "whoami", { schedule: "0 0 1 1 *", input: { user_id: null } });
    expect(cron).toMatchObject({ thread_id: thread.thread_id, user_id: "alice", metadata: { owner: "alice" } });
    expect((await alice.crons.search({ threadId: thread.thread_id })).map((c) => c.cron_id)).toEqual([cron.cron_id]);
    expect(await client("bob-token").crons.search({ threadId: thread.thread_id })).toEqual([]);
    expect(await alice.crons.count({ threadId: thread.thread_id })).toBe(1);
    await expect(client("bob-token").crons.delete(cron.cron_id)).rejects.toThrow(/404/);
    await alice.crons.delete(cron.cron_id);
  });
});
