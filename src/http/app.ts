import type { IncomingMessage } from "node:http";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { AppError } from "../domain/errors.js";
import { authMiddleware } from "./auth-middleware.js";
import { corsMiddleware } from "./cors.js";
import type { AppDeps, HttpOptions } from "./deps.js";
import { errorHandler } from "./errors.js";
import { createMetrics } from "./metrics.js";
import { assistantRoutes } from "./routes/assistants.js";
import { cronRoutes } from "./routes/crons.js";
import { metaRoutes } from "./routes/meta.js";
import { runRoutes } from "./routes/runs.js";
import { storeRoutes } from "./routes/store.js";
import { threadStateRoutes } from "./routes/thread-state.js";
import { threadStreamRoutes } from "./routes/thread-stream.js";
import { threadRoutes } from "./routes/threads.js";
import { normalizePrefix } from "./prefix.js";

/** POST /threads/{id}/runs[/stream|/wait] and /runs[/stream|/wait] (under any mount prefix). */
const RUN_CREATE_PATH = /\/runs(?:\/stream|\/wait)?$/;

const DEFAULT_HTTP: HttpOptions = {
  mountPrefix: "",
  corsAllowOrigins: ["*"],
  corsAllowCredentials: false,
  allowPrivateNetwork: false,
  enableTruncate: false,
};

/** Builds the LangGraph Server API. Starts nothing: the caller serves it. */
export function createApp(deps: AppDeps): Hono {
  const http: HttpOptions = { ...DEFAULT_HTTP, ...deps.http };
  const prefix = normalizePrefix(http.mountPrefix);
  const metrics = createMetrics(deps);
  const app = prefix ? new Hono().basePath(prefix) : new Hono();
  app.use("*", async (c, next) => {
    c.set("deps", deps);
    await next();
  });
  app.use("*", metrics.middleware);
  app.use("*", corsMiddleware(http));
  const tooLarge = () => {
    throw new AppError("PAYLOAD_TOO_LARGE", `Request body exceeds ${deps.maxBodyBytes} bytes`);
  };
  const limitBody = bodyLimit({ maxSize: deps.maxBodyBytes, onError: tooLarge });
  app.use("*", async (c, next) => {
    // On @hono/node-server, an HTTP/1 request's Content-Length (or its absence: no body) is
    // checked on the Node request itself, as hono's bodyLimit would: that one reads
    // `c.req.raw.body`, which makes the adapter build a web Request, AbortController and
    // ReadableStream per request. Chunked bodies (and other runtimes) still go through it.
    const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
    if (incoming?.httpVersionMajor === 1 && incoming.headers["transfer-encoding"] === undefined) {
      const length = incoming.headers["content-length"];
      if (length !== undefined && parseInt(length, 10) > deps.maxBodyBytes) tooLarge();
      return next();
    }
    return limitBody(c, next);
  });
  app.use("*", async (c, next) => {
    const started = performance.now();
    await next();
    // One line per request; health probes and scrapes only at debug, or they drown the rest.
    // So is a run created successfully: its "run created" line (run, thread and assistant
    // ids) already records it, and one synchronous line less per run is measurable.
    const path = c.req.path;
    const quiet =
      path.endsWith("/ok") ||
      path.endsWith("/metrics") ||
      (c.res.status < 400 && c.req.method === "POST" && RUN_CREATE_PATH.test(path));
    const entry = { method: c.req.method, path, status: c.res.status, ms: Math.round(performance.now() - started) };
    if (quiet) deps.logger.debug(entry, "request");
    else deps.logger.info(entry, "request");
  });
  // Order matters (api.md §5.1): custom routes come before the built-in ones (and win for the
  // same path); the custom app's middleware, merged here, wraps the built-in routes too.
  const custom = http.custom ?? null;
  const auth = deps.auth ?? null;
  if (auth && custom) {
    // Custom routes are authenticated only with enable_custom_route_auth; otherwise auth_first
    // authenticates before the custom middleware but lets custom routes answer regardless.
    if (custom.enableCustomRouteAuth) app.use("*", authMiddleware(auth, { mode: "enforce", prefix }));
    else if (custom.middlewareOrder === "auth_first") app.use("*", authMiddleware(auth, { mode: "defer", prefix }));
  }
  if (custom) app.route("/", custom.app as unknown as Hono);
  if (auth) app.use("*", authMiddleware(auth, { mode: "enforce", prefix }));
  const off = http.disable ?? {};
  if (!off.meta) app.route("/", metaRoutes({ metrics, mountPrefix: prefix, enableTruncate: http.enableTruncate }));
  if (!off.assistants) app.route("/", assistantRoutes());
  if (!off.threads) {
    app.route("/", threadRoutes());
    app.route("/", threadStateRoutes());
    app.route("/", threadStreamRoutes());
  }
  if (!off.runs) {
    // Before the run routes: /runs/crons/... must not be read as /runs/:run_id/...
    app.route("/", cronRoutes());
    app.route("/", runRoutes());
  }
  if (!off.store) app.route("/", storeRoutes());
  app.notFound((c) => c.json({ detail: "Not Found" }, 404));
  app.onError(errorHandler(deps.logger));
  return app;
}
