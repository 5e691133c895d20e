import type { Context } from "hono";
import { Hono } from "hono";
import type { Thread } from "../../domain/assistant.js";
import { notFound } from "../../domain/errors.js";
import type { StateSnapshotLike } from "../../graphs/registry.js";
import { uuidv7 } from "../../lib/uuid.js";
import { toPlain } from "../../stream/serialize.js";
import { stateQuerySchema, threadCreateSchema, threadSearchSchema } from "../schemas.js";
import { body, query, setPagination, uuidParam } from "../validate.js";

export function threadRoutes(): Hono {
  const app = new Hono();

  app.post("/threads", async (c) => {
    const b = await body(c, threadCreateSchema);
    const thread = await c.var.deps.threads.create({
      thread_id: b.thread_id?.toLowerCase() ?? uuidv7(),
      metadata: b.metadata ?? {},
      if_exists: b.if_exists ?? "raise",
    });
    return c.json(thread);
  });

  app.post("/threads/search", async (c) => {
    const b = await body(c, threadSearchSchema);
    const { items, total } = await c.var.deps.threads.search(b);
    setPagination(c, b.offset, items.length, total);
    return c.json(items);
  });

  app.get("/threads/:thread_id", async (c) => c.json(await getThread(c)));

  app.delete("/threads/:thread_id", async (c) => {
    const deps = c.var.deps;
    const threadId = uuidParam(c, "thread_id");
    const running = await deps.runs.running(threadId);
    if (!(await deps.threads.delete(threadId))) throw notFound(`Thread with ID ${threadId} not found`);
    await Promise.all(running.map((id) => deps.bus.sendControl(id, "interrupt")));
    await deps.deleteCheckpoints(threadId);
    return c.body(null, 204);
  });

  app.get("/threads/:thread_id/state", async (c) => {
    const thread = await getThread(c);
    const q = query(c, stateQuerySchema);
    return c.json(await readState(c, thread, q.subgraphs ?? false));
  });

  return app;
}

async function getThread(c: Context): Promise<Thread> {
  const threadId = uuidParam(c, "thread_id");
  const thread = await c.var.deps.threads.get(threadId);
  if (!thread) throw notFound(`Thread with ID ${threadId} not found`);
  return thread;
}

/** ThreadState as the official server returns it (api.md §2.2). */
async function readState(c: Context, thread: Thread, subgraphs: boolean) {
  const graphId = thread.metadata.graph_id;
  if (typeof graphId !== "string" || !c.var.deps.graphs.ids.has(graphId)) {
    return { values: {}, next: [], tasks: [], checkpoint: null, metadata: null, created_at: null, parent_checkpoint: null, interrupts: [] };
  }
  const config = { configurable: { thread_id: thread.thread_id } };
  const { graph } = await c.var.deps.graphs.get(graphId, config);
  return formatState(await graph.getState(config, { subgraphs }));
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
