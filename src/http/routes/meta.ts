import { Hono } from "hono";
import { systemAssistantId } from "../../domain/assistant.js";
import { AppError, notFound } from "../../domain/errors.js";
import type { Metrics } from "../metrics.js";
import { docsPage, openApiDocument } from "../openapi.js";
import { truncateSchema } from "../schemas.js";
import { body } from "../validate.js";

export interface MetaOptions {
  metrics: Metrics;
  mountPrefix: string;
  enableTruncate: boolean;
}

export function metaRoutes(opts: MetaOptions): Hono {
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
      flags: { assistants: true, crons: true, langsmith: c.var.deps.tracingEnabled, langsmith_tracing_replicas: true },
      host: { kind: "self-hosted", project_id: null, host_revision_id: null, revision_id: null, tenant_id: null },
    }),
  );

  app.get("/metrics", async (c) => {
    const format = c.req.query("format") === "json" ? "json" : "prometheus";
    const { body: text, contentType } = await opts.metrics.render(format);
    return c.body(text, 200, { "Content-Type": contentType });
  });

  app.get("/openapi.json", (c) => c.json(openApiDocument(c.var.deps.version, opts.mountPrefix || "/")));

  app.get("/docs", (c) => c.html(docsPage(c.var.deps.version, `${opts.mountPrefix}/openapi.json`)));

  // Test suites only: 404 unless OPENPLANE_ENABLE_TRUNCATE=true.
  app.post("/internal/truncate", async (c) => {
    if (!opts.enableTruncate) throw notFound("Not Found");
    const b = await body(c, truncateSchema);
    const deps = c.var.deps;
    const system = [...deps.graphs.ids];
    await deps.truncate.truncate(
      { runs: b.runs, threads: b.threads, assistants: b.assistants, checkpointer: b.checkpointer || b.checkpoint, store: b.store },
      system.map(systemAssistantId),
    );
    // System assistants stay (and come back if one was deleted).
    if (b.assistants) for (const graphId of system) await deps.assistants.upsertSystem(graphId);
    return c.json({ ok: true });
  });

  return app;
}
