import type { Context } from "hono";
import { Hono } from "hono";
import { conflict, notFound } from "../../domain/errors.js";
import { isTerminal } from "../../domain/run.js";
import type { Run } from "../../domain/run.js";
import type { Subscription } from "../../stream/bus.js";
import { toJson } from "../../stream/serialize.js";
import { authorize, ensureVisible, matchesFilters } from "../authorize.js";
import type { AppDeps } from "../deps.js";
import { createRunAuthorized } from "../run-auth.js";
import type { PreparedRun } from "../run-create.js";
import { prepareRun, runPath } from "../run-create.js";
import {
  bulkCancelQuerySchema,
  bulkCancelSchema,
  cancelQuerySchema,
  joinQuerySchema,
  runBatchSchema,
  runCreateStatefulSchema,
  runCreateStatelessSchema,
} from "../schemas.js";
import { cancelRuns } from "../run-cancel.js";
import { sseResponse, streamBody } from "../sse.js";
import { body, query, uuidParam } from "../validate.js";

/** Thread runs (`/threads/:thread_id/runs...`) and stateless runs (`/runs...`). */
export function runRoutes(): Hono {
  const app = new Hono();

  // ---- stateful -------------------------------------------------------------------------
  app.post("/threads/:thread_id/runs", async (c) => {
    const threadId = uuidParam(c, "thread_id");
    const b = await body(c, runCreateStatefulSchema);
    const run = await createAs(c, prepareRun(threadId), b);
    c.header("Content-Location", runPath(run, false));
    return c.json(run);
  });

  app.post("/threads/:thread_id/runs/stream", async (c) => {
    const threadId = uuidParam(c, "thread_id");
    return streamNewRun(c, threadId, await body(c, runCreateStatefulSchema));
  });

  app.post("/threads/:thread_id/runs/wait", async (c) => {
    const threadId = uuidParam(c, "thread_id");
    return waitNewRun(c, threadId, await body(c, runCreateStatefulSchema));
  });

  app.get("/threads/:thread_id/runs", async (c) => {
    const threadId = uuidParam(c, "thread_id");
    const deps = c.var.deps;
    const filters = await authorize(c, "threads", "search", { thread_id: threadId, metadata: {}, status: null });
    const thread = await deps.threads.get(threadId);
    if (!thread) throw notFound(`Thread with ID ${threadId} not found`);
    ensureVisible(filters, thread.metadata, `Thread with ID ${threadId} not found`);
    const limit = Math.min(1000, Math.max(1, Number(c.req.query("limit") ?? 10) || 10));
    const offset = Math.max(0, Number(c.req.query("offset") ?? 0) || 0);
    return c.json(await deps.runs.list(threadId, limit, offset));
  });

  app.get("/threads/:thread_id/runs/:run_id", async (c) => {
    const run = await getRun(c, uuidParam(c, "thread_id"));
    return c.json(run);
  });

  app.get("/threads/:thread_id/runs/:run_id/join", async (c) => {
    const run = await getRun(c, uuidParam(c, "thread_id"));
    return joinRun(c, run, false);
  });

  app.get("/threads/:thread_id/runs/:run_id/stream", async (c) => {
    const run = await getRun(c, uuidParam(c, "thread_id"));
    return joinStream(c, run, false);
  });

  app.post("/threads/:thread_id/runs/:run_id/cancel", async (c) => {
    const q = query(c, cancelQuerySchema);
    const run = await getRun(c, uuidParam(c, "thread_id"), "update", { action: q.action });
    const deps = c.var.deps;
    // Subscribe first so the end of the run cannot slip past a waiting caller.
    const sub = q.wait ? await deps.bus.subscribe(run.run_id, {}) : null;
    try {
      await cancelRuns(deps, [run.run_id], q.action);
      if (!sub) return c.body(null, 202);
      await stopIfEnded(c, run, sub);
      for await (const _ of sub) {
        // drain until the run's stream ends
      }
      return c.body(null, 204);
    } finally {
      await sub?.close();
    }
  });

  app.delete("/threads/:thread_id/runs/:run_id", async (c) => {
    const threadId = uuidParam(c, "thread_id");
    const runId = uuidParam(c, "run_id");
    const deps = c.var.deps;
    const filters = await authorize(c, "threads", "delete", { thread_id: threadId, run_id: runId });
    if (filters) ensureVisible(filters, (await deps.threads.get(threadId))?.metadata, `Run ${runId} not found`);
    const result = await deps.runs.delete(threadId, runId);
    if (result === "missing") throw notFound(`Run ${runId} not found`);
    if (result === "active") throw conflict(`Run ${runId} is still pending or running: cancel it first`);
    await deps.checkpoints.deleteForRun(threadId, runId);
    return c.body(null, 204);
  });

  // ---- stateless ------------------------------------------------------------------------
  app.post("/runs/batch", async (c) => {
    const items = await body(c, runBatchSchema);
    const deps = c.var.deps;
    // Validated as a whole first, then created one by one (each is its own transaction).
    const runs = [];
    for (const item of items) runs.push(await createRunAuthorized(deps, c.get("auth") ?? null, prepareRun(null), item));
    return c.json(runs);
  });

  app.post("/runs/cancel", async (c) => {
    const q = query(c, bulkCancelQuerySchema);
    const filter = await body(c, bulkCancelSchema);
    const deps = c.var.deps;
    const filters = await authorize(c, "threads", "update", {
      thread_id: "thread_id" in filter ? filter.thread_id : null,
      action: q.action,
      metadata: "run_ids" in filter ? { run_ids: filter.run_ids } : { status: filter.status },
    });
    const ids = await visibleRuns(deps, await deps.runs.activeIds(filter), filters);
    if (ids.length === 0 && "run_ids" in filter) throw notFound("No matching runs found");
    await cancelRuns(deps, ids, q.action);
    return c.body(null, 204);
  });

  app.post("/runs", async (c) => {
    const b = await body(c, runCreateStatelessSchema);
    const run = await createAs(c, prepareRun(null), b);
    c.header("Content-Location", runPath(run, true));
    return c.json(run);
  });

  app.post("/runs/stream", async (c) => streamNewRun(c, null, await body(c, runCreateStatelessSchema)));
  app.post("/runs/wait", async (c) => waitNewRun(c, null, await body(c, runCreateStatelessSchema)));

  app.get("/runs/:run_id/stream", async (c) => joinStream(c, await getRun(c, null), true));
  app.get("/runs/:run_id/join", async (c) => joinRun(c, await getRun(c, null), true));

  return app;
}

