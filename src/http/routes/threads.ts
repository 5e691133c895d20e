import type { Context } from "hono";
import { Hono } from "hono";
import type { z } from "zod";
import type { Thread } from "../../domain/assistant.js";
import { conflict, invalid, isAppError, notFound } from "../../domain/errors.js";
import type { RunnableGraph } from "../../graphs/registry.js";
import { uuidv7 } from "../../lib/uuid.js";
import { authorize, ensureVisible, matchesFilters } from "../authorize.js";
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
    const ifExists = b.if_exists ?? "raise";
    // The handler may stamp the value (e.g. metadata.owner): what it leaves is what is created.
    const value: Record<string, unknown> = { thread_id: threadId, metadata: { ...(b.metadata ?? {}) }, if_exists: ifExists };
    const filters = await authorize(c, "threads", "create", value);
    const metadata = (value.metadata as Record<string, unknown> | null) ?? {};
    // do_nothing hands back an existing thread: one the filters exclude stays hidden.
    const visible = (t: Thread) => {
      if (!matchesFilters(t.metadata, filters)) throw conflict(`Thread with ID ${threadId} already exists`);
      return t;
    };
    if (!b.supersteps?.length) {
      return c.json(visible(await deps.threads.create({ thread_id: threadId, metadata, if_exists: ifExists, ttl: b.ttl })));
    }
    const graphId = metadata.graph_id;
    if (typeof graphId !== "string" || !deps.graphs.ids.has(graphId)) {
      throw invalid("supersteps: need metadata.graph_id naming a graph this deployment serves");
    }
    if (ifExists === "do_nothing") {
      const existing = await deps.threads.get(threadId);
      if (existing) return c.json(visible(existing));
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
    const filters = await authorize(c, "threads", "search", {
      metadata: b.metadata ?? {},
      values: b.values ?? {},
      status: b.status ?? null,
      ids: b.ids ?? null,
      limit: b.limit,
      offset: b.offset,
    });
    const { items, total } = await c.var.deps.threads.search({ ...b, auth: filters ?? undefined });
    setPagination(c, b.offset, items.length, total);
    return c.json(items);
  });

  app.post("/threads/count", async (c) => {
    const b = await body(c, threadCountSchema);
    const filters = await authorize(c, "threads", "search", { metadata: b.metadata ?? {}, values: b.values ?? {}, status: b.status ?? null });
    return c.json(await c.var.deps.threads.count({ ...b, auth: filters ?? undefined }));
  });

  app.post("/threads/prune", async (c) => {
    const b = await body(c, threadPruneSchema);
    const deps = c.var.deps;
    const filters = await authorize(c, "threads", "delete", { thread_id: null, thread_ids: b.thread_ids, strategy: b.strategy });
    let ids = [...new Set(b.thread_ids.map((id) => id.toLowerCase()))];
    // Threads the filters exclude are treated as missing.
    if (filters) ids = (await deps.threads.search({ ids, auth: filters, limit: ids.length, offset: 0, sort_by: "thread_id", sort_order: "asc", select: ["thread_id"] })).items.map((t) => t.thread_id!);
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
    const thread = await getThread(c, "read");
    const q = query(c, threadGetQuerySchema);
    if (!q.include?.includes("ttl")) return c.json(thread);
    return c.json({ ...thread, ttl: await c.var.deps.threads.ttl(thread.thread_id) });
  });

  app.patch("/threads/:thread_id", async (c) => {
    const b = await body(c, threadPatchSchema);
    const value: Record<string, unknown> = { metadata: b.metadata ? { ...b.metadata } : b.metadata };
    const { thread_id: threadId } = await getThread(c, "update", value);
    const metadata = value.metadata as Record<string, unknown> | null | undefined;
    const updated = await c.var.deps.threads.patch(threadId, { metadata, ttl: b.ttl });
    if (!updated) throw notFound(`Thread with ID ${threadId} not found`);
    if (/return=minimal/i.test(c.req.header("Prefer") ?? "")) return c.body(null, 204);
    return c.json(updated);
  });

  app.delete("/threads/:thread_id", async (c) => {
    const { thread_id: threadId } = await getThread(c, "delete");
    if (!(await deleteThread(c.var.deps, threadId))) throw notFound(`Thread with ID ${threadId} not found`);
    return c.body(null, 204);
  });

  app.post("/threads/:thread_id/copy", async (c) => {
    const source = await getThread(c, "read");
    const deps = c.var.deps;
    const newId = uuidv7();
    // The copy is a thread creation too: it needs the create permission, and a copy the
    // caller could not see afterwards is refused (409), as the JS server does.
    const value: Record<string, unknown> = { thread_id: newId, metadata: { ...source.metadata }, if_exists: "raise" };
    const filters = await authorize(c, "threads", "create", value);
    const metadata = (value.metadata as Record<string, unknown> | null) ?? {};
    if (!matchesFilters(metadata, filters)) throw conflict(`Thread with ID ${source.thread_id} cannot be copied: the copy would not be yours`);
    const copy = await deps.threadCheckpoints.copy(source.thread_id, newId);
    if (!copy) throw notFound(`Thread with ID ${source.thread_id} not found`);
    const changed = Object.entries(metadata).some(([k, v]) => JSON.stringify(source.metadata[k]) !== JSON.stringify(v));
    return c.json(changed ? await deps.threads.patch(newId, { metadata }) : copy);
  });

  return app;
}

/** The path's thread, authorized as `threads:<action>`; one the filters exclude is "not found". */
async function getThread(c: Context, action: "read" | "update" | "delete", value: Record<string, unknown> = {}): Promise<Thread> {
  const threadId = uuidParam(c, "thread_id");
  const filters = await authorize(c, "threads", action, { ...value, thread_id: threadId });
  const thread = await c.var.deps.threads.get(threadId);
  if (!thread) throw notFound(`Thread with ID ${threadId} not found`);
  ensureVisible(filters, thread.metadata, `Thread with ID ${threadId} not found`);
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
