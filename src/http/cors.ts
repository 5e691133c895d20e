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
  const handler = cors({
    origin,
    credentials,
    exposeHeaders: [...new Set([...EXPOSE_HEADERS, ...(file.expose_headers ?? [])])],
    allowMethods: file.allow_methods ?? METHODS,
    ...(file.allow_headers ? { allowHeaders: file.allow_headers } : {}),
    ...(file.max_age !== undefined ? { maxAge: file.max_age } : {}),
  });
  if (!http.allowPrivateNetwork) return handler;
  return async (c: Context, next) => {
    // Chrome's Private Network Access preflight: allow pages on public origins to reach this server.
    if (c.req.method === "OPTIONS" && c.req.header("Access-Control-Request-Private-Network") === "true") {
      c.header("Access-Control-Allow-Private-Network", "true");
    }
    return handler(c, next);
  };
}
