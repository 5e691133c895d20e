import { Hono } from "hono";
import { systemAssistantId } from "../../domain/assistant.js";
import { notFound } from "../../domain/errors.js";
import { assertStoresReachable, wantsStoreCheck } from "../health.js";
import { metricsHandler } from "../metrics.js";
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
    const deps = c.var.deps;
    if (wantsStoreCheck(c)) await assertStoresReachable([{ name: "Database", check: deps.checkDb }], deps.logger);
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

  app.get("/metrics", metricsHandler(opts.metrics));

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
