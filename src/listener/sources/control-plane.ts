/**
 * The control plane as a source of desired state, over the documented v2 API:
 *   GET /v2/listeners/{listener_id}            (our identity must exist)
 *   GET /v2/deployments?limit=&offset=          (kept: source_config.listener_id == ours)
 *   GET /v2/deployments/{id}/revisions          (newest first; we run latest_revision_id)
 * with X-Api-Key and X-Tenant-Id. The base URL may carry a path prefix (a
 * self-hosted LangSmith serves the API under /api-host). Any failure, a
 * non-2xx answer or a malformed body makes the whole read fail, so nothing
 * changes because of an outage.
 */
import { z } from "zod";
import type { DesiredDeployment } from "../types.js";
import {
  deploymentSchema,
  listenerSchema,
  pageOf,
  pickRevision,
  revisionSchema,
  toDesired,
} from "./control-plane-model.js";
import type { CpDeployment } from "./control-plane-model.js";
import type { DesiredStateSource } from "./types.js";

export interface ControlPlaneOptions {
  /** e.g. https://api.host.langchain.com or https://langsmith.example.com/api-host */
  baseUrl: string;
  apiKey: string | null;
  tenantId: string | null;
  listenerId: string;
  intervalMs: number;
  maxBackoffMs: number;
  /** Per-request timeout. */
  timeoutMs?: number;
}

const PAGE = 100;

export class ControlPlaneError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
  ) {
    super(message);
    this.name = "ControlPlaneError";
  }
}

export function createControlPlaneClient(o: ControlPlaneOptions) {
  const base = o.baseUrl.replace(/\/+$/, "");
  const headers = (): Record<string, string> => ({
    accept: "application/json",
    ...(o.apiKey ? { "X-Api-Key": o.apiKey } : {}),
    ...(o.tenantId ? { "X-Tenant-Id": o.tenantId } : {}),
  });
  async function call(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<{ status: number; json: unknown }> {
    const timeout = AbortSignal.timeout(o.timeoutMs ?? 10_000);
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method,
        headers: body === undefined ? headers() : { ...headers(), "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (err) {
      // The cause names the network failure (ECONNREFUSED, timeout); never the request headers.
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
      throw new ControlPlaneError(`${method} ${path}: control plane unreachable (${cause})`, null);
    }
    const text = await res.text();
    // Error bodies are not echoed: they could repeat what we sent.
    if (!res.ok) throw new ControlPlaneError(`${method} ${path} answered ${res.status}`, res.status);
    let json: unknown = null;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch {
        throw new ControlPlaneError(`${method} ${path} answered ${res.status} with a body that is not JSON`, res.status);
      }
    }
    return { status: res.status, json };
  }
  async function getParsed<T extends z.ZodType>(path: string, schema: T, signal?: AbortSignal): Promise<z.infer<T>> {
    const { json } = await call("GET", path, undefined, signal);
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw new ControlPlaneError(`GET ${path}: unexpected response (${parsed.error.issues[0]?.path.join(".")}: ${parsed.error.issues[0]?.message})`, null);
    }
    return parsed.data;
  }
  return { call, getParsed };
}

export type ControlPlaneClient = ReturnType<typeof createControlPlaneClient>;

export function controlPlaneSource(o: ControlPlaneOptions, client = createControlPlaneClient(o)): DesiredStateSource {
  const enc = encodeURIComponent;
  return {
    kind: "control-plane",
    key: `control-plane:${o.baseUrl.replace(/\/+$/, "")}#${o.listenerId}`,
    intervalMs: o.intervalMs,
    maxBackoffMs: o.maxBackoffMs,
    async fetch(signal) {
      await client.getParsed(`/v2/listeners/${enc(o.listenerId)}`, listenerSchema, signal);
      const ours: CpDeployment[] = [];
      for (let offset = 0; ; offset += PAGE) {
        const page = await client.getParsed(`/v2/deployments?limit=${PAGE}&offset=${offset}`, pageOf(deploymentSchema), signal);
        ours.push(...page.filter((d) => d.source_config?.listener_id === o.listenerId));
        if (page.length < PAGE) break;
      }
      const desired: DesiredDeployment[] = [];
      const names = new Set<string>();
      for (const d of ours) {
        const revisions = await client.getParsed(`/v2/deployments/${enc(d.id)}/revisions?limit=20&offset=0`, pageOf(revisionSchema), signal);
        const revision = pickRevision(d, revisions);
        if (!revision) continue; // nothing to run yet
        const wanted = toDesired(d, revision);
        // Two names that map to one path segment: the later one gets its id appended.
        if (names.has(wanted.name)) wanted.name = `${wanted.name}-${d.id.slice(0, 8).toLowerCase().replace(/[^a-z0-9]/g, "")}`;
        names.add(wanted.name);
        desired.push(wanted);
      }
      return desired;
    },
  };
}
