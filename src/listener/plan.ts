/**
 * plan(desired, actual) → actions: the whole reconcile decision as a pure
 * function (no clock, no I/O: `actual.now` is an input). The reconciler calls
 * it on every change and on a timer, applies the actions, and calls it again;
 * applying the same plan twice is harmless, because every action is either
 * idempotent or derived from state it changes.
 *
 * Rules, per desired deployment:
 * - a managed database is created before anything starts;
 * - the target revision is started unless it runs or is known to have failed;
 *   image revisions fail at once (the process driver cannot run them);
 * - traffic goes to the target once it is healthy, else stays with whatever
 *   healthy revision serves now; the others are stopped (drained) only after
 *   the gateway points at the target;
 * - without Redis (`exclusive`), two servers cannot share the database: the
 *   old one is stopped first and the gateway holds requests meanwhile;
 * - statuses are written back when they change (signatures in `reported`).
 * Deployments that are no longer desired are stopped and unrouted; a database
 * we created is dropped only after the retention period.
 */
import { databaseFor } from "./database-name.js";
import type {
  Action,
  ActualState,
  DeploymentStatus,
  DesiredDeployment,
  PlanOptions,
  RevisionStatus,
  RouteSpec,
  WorkloadStatus,
} from "./types.js";

export const IMAGE_NOT_SUPPORTED =
  "image revisions (image_uri) are not supported by the process driver; give the revision a source directory or tarball";

export function plan(desired: readonly DesiredDeployment[], actual: ActualState, opts: PlanOptions): Action[] {
  const out: Action[] = [];
  for (const d of desired) planDeployment(d, actual, opts, out);
  planRemoved(new Set(desired.map((d) => d.id)), actual, opts, out);
  return out;
}

function planDeployment(d: DesiredDeployment, actual: ActualState, opts: PlanOptions, out: Action[]): void {
  const target = d.revisionId;
  const all = actual.workloads.filter((w) => w.deploymentId === d.id);
  const live = all.filter((w) => w.state !== "stopping");
  const route = actual.routes.find((r) => r.deploymentId === d.id) ?? null;

  if (actual.drops.some((x) => x.deploymentId === d.id)) out.push({ type: "cancel-drop", deploymentId: d.id });

  const db = databaseFor(d);
  if (db.kind === "managed" && !actual.databases[d.id]) {
    out.push({ type: "ensure-database", deploymentId: d.id, database: db.name });
    reportDeployment(d.id, "AWAITING_DATABASE", null, "creating the database", actual, out);
    setRoute(routeFor(d, null, null), route, out);
    return;
  }

  const current = live.find((w) => w.revisionId === target) ?? null;
  let failure = actual.failed[target] ?? null;
  if (!failure && d.source.kind === "image") failure = markFailed(target, IMAGE_NOT_SUPPORTED, out);
  if (!failure && d.source.kind === "unsupported") failure = markFailed(target, d.source.reason, out);
  if (!failure && current?.state === "failed") failure = markFailed(target, current.message ?? "the server failed", out);

  const healthy = live.filter((w) => w.state === "healthy");
  const serving =
    healthy.find((w) => w.revisionId === target) ?? healthy.find((w) => w.revisionId === route?.revisionId) ?? healthy[0] ?? null;

  const stops: Action[] = [];
  const stop = (w: WorkloadStatus, reason: string) =>
    stops.push({ type: "stop", deploymentId: d.id, revisionId: w.revisionId, reason });

  if (failure) {
    reportRevision(d.id, target, "DEPLOY_FAILED", failure, actual, out);
    if (current) stop(current, "the revision failed");
    startFallback(d, all, actual, opts, out);
  } else if (!current) {
    const others = all.filter((w) => w.revisionId !== target);
    if (opts.exclusive.has(d.id) && others.length > 0) {
      // One server per database without Redis: drain the old one first; the gateway holds requests.
      for (const w of others) if (w.state !== "stopping") stop(w, `replaced by revision ${target}`);
    } else {
      out.push({ type: "start", deployment: d });
    }
    reportRevision(d.id, target, "DEPLOYING", "", actual, out);
  } else if (current.state === "healthy") {
    reportRevision(d.id, target, "DEPLOYED", "", actual, out);
    if (actual.active[d.id]?.revisionId !== target) out.push({ type: "remember-active", deployment: d });
    for (const w of live) if (w.revisionId !== target) stop(w, `replaced by revision ${target}`);
  } else {
    reportRevision(d.id, target, "DEPLOYING", current.message ?? "", actual, out);
  }

  // Route before the stops: the gateway must point at the new server before the old one drains.
  const exclusiveHandover = opts.exclusive.has(d.id) && !current && !failure;
  const upstream = exclusiveHandover ? null : serving;
  // With nothing serving, hold requests while some server of the deployment may still come up.
  const recovering = live.some((w) => w.revisionId !== target && (w.state === "starting" || w.state === "restarting"));
  const unavailable = !upstream && failure && !recovering ? `revision ${target} failed: ${failure}` : null;
  setRoute(routeFor(d, upstream, unavailable), route, out);
  out.push(...stops);

  if (upstream) reportDeployment(d.id, "READY", upstream.revisionId, "", actual, out);
  else if (unavailable) reportDeployment(d.id, "UNKNOWN", null, `no revision is serving: ${failure}`, actual, out);
}

