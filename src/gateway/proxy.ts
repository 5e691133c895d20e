/**
 * The gateway: one HTTP port in front of every managed server. It picks the
 * deployment (routes.ts), forwards the request with node:http, and pipes the
 * response back chunk by chunk, so SSE streams pass through unbuffered.
 *
 * During a revision change nothing fails: the route flips to the new server
 * before the old one drains; a request that finds no server yet (first start,
 * a restart, a change without Redis) is held until one is routed, up to
 * `holdMs`; a request whose connection was refused (or whose reused keep-alive
 * socket was closed under it) is sent again to whatever the route says now.
 */
import { Agent, createServer, request } from "node:http";
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { Logger } from "../lib/logger.js";
import type { RouteSpec } from "../listener/types.js";
import { publicLocation, resolveRoute } from "./routes.js";
import type { Resolved } from "./routes.js";

export interface GatewayOptions {
  logger: Logger;
  /** How long a request waits for a deployment that has no server yet. */
  holdMs: number;
  /** Body of GET /_openplane/status (answered to loopback clients only). */
  status: () => unknown;
}

export type GatewayState = "created" | "active" | "stopping" | "stopped";

/** Bodies up to this size are buffered so the request can be sent again after a refused connection. */
const REPLAYABLE_BYTES = 1024 * 1024;
const MAX_ATTEMPTS = 20;
const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer", "proxy-authorization"];

export function createGateway(opts: GatewayOptions) {
  const routes = new Map<string, RouteSpec>();
  const waiters = new Set<() => void>();
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
  /** Requests in flight per upstream, and who waits for one to become idle. */
  const inflight = new Map<string, number>();
  const idleWaiters = new Map<string, Set<() => void>>();
  const track = (upstream: string, delta: number) => {
    const n = (inflight.get(upstream) ?? 0) + delta;
    if (n > 0) return void inflight.set(upstream, n);
    inflight.delete(upstream);
    for (const w of idleWaiters.get(upstream) ?? []) w();
  };
  let state: GatewayState = "created";
  let closed: Promise<void> | null = null;
  let serverClosed: Promise<void> = Promise.resolve();

  const notify = () => {
    for (const w of [...waiters]) w();
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      opts.logger.warn({ err }, "gateway request failed");
      if (!res.headersSent) sendJson(res, 502, { detail: "Bad gateway" });
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? "/";
    if (url === "/_openplane/status" || url.startsWith("/_openplane/status?")) {
      if (!isLoopback(req.socket.remoteAddress)) return sendJson(res, 404, { detail: "Not Found" });
      return sendJson(res, 200, opts.status());
    }
    const first = resolveRoute([...routes.values()], req.headers.host, url);
    if (!first) {
      if (url === "/ok" || url.startsWith("/ok?")) return sendJson(res, 200, { ok: true });
      return sendJson(res, 404, { detail: `No deployment is served at ${url.split("?")[0]}` });
    }
    const body = await readReplayableBody(req);
    let resolved: Resolved | null = first;
    for (let attempt = 1; ; attempt++) {
      const upstream = await waitForUpstream(resolved, res);
      if (upstream === "closed") return;
      if (typeof upstream !== "string") return sendJson(res, 503, { detail: upstream.detail }, { "Retry-After": "5" });
      const outcome = await forward(req, res, resolved, upstream, body);
      if (outcome !== "retry") return;
      if (attempt >= MAX_ATTEMPTS) return sendJson(res, 502, { detail: `Deployment ${resolved.route.name} is not reachable` });
      await new Promise((r) => setTimeout(r, Math.min(1_000, 50 * attempt)));
      // Re-resolve by deployment: the route may now point at another server.
      const route = routes.get(resolved.route.deploymentId);
      if (!route) return sendJson(res, 404, { detail: `Deployment ${resolved.route.name} was removed` });
      resolved = { ...resolved, route };
    }
  }

  /** The upstream base URL, once the route has one; a 503 reason; or "closed" if the client left. */
  function waitForUpstream(r: Resolved, res: ServerResponse): Promise<string | { detail: string } | "closed"> {
    const check = (): string | { detail: string } | null => {
      const route = routes.get(r.route.deploymentId);
      if (!route) return { detail: `Deployment ${r.route.name} was removed` };
      if (route.upstream) return route.upstream;
      if (route.unavailable) return { detail: `Deployment ${route.name} is unavailable: ${route.unavailable}` };
      if (state !== "active") return { detail: "The gateway is shutting down" };
      return null;
    };
    const now = check();
    if (now !== null) return Promise.resolve(now);
    return new Promise((resolve) => {
      const done = (v: string | { detail: string } | "closed") => {
        clearTimeout(timer);
        waiters.delete(onChange);
        res.removeListener("close", onClose);
        resolve(v);
      };
      const onChange = () => {
        const v = check();
        if (v !== null) done(v);
      };
      const onClose = () => done("closed");
      const timer = setTimeout(() => done({ detail: `Deployment ${r.route.name} has no server ready yet; retry shortly` }), opts.holdMs);
      waiters.add(onChange);
      res.once("close", onClose);
    });
  }

  function forward(
    req: IncomingMessage,
    res: ServerResponse,
    r: Resolved,
    upstream: string,
    body: Buffer[] | null,
  ): Promise<"done" | "retry"> {
    const target = new URL(upstream);
    return new Promise((resolve) => {
      let responded = false;
      let settled = false;
      track(upstream, 1);
      const finish = (outcome: "done" | "retry") => {
        if (settled) return;
        settled = true;
        track(upstream, -1);
        resolve(outcome);
      };
      const up = request({
        hostname: target.hostname,
        port: target.port,
        method: req.method,
        path: r.path,
        headers: forwardHeaders(req, r.prefix),
        agent,
      });
      up.on("response", (upRes) => {
        responded = true;
        res.writeHead(upRes.statusCode ?? 502, responseHeaders(upRes.headers, upstream, r.prefix));
        // Headers now, not with the first chunk: an SSE client sees the stream open at once.
        res.flushHeaders();
        upRes.pipe(res);
        upRes.on("error", () => res.destroy());
        upRes.on("aborted", () => res.destroy());
        res.on("close", () => {
          if (!res.writableFinished) upRes.destroy();
          finish("done");
        });
      });
      up.on("error", (err: NodeJS.ErrnoException) => {
        if (responded) return res.destroy();
        if (res.destroyed) return finish("done");
        const idempotent = ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"].includes(req.method ?? "GET");
        // Refused: the request never reached a server. A reset on a reused keep-alive
        // socket: the server closed it before reading ours. Both are safe to send again.
        const safe = err.code === "ECONNREFUSED" || (err.code === "ECONNRESET" && (up.reusedSocket || idempotent));
        if (safe && body !== null) return finish("retry");
        opts.logger.warn({ error: err.message, deployment: r.route.name }, "gateway: upstream request failed");
        sendJson(res, 502, { detail: `Deployment ${r.route.name} did not answer` });
        finish("done");
      });
      res.on("close", () => {
        if (!responded) up.destroy();
      });
      if (body === null) req.pipe(up);
      else {
        for (const chunk of body) up.write(chunk);
        up.end();
      }
    });
  }

  return {
    get state(): GatewayState {
      return state;
    },
    setRoute(route: RouteSpec): void {
      routes.set(route.deploymentId, { ...route, hosts: [...route.hosts] });
      notify();
    },
    removeRoute(deploymentId: string): void {
      routes.delete(deploymentId);
      notify();
    },
    /** Resolves once no request is in flight to `upstream` (or after `timeoutMs`): the server can be drained quietly. */
    waitIdle(upstream: string, timeoutMs: number): Promise<void> {
      if (!inflight.has(upstream)) return Promise.resolve();
      return new Promise((resolve) => {
        const set = idleWaiters.get(upstream) ?? new Set<() => void>();
        idleWaiters.set(upstream, set);
        const done = () => {
          clearTimeout(timer);
          set.delete(done);
          if (set.size === 0) idleWaiters.delete(upstream);
          resolve();
        };
        const timer = setTimeout(done, timeoutMs);
        set.add(done);
      });
    },
    routes(): RouteSpec[] {
      return [...routes.values()].map((r) => ({ ...r, hosts: [...r.hosts] }));
    },
    listen(host: string, port: number): Promise<number> {
      return new Promise((resolve, reject) => {
        server.once("error", (err: NodeJS.ErrnoException) =>
          reject(err.code === "EADDRINUSE" ? new Error(`port ${port} on ${host} is already in use (choose another with --port)`) : err),
        );
        server.listen(port, host, () => {
          state = "active";
          const addr = server.address();
          resolve(typeof addr === "object" && addr ? addr.port : port);
        });
      });
    },
    /** Stops accepting connections; open requests and streams continue. Held requests get 503. */
    stopAccepting(): void {
      if (state === "stopping" || state === "stopped") return;
      state = "stopping";
      serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      notify();
    },
    /** Waits for open connections to end (idle keep-alive ones are closed), then cuts the rest at the deadline. */
    close(deadlineMs: number): Promise<void> {
      this.stopAccepting();
      closed ??= (async () => {
        // A keep-alive connection becomes idle when its last response ends: close it then.
        const sweep = setInterval(() => server.closeIdleConnections(), 100);
        server.closeIdleConnections();
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([serverClosed, new Promise((r) => (timer = setTimeout(r, deadlineMs)))]);
        clearTimeout(timer);
        clearInterval(sweep);
        server.closeAllConnections();
        agent.destroy();
        state = "stopped";
      })();
      return closed;
    },
  };
}

