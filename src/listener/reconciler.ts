/**
 * The listener: a level-triggered loop. It keeps the last desired state a
 * source gave (persisted, so it survives a restart while the source is
 * down), observes the driver and the gateway, asks plan() what to do, and
 * applies the actions. It runs on every source update, on every workload
 * change and on a timer; runs never overlap, and a change during a run
 * schedules one more.
 */
import type { Logger } from "../lib/logger.js";
import { databaseFor } from "./database-name.js";
import type { DatabaseAdmin } from "./databases.js";
import type { WorkloadDriver, WorkloadSpec } from "./drivers/types.js";
import { plan } from "./plan.js";
import { createRedactor, secretValues } from "./redact.js";
import { startPolling } from "./sources/poller.js";
import type { DesiredStateSource } from "./sources/types.js";
import type { StateStore } from "./state-store.js";
import type { StatusReporter } from "./status-reporter.js";
import type { Action, ActualState, DesiredDeployment, RouteSpec } from "./types.js";

export interface ListenerDeps {
  source: DesiredStateSource;
  driver: WorkloadDriver;
  gateway: {
    setRoute(r: RouteSpec): void;
    removeRoute(id: string): void;
    routes(): RouteSpec[];
    waitIdle(upstream: string, timeoutMs: number): Promise<void>;
  };
  databases: DatabaseAdmin;
  store: StateStore;
  reporter: StatusReporter;
  logger: Logger;
  /** How long a deleted deployment's database is kept before it is dropped. */
  retentionMs: number;
  /** Timer for retention and retries. */
  tickMs: number;
  /** Longest wait for the gateway's in-flight requests to a replaced server before it is signalled. */
  quiesceMs: number;
  /** The workload for a deployment; `databaseUri` is null for POSTGRES_URI_CUSTOM. */
  buildSpec(d: DesiredDeployment, databaseUri: string | null): WorkloadSpec;
  /** True when two servers of `d` cannot overlap (no Redis). */
  exclusive(d: DesiredDeployment): boolean;
  /** URI of the listener's own database (the default deployment's). */
  listenerDatabaseUri: string;
  now?: () => number;
}

/**
 * - created: built, not started.
 * - active: polling its source and reconciling.
 * - stopping: no longer polling or reconciling; the caller drains the servers.
 * - stopped: done.
 */
export type ListenerState = "created" | "active" | "stopping" | "stopped";

