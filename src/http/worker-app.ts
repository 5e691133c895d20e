import { Hono } from "hono";
import { AppError } from "../domain/errors.js";
import type { Logger } from "../lib/logger.js";
import { normalizePrefix } from "./prefix.js";
import type { PoolStat } from "./deps.js";
import { errorHandler } from "./errors.js";
import { assertStoresReachable, wantsStoreCheck } from "./health.js";
import type { StoreCheck } from "./health.js";
import { createMetrics, metricsHandler } from "./metrics.js";

/** A run worker's lifecycle (RunWorker.state); spelled out here so http does not import the executor. */
export type WorkerHealthState = "created" | "active" | "stopping" | "stopped";

/** What `openplane worker`'s own HTTP endpoint needs, injected by src/bin. */
export interface WorkerAppDeps {
  /** Read on every request: /ok answers 200 only while "active". */
  state: () => WorkerHealthState;
  /** What `/ok?check_db=1` checks (PostgreSQL, and Redis when there is one). */
  stores: readonly StoreCheck[];
  /** Database pool sizes for /metrics. */
  poolStats: () => PoolStat[];
  logger: Logger;
  /** MOUNT_PREFIX: served under it like the API, so one probe path fits every role. @defaultValue "" */
  mountPrefix?: string;
}

const NOT_ACTIVE: Record<Exclude<WorkerHealthState, "active">, string> = {
  created: "Worker is starting",
  stopping: "Worker is shutting down",
  stopped: "Worker is stopped",
};

/**
 * Builds the worker's health app: `GET /ok` (and `?check_db=1`) for probes,
 * `GET /metrics` for Prometheus. Starts nothing: the caller serves it.
 */
export function createWorkerApp(deps: WorkerAppDeps): Hono {
  const prefix = normalizePrefix(deps.mountPrefix ?? "");
  const metrics = createMetrics({ poolStats: deps.poolStats });
  const app = prefix ? new Hono().basePath(prefix) : new Hono();
  app.use("*", metrics.middleware);
  app.get("/ok", async (c) => {
    const state = deps.state();
    // A draining worker takes no new runs: orchestration should stop counting it as healthy.
    if (state !== "active") throw new AppError("UNAVAILABLE", NOT_ACTIVE[state]);
    if (wantsStoreCheck(c)) await assertStoresReachable(deps.stores, deps.logger);
    return c.json({ ok: true });
  });
  app.get("/metrics", metricsHandler(metrics));
  app.notFound((c) => c.json({ detail: "Not Found" }, 404));
  app.onError(errorHandler(deps.logger));
  return app;
}