/** Creates a run as the request's user (authorization, then the shared creation path). */
const createAs = (c: Context, prepared: PreparedRun, b: Parameters<typeof createRunAuthorized>[3], opts?: { startHere?: boolean }) =>
  createRunAuthorized(c.var.deps, c.get("auth") ?? null, prepared, b, opts);

/** A run, authorized as `threads:<action>` on its thread: one the filters exclude is "not found". */
async function getRun(c: Context, threadId: string | null, action: "read" | "update" = "read", extra: Record<string, unknown> = {}): Promise<Run> {
  const runId = uuidParam(c, "run_id");
  const filters = await authorize(c, "threads", action, { thread_id: threadId, run_id: runId, ...extra });
  const run = await c.var.deps.runs.get(threadId, runId);
  if (!run) throw notFound(`Run ${runId} not found`);
  if (filters) ensureVisible(filters, (await c.var.deps.threads.get(run.thread_id))?.metadata, `Run ${runId} not found`);
  return run;
}

/** The runs among `ids` whose thread the filters let through. */
async function visibleRuns(deps: AppDeps, ids: string[], filters: Awaited<ReturnType<typeof authorize>>): Promise<string[]> {
  if (!filters) return ids;
  const out: string[] = [];
  const seen = new Map<string, boolean>();
  for (const id of ids) {
    const run = await deps.runs.get(null, id);
    if (!run) continue;
    let ok = seen.get(run.thread_id);
    if (ok === undefined) {
      ok = matchesFilters((await deps.threads.get(run.thread_id))?.metadata, filters);
      seen.set(run.thread_id, ok);
    }
    if (ok) out.push(id);
  }
  return out;
}

/** Subscribes to the run's stream before inserting it, so the first event (metadata) cannot be missed. */
async function createSubscribed(c: Context, threadId: string | null, b: Parameters<typeof createRunAuthorized>[3], live: boolean) {
  const deps = c.var.deps;
  const minted = prepareRun(threadId);
  // The id was minted just now and the run is not inserted yet: nothing to catch up from its log.
  // The subscription is made while the request is checked; the insert waits for it.
  const subscribing = deps.bus.subscribe(minted.run_id, { after: "-1", fresh: true, live });
  // Observed here too: it may fail before the creation awaits it (e.g. during the assistant read).
  subscribing.catch(() => {});
  const prepared = { ...minted, ready: subscribing };
  try {
    // The caller sees the run's output, not its row: it may start in this process at insert.
    const run = await createAs(c, prepared, b, { startHere: true });
    return { run, sub: await subscribing, path: runPath(run, prepared.stateless) };
  } catch (err) {
    await subscribing.then((sub) => sub.close(), () => {});
    throw err;
  }
}

