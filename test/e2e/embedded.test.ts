/**
 * Promise 1 of the foundation: with no POSTGRES_URI / REDIS_URI at all,
 * `openplane up` starts an embedded PostgreSQL under OPENPLANE_DATA_DIR and
 * serves ./langgraph.json to the official SDK; after SIGTERM and a restart on
 * the same data dir, threads, runs and checkpoints are still there.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SERVER_NODE_FLAGS } from "../../src/lib/node-flags.js";
import { commandLine, listenerStatus } from "../support/control-plane/harness.js";
import { REPO_ROOT, killAll, printLogsOnFailure, runCli, startCli } from "../helpers/cli.js";
import type { CliProcess } from "../helpers/cli.js";
import {
  AGENT_ASSISTANT_ID,
  collect,
  expectAgentStream,
  expectStrictlyIncreasingIds,
  lastMessageText,
  messageTypes,
  parseSse,
  sdk,
  streamedText,
  userInput,
} from "./support.js";

const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version;
const CONFIG = join(REPO_ROOT, "langgraph.json");

describe("openplane up with the embedded PostgreSQL (no POSTGRES_URI, no REDIS_URI)", () => {
  let dataDir: string;
  let server: CliProcess | undefined;
  let client: Client;
  // Recorded by the first tests, checked again after the restart.
  let kept: { threadId: string; runId: string; values: unknown } | undefined;

  const start = async () => {
    // childEnv() (in the helper) removes POSTGRES_URI*, DATABASE_URI and REDIS_URI* from the child.
    // No NODE_OPTIONS of the test runner's: the Node flags test below looks for ours on argv.
    server = await startCli({ command: "up", config: CONFIG, env: { OPENPLANE_DATA_DIR: dataDir, NODE_OPTIONS: undefined } });
    client = sdk(server.url);
  };

  beforeAll(async () => {
    // A fresh mkdtemp dir is 0700: openplane must cope with that as root too.
    dataDir = await mkdtemp(join(tmpdir(), "openplane-e2e-embedded-"));
    await start();
  });

  afterAll(async () => {
    await killAll();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  printLogsOnFailure(() => [server]);

  it("runs on the embedded PostgreSQL and the PostgreSQL queue, and answers GET /ok and /info", async () => {
    await server!.waitForLog(/postgres\W+embedded/);
    await server!.waitForLog(/redis\W+none/);

    const ok = await fetch(`${server!.url}/ok`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ ok: true });

    const info = await fetch(`${server!.url}/info`);
    expect(info.status).toBe(200);
    const body = (await info.json()) as { version: string; flags: Record<string, unknown> };
    expect(body.version).toBe(VERSION);
    expect(body.flags.assistants).toBe(true);
  });

  it.runIf(process.platform === "linux")("starts its server with the Node flags of src/lib/node-flags.ts", async () => {
    const pids = (await listenerStatus(server!.url)).workloads.map((w) => w.pid);
    expect(pids).toHaveLength(1);
    const argv = (await commandLine(pids[0]!)).split(" ");
    expect(argv).toContain("serve");
    // Node's own flags come before the script.
    const script = argv.findIndex((a) => a.endsWith("openplane.mjs"));
    expect(script).toBeGreaterThan(0);
    expect(argv.slice(1, script)).toEqual([...SERVER_NODE_FLAGS]);
  });

  it("has a system assistant per graph, found by id and by graph id", async () => {
    const assistants = await client.assistants.search({ limit: 100 });
    const system = assistants.filter((a) => a.metadata?.created_by === "system");
    expect(system.map((a) => a.graph_id).sort()).toEqual(["agent", "counter"]);

    const agent = system.find((a) => a.graph_id === "agent")!;
    expect(agent.assistant_id).toBe(AGENT_ASSISTANT_ID);
    expect(agent.metadata).toMatchObject({ created_by: "system" });

    const byId = await client.assistants.get(AGENT_ASSISTANT_ID);
    const byGraph = await client.assistants.get("agent");
    expect(byId.assistant_id).toBe(AGENT_ASSISTANT_ID);
    expect(byGraph).toEqual(byId);

    const filtered = await client.assistants.search({ graphId: "counter" });
    expect(filtered.map((a) => a.graph_id)).toEqual(["counter"]);
  });

  it("creates, gets, searches and deletes threads (get after delete is 404)", async () => {
    const tag = `e2e-${Date.now()}`;
    const thread = await client.threads.create({ metadata: { tag } });
    expect(thread.thread_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(thread.status).toBe("idle");

    const got = await client.threads.get(thread.thread_id);
    expect(got.thread_id).toBe(thread.thread_id);
    expect(got.metadata).toMatchObject({ tag });

    const found = await client.threads.search({ metadata: { tag } });
    expect(found.map((t) => t.thread_id)).toEqual([thread.thread_id]);

    const state = await client.threads.getState(thread.thread_id);
    expect(state.values).toEqual({});
    expect(state.next).toEqual([]);

    await client.threads.delete(thread.thread_id);
    await expect(client.threads.get(thread.thread_id)).rejects.toMatchObject({ status: 404 });
    expect(await client.threads.search({ metadata: { tag } })).toEqual([]);
  });

  it("runs in the background: create (onRunCreated), join, get → success, then getState", async () => {
    const thread = await client.threads.create();
    const created: Array<{ run_id: string; thread_id?: string }> = [];
    const run = await client.runs.create(thread.thread_id, "agent", {
      input: userInput("background"),
      onRunCreated: (m) => created.push(m),
    });
    expect(run.thread_id).toBe(thread.thread_id);
    expect(run.assistant_id).toBe(AGENT_ASSISTANT_ID);
    expect(["pending", "running", "success"]).toContain(run.status);
    expect(created).toEqual([{ run_id: run.run_id, thread_id: thread.thread_id }]);

    const joined = await client.runs.join(thread.thread_id, run.run_id);
    expect(lastMessageText(joined)).toBe("You said: background");

    const after = await client.runs.get(thread.thread_id, run.run_id);
    expect(after.status).toBe("success");

    const state = await client.threads.getState(thread.thread_id);
    expect(messageTypes(state.values)).toEqual(["human", "ai"]);
    expect(lastMessageText(state.values)).toBe("You said: background");
    expect(state.next).toEqual([]);
    expect(state.checkpoint?.checkpoint_id).toEqual(expect.any(String));

    kept = { threadId: thread.thread_id, runId: run.run_id, values: state.values };
  });

  it("runs.wait returns the final values (and reports the run through onRunCreated)", async () => {
    const thread = await client.threads.create();
    const created: Array<{ run_id: string; thread_id?: string }> = [];
    const values = await client.runs.wait(thread.thread_id, "agent", {
      input: userInput("wait for it"),
      onRunCreated: (m) => created.push(m),
    });
    expect(lastMessageText(values)).toBe("You said: wait for it");
    expect(created).toHaveLength(1);
    expect(created[0]!.thread_id).toBe(thread.thread_id);
    const run = await client.runs.get(thread.thread_id, created[0]!.run_id);
    expect(run.status).toBe("success");
  });

  it("runs.stream with values, updates and messages-tuple: metadata first, token chunks, final reply", async () => {
    const thread = await client.threads.create();
    const created: Array<{ run_id: string; thread_id?: string }> = [];
    const chunks = await collect(
      client.runs.stream(thread.thread_id, "agent", {
        input: userInput("stream me"),
        streamMode: ["values", "updates", "messages-tuple"],
        onRunCreated: (m) => created.push(m),
      }),
    );
    const runId = expectAgentStream(chunks, "You said: stream me");
    expect(created).toEqual([{ run_id: runId, thread_id: thread.thread_id }]);

    const events = new Set(chunks.map((c) => c.event));
    expect(events).toEqual(new Set(["metadata", "values", "updates", "messages"]));

    // messages-tuple: [message chunk, metadata] pairs that spell the reply.
    const messageEvents = chunks.filter((c) => c.event === "messages");
    expect(messageEvents.length).toBeGreaterThan(1);
    for (const m of messageEvents) {
      expect(Array.isArray(m.data)).toBe(true);
      expect((m.data as unknown[]).length).toBe(2);
    }
    expect(streamedText(chunks)).toBe("You said: stream me");

    const updates = chunks.filter((c) => c.event === "updates").map((c) => c.data as Record<string, unknown>);
    expect(updates.some((u) => "agent" in u)).toBe(true);

    expect((await client.runs.get(thread.thread_id, runId)).status).toBe("success");
  });

  it("runs stateless: runs.wait and runs.stream with a null thread", async () => {
    const values = await client.runs.wait(null, "agent", { input: userInput("no thread") });
    expect(lastMessageText(values)).toBe("You said: no thread");

    const created: Array<{ run_id: string; thread_id?: string }> = [];
    const chunks = await collect(
      client.runs.stream(null, "agent", {
        input: userInput("no thread stream"),
        streamMode: ["values", "messages-tuple"],
        onRunCreated: (m) => created.push(m),
      }),
    );
    const runId = expectAgentStream(chunks, "You said: no thread stream");
    expect(created).toEqual([{ run_id: runId, thread_id: undefined }]);
    expect(streamedText(chunks)).toBe("You said: no thread stream");
  });

  it("frames SSE as the official server does: id, event and data on every event, metadata first, ids increasing", async () => {
    const thread = await client.threads.create();
    const res = await fetch(`${server!.url}/threads/${thread.thread_id}/runs/stream`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        assistant_id: "agent",
        input: userInput("raw sse"),
        stream_mode: ["values", "updates", "messages-tuple"],
      }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const location = res.headers.get("content-location");
    expect(location).toMatch(new RegExp(`^/threads/${thread.thread_id}/runs/[0-9a-f-]{36}$`));

    const events = parseSse(await res.text());
    expect(events.length).toBeGreaterThan(3);
    expect(events[0]!.event).toBe("metadata");
    const runId = (events[0]!.data as { run_id: string }).run_id;
    expect(location).toBe(`/threads/${thread.thread_id}/runs/${runId}`);
    expectStrictlyIncreasingIds(events);
    expect(new Set(events.map((e) => e.event))).toEqual(new Set(["metadata", "values", "updates", "messages"]));
    expect(lastMessageText(events.filter((e) => e.event === "values").at(-1)!.data)).toBe("You said: raw sse");
  });

  it("refuses a second `openplane up` on the same data dir and leaves the running one's database alone", async () => {
    const second = await runCli(["up", "--config", CONFIG, "--port", "0"], { env: { OPENPLANE_DATA_DIR: dataDir } });
    expect(second.code).toBe(1);
    expect(second.stdout + second.stderr).toMatch(/in use by another openplane \(pid \d+\)/);

    const ok = await fetch(`${server!.url}/ok?check_db=1`);
    expect(ok.status, await ok.text()).toBe(200);
    const values = await client.runs.wait(null, "agent", { input: userInput("still here") });
    expect(lastMessageText(values)).toBe("You said: still here");
  });

  it("keeps threads, runs and checkpoints across SIGTERM and a restart on the same data dir", async () => {
    expect(kept, "the background-run test must have run first").toBeDefined();
    const { threadId, runId, values } = kept!;

    const exit = await server!.stop();
    expect(exit.code, server!.logs()).toBe(0);
    expect(exit.leftovers, "the embedded PostgreSQL must be stopped with the server").toBe(false);

    await start();
    expect(server!.logs()).not.toMatch(/initialising embedded PostgreSQL/);

    const thread = await client.threads.get(threadId);
    expect(thread.thread_id).toBe(threadId);
    expect(thread.status).toBe("idle");
    expect((await client.runs.get(threadId, runId)).status).toBe("success");
    const state = await client.threads.getState(threadId);
    expect(state.values).toEqual(values);

    // The checkpoints are live, not just readable: a new run continues the conversation.
    const next = await client.runs.wait(threadId, "agent", { input: userInput("again") });
    expect(messageTypes(next)).toEqual(["human", "ai", "human", "ai"]);
    expect(lastMessageText(next)).toBe("You said: again");

    const assistants = await client.assistants.search({ limit: 100 });
    expect(assistants.filter((a) => a.assistant_id === AGENT_ASSISTANT_ID)).toHaveLength(1);

    const exit2 = await server!.stop();
    expect(exit2.code, server!.logs()).toBe(0);
  });
});
