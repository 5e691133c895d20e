/**
 * The control-plane emulator's HTTP API: the v2 subset the listener reads
 * (listeners, deployments, revisions), the calls a user makes (create, patch,
 * delete a deployment), and the listener's write-back contract
 * (docs/listener.md). Served under an optional base path such as /api-host.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import type { EmulatorStore, StatusReport } from "./store.js";

export interface EmulatorOptions {
  apiKey: string;
  basePath?: string;
  /** Set to make every /v2 call fail with 503 (an erroring control plane). */
  outage?: () => boolean;
}

const REVISION_STATUSES = ["DEPLOYING", "DEPLOYED", "DEPLOY_FAILED"];
const DEPLOYMENT_STATUSES = ["AWAITING_DATABASE", "READY", "UNKNOWN"];

export function createEmulatorApp(store: EmulatorStore, o: EmulatorOptions): Hono {
  const app = o.basePath ? new Hono().basePath(o.basePath) : new Hono();
  const detail = (c: Context, status: 400 | 401 | 403 | 404 | 422 | 503, text: string) => c.json({ detail: text }, status);

  app.use("/v2/*", async (c, next) => {
    if (o.outage?.()) return detail(c, 503, "control plane unavailable (emulated outage)");
    if (c.req.header("x-api-key") !== o.apiKey) return detail(c, 401, "Invalid API key");
    if (c.req.header("x-tenant-id") !== store.tenantId) return detail(c, 403, "This API key requires workspace specification (X-Tenant-Id)");
    await next();
  });

  const page = <T>(c: Context, items: T[]) => {
    const limit = Math.min(100, Math.max(1, Number(c.req.query("limit") ?? 20)));
    const offset = Math.max(0, Number(c.req.query("offset") ?? 0));
    return c.json({ resources: items.slice(offset, offset + limit), offset });
  };

  app.get("/v2/listeners/:id", (c) => {
    const l = store.listeners.get(c.req.param("id"));
    return l ? c.json(l) : detail(c, 404, "Listener not found");
  });
  app.patch("/v2/listeners/:id", async (c) => {
    const l = store.listeners.get(c.req.param("id"));
    if (!l) return detail(c, 404, "Listener not found");
    const body = (await c.req.json()) as { version?: string };
    if (body.version !== undefined) l.version = body.version;
    l.updated_at = new Date().toISOString();
    return c.json(l);
  });

  app.get("/v2/deployments", (c) => page(c, [...store.deployments.values()]));
  app.post("/v2/deployments", async (c) => {
    const body = (await c.req.json()) as Parameters<EmulatorStore["createDeployment"]>[0];
    if (!body?.name || !body.source_config || !body.source_revision_config) return detail(c, 422, "name, source_config and source_revision_config are required");
    return c.json(store.createDeployment(body), 201);
  });
  app.get("/v2/deployments/:id", (c) => {
    const d = store.deployments.get(c.req.param("id"));
    return d ? c.json(d) : detail(c, 404, "Deployment not found");
  });
  app.patch("/v2/deployments/:id", async (c) => {
    const d = store.patchDeployment(c.req.param("id"), (await c.req.json()) as Parameters<EmulatorStore["patchDeployment"]>[1]);
    return d ? c.json(d) : detail(c, 404, "Deployment not found");
  });
  app.delete("/v2/deployments/:id", (c) => (store.deleteDeployment(c.req.param("id")) ? c.body(null, 204) : detail(c, 404, "Deployment not found")));
  app.get("/v2/deployments/:id/revisions", (c) => {
    const list = store.revisions.get(c.req.param("id"));
    return list ? page(c, list) : detail(c, 404, "Deployment not found");
  });
  app.get("/v2/deployments/:id/revisions/:rid", (c) => {
    const r = store.revision(c.req.param("id"), c.req.param("rid"));
    return r ? c.json(r) : detail(c, 404, "Revision not found");
  });

  // ---- write-back contract (ours): idempotent, keyed by the ids in the path; the newest observation wins.
  app.put("/v2/deployments/:id/revisions/:rid/status", async (c) => {
    const d = store.deployments.get(c.req.param("id"));
    const r = store.revision(c.req.param("id"), c.req.param("rid"));
    if (!d || !r) return detail(c, 404, "Revision not found");
    const body = (await c.req.json().catch(() => null)) as Partial<StatusReport> | null;
    const problem = checkReport(body, REVISION_STATUSES, d.source_config.listener_id);
    if (problem) return detail(c, problem.status, problem.text);
    store.reports.push({ kind: "revision", deployment_id: d.id, revision_id: r.id, status: body!.status!, message: body!.message ?? "", observed_at: body!.observed_at!, listener_id: body!.listener_id!, received_at: Date.now() });
    if (r.observed_at === null || body!.observed_at! >= r.observed_at) {
      r.status = body!.status!;
      r.status_message = body!.message ?? "";
      r.observed_at = body!.observed_at!;
      r.updated_at = new Date().toISOString();
      if (r.status === "DEPLOYED") d.active_revision_id = r.id;
    }
    return c.json(r);
  });
  app.put("/v2/deployments/:id/status", async (c) => {
    const d = store.deployments.get(c.req.param("id"));
    if (!d) return detail(c, 404, "Deployment not found");
    const body = (await c.req.json().catch(() => null)) as (Partial<StatusReport> & { active_revision_id?: string | null }) | null;
    const problem = checkReport(body, DEPLOYMENT_STATUSES, d.source_config.listener_id);
    if (problem) return detail(c, problem.status, problem.text);
    store.reports.push({ kind: "deployment", deployment_id: d.id, revision_id: null, status: body!.status!, message: body!.message ?? "", active_revision_id: body!.active_revision_id ?? null, observed_at: body!.observed_at!, listener_id: body!.listener_id!, received_at: Date.now() });
    d.status = body!.status!;
    d.status_message = body!.message ?? "";
    if (body!.active_revision_id) d.active_revision_id = body!.active_revision_id;
    return c.json(d);
  });

  app.notFound((c) => c.json({ detail: "Not Found" }, 404));
  return app;
}

function checkReport(
  body: (Partial<StatusReport> & Record<string, unknown>) | null,
  statuses: string[],
  listenerId: string | null,
): { status: 403 | 422; text: string } | null {
  if (!body || typeof body !== "object") return { status: 422, text: "body must be a JSON object" };
  if (!statuses.includes(String(body.status))) return { status: 422, text: `status must be one of ${statuses.join(", ")}` };
  if (typeof body.message !== "string") return { status: 422, text: "message must be a string" };
  if (typeof body.observed_at !== "string" || Number.isNaN(Date.parse(body.observed_at))) return { status: 422, text: "observed_at must be an ISO 8601 time" };
  if (body.listener_id !== listenerId) return { status: 403, text: "listener_id does not own this deployment" };
  return null;
}
