/**
 * Promise 2 of the foundation: on the user's own PostgreSQL and Redis, an
 * API-only `openplane serve` (N_JOBS_PER_WORKER=0) and a separate
 * `openplane worker` process together serve the SDK's core path.
 */
import { join } from "node:path";
import type { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, killAll, printLogsOnFailure, startCli } from "../helpers/cli.js";
import type { CliProcess } from "../helpers/cli.js";
import { createTestDatabase, hasRedis, redisSkipReason, redisUri, uniquePrefix } from "../helpers/services.js";
import type { TestDatabase } from "../helpers/services.js";
import { collect, expectAgentStream, lastMessageText, messageTypes, sdk, streamedText, userInput } from "./support.js";

const CONFIG = join(REPO_ROOT, "langgraph.json");

const title = "openplane serve (API only) + openplane worker on external PostgreSQL and Redis";

describe.skipIf(!hasRedis())(hasRedis() ? title : `${title} (skipped: ${redisSkipReason() ?? "no Redis"})`, () => {
  let db: TestDatabase | undefined;
  let api: CliProcess | undefined;
  let worker: CliProcess | undefined;
  let client: Client;

  beforeAll(async () => {
    db = await createTestDatabase("e2e_external");
    const env = {
      POSTGRES_URI: db.uri,
      REDIS_URI: redisUri(),
      REDIS_KEY_PREFIX: `${uniquePrefix("e2e-external")}:`,
    };
    // Start the worker first: both migrate at start, serialised by the advisory lock.
    [worker, api] = await Promise.all([
      startCli({ command: "worker", config: CONFIG, env }),
      startCli({ command: "serve", config: CONFIG, env: { ...env, N_JOBS_PER_WORKER: "0" } }),
    ]);
    client = sdk(api.url);
  });

  afterAll(async () => {
    await killAll();
    await db?.drop();
  });

  printLogsOnFailure(() => [api, worker]);

  it("runs the API without a worker of its own, on external stores", async () => {
    await api!.waitForLog(/postgres\W+external/);
    await api!.waitForLog(/redis\W+external/);
    expect(api!.logs()).not.toMatch(/worker started/);
    expect(worker!.logs()).toMatch(/worker started/);
  });

  it("streams a thread run executed by the worker process", async () => {
    const thread = await client.threads.create();
    const chunks = await collect(
      client.runs.stream(thread.thread_id, "agent", {
        input: userInput("across processes"),
        streamMode: ["values", "updates", "messages-tuple"],
      }),
    );
    const runId = expectAgentStream(chunks, "You said: across processes");
    expect(streamedText(chunks)).toBe("You said: across processes");
    expect(chunks.some((c) => c.event === "updates")).toBe(true);
    expect((await client.runs.get(thread.thread_id, runId)).status).toBe("success");
    // The worker, not the API, executed it.
    await worker!.waitForLog(runId);
  });

  it("waits for a run", async () => {
    const thread = await client.threads.create();
    const values = await client.runs.wait(thread.thread_id, "agent", { input: userInput("wait") });
    expect(lastMessageText(values)).toBe("You said: wait");
  });

  it("creates a background run, joins it, and reads the run and the thread state", async () => {
    const thread = await client.threads.create();
    const run = await client.runs.create(thread.thread_id, "agent", { input: userInput("bg") });
    const joined = await client.runs.join(thread.thread_id, run.run_id);
    expect(lastMessageText(joined)).toBe("You said: bg");
    expect((await client.runs.get(thread.thread_id, run.run_id)).status).toBe("success");
    const state = await client.threads.getState(thread.thread_id);
    expect(messageTypes(state.values)).toEqual(["human", "ai"]);
  });

  it("runs stateless wait and stream", async () => {
    expect(lastMessageText(await client.runs.wait(null, "agent", { input: userInput("stateless") }))).toBe("You said: stateless");
    const chunks = await collect(client.runs.stream(null, "agent", { input: userInput("stateless stream"), streamMode: ["values"] }));
    expectAgentStream(chunks, "You said: stateless stream");
  });

  it("runs several runs concurrently across the two processes", async () => {
    const threads = await Promise.all(Array.from({ length: 4 }, () => client.threads.create()));
    const results = await Promise.all(
      threads.map((t, i) => client.runs.wait(t.thread_id, "agent", { input: userInput(`parallel ${i}`) })),
    );
    results.forEach((values, i) => expect(lastMessageText(values)).toBe(`You said: parallel ${i}`));
  });

  it("both processes stop cleanly on SIGTERM", async () => {
    const [a, w] = await Promise.all([api!.stop(), worker!.stop()]);
    expect(a.code, api!.logs()).toBe(0);
    expect(w.code, worker!.logs()).toBe(0);
  });
});
