import type { Context } from "hono";
import { matchesFilters } from "../auth/filters.js";
import type { AuthFilter, AuthResource } from "../auth/types.js";
import { notFound } from "../domain/errors.js";

/**
 * The authorization hook routes call before an operation (api.md §6.3): runs
 * the most specific handler for `resource:action` with `value` (which the
 * handler may mutate; the route then uses the mutated value) and returns the
 * filters to apply, or null. A denial throws (403, or the handler's status).
 */
export async function authorize(c: Context, resource: AuthResource, action: string, value: Record<string, unknown>): Promise<AuthFilter[] | null> {
  const provider = c.var.deps.auth;
  if (!provider) return null;
  return provider.authorize(c.get("auth") ?? null, resource, action, value);
}

/**
 * A resource the filters exclude is reported as missing (404 with
 * `notFoundMessage`), never as forbidden, so its existence does not leak.
 */
export function ensureVisible(filters: readonly AuthFilter[] | null, metadata: Record<string, unknown> | null | undefined, notFoundMessage: string): void {
  if (!matchesFilters(metadata, filters)) throw notFound(notFoundMessage);
}

export { matchesFilters };
