/**
 * Run options and clients not covered elsewhere, through a real listening
 * server: RemoteGraph from @langchain/langgraph (invoke, stream, getState,
 * updateState, history), BG_JOB_TIMEOUT_SECS ending a run with status
 * `timeout`, and on_disconnect=cancel interrupting a run whose client left.
 */
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import type { ServerType } from "@hono/node-server";
import { RemoteGraph } from "@langchain/langgraph/remote";
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestStack } from "../helpers/app.js";
import type { TestStack } from "../helpers/app.js";
import { createTestDatabase } from "../helpers/services.js";
import type { TestDatabase } from "../helpers/services.js";

const REPO = join(import.meta.dirname, "../..");
const servers: ServerType[] = [];
const cleanups: Array<() => Promise<unknown>> = [];

async function listen(stack: TestStack): Promise<string> {
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: stack.app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s));
  });
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function stackOn(name: string, opts: Partial<Parameters<typeof createTestStack>[0]> = {}) {
  const db: TestDatabase = await createTestDatabase(name);
  const stack = await createTestStack({ postgresUri: db.uri, ...opts });
  cleanups.push(() => stack.close(), () => db.drop());
  return { stack, url: await listen(stack) };
}

const sdk = (apiUrl: string) => new Client({ apiUrl, apiKey: null, callerOptions: { maxRetries: 0 } });

async function waitForStatus(client: Client, threadId: string, runId: string, want: string, ms = 10_000) {
  const until = Date.now() + ms;
  for (;;) {
    const run = await client.runs.get(threadId, runId);
    if (run.status === want || Date.now() > until) return run.status;
    await new Promise((r) => setTimeout(r, 100));
  }
}

afterAll(async () => {
  for (const s of servers) {
    (s as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
    await new Promise((r) => s.close(r));
  }
  for (const c of cleanups.reverse()) await c();
});

describe("RemoteGraph against openplane", () => {
  let url: string;
  let client: Client;
  beforeAll(async () => {
    ({ url } = await stackOn("runs_remote"));
    client = sdk(url);
  });

  it("invokes, streams, reads and updates state, and lists history", async () => {
    const remote = new RemoteGraph({ graphId: "agent", url });
    const thread = await client.threads.create();
    const config = { configurable: { thread_id: thread.thread_id } };

    const out = (await remote.invoke({ messages: [{ role: "user", content: "remote hello" }] }, config)) as {
      messages: Array<{ content: string }>;
    };
    expect(out.messages.at(-1)?.content).toBe("You said: remote hello");

    const chunks: unknown[] = [];
    for await (const chunk of await remote.stream({ messages: [{ role: "user", content: "again" }] }, { ...config, streamMode: "updates" })) {
      chunks.push(chunk);
    }
    expect(chunks).toEqual([expect.objectContaining({ agent: expect.anything() })]);

    const state = await remote.getState(config);
    expect((state.values as { messages: unknown[] }).messages).toHaveLength(4);
    expect(state.next).toEqual([]);

    const updated = await remote.updateState(config, { messages: [{ role: "user", content: "patched" }] }, "agent");
    expect(updated.configurable?.checkpoint_id).toBeTruthy();
    const after = await remote.getState(config);
    expect((after.values as { messages: Array<{ content: string }> }).messages.at(-1)?.content).toBe("patched");

    const history = [];
    for await (const s of remote.getStateHistory(config, { limit: 3 })) history.push(s);
    expect(history).toHaveLength(3);
    expect(history[0]!.config?.configurable?.checkpoint_id).toBe(after.config?.configurable?.checkpoint_id);
  });
});

describe("command: goto and update", () => {
  it("applies the update and jumps to the node", async () => {
    const { url } = await stackOn("runs_command");
    const client = sdk(url);
    const thread = await client.threads.create();
    const seeded = await client.runs.wait(thread.thread_id, "counter", { input: {} });
    expect(seeded).toMatchObject({ count: 3, steps: ["one", "two", "three"] });
    const out = await client.runs.wait(thread.thread_id, "counter", {
      command: { update: { count: 10, steps: ["update"] }, goto: "three" },
    });
    // counter adds: 3 + 10 (update) + 1 (node three); steps append.
    expect(out).toMatchObject({ count: 14, steps: ["one", "two", "three", "update", "three"] });
  });
});

describe("run timeout and client disconnect", () => {
  let client: Client;
  beforeAll(async () => {
    const { url } = await stackOn("runs_timeout", {
      configPath: join(REPO, "test/fixtures/slow/langgraph.json"),
      runTimeoutSecs: 1,
    });
    client = sdk(url);
  });

  it("a run longer than BG_JOB_TIMEOUT_SECS ends with status timeout and an error event", async () => {
    const thread = await client.threads.create();
    const events: Array<{ event: string; data: unknown }> = [];
    for await (const ev of client.runs.stream(thread.thread_id, "slow", { input: {} })) events.push(ev as never);
    const meta = events[0]!.data as { run_id: string };
    expect(events.at(-1)).toMatchObject({ event: "error", data: { error: "TimeoutError" } });
    expect(await waitForStatus(client, thread.thread_id, meta.run_id, "timeout")).toBe("timeout");
    expect((await client.threads.get(thread.thread_id)).status).toBe("error");
  });

  it("on_disconnect=cancel interrupts the run when the streaming client goes away", async () => {
    const thread = await client.threads.create();
    const controller = new AbortController();
    let runId = "";
    try {
      for await (const ev of client.runs.stream(thread.thread_id, "slow", {
        input: {},
        onDisconnect: "cancel",
        signal: controller.signal,
      })) {
        if (ev.event === "metadata") runId = (ev.data as { run_id: string }).run_id;
        controller.abort();
      }
    } catch {
      // the aborted fetch rejects: that is the disconnect
    }
    expect(runId).not.toBe("");
    expect(await waitForStatus(client, thread.thread_id, runId, "interrupted")).toBe("interrupted");
  });

  it("on_disconnect=continue (the default) lets the run finish", async () => {
    const thread = await client.threads.create();
    const controller = new AbortController();
    let runId = "";
    try {
      for await (const ev of client.runs.stream(thread.thread_id, "slow", { input: {}, signal: controller.signal })) {
        if (ev.event === "metadata") runId = (ev.data as { run_id: string }).run_id;
        controller.abort();
      }
    } catch {
      // disconnect
    }
    // The fixture's run is longer than the 1 s timeout of this stack: it ends by timeout, not by the disconnect.
    expect(await waitForStatus(client, thread.thread_id, runId, "timeout")).toBe("timeout");
  });
});
