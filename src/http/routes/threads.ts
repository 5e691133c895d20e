import type { Context } from "hono";
import { Hono } from "hono";
import type { z } from "zod";
import type { Thread } from "../../domain/assistant.js";
import { invalid, isAppError, notFound } from "../../domain/errors.js";
import type { RunnableGraph } from "../../graphs/registry.js";
import { uuidv7 } from "../../lib/uuid.js";
import type { AppDeps } from "../deps.js";
import {
  threadCountSchema,
  threadCreateSchema,
  threadGetQuerySchema,
  threadPatchSchema,
  threadPruneSchema,
  threadSearchSchema,
} from "../schemas.js";
import { deleteThread } from "../thread-delete.js";
import { body, query, setPagination, uuidParam } from "../validate.js";
import { cacheState } from "./thread-state.js";

type Supersteps = NonNullable<z.output<typeof threadCreateSchema>["supersteps"]>;

/** Threads as resources: create, read, patch, delete, search, count, copy, prune. */
export function threadRoutes(): Hono {
  const app = new Hono();

  app.post("/threads", async (c) => {
    const b = await body(c, threadCreateSchema);
    const deps = c.var.deps;
    const threadId = b.thread_id?.toLowerCase() ?? uuidv7();
    const metadata = b.metadata ?? {};
    const ifExists = b.if_exists ?? "raise";
    if (!b.supersteps?.length) {
      return c.json(await deps.threads.create({ thread_id: threadId, metadata, if_exists: ifExists, ttl: b.ttl }));
    }
    const graphId = metadata.graph_id;
    if (typeof graphId !== "string" || !deps.graphs.ids.has(graphId)) {
      throw invalid("supersteps: need metadata.graph_id naming a graph this deployment serves");
    }
    if (ifExists === "do_nothing") {
      const existing = await deps.threads.get(threadId);
      if (existing) return c.json(existing);
    }
    await deps.threads.create({ thread_id: threadId, metadata, if_exists: ifExists, ttl: b.ttl });
    try {
      await applySupersteps(deps, graphId, threadId, b.supersteps);
    } catch (err) {
      // Nothing stays behind from a rejected request.
      await deleteThread(deps, threadId);
      if (isAppError(err)) throw err;
      throw invalid(`supersteps: ${(err as Error).message}`);
    }
    return c.json(await deps.threads.get(threadId));
  });

  app.post("/threads/search", async (c) => {
    const b = await body(c, threadSearchSchema);
    const { items, total } = await c.var.deps.threads.search(b);
    setPagination(c, b.offset, items.length, total);
    return c.json(items);
  });

  app.post("/threads/count", async (c) => {
    const b = await body(c, threadCountSchema);
    return c.json(await c.var.deps.threads.count(b));
  });

  app.post("/threads/prune", async (c) => {
    const b = await body(c, threadPruneSchema);
    const deps = c.var.deps;
    const ids = [...new Set(b.thread_ids.map((id) => id.toLowerCase()))];
    let pruned = 0;
    if (b.strategy === "delete") {
      for (const id of ids) if (await deleteThread(deps, id)) pruned += 1;
    } else {
      const existing = await deps.threads.existing(ids);
      await deps.threadCheckpoints.keepLatest(existing);
      pruned = existing.length;
    }
    return c.json({ pruned_count: pruned });
  });

  app.get("/threads/:thread_id", async (c) => {
    const thread = await getThread(c);
    const q = query(c, threadGetQuerySchema);
    if (!q.include?.includes("ttl")) return c.json(thread);
    return c.json({ ...thread, ttl: await c.var.deps.threads.ttl(thread.thread_id) });
  });

  app.patch("/threads/:thread_id", async (c) => {
    const threadId = uuidParam(c, "thread_id");
    const b = await body(c, threadPatchSchema);
    const updated = await c.var.deps.threads.patch(threadId, { metadata: b.metadata, ttl: b.ttl });
    if (!updated) throw notFound(`Thread with ID ${threadId} not found`);
    if (/return=minimal/i.test(c.req.header("Prefer") ?? "")) return c.body(null, 204);
    return c.json(updated);
  });

  app.delete("/threads/:thread_id", async (c) => {
    const threadId = uuidParam(c, "thread_id");
    if (!(await deleteThread(c.var.deps, threadId))) throw notFound(`Thread with ID ${threadId} not found`);
    return c.body(null, 204);
  });

  app.post("/threads/:thread_id/copy", async (c) => {
    const threadId = uuidParam(c, "thread_id");
    const copy = await c.var.deps.threadCheckpoints.copy(threadId, uuidv7());
    if (!copy) throw notFound(`Thread with ID ${threadId} not found`);
    return c.json(copy);
  });

  return app;
}

async function getThread(c: Context): Promise<Thread> {
  const threadId = uuidParam(c, "thread_id");
  const thread = await c.var.deps.threads.get(threadId);
  if (!thread) throw notFound(`Thread with ID ${threadId} not found`);
  return thread;
}

interface BulkUpdatable {
  bulkUpdateState?: (config: Record<string, unknown>, supersteps: Array<{ updates: Array<{ values?: unknown; asNode?: string }> }>) => Promise<unknown>;
}

/**
 * Applies `supersteps` to a new thread: with the graph's bulkUpdateState when
 * it has one (each superstep becomes one checkpoint), else one updateState
 * per update. A `command` is built with the graph's own Command class.
 */
async function applySupersteps(deps: AppDeps, graphId: string, threadId: string, supersteps: Supersteps): Promise<void> {
  const config = { configurable: { thread_id: threadId } };
  const { graph, runtime } = await deps.graphs.get(graphId, config);
  const steps = supersteps.map((s) => ({
    updates: s.updates.map((u) => ({
      values: u.command ? new runtime.Command(u.command as Record<string, unknown>) : u.values,
      asNode: u.as_node,
    })),
  }));
  const bulk = graph as RunnableGraph & BulkUpdatable;
  if (typeof bulk.bulkUpdateState === "function") {
    await bulk.bulkUpdateState(config, steps);
  } else {
    for (const step of steps) for (const u of step.updates) await graph.updateState(config, u.values, u.asNode);
  }
  await cacheState(deps, graph, threadId);
}
