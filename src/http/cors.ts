import type { Context, MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import type { HttpOptions } from "./deps.js";

/** Response headers browsers may read: run identity and pagination (api.md §1.8–§1.9). Always exposed. */
export const EXPOSE_HEADERS = ["Content-Location", "Location", "X-Pagination-Total", "X-Pagination-Next"];
const METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"];

/**
 * CORS from the environment (CORS_ALLOW_ORIGINS, CORS_ALLOW_CREDENTIALS,
 * ALLOW_PRIVATE_NETWORK) with langgraph.json `http.cors` merged over it: a
 * key set in the file wins; exposed headers are the union with ours.
 */
export function corsMiddleware(http: HttpOptions): MiddlewareHandler {
  const file = http.cors ?? {};
  const origins = file.allow_origins ?? http.corsAllowOrigins;
  const credentials = file.allow_credentials ?? http.corsAllowCredentials;
  const any = origins.includes("*");
  const pattern = file.allow_origin_regex ? new RegExp(`^(?:${file.allow_origin_regex})$`) : null;
  // With credentials a literal "*" is not allowed by browsers: echo the origin instead.
  const origin =
    pattern === null
      ? any
        ? credentials
          ? (o: string) => o
          : "*"
        : origins
      : (o: string) => (any ? (credentials ? o : "*") : origins.includes(o) || pattern.test(o) ? o : null);
  const exposed = [...new Set([...EXPOSE_HEADERS, ...(file.expose_headers ?? [])])];
  const preflight = cors({
    origin,
    credentials,
    exposeHeaders: exposed,
    allowMethods: file.allow_methods ?? METHODS,
    ...(file.allow_headers ? { allowHeaders: file.allow_headers } : {}),
    ...(file.max_age !== undefined ? { maxAge: file.max_age } : {}),
  });
  // Every other request gets the same headers as hono's cors() gives it, set after the handler:
  // hono's sets them on `c.res` before, which makes Hono rebuild the handler's Response (a
  // web-streams body on @hono/node-server) for every request.
  const allowOrigin = (o: string): string | null => (typeof origin === "string" ? origin : typeof origin === "function" ? origin(o) : origins.includes(o) ? o : null);
  const exposeStr = exposed.join(",");
  const handler: MiddlewareHandler = async (c, next) => {
    if (c.req.method === "OPTIONS") return preflight(c, next);
    const allowed = allowOrigin(c.req.header("origin") || "");
    await next();
    const set = (h: Headers) => {
      if (allowed) h.set("Access-Control-Allow-Origin", allowed);
      if (credentials) h.set("Access-Control-Allow-Credentials", "true");
      if (exposeStr) h.set("Access-Control-Expose-Headers", exposeStr);
      if (origin !== "*") h.append("Vary", "Origin");
    };
    try {
      set(c.res.headers);
    } catch {
      // A Response with immutable headers (e.g. proxied by a custom route): copy it.
      c.res = new Response(c.res.body, c.res);
      set(c.res.headers);
    }
  };
  if (!http.allowPrivateNetwork) return handler;
  return async (c: Context, next) => {
    // Chrome's Private Network Access preflight: allow pages on public origins to reach this server.
    if (c.req.method === "OPTIONS" && c.req.header("Access-Control-Request-Private-Network") === "true") {
      c.header("Access-Control-Allow-Private-Network", "true");
    }
    return handler(c, next);
  };
}
