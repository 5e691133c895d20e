import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { AppError } from "../domain/errors.js";
import type { AppDeps, HttpOptions } from "./deps.js";
import { errorHandler } from "./errors.js";
import { createMetrics } from "./metrics.js";
import { assistantRoutes } from "./routes/assistants.js";
import { metaRoutes } from "./routes/meta.js";
import { runRoutes } from "./routes/runs.js";
import { storeRoutes } from "./routes/store.js";
import { threadStateRoutes } from "./routes/thread-state.js";
import { threadRoutes } from "./routes/threads.js";

/** Response headers browsers may read: run identity and pagination (api.md §1.8–§1.9). */
const EXPOSE_HEADERS = ["Content-Location", "Location", "X-Pagination-Total", "X-Pagination-Next"];

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
  app.use(
    "*",
    bodyLimit({
      maxSize: deps.maxBodyBytes,
      onError: () => {
        throw new AppError("PAYLOAD_TOO_LARGE", `Request body exceeds ${deps.maxBodyBytes} bytes`);
      },
    }),
  );
  app.use("*", async (c, next) => {
    const started = performance.now();
    await next();
    // One line per request; health probes and scrapes only at debug, or they drown the rest.
    const quiet = c.req.path.endsWith("/ok") || c.req.path.endsWith("/metrics");
    const entry = { method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(performance.now() - started) };
    if (quiet) deps.logger.debug(entry, "request");
    else deps.logger.info(entry, "request");
  });
  app.route("/", metaRoutes({ metrics, mountPrefix: prefix, enableTruncate: http.enableTruncate }));
  app.route("/", assistantRoutes());
  app.route("/", threadRoutes());
  app.route("/", threadStateRoutes());
  app.route("/", runRoutes());
  app.route("/", storeRoutes());
  app.notFound((c) => c.json({ detail: "Not Found" }, 404));
  app.onError(errorHandler(deps.logger));
  return app;
}

/** "/api/" → "/api"; "" and "/" → "" (no prefix). */
function normalizePrefix(p: string): string {
  const trimmed = p.trim().replace(/\/+$/, "");
  if (!trimmed) return "";
  return trimmed.startsWith("/") ? trimmed : `/${trimmed}`;
}

function corsMiddleware(http: HttpOptions) {
  const any = http.corsAllowOrigins.includes("*");
  const handler = cors({
    // With credentials a literal "*" is not allowed by browsers: echo the origin instead.
    origin: any ? (http.corsAllowCredentials ? (origin) => origin : "*") : http.corsAllowOrigins,
    credentials: http.corsAllowCredentials,
    exposeHeaders: EXPOSE_HEADERS,
    allowMethods: ["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"],
  });
  if (!http.allowPrivateNetwork) return handler;
  return async (c: Parameters<typeof handler>[0], next: Parameters<typeof handler>[1]) => {
    // Chrome's Private Network Access preflight: allow pages on public origins to reach this server.
    if (c.req.method === "OPTIONS" && c.req.header("Access-Control-Request-Private-Network") === "true") {
      c.header("Access-Control-Allow-Private-Network", "true");
    }
    return handler(c, next);
  };
}
