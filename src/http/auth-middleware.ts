import type { Context, MiddlewareHandler } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { AuthRejection, toRejection } from "../auth/errors.js";
import type { AuthProvider } from "../auth/types.js";

/** Routes anyone may call (api.md §6.3): health, server info and the API description. */
export const OPEN_PATHS = ["/ok", "/info", "/docs", "/openapi.json"] as const;

/** What an earlier pass of the middleware found (see `mode`). */
type AuthState = { ok: true } | { ok: false; rejection: AuthRejection };
const STATE = "openplaneAuthState";

/**
 * Authenticates each request once and sets `c.var.auth`. OPTIONS preflights
 * and OPEN_PATHS pass untouched.
 *
 * - `enforce`: a refused request ends here with the handler's status,
 *   `{detail}` and headers.
 * - `defer`: a refusal is remembered and the request goes on, so custom
 *   routes that are not authenticated still answer; the `enforce` pass in
 *   front of the built-in routes then refuses it. This lets auth run before
 *   custom middleware (`middleware_order: auth_first`) without
 *   authenticating custom routes.
 *
 * `x-auth-scheme: langsmith` (LangGraph Studio) gets no special treatment:
 * without a way to verify LangSmith credentials it is an ordinary request.
 */
export function authMiddleware(provider: AuthProvider, opts: { mode: "enforce" | "defer"; prefix: string }): MiddlewareHandler {
  const open = new Set(OPEN_PATHS.map((p) => `${opts.prefix}${p}`));
  return async (c, next) => {
    if (c.req.method === "OPTIONS" || open.has(c.req.path)) return next();
    const prior = (c.get as (k: string) => unknown)(STATE) as AuthState | undefined;
    if (prior === undefined) {
      try {
        c.set("auth", await provider.authenticate(requestFor(c)));
        setState(c, { ok: true });
      } catch (err) {
        const rejection = toRejection(err, 401);
        if (opts.mode === "enforce") return refuse(c, rejection);
        setState(c, { ok: false, rejection });
      }
    } else if (!prior.ok && opts.mode === "enforce") {
      return refuse(c, prior.rejection);
    }
    return next();
  };
}

const setState = (c: Context, s: AuthState) => (c.set as (k: string, v: unknown) => void)(STATE, s);

function refuse(c: Context, r: AuthRejection): Response {
  return c.json({ detail: r.message }, r.status as ContentfulStatusCode, r.headers);
}

/** The handler may read the body: give it a copy so the route can still read the original. */
function requestFor(c: Context): Request {
  const raw = c.req.raw;
  return raw.body && raw.method !== "GET" && raw.method !== "HEAD" ? raw.clone() : raw;
}
