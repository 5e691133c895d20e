/**
 * The HTTP paths that only run on a real @hono/node-server listener (app.request() in the
 * other HTTP tests bypasses them): the request body limit checked on the Node request,
 * CORS headers set after the handler, and the single-stream /wait and SSE bodies
 * (keep-alive bytes, headers, client disconnect → on_disconnect=cancel).
 */
import { request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import type { ServerType } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestStack } from "../helpers/app.js";
import type { TestStack } from "../helpers/app.js";
import { createTestDatabase } from "../helpers/services.js";
import type { TestDatabase } from "../helpers/services.js";

const REPO = join(import.meta.dirname, "../..");
const MAX_BODY = 4096;

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request with Node's client: exact control of Content-Length / chunked bodies. */
function raw(url: string, method: string, path: string, opts: { body?: string[]; headers?: Record<string, string> } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, { method, headers: { "Content-Type": "application/json", ...opts.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    for (const part of opts.body ?? []) req.write(part);
    req.end();
  });
}

describe("HTTP on a Node listener", () => {
  let db: TestDatabase;
  let stack: TestStack;
  let server: ServerType;
  let url: string;

  beforeAll(async () => {
    process.env.SLOW_GRAPH_SLEEP_MS ??= "1500";
    db = await createTestDatabase("http_node");
    stack = await createTestStack({
      postgresUri: db.uri,
      configPath: join(REPO, "test/fixtures/slow/langgraph.json"),
      maxBodyBytes: MAX_BODY,
      sseHeartbeatMs: 200,
    });
    server = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: stack.app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s));
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    (server as unknown as { closeAllConnections?: () => void })?.closeAllConnections?.();
    await new Promise((r) => server?.close(r));
    await stack?.close();
    await db?.drop();
  });

  const newThread = async () => JSON.parse((await raw(url, "POST", "/threads", { body: ["{}"] })).body) as { thread_id: string };

  it("rejects a body over the limit by its Content-Length, and a chunked one while reading it", async () => {
    const big = JSON.stringify({ metadata: { pad: "x".repeat(MAX_BODY) } });
    const byLength = await raw(url, "POST", "/threads", { body: [big] });
    expect(byLength.status).toBe(413);
    const chunked = await raw(url, "POST", "/threads", {
      body: [big.slice(0, 100), big.slice(100)],
      headers: { "Transfer-Encoding": "chunked" },
    });
    expect(chunked.status).toBe(413);
    const smallChunked = await raw(url, "POST", "/threads", { body: ['{"metadata":', '{"a":1}}'], headers: { "Transfer-Encoding": "chunked" } });
    expect(smallChunked.status).toBe(200);
    expect(JSON.parse(smallChunked.body)).toMatchObject({ metadata: { a: 1 } });
    const empty = await raw(url, "POST", "/threads", {});
    expect(empty.status).toBe(200);
  });

  it("sets the CORS headers on JSON, /wait and SSE responses", async () => {
    const thread = await newThread();
    const headers = { Origin: "https://studio.example" };
    const json = await raw(url, "GET", `/threads/${thread.thread_id}`, { headers });
    expect(json.status).toBe(200);
    expect(json.headers["access-control-allow-origin"]).toBe("*");
    expect(String(json.headers["access-control-expose-headers"])).toContain("Content-Location");
    const body = JSON.stringify({ assistant_id: "slow", input: {} });
    const wait = await raw(url, "POST", `/threads/${thread.thread_id}/runs/wait`, { body: [body], headers });
    expect(wait.status).toBe(200);
    expect(wait.headers["access-control-allow-origin"]).toBe("*");
    expect(wait.headers["content-type"]).toBe("application/json");
    expect(wait.headers["content-location"]).toMatch(new RegExp(`^/threads/${thread.thread_id}/runs/[0-9a-f-]{36}$`));
    // Keep-alive newlines every 200 ms while the run sleeps, then the final values.
    expect(wait.body.startsWith("\n")).toBe(true);
    expect(JSON.parse(wait.body)).toEqual({ steps: ["start", "slept"] });
    const sse = await raw(url, "POST", `/threads/${thread.thread_id}/runs/stream`, { body: [body], headers });
    expect(sse.status).toBe(200);
    expect(sse.headers["access-control-allow-origin"]).toBe("*");
    expect(sse.headers["content-type"]).toBe("text/event-stream");
    expect(sse.body).toContain(": heartbeat\n\n");
    expect(sse.body).toContain("event: metadata\n");
    expect(sse.body).toMatch(/event: values\ndata: \{"steps":\["start","slept","start","slept"\]\}\n\n$/);
  });

  const runStatus = async (threadId: string, runId: string) =>
    (JSON.parse((await raw(url, "GET", `/threads/${threadId}/runs/${runId}`)).body) as { status: string }).status;

  const waitForStatus = async (threadId: string, runId: string, wanted: string) => {
    let status = "";
    for (const until = Date.now() + 10_000; Date.now() < until; ) {
      status = await runStatus(threadId, runId);
      if (status === wanted) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    return status;
  };

  it("on_disconnect=cancel on /wait of a run queued behind another cancels it for good: it never starts", async () => {
    const thread = await newThread();
    const body = (extra: object) => JSON.stringify({ assistant_id: "slow", input: {}, ...extra });
    const first = JSON.parse((await raw(url, "POST", `/threads/${thread.thread_id}/runs`, { body: [body({})] })).body) as { run_id: string };
    const controller = new AbortController();
    const res = await fetch(`${url}/threads/${thread.thread_id}/runs/wait`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: body({ multitask_strategy: "enqueue", on_disconnect: "cancel" }),
      signal: controller.signal,
    });
    expect(res.status).toBe(200);
    const queued = res.headers.get("Content-Location")!.split("/").at(-1)!;
    expect(await runStatus(thread.thread_id, queued)).toBe("pending");
    controller.abort();
    expect(await waitForStatus(thread.thread_id, queued, "interrupted")).toBe("interrupted");
    expect(await waitForStatus(thread.thread_id, first.run_id, "success")).toBe("success");
    await new Promise((r) => setTimeout(r, 300));
    expect(await runStatus(thread.thread_id, queued)).toBe("interrupted");
  });

  it("on_disconnect=cancel on /wait interrupts the run when the client goes away", async () => {
    const thread = await newThread();
    const controller = new AbortController();
    const res = await fetch(`${url}/threads/${thread.thread_id}/runs/wait`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ assistant_id: "slow", input: {}, on_disconnect: "cancel" }),
      signal: controller.signal,
    });
    expect(res.status).toBe(200);
    const runId = res.headers.get("Content-Location")!.split("/").at(-1)!;
    await new Promise((r) => setTimeout(r, 300));
    controller.abort();
    let status = "";
    for (const until = Date.now() + 10_000; Date.now() < until; ) {
      status = (JSON.parse((await raw(url, "GET", `/threads/${thread.thread_id}/runs/${runId}`)).body) as { status: string }).status;
      if (status === "interrupted") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe("interrupted");
  });
});
