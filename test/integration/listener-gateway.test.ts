/**
 * The gateway against real local HTTP upstreams: SSE passes through
 * unbuffered, requests are held while a deployment has no server and
 * released when one is routed, a refused connection is retried against the
 * new route, waitIdle() tracks in-flight requests, and the status endpoint
 * answers loopback clients only.
 */
import { createServer } from "node:http";
import type { Server } from "node:http";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createGateway } from "../../src/gateway/proxy.js";
import type { Gateway } from "../../src/gateway/proxy.js";
import { createLogger } from "../../src/lib/logger.js";
import type { RouteSpec } from "../../src/listener/types.js";
import { freePort } from "../helpers/ports.js";

const servers: Server[] = [];
async function upstream(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const s = createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const addr = s.address();
  return `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
}

const route = (over: Partial<RouteSpec>): RouteSpec => ({
  deploymentId: "d1", name: "agent", hosts: [], root: false, revisionId: "r1", upstream: null, unavailable: null, ...over,
});

describe("gateway", () => {
  let gw: Gateway;
  let url: string;

  beforeAll(async () => {
    gw = createGateway({ logger: createLogger({ level: "silent", json: true }), holdMs: 3_000, status: () => ({ secret: false }) });
    const port = await gw.listen("127.0.0.1", 0);
    url = `http://127.0.0.1:${port}`;
  });
  afterEach(() => gw.removeRoute("d1"));
  afterAll(async () => {
    await gw.close(1_000);
    await Promise.all(servers.map((s) => new Promise((r) => { s.closeAllConnections(); s.close(r); })));
  });

  it("forwards /<name>/rest as /rest with the method, query, body and forwarding headers", async () => {
    let self = "";
    const up = await upstream((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        res.writeHead(201, { "content-type": "application/json", "content-location": "/threads/t1/runs/r1", location: `${self}/x` });
        res.end(JSON.stringify({ method: req.method, url: req.url, body, prefix: req.headers["x-forwarded-prefix"] }));
      });
    });
    self = up;
    gw.setRoute(route({ upstream: up }));
    const res = await fetch(`${url}/agent/threads/search?limit=2`, { method: "POST", body: '{"a":1}', headers: { "content-type": "application/json" } });
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ method: "POST", url: "/threads/search?limit=2", body: '{"a":1}', prefix: "/agent" });
    // Relative: unchanged (the SDKs append it to their base URL, which already ends in /agent).
    expect(res.headers.get("content-location")).toBe("/threads/t1/runs/r1");
    // Absolute URL of the upstream: made public under the prefix.
    expect(res.headers.get("location")).toBe("/agent/x");
  });

  it("streams SSE without buffering: the first event arrives while the stream is still open", async () => {
    let finish!: () => void;
    const finished = new Promise<void>((r) => (finish = r));
    const up = await upstream((_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("event: metadata\ndata: {}\n\n");
      void finished.then(() => res.end("event: end\ndata: null\n\n"));
    });
    gw.setRoute(route({ upstream: up }));
    const res = await fetch(`${url}/agent/runs/stream`);
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toBe("event: metadata\ndata: {}\n\n");
    finish();
    let rest = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    expect(rest).toBe("event: end\ndata: null\n\n");
  });

  it("holds requests while the deployment has no server, and sends them once one is routed", async () => {
    gw.setRoute(route({ upstream: null }));
    const pending = fetch(`${url}/agent/ok`);
    await new Promise((r) => setTimeout(r, 300));
    const up = await upstream((_req, res) => res.end("up"));
    gw.setRoute(route({ upstream: up }));
    const res = await pending;
    expect(await res.text()).toBe("up");
  });

  it("answers 503 with the reason when the deployment is unavailable, and 503 after the hold time", async () => {
    gw.setRoute(route({ unavailable: "revision r2 failed: boom" }));
    const res = await fetch(`${url}/agent/ok`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/revision r2 failed: boom/);
    gw.setRoute(route({ upstream: null }));
    const started = Date.now();
    const held = await fetch(`${url}/agent/ok`);
    expect(held.status).toBe(503);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_900);
  });

  it("a refused connection is retried against the route as it is now (a server that just went away)", async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    gw.setRoute(route({ upstream: dead }));
    const pending = fetch(`${url}/agent/runs/wait`, { method: "POST", body: "{}" });
    await new Promise((r) => setTimeout(r, 200));
    const up = await upstream((req, res) => res.end(`served ${req.method}`));
    gw.setRoute(route({ upstream: up }));
    expect(await (await pending).text()).toBe("served POST");
  });

  it("waitIdle resolves when the requests in flight to an upstream have finished", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const up = await upstream((_req, res) => void gate.then(() => res.end("done")));
    gw.setRoute(route({ upstream: up }));
    const inflight = fetch(`${url}/agent/slow`);
    await new Promise((r) => setTimeout(r, 200));
    let idle = false;
    const waiting = gw.waitIdle(up, 5_000).then(() => (idle = true));
    await new Promise((r) => setTimeout(r, 200));
    expect(idle).toBe(false);
    release();
    expect(await (await inflight).text()).toBe("done");
    await waiting;
    expect(idle).toBe(true);
  });

  it("answers /ok itself without a root deployment, and 404 for unknown deployments", async () => {
    expect(await (await fetch(`${url}/ok`)).json()).toEqual({ ok: true });
    const res = await fetch(`${url}/nope/threads`);
    expect(res.status).toBe(404);
  });

  it("serves /_openplane/status to loopback clients", async () => {
    expect(await (await fetch(`${url}/_openplane/status`)).json()).toEqual({ secret: false });
  });
});
