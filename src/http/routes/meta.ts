import { Hono } from "hono";
import { AppError } from "../../domain/errors.js";

export function metaRoutes(): Hono {
  const app = new Hono();

  app.get("/ok", async (c) => {
    const check = c.req.query("check_db");
    if (check === "1" || check === "true") {
      try {
        await c.var.deps.checkDb();
      } catch {
        throw new AppError("UNAVAILABLE", "Database is not reachable");
      }
    }
    return c.json({ ok: true });
  });

  app.get("/info", (c) =>
    c.json({
      version: c.var.deps.version,
      langgraph_js_version: c.var.deps.version,
      context: "js",
      flags: { assistants: true, crons: false, langsmith: c.var.deps.tracingEnabled, langsmith_tracing_replicas: true },
      host: { kind: "self-hosted", project_id: null, host_revision_id: null, revision_id: null, tenant_id: null },
    }),
  );

  return app;
}