export function createListener(deps: ListenerDeps) {
  const { store, logger } = deps;
  const now = deps.now ?? Date.now;
  let state: ListenerState = "created";
  let desired: DesiredDeployment[] | null = store.state.sourceKey === deps.source.key ? store.state.desired : null;
  let redact = redactorFor(desired);
  let running: Promise<void> | null = null;
  let again = false;
  let poller: ReturnType<typeof startPolling> | null = null;
  let timer: NodeJS.Timeout | null = null;
  let reportErrors = 0;
  let reportsPausedUntil = 0;
  let lastError: string | null = null;

  function trigger(): void {
    if (state !== "active") return;
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      // Yield first: `running` must be set before an action's synchronous change event calls trigger() again.
      await Promise.resolve();
      do {
        again = false;
        await reconcileOnce().catch((err: unknown) => logger.warn({ error: redact(String(err)) }, "reconcile failed"));
      } while (again && state === "active");
      running = null;
    })();
  }

  async function reconcileOnce(): Promise<void> {
    if (desired === null) return; // no source has answered yet: change nothing
    const s = store.state;
    const actual: ActualState = {
      now: now(),
      workloads: deps.driver.list(),
      routes: deps.gateway.routes(),
      databases: s.databases,
      drops: s.drops,
      failed: s.failed,
      reported: s.reported,
      active: s.active,
    };
    const exclusive = new Set(desired.filter((d) => deps.exclusive(d)).map((d) => d.id));
    const actions = plan(desired, actual, { retentionMs: deps.retentionMs, exclusive });
    for (const a of actions) {
      if (state !== "active") return;
      try {
        if (await apply(a)) again = true;
      } catch (err) {
        logger.warn({ action: a.type, error: redact(err instanceof Error ? err.message : String(err)) }, "listener action failed; will retry");
      }
    }
  }

  /** Applies one action; true when it changed state the next plan must see. */
  async function apply(a: Action): Promise<boolean> {
    switch (a.type) {
      case "ensure-database": {
        const created = await deps.databases.ensure(a.database);
        if (created) logger.info({ deployment: a.deploymentId, database: a.database }, "database created");
        await store.update((s) => void (s.databases[a.deploymentId] = { name: a.database }));
        return true;
      }
      case "start": {
        const db = databaseFor(a.deployment);
        const uri = db.kind === "managed" ? deps.databases.uriFor(db.name) : db.kind === "listener" ? deps.listenerDatabaseUri : null;
        deps.driver.start(deps.buildSpec(a.deployment, uri));
        return false;
      }
      case "stop": {
        logger.info({ deployment: a.deploymentId, revision: a.revisionId, reason: a.reason }, "draining server");
        // The gateway no longer routes here: let the requests it still has in flight finish
        // (a /wait whose run another server executes) before the server starts its own drain.
        const url = deps.driver.list().find((w) => w.deploymentId === a.deploymentId && w.revisionId === a.revisionId)?.url;
        const quiesce = url ? () => deps.gateway.waitIdle(url, deps.quiesceMs) : undefined;
        void deps.driver.stop(a.deploymentId, a.revisionId, { quiesce }).catch((err: unknown) => logger.warn({ error: String(err) }, "stop failed"));
        return false;
      }
      case "set-route":
        deps.gateway.setRoute(a.route);
        logger.info(
          { deployment: a.route.name, revision: a.route.revisionId, upstream: a.route.upstream, ...(a.route.unavailable ? { unavailable: a.route.unavailable } : {}) },
          a.route.upstream ? "gateway route set" : a.route.unavailable ? "gateway route unavailable" : "gateway holding requests",
        );
        return false;
      case "remove-route":
        deps.gateway.removeRoute(a.deploymentId);
        logger.info({ deployment: a.deploymentId }, "gateway route removed");
        return false;
      case "mark-failed":
        await store.update((s) => void (s.failed[a.revisionId] = redact(a.message)));
        return true;
      case "report-revision":
      case "report-deployment":
        return report(a);
      case "schedule-drop":
        logger.info({ deployment: a.drop.deploymentId, database: a.drop.database, drop_at: new Date(a.drop.dropAt).toISOString() }, "deployment deleted: database kept until the retention ends");
        await store.update((s) => void s.drops.push(a.drop));
        return false;
      case "cancel-drop":
        await store.update((s) => void (s.drops = s.drops.filter((x) => x.deploymentId !== a.deploymentId)));
        return true;
      case "drop-database":
        await deps.databases.drop(a.database);
        logger.info({ deployment: a.deploymentId, database: a.database }, "database dropped (retention ended)");
        await store.update((s) => {
          delete s.databases[a.deploymentId];
          s.drops = s.drops.filter((x) => x.deploymentId !== a.deploymentId);
        });
        return false;
      case "remember-active":
        await store.update((s) => void (s.active[a.deployment.id] = a.deployment));
        return false;
      case "forget-active":
        await store.update((s) => void delete s.active[a.deploymentId]);
        return false;
    }
  }

  /** Writes a status back; while writes fail, pauses them with backoff (the timer retries). */
  async function report(a: Extract<Action, { type: "report-revision" | "report-deployment" }>): Promise<boolean> {
    if (now() < reportsPausedUntil) return false;
    try {
      if (a.type === "report-revision") await deps.reporter.revision(a.deploymentId, a.revisionId, a.status, redact(a.message));
      else await deps.reporter.deployment(a.deploymentId, a.status, a.activeRevisionId, redact(a.message));
    } catch (err) {
      reportErrors++;
      reportsPausedUntil = now() + Math.min(60_000, 1_000 * 2 ** Math.min(reportErrors, 6));
      logger.warn({ error: redact(err instanceof Error ? err.message : String(err)) }, "status write-back failed; will retry");
      return false;
    }
    reportErrors = 0;
    const key = a.type === "report-revision" ? `rev:${a.revisionId}` : `dep:${a.deploymentId}`;
    await store.update((s) => void (s.reported[key] = a.signature));
    return false;
  }

  function onDesired(next: DesiredDeployment[]): void {
    if (lastError) logger.info({ source: deps.source.kind }, "desired-state source reachable again");
    lastError = null;
    if (desired !== null && JSON.stringify(next) === JSON.stringify(desired)) return;
    desired = next;
    redact = redactorFor(next);
    logger.info({ source: deps.source.kind, deployments: next.map((d) => `${d.name}@${d.revisionId}`) }, "desired state changed");
    void store
      .update((s) => {
        s.sourceKey = deps.source.key;
        s.desired = next;
      })
      .catch((err: unknown) => logger.warn({ error: String(err) }, "could not persist the desired state"));
    trigger();
  }

  function onError(err: unknown, consecutive: number, retryInMs: number): void {
    const message = redact(err instanceof Error ? err.message : String(err));
    // Log the first failure and then every tenth: an outage must not flood the log.
    if (consecutive === 1 || consecutive % 10 === 0) {
      logger.warn({ source: deps.source.kind, error: message, failures: consecutive, retry_in_ms: retryInMs }, "desired-state source failed; keeping everything as it is");
    }
    lastError = message;
  }

  return {
    get state(): ListenerState {
      return state;
    },
    start(): void {
      if (state !== "created") return;
      state = "active";
      deps.driver.onChange(trigger);
      if (desired !== null) logger.info({ deployments: desired.map((d) => `${d.name}@${d.revisionId}`) }, "resuming the last desired state");
      trigger();
      poller = startPolling(deps.source, { onDesired, onError });
      timer = setInterval(trigger, deps.tickMs);
      timer.unref();
    },
    /** Stops polling and reconciling (servers keep running: the caller drains them). */
    async stop(): Promise<void> {
      if (state !== "active") return;
      state = "stopping";
      if (timer) clearInterval(timer);
      await poller?.stop();
      await running;
      state = "stopped";
    },
    /** For GET /_openplane/status: names, revisions and states; never env or secrets. */
    status() {
      return {
        state,
        source: { kind: deps.source.kind, error: lastError },
        desired: (desired ?? []).map((d) => ({ id: d.id, name: d.name, revision_id: d.revisionId, source: d.source.kind })),
        workloads: deps.driver.list(),
        routes: deps.gateway.routes().map(({ deploymentId, name, revisionId, upstream, unavailable }) => ({ deploymentId, name, revisionId, upstream, unavailable })),
        failed: store.state.failed,
      };
    },
  };
}

export type Listener = ReturnType<typeof createListener>;

function redactorFor(desired: DesiredDeployment[] | null): (text: string) => string {
  return createRedactor((desired ?? []).flatMap((d) => secretValues(d.env, d.secretNames)));
}
