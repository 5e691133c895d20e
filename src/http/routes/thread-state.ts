import type { Context } from "hono";
import { Hono } from "hono";
import type { z } from "zod";
import type { Thread } from "../../domain/assistant.js";
import { badRequest, conflict, notFound } from "../../domain/errors.js";
import type { RunnableGraph, StateSnapshotLike } from "../../graphs/registry.js";
import { toPlain } from "../../stream/serialize.js";
import { publishThreadEvent } from "../../stream/thread-stream.js";
import { authorize, ensureVisible } from "../authorize.js";
import type { AppDeps } from "../deps.js";
import { historySchema, stateAtCheckpointSchema, stateQuerySchema, updateStateSchema } from "../schemas.js";
import { body, query, uuidParam } from "../validate.js";

/** A thread's state and history (`/threads/:thread_id/state...`, `/threads/:thread_id/history`). */
export function threadStateRoutes(): Hono {
  const app = new Hono();

  app.get("/threads/:thread_id/state", async (c) => {
    const thread = await getThread(c);
    const q = query(c, stateQuerySchema);
    return c.json(await readState(c, thread, q.subgraphs ?? false));
  });

  app.get("/threads/:thread_id/state/:checkpoint_id", async (c) => {
    const thread = await getThread(c);
    const checkpointId = uuidParam(c, "checkpoint_id");
    const q = query(c, stateQuerySchema);
    return c.json(await readState(c, thread, q.subgraphs ?? false, { checkpoint_id: checkpointId }));
  });

  app.post("/threads/:thread_id/state/checkpoint", async (c) => {
    const thread = await getThread(c);
    const b = await body(c, stateAtCheckpointSchema);
    return c.json(await readState(c, thread, b.subgraphs ?? false, checkpointConfigurable(b.checkpoint)));
  });

  app.post("/threads/:thread_id/state", async (c) => {
    const thread = await getThread(c, "update");
    const b = await body(c, updateStateSchema);
    const deps = c.var.deps;
    if (await deps.threads.isBusy(thread.thread_id)) throw conflict("Thread is busy with a run: wait for it or cancel it first");
    const graph = await graphFor(c, thread);
    if (!graph) throw badRequest(`Thread ${thread.thread_id} has no graph yet: run it once, or create it with metadata.graph_id`);
    const config = {
      configurable: {
        thread_id: thread.thread_id,
        ...(b.checkpoint ? checkpointConfigurable(b.checkpoint) : {}),
        ...(b.checkpoint_id ? { checkpoint_id: b.checkpoint_id } : {}),
      },
    };
    const next = await graph.updateState(config, b.values ?? null, b.as_node);
    const values = await cacheState(deps, graph, thread.thread_id);
    await publishThreadEvent(deps.bus, thread.thread_id, "state_update", { values }).catch((err) =>
      deps.logger.warn({ err, thread_id: thread.thread_id }, "thread stream publish failed"),
    );
    return c.json({ checkpoint: checkpointOf(next as StateSnapshotLike["config"]) });
  });

  app.post("/threads/:thread_id/history", async (c) => {
    const thread = await getThread(c);
    const b = await body(c, historySchema);
    return c.json(await readHistory(c, thread, b));
  });

  app.get("/threads/:thread_id/history", async (c) => {
    const thread = await getThread(c);
    const limit = Math.min(1000, Math.max(1, Number(c.req.query("limit") ?? 10) || 10));
    const before = c.req.query("before");
    return c.json(await readHistory(c, thread, { limit, before: before || null, metadata: null, checkpoint: null }));
  });

  return app;
}

type HistoryQuery = z.output<typeof historySchema>;

async function readHistory(c: Context, thread: Thread, q: HistoryQuery) {
  const graph = await graphFor(c, thread);
  if (!graph) return [];
  const before =
    q.before == null ? undefined : typeof q.before === "string" ? { checkpoint_id: q.before } : "configurable" in q.before ? q.before.configurable : q.before;
  const config = { configurable: { thread_id: thread.thread_id, ...(q.checkpoint ? checkpointConfigurable(q.checkpoint) : {}) } };
  const out: Record<string, unknown>[] = [];
  for await (const s of graph.getStateHistory(config, {
    limit: q.limit,
    before: before ? { configurable: { thread_id: thread.thread_id, ...checkpointConfigurable(before as Record<string, unknown>) } } : undefined,
    filter: q.metadata ?? undefined,
  })) {
    out.push(formatState(s));
  }
  return out;
}

