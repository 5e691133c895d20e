import type { Context, Handler, MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import client from "prom-client";
import { RUN_STATUSES } from "../domain/run.js";
import type { AppDeps } from "./deps.js";

/**
 * Prometheus metrics for one app. Each app has its own registry (tests build
 * several apps in one process). HTTP metrics are labelled by route template
 * (`/threads/:thread_id`), never by raw path, so ids cannot blow up the
 * series count. Run and queue gauges are read from Postgres at scrape time,
 * only where `stats` is given: they count the whole database, so a worker
 * process leaves them to the API (summing them over pods would multiply them).
 */
export function createMetrics(deps: { stats?: AppDeps["stats"] | undefined; poolStats: AppDeps["poolStats"] }) {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: "openplane_" });
  const labelNames = ["method", "route", "status"] as const;
  const requests = new client.Counter({
    name: "openplane_http_requests_total",
    help: "HTTP requests answered, by method, route template and status",
    labelNames,
    registers: [registry],
  });
  const duration = new client.Histogram({
    name: "openplane_http_request_duration_seconds",
    help: "Time to the response headers, by method, route template and status",
    labelNames,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const stats = deps.stats;
  const runGauges = stats
    ? {
        stats,
        runs: new client.Gauge({
          name: "openplane_runs",
          help: "Runs in the database, by status",
          labelNames: ["status"],
          registers: [registry],
        }),
        queue: new client.Gauge({
          name: "openplane_run_queue_depth",
          help: "Runs waiting (pending and due) or executing (running)",
          labelNames: ["state"],
          registers: [registry],
        }),
        oldest: new client.Gauge({
          name: "openplane_run_queue_oldest_pending_seconds",
          help: "Age of the oldest due pending run",
          registers: [registry],
        }),
      }
    : null;
  const pools = new client.Gauge({
    name: "openplane_db_pool_connections",
    help: "Database pool connections, by pool and kind (max, total, idle, waiting clients)",
    labelNames: ["pool", "kind"],
    registers: [registry],
  });

  /** Reads the gauges' values once per scrape. */
  async function refresh(): Promise<void> {
    if (runGauges) {
      const { runs, queue, oldest } = runGauges;
      const s = await runGauges.stats.runs();
      for (const status of RUN_STATUSES) runs.set({ status }, s.byStatus[status] ?? 0);
      queue.set({ state: "pending" }, s.pendingDue);
      queue.set({ state: "running" }, s.byStatus.running ?? 0);
      oldest.set(s.oldestPendingSecs);
    }
    pools.reset();
    for (const p of deps.poolStats()) {
      for (const kind of ["max", "total", "idle", "waiting"] as const) {
        const v = p[kind];
        if (typeof v === "number") pools.set({ pool: p.pool, kind }, v);
      }
    }
  }

  const middleware: MiddlewareHandler = async (c, next) => {
    const started = performance.now();
    try {
      await next();
    } finally {
      const labels = { method: c.req.method, route: routeOf(c), status: String(c.res.status) };
      requests.inc(labels);
      duration.observe(labels, (performance.now() - started) / 1000);
    }
  };

  return {
    middleware,
    async render(format: "prometheus" | "json"): Promise<{ body: string; contentType: string }> {
      await refresh();
      if (format === "json") return { body: JSON.stringify(await registry.getMetricsAsJSON()), contentType: "application/json" };
      return { body: await registry.metrics(), contentType: registry.contentType };
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** GET /metrics: Prometheus text, or prom-client's JSON with `?format=json`. */
export function metricsHandler(metrics: Metrics): Handler {
  return async (c) => {
    const format = c.req.query("format") === "json" ? "json" : "prometheus";
    const { body, contentType } = await metrics.render(format);
    return c.body(body, 200, { "Content-Type": contentType });
  };
}

/** The matched route template, or "unmatched" for a 404 from no route. */
function routeOf(c: Context): string {
  const path = routePath(c);
  return !path || path === "*" || path.endsWith("/*") ? "unmatched" : path;
}