function planRemoved(desiredIds: Set<string>, actual: ActualState, opts: PlanOptions, out: Action[]): void {
  for (const w of actual.workloads) {
    if (!desiredIds.has(w.deploymentId) && w.state !== "stopping") {
      out.push({ type: "stop", deploymentId: w.deploymentId, revisionId: w.revisionId, reason: "deployment deleted" });
    }
  }
  for (const r of actual.routes) if (!desiredIds.has(r.deploymentId)) out.push({ type: "remove-route", deploymentId: r.deploymentId });
  for (const id of Object.keys(actual.active)) if (!desiredIds.has(id)) out.push({ type: "forget-active", deploymentId: id });
  for (const [deploymentId, { name }] of Object.entries(actual.databases)) {
    if (desiredIds.has(deploymentId)) continue;
    const drop = actual.drops.find((x) => x.deploymentId === deploymentId);
    if (!drop) out.push({ type: "schedule-drop", drop: { deploymentId, database: name, dropAt: actual.now + opts.retentionMs } });
    else if (drop.dropAt <= actual.now && !actual.workloads.some((w) => w.deploymentId === deploymentId)) {
      out.push({ type: "drop-database", deploymentId, database: name });
    }
  }
}

/**
 * The target failed and the last good revision is not running (without Redis it
 * was drained to make room, or it crashed for good): start it again, so a bad
 * revision never leaves the deployment without a server.
 */
function startFallback(d: DesiredDeployment, all: WorkloadStatus[], actual: ActualState, opts: PlanOptions, out: Action[]): void {
  const fallback = actual.active[d.id];
  if (!fallback || fallback.revisionId === d.revisionId || actual.failed[fallback.revisionId]) return;
  if (all.some((w) => w.revisionId === fallback.revisionId)) return;
  if (opts.exclusive.has(d.id) && all.length > 0) return; // wait until the failed one is gone
  out.push({ type: "start", deployment: { ...fallback, name: d.name, hosts: d.hosts, root: d.root } });
}

function markFailed(revisionId: string, message: string, out: Action[]): string {
  out.push({ type: "mark-failed", revisionId, message });
  return message;
}

function routeFor(d: DesiredDeployment, upstream: WorkloadStatus | null, unavailable: string | null): RouteSpec {
  return {
    deploymentId: d.id,
    name: d.name,
    hosts: [...d.hosts],
    root: d.root,
    revisionId: upstream?.revisionId ?? null,
    upstream: upstream?.url ?? null,
    unavailable,
  };
}

function setRoute(next: RouteSpec, current: RouteSpec | null, out: Action[]): void {
  if (current && sameRoute(current, next)) return;
  out.push({ type: "set-route", route: next });
}

const sameRoute = (a: RouteSpec, b: RouteSpec) =>
  a.name === b.name &&
  a.root === b.root &&
  a.revisionId === b.revisionId &&
  a.upstream === b.upstream &&
  a.unavailable === b.unavailable &&
  a.hosts.join(",") === b.hosts.join(",");

function reportRevision(
  deploymentId: string,
  revisionId: string,
  status: RevisionStatus,
  message: string,
  actual: ActualState,
  out: Action[],
): void {
  const signature = `${status}|${message}`;
  if (actual.reported[`rev:${revisionId}`] === signature) return;
  out.push({ type: "report-revision", deploymentId, revisionId, status, message, signature });
}

function reportDeployment(
  deploymentId: string,
  status: DeploymentStatus,
  activeRevisionId: string | null,
  message: string,
  actual: ActualState,
  out: Action[],
): void {
  const signature = `${status}|${activeRevisionId ?? ""}`;
  if (actual.reported[`dep:${deploymentId}`] === signature) return;
  out.push({ type: "report-deployment", deploymentId, status, activeRevisionId, message, signature });
}