/** Only the keys that address a checkpoint, without nulls. */
function checkpointConfigurable(cp: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of ["checkpoint_id", "checkpoint_ns", "checkpoint_map"]) if (cp[k] != null) out[k] = cp[k];
  return out;
}

function interruptsByTask(s: StateSnapshotLike): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const t of s.tasks ?? []) if (t.interrupts?.length) out[t.id] = toPlain(t.interrupts);
  return out;
}

/** The graph a thread runs (`metadata.graph_id`), or null before its first run. */
export async function graphFor(c: Context, thread: Thread): Promise<RunnableGraph | null> {
  const graphId = thread.metadata.graph_id;
  if (typeof graphId !== "string" || !c.var.deps.graphs.ids.has(graphId)) return null;
  return (await c.var.deps.graphs.get(graphId, { configurable: { thread_id: thread.thread_id } })).graph;
}

/** Caches the thread's current values and interrupts on its row (after a direct state update). */
export async function cacheState(deps: AppDeps, graph: RunnableGraph, threadId: string): Promise<Record<string, unknown>> {
  const state = await graph.getState({ configurable: { thread_id: threadId } });
  const summary = formatState(state);
  const values = summary.values as Record<string, unknown>;
  await deps.threads.setState(threadId, {
    values,
    interrupts: interruptsByTask(state),
    hasPendingNext: (state.next ?? []).length > 0,
  });
  return values;
}

/** The path's thread, authorized as `threads:<action>`; one the filters exclude is "not found". */
async function getThread(c: Context, action: "read" | "update" = "read"): Promise<Thread> {
  const threadId = uuidParam(c, "thread_id");
  const filters = await authorize(c, "threads", action, { thread_id: threadId });
  const thread = await c.var.deps.threads.get(threadId);
  if (!thread) throw notFound(`Thread with ID ${threadId} not found`);
  ensureVisible(filters, thread.metadata, `Thread with ID ${threadId} not found`);
  return thread;
}

/** ThreadState as the official server returns it (api.md §2.2); a thread that never ran has an empty state. */
async function readState(c: Context, thread: Thread, subgraphs: boolean, at: Record<string, unknown> = {}) {
  const graph = await graphFor(c, thread);
  if (!graph) {
    return { values: {}, next: [], tasks: [], checkpoint: null, metadata: null, created_at: null, parent_checkpoint: null, interrupts: [] };
  }
  return formatState(await graph.getState({ configurable: { thread_id: thread.thread_id, ...at } }, { subgraphs }));
}

const checkpointOf = (cfg: StateSnapshotLike["config"]) => {
  const conf = cfg?.configurable;
  if (!conf?.checkpoint_id) return null;
  return {
    thread_id: conf.thread_id,
    checkpoint_ns: conf.checkpoint_ns ?? "",
    checkpoint_id: conf.checkpoint_id,
    checkpoint_map: conf.checkpoint_map ?? null,
  };
};

export function formatState(s: StateSnapshotLike): Record<string, unknown> {
  const metadata = s.metadata ? { ...s.metadata } : null;
  if (metadata) delete metadata.checkpoint_ns;
  const tasks = (s.tasks ?? []).map((t) => ({
    id: t.id,
    name: t.name,
    path: t.path ?? [],
    error: t.error ? String((t.error as Error).message ?? t.error) : null,
    interrupts: t.interrupts ?? [],
    checkpoint: null,
    state: t.state ? formatState(t.state as StateSnapshotLike) : null,
    result: t.result ?? null,
  }));
  return toPlain({
    values: s.values ?? {},
    next: s.next ?? [],
    tasks,
    checkpoint: checkpointOf(s.config),
    metadata,
    created_at: s.createdAt ?? null,
    parent_checkpoint: checkpointOf(s.parentConfig),
    interrupts: tasks.flatMap((t) => t.interrupts),
  });
}