export type Gateway = ReturnType<typeof createGateway>;

/** Reads bodies up to REPLAYABLE_BYTES (declared by Content-Length) into memory; null = stream it (no retries). */
async function readReplayableBody(req: IncomingMessage): Promise<Buffer[] | null> {
  const length = Number(req.headers["content-length"] ?? (req.headers["transfer-encoding"] ? NaN : 0));
  if (!Number.isFinite(length) || length > REPLAYABLE_BYTES) return null;
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return chunks;
}

function forwardHeaders(req: IncomingMessage, prefix: string): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.includes(k)) headers[k] = v;
  const prior = req.headers["x-forwarded-for"];
  const addr = req.socket.remoteAddress ?? "";
  headers["x-forwarded-for"] = prior ? `${String(prior)}, ${addr}` : addr;
  headers["x-forwarded-host"] ??= req.headers.host ?? "";
  headers["x-forwarded-proto"] ??= "http";
  if (prefix) headers["x-forwarded-prefix"] = prefix;
  return headers;
}

function responseHeaders(h: IncomingHttpHeaders, upstream: string, prefix: string): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || HOP_BY_HOP.includes(k)) continue;
    out[k] = k === "location" || k === "content-location" ? publicLocation(String(v), upstream, prefix) : v;
  }
  return out;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

const isLoopback = (addr: string | undefined) =>
  !!addr && (addr === "::1" || addr.startsWith("127.") || addr.startsWith("::ffff:127."));
