/**
 * Which deployment a request is for, and the path to send it. Pure.
 *
 * Precedence: a Host header listed by a deployment (whole path forwarded),
 * then the first path segment naming a deployment (`/<name>/rest` → `/rest`),
 * then the deployment served at the root path, if any.
 */
import type { RouteSpec } from "../listener/types.js";

export interface Resolved {
  route: RouteSpec;
  /** The public path prefix the deployment is reached under ("" or "/<name>"). */
  prefix: string;
  /** Path (and query) to send upstream. */
  path: string;
}

export function resolveRoute(routes: readonly RouteSpec[], host: string | undefined, url: string): Resolved | null {
  const q = url.indexOf("?");
  const pathname = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? "" : url.slice(q);
  const hostname = host ? stripPort(host).toLowerCase() : "";
  if (hostname) {
    const byHost = routes.find((r) => r.hosts.some((h) => h.toLowerCase() === hostname));
    if (byHost) return { route: byHost, prefix: "", path: pathname + query };
  }
  const m = /^\/([^/]+)(\/.*)?$/.exec(pathname);
  if (m) {
    const byName = routes.find((r) => r.name === m[1]);
    if (byName) return { route: byName, prefix: `/${m[1]}`, path: (m[2] ?? "/") + query };
  }
  const root = routes.find((r) => r.root);
  return root ? { route: root, prefix: "", path: pathname + query } : null;
}

function stripPort(host: string): string {
  if (host.startsWith("[")) return host.slice(0, host.indexOf("]") + 1);
  const i = host.lastIndexOf(":");
  return i === -1 ? host : host.slice(0, i);
}

/**
 * A redirect or Content-Location that names the upstream by absolute URL is
 * made public (prefix + path). Relative values are left as they are: the
 * LangGraph SDKs append them to their own base URL, which already ends with
 * the deployment's prefix (see docs/listener.md, "Gateway").
 */
export function publicLocation(value: string, upstream: string, prefix: string): string {
  if (!/^https?:\/\//i.test(value)) return value;
  try {
    const u = new URL(value);
    const up = new URL(upstream);
    if (u.host !== up.host) return value;
    return `${prefix}${u.pathname}${u.search}`;
  } catch {
    return value;
  }
}

/** Deployment names that would shadow LangGraph API paths of a deployment served at the root. */
export const RESERVED_NAMES = new Set([
  "ok", "info", "docs", "metrics", "openapi.json", "threads", "runs", "assistants", "store", "crons",
  "internal", "mcp", "a2a", "ui", "_openplane",
]);

/** A deployment name usable as the first path segment: lower-case letters, digits and dashes. */
export function validDeploymentName(name: string): boolean {
  return /^[a-z0-9][a-z0-9-]{0,62}$/.test(name) && !RESERVED_NAMES.has(name);
}