async function streamNewRun(c: Context, threadId: string | null, b: Parameters<typeof createRunAuthorized>[3]) {
  const deps = c.var.deps;
  const { run, sub, path } = await createSubscribed(c, threadId, b, true);
  return sseResponse(c, sub, {
    headers: { "Content-Location": path, Location: `${path}/stream` },
    heartbeatMs: deps.sseHeartbeatMs,
    shutdown: deps.shutdown,
    onDisconnect: b.on_disconnect === "cancel" ? () => cancelOnLeave(deps, run.run_id) : undefined,
  });
}

async function waitNewRun(c: Context, threadId: string | null, b: Parameters<typeof createRunAuthorized>[3]) {
  const { run, sub, path } = await createSubscribed(c, threadId, b, false);
  c.header("Content-Location", path);
  c.header("Location", `${path}/join`);
  return waitBody(c, run, sub, b.on_disconnect === "cancel");
}

async function joinStream(c: Context, run: Run, stateless: boolean) {
  const deps = c.var.deps;
  const q = query(c, joinQuerySchema);
  const lastEventId = c.req.header("Last-Event-ID") ?? undefined;
  const sub = await deps.bus.subscribe(run.run_id, { after: lastEventId, live: true });
  await stopIfEnded(c, run, sub);
  const path = runPath(run, stateless);
  return sseResponse(c, sub, {
    headers: { "Content-Location": path, Location: `${path}/stream` },
    heartbeatMs: deps.sseHeartbeatMs,
    shutdown: deps.shutdown,
    onDisconnect: q.cancel_on_disconnect ? () => cancelOnLeave(deps, run.run_id) : undefined,
  });
}

async function joinRun(c: Context, run: Run, stateless: boolean) {
  const deps = c.var.deps;
  const q = query(c, joinQuerySchema);
  const sub = await deps.bus.subscribe(run.run_id, {});
  await stopIfEnded(c, run, sub);
  const path = runPath(run, stateless);
  c.header("Content-Location", path);
  c.header("Location", `${path}/join`);
  return waitBody(c, run, sub, q.cancel_on_disconnect ?? false);
}

/** A run that already ended in Postgres will publish nothing more: deliver what the log holds, then stop. */
async function stopIfEnded(c: Context, run: Run, sub: Subscription) {
  const fresh = await c.var.deps.runs.get(run.thread_id, run.run_id);
  if (!fresh || isTerminal(fresh.status)) sub.drainAndStop();
}

/**
 * The /wait and /join body: whitespace keep-alives while the run executes, then the final
 * state values, or `{"__error__": ...}` if the run failed. The headers go at once (the SDKs
 * learn the run from Content-Location, and the Python one reconnects through Location).
 */
function waitBody(c: Context, run: Run, sub: Subscription, cancelOnDisconnect: boolean) {
  const deps = c.var.deps;
  c.header("Content-Type", "application/json");
  return streamBody(c, async (s) => {
    let answered = false;
    s.onAbort(() => {
      if (!answered && cancelOnDisconnect) cancelOnLeave(deps, run.run_id);
      void sub.close();
    });
    const onShutdown = () => void sub.close();
    deps.shutdown.addEventListener("abort", onShutdown, { once: true });
    const keepAlive = setInterval(() => void s.write("\n"), deps.sseHeartbeatMs);
    try {
      const answer = await waitAnswer(deps, run, sub);
      answered = true;
      await s.write(answer);
    } finally {
      clearInterval(keepAlive);
      deps.shutdown.removeEventListener("abort", onShutdown);
      // Not awaited: the response ends now, the unsubscribe round trip follows.
      sub.close().catch(() => {});
    }
  });
}

/**
 * on_disconnect=cancel: the run is interrupted as by POST .../cancel, durably (one still
 * pending behind another run of its thread never starts), never throwing from a callback.
 */
function cancelOnLeave(deps: AppDeps, runId: string): void {
  cancelRuns(deps, [runId], "interrupt").catch((err: unknown) => deps.logger.warn({ err, run_id: runId }, "cancel on disconnect failed"));
}

/** What /wait and /join answer once the run's stream ended. */
async function waitAnswer(deps: AppDeps, run: Run, sub: Subscription): Promise<string> {
  let lastValues: string | null = null;
  let interrupt: string | null = null;
  let error: string | null = null;
  for await (const ev of sub) {
    if (ev.event === "values") {
      // A run that stops at an interrupt ends with {"__interrupt__": [...]}: merged into the values below.
      if (ev.data.startsWith('{"__interrupt__":')) interrupt = ev.data;
      else lastValues = ev.data;
    } else if (ev.event === "error") error = ev.data;
  }
  if (error) return `{"__error__":${error}}`;
  if (lastValues && interrupt) return JSON.stringify({ ...(JSON.parse(lastValues) as object), ...(JSON.parse(interrupt) as object) });
  if (lastValues ?? interrupt) return (lastValues ?? interrupt)!;
  const thread = await deps.threads.get(run.thread_id);
  return toJson(thread?.values ?? {});
}
