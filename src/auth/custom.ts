import { AuthRejection, toRejection } from "./errors.js";
import { InvalidFilterError, parseFilters } from "./filters.js";
import type { AuthContext, AuthFilter, AuthProvider, AuthResource, AuthUser } from "./types.js";

type Handler = (params: Record<string, unknown>) => unknown;

/**
 * Where `@langchain/langgraph-sdk/auth`'s `Auth` keeps its handlers (read in
 * its dist/auth/index.js): `authenticate(cb)` stores `cb` as
 * `["~handlerCache"].authenticate`; `.on(event | event[], cb)` stores `cb`
 * under `["~handlerCache"].callbacks[event]` for each event ("threads",
 * "threads:create", "*:read", "*"...), the last registration winning.
 */
export interface AuthHandlerCache {
  authenticate?: (request: Request) => unknown;
  callbacks?: Record<string, Handler>;
}

export const HANDLER_CACHE = "~handlerCache";

/** True for an `Auth` instance (any copy of the SDK): the server recognises it by its handler cache. */
export function isAuthInstance(value: unknown): value is { [HANDLER_CACHE]: AuthHandlerCache } {
  if (typeof value !== "object" || value === null || !(HANDLER_CACHE in value)) return false;
  const cache = (value as Record<string, unknown>)[HANDLER_CACHE];
  return typeof cache === "object" && cache !== null;
}

/** Applies a user's `Auth` instance as api.md §6.3 describes. */
export function createCustomAuth(auth: { [HANDLER_CACHE]: AuthHandlerCache }): AuthProvider {
  // Read at call time: an Auth instance may get handlers after it was exported.
  const cache = () => auth[HANDLER_CACHE];

  return {
    kind: "custom",

    async authenticate(request: Request): Promise<AuthContext | null> {
      const authenticate = cache().authenticate;
      // Without an authenticate handler there is no user, and (as in the JS server) no authorization.
      if (!authenticate) return null;
      let result: unknown;
      try {
        result = await authenticate(request);
      } catch (err) {
        throw toRejection(err, 401);
      }
      return normaliseUser(result);
    },

    async authorize(ctx, resource: AuthResource, action, value): Promise<AuthFilter[] | null> {
      const callbacks = cache().callbacks ?? {};
      // Most specific first (api.md §6.3).
      const key = [`${resource}:${action}`, resource, `*:${action}`, "*"].find((k) => typeof callbacks[k] === "function");
      if (!key || !ctx) return null;
      let result: unknown;
      try {
        result = await callbacks[key]!({
          event: `${resource}:${action}`,
          resource,
          action,
          value,
          user: ctx.user,
          permissions: ctx.permissions,
        });
      } catch (err) {
        throw toRejection(err, 403);
      }
      if (result === undefined || result === null || result === true) return null;
      if (result === false) throw new AuthRejection(403, "Forbidden");
      if (typeof result !== "object" || Array.isArray(result)) {
        throw new Error(`auth handler for "${key}" returned ${Array.isArray(result) ? "an array" : typeof result}: expected a filter object, a boolean, null or undefined`);
      }
      try {
        const filters = parseFilters(result);
        return filters.length ? filters : null;
      } catch (err) {
        if (err instanceof InvalidFilterError) throw new Error(`auth handler for "${key}": ${err.message}`);
        throw err;
      }
    },
  };
}

/** A string is the identity; an object needs `identity` (api.md §6.1). */
function normaliseUser(result: unknown): AuthContext {
  if (typeof result === "string" && result) {
    return { user: { identity: result, display_name: result, permissions: [], is_authenticated: true }, permissions: [] };
  }
  if (typeof result === "object" && result !== null && typeof (result as { identity?: unknown }).identity === "string") {
    const r = result as Record<string, unknown> & { identity: string };
    const permissions = Array.isArray(r.permissions) ? r.permissions.filter((p): p is string => typeof p === "string") : [];
    const user: AuthUser = {
      ...r,
      identity: r.identity,
      permissions,
      is_authenticated: typeof r.is_authenticated === "boolean" ? r.is_authenticated : true,
      display_name: typeof r.display_name === "string" ? r.display_name : r.identity,
    };
    return { user, permissions };
  }
  throw new Error("Invalid auth response received. Make sure to either return a `string` or an object with `identity` property.");
}
