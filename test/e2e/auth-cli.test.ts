/**
 * The CLI wires auth, custom routes and crons from langgraph.json and the
 * environment: `openplane serve` with the custom-routes fixture (custom auth
 * + a Hono app) driven by the official SDK, a cron firing through the real
 * scheduler, and LANGGRAPH_AUTH_TYPE=api_key (whose keys never reach the logs).
 */
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, killAll, printLogsOnFailure, startCli } from "../helpers/cli.js";
import type { CliProcess } from "../helpers/cli.js";
import { createTestDatabase } from "../helpers/services.js";
import type { TestDatabase } from "../helpers/services.js";

const CUSTOM = join(REPO_ROOT, "test/fixtures/auth/custom-routes/langgraph.json");

const client = (url: string, headers: Record<string, string>) =>
  new Client({ apiUrl: url, apiKey: null, defaultHeaders: headers, callerOptions: { maxRetries: 0 } });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("openplane serve with custom auth, custom routes and crons", () => {
  let db: TestDatabase | undefined;
  let server: CliProcess | undefined;

  beforeAll(async () => {
    db = await createTestDatabase("e2e_auth_custom");
    server = await startCli({ command: "serve", config: CUSTOM, env: { POSTGRES_URI: db.uri, N_JOBS_PER_WORKER: "2" } });
  });
  afterAll(async () => {
    await killAll();
    await db?.drop();
  });
  printLogsOnFailure(() => [server]);

  it("authenticates built-in routes, serves custom ones, and wraps built-ins in the custom middleware", async () => {
    const url = server!.url;
    await expect(client(url, {}).threads.count()).rejects.toThrow(/401/);
    // The custom app takes over POST /threads/search, unauthenticated (enable_custom_route_auth is off).
    expect(await client(url, {}).threads.search()).toEqual([{ overridden: true }]);
    const info = await fetch(`${url}/info`);
    expect(info.status).toBe(200);
    expect(info.headers.get("x-custom-middleware")).toBe("yes");
    expect(await (await fetch(`${url}/custom/hello`)).json()).toMatchObject({ hello: "world" });
    expect((await fetch(`${url}/store/items/search`, { method: "POST", headers: { Authorization: "Bearer alice-token" }, body: "{}" })).status).toBe(404);

    const alice = client(url, { Authorization: "Bearer alice-token" });
    const thread = await alice.threads.create();
    expect(thread.metadata).toMatchObject({ owner: "alice" });
    await expect(client(url, { Authorization: "Bearer bob-token" }).threads.get(thread.thread_id)).rejects.toThrow(/404/);
  });

  it("a relative webhook reaches a custom route (unauthenticated by default)", async () => {
    const alice = client(server!.url, { Authorization: "Bearer alice-token" });
    const thread = await alice.threads.create();
    const run = await alice.runs.create(thread.thread_id, "counter", { input: { count: 1 }, webhook: "/custom/webhook" });
    let got: Array<{ run_id?: string; status?: string }> = [];
    for (let i = 0; i < 100 && !got.some((w) => w.run_id === run.run_id); i++) {
      await sleep(100);
      got = (await (await fetch(`${server!.url}/custom/webhook`)).json()) as typeof got;
    }
    expect(got.find((w) => w.run_id === run.run_id)).toMatchObject({ status: "success" });
  });

  it("a cron every second fires through the scheduler, as its creator, until it is deleted", async () => {
    const alice = client(server!.url, { Authorization: "Bearer alice-token" });
    const thread = await alice.threads.create();
    const cron = await alice.crons.createForThread(thread.thread_id, "counter", { schedule: "*/1 * * * * *", input: { count: 1 } });
    let runs = await alice.runs.list(thread.thread_id);
    for (let i = 0; i < 100 && runs.filter((r) => r.status === "success").length < 2; i++) {
      await sleep(100);
      runs = await alice.runs.list(thread.thread_id);
    }
    expect(runs.filter((r) => r.status === "success").length).toBeGreaterThanOrEqual(2);
    expect(runs[0]!.metadata).toMatchObject({ cron_id: cron.cron_id, owner: "alice" });
    await alice.crons.delete(cron.cron_id);
    await sleep(500);
    const count = (await alice.runs.list(thread.thread_id, { limit: 100 })).length;
    await sleep(2_000);
    expect((await alice.runs.list(thread.thread_id, { limit: 100 })).length).toBe(count);
  });
});

describe("openplane serve with LANGGRAPH_AUTH_TYPE=api_key", () => {
  const key = `op-e2e-${randomBytes(16).toString("hex")}`;
  let db: TestDatabase | undefined;
  let server: CliProcess | undefined;

  beforeAll(async () => {
    db = await createTestDatabase("e2e_auth_key");
    server = await startCli({
      command: "serve",
      config: join(REPO_ROOT, "test/fixtures/api-graphs/langgraph.json"),
      env: { POSTGRES_URI: db.uri, N_JOBS_PER_WORKER: "1", LANGGRAPH_AUTH_TYPE: "api_key", OPENPLANE_API_KEYS: key, LOG_LEVEL: "debug" },
    });
  });
  afterAll(async () => {
    await killAll();
    await db?.drop();
  });
  printLogsOnFailure(() => [server]);

  it("needs the key (x-api-key, as the SDK sends it), keeps /ok and /info open, and never logs the key", async () => {
    const url = server!.url;
    expect((await fetch(`${url}/ok`)).status).toBe(200);
    expect((await fetch(`${url}/info`)).status).toBe(200);
    await expect(client(url, {}).threads.search()).rejects.toThrow(/401/);
    await expect(client(url, { "x-api-key": "not-the-key-0123456789" }).threads.search()).rejects.toThrow(/401/);
    const sdk = new Client({ apiUrl: url, apiKey: key, callerOptions: { maxRetries: 0 } });
    const thread = await sdk.threads.create();
    expect(await sdk.runs.wait(thread.thread_id, "counter", { input: { count: 1 } })).toMatchObject({ count: 4 });
    expect((await fetch(`${url}/threads/search`, { method: "POST", headers: { Authorization: `Bearer ${key}` }, body: "{}" })).status).toBe(200);
    await server!.waitForLog("API key authentication on");
    expect(await server!.settledLogs()).not.toContain(key);
  });
});
