import type { Context } from "hono";
import { Hono } from "hono";
import type { Assistant } from "../../domain/assistant.js";
import { systemAssistantId } from "../../domain/assistant.js";
import { conflict, invalid, notFound } from "../../domain/errors.js";
import { drawableGraph, graphSchemas, subgraphsOf } from "../../graphs/introspect.js";
import { isUuid } from "../../lib/uuid.js";
import { authorize, ensureVisible, matchesFilters } from "../authorize.js";
import {
  assistantCountSchema,
  assistantCreateSchema,
  assistantDeleteQuerySchema,
  assistantLatestSchema,
  assistantPatchSchema,
  assistantSearchSchema,
  assistantVersionsSchema,
  graphQuerySchema,
  subgraphsQuerySchema,
} from "../schemas.js";
import { deleteThread } from "../thread-delete.js";
import { body, query, setPagination } from "../validate.js";

export function assistantRoutes(): Hono {
  const app = new Hono();

  app.post("/assistants", async (c) => {
    const b = await body(c, assistantCreateSchema);
    const deps = c.var.deps;
    requireGraph(c, b.graph_id);
    // The handler may stamp the value (e.g. metadata.owner): what it leaves is what is created.
    const value = {
      assistant_id: b.assistant_id?.toLowerCase() ?? crypto.randomUUID(),
      graph_id: b.graph_id,
      config: b.config ?? {},
      context: b.context ?? {},
      metadata: { ...(b.metadata ?? {}) },
      if_exists: b.if_exists ?? "raise",
      name: b.name ?? "Untitled",
      description: b.description ?? null,
    };
    const filters = await authorize(c, "assistants", "create", value);
    const assistant = await deps.assistants.create({ ...value, metadata: value.metadata ?? {} });
    // do_nothing hands back an existing assistant: one the filters exclude stays hidden.
    if (!matchesFilters(assistant.metadata, filters)) throw conflict(`Assistant ${value.assistant_id} already exists`);
    return c.json(assistant);
  });

  app.post("/assistants/search", async (c) => {
    const b = await body(c, assistantSearchSchema);
    const filters = await authorize(c, "assistants", "search", {
      graph_id: b.graph_id ?? null,
      metadata: b.metadata ?? {},
      name: b.name ?? null,
      limit: b.limit,
      offset: b.offset,
    });
    const { items, total } = await c.var.deps.assistants.search({ ...b, auth: filters ?? undefined });
    setPagination(c, b.offset, items.length, total);
    return c.json(items);
  });

  app.post("/assistants/count", async (c) => {
    const b = await body(c, assistantCountSchema);
    const filters = await authorize(c, "assistants", "search", { graph_id: b.graph_id ?? null, metadata: b.metadata ?? {}, name: b.name ?? null });
    return c.json(await c.var.deps.assistants.count({ ...b, auth: filters ?? undefined }));
  });

  app.get("/assistants/:assistant_id", async (c) => c.json(await getAssistant(c)));

  app.patch("/assistants/:assistant_id", async (c) => {
    const b = await body(c, assistantPatchSchema);
    const value: Record<string, unknown> = { ...b, metadata: b.metadata ? { ...b.metadata } : b.metadata };
    const current = await getAssistant(c, "update", value);
    if (b.graph_id !== undefined) requireGraph(c, b.graph_id);
    const updated = await c.var.deps.assistants.patch(current.assistant_id, {
      graph_id: b.graph_id,
      config: b.config ?? undefined,
      context: b.context ?? undefined,
      metadata: (value.metadata as Record<string, unknown> | null | undefined) ?? undefined,
      name: b.name ?? undefined,
      description: b.description,
    });
    if (!updated) throw notFound("Assistant not found");
    return c.json(updated);
  });

  app.delete("/assistants/:assistant_id", async (c) => {
    const deps = c.var.deps;
    const q = query(c, assistantDeleteQuerySchema);
    const id = (await getAssistant(c, "delete")).assistant_id;
    if (!(await deps.assistants.delete(id))) throw notFound("Assistant not found");
    if (q.delete_threads) {
      for (const threadId of await deps.threads.idsForAssistant(id)) await deleteThread(deps, threadId);
    }
    return c.body(null, 204);
  });

  app.post("/assistants/:assistant_id/versions", async (c) => {
    const deps = c.var.deps;
    const b = await body(c, assistantVersionsSchema);
    const id = assistantIdOf(c);
    const filters = await authorize(c, "assistants", "read", { assistant_id: id });
    const current = await deps.assistants.get(id);
    if (!current) throw notFound("Assistant not found");
    ensureVisible(filters, current.metadata, "Assistant not found");
    // Older versions are filtered too: a version the filters exclude does not leak.
    return c.json(await deps.assistants.versions(id, { ...b, auth: filters ?? undefined }));
  });

  app.post("/assistants/:assistant_id/latest", async (c) => {
    const deps = c.var.deps;
    const b = await body(c, assistantLatestSchema);
    const id = (await getAssistant(c, "update", { version: b.version })).assistant_id;
    const updated = await deps.assistants.setLatest(id, b.version);
    if (updated) return c.json(updated);
    if (!(await deps.assistants.get(id))) throw notFound("Assistant not found");
    throw notFound(`Assistant ${id} has no version ${b.version}`);
  });

  app.get("/assistants/:assistant_id/graph", async (c) => {
    const q = query(c, graphQuerySchema);
    const graph = await graphOf(c, await getAssistant(c));
    return c.json(await drawableGraph(graph, q.xray ?? false));
  });

  app.get("/assistants/:assistant_id/schemas", async (c) => {
    const assistant = await getAssistant(c);
    const graph = await graphOf(c, assistant);
    return c.json({ graph_id: assistant.graph_id, ...(await graphSchemas(graph, graphFile(c, assistant.graph_id))) });
  });

  const subgraphs = async (c: Context, namespace: string | undefined) => {
    const q = query(c, subgraphsQuerySchema);
    const assistant = await getAssistant(c);
    const graph = await graphOf(c, assistant);
    const file = graphFile(c, assistant.graph_id);
    const out: Record<string, unknown> = {};
    for (const [ns, sub] of await subgraphsOf(graph, namespace, q.recurse ?? false)) {
      const s = await graphSchemas(sub, file);
      // Both key sets: the official server's (`*_schema`) and the JS server's (api.md §2.1).
      out[ns] = { ...s, input: s.input_schema, output: s.output_schema, state: s.state_schema, config: s.config_schema };
    }
    return c.json(out);
  };
  app.get("/assistants/:assistant_id/subgraphs", (c) => subgraphs(c, undefined));
  app.get("/assistants/:assistant_id/subgraphs/:namespace", (c) => subgraphs(c, c.req.param("namespace")));

  return app;
}

/** The path's assistant id; a graph id maps to that graph's system assistant (official: neither → 422). */
function assistantIdOf(c: Context): string {
  const raw = c.req.param("assistant_id") ?? "";
  if (c.var.deps.graphs.ids.has(raw)) return systemAssistantId(raw);
  if (!isUuid(raw)) throw invalid(`Invalid assistant ID "${raw}": must be a UUID or a graph ID`);
  return raw.toLowerCase();
}

/** The path's assistant, authorized as `assistants:<action>`; one the filters exclude is "not found". */
async function getAssistant(c: Context, action: "read" | "update" | "delete" = "read", value: Record<string, unknown> = {}): Promise<Assistant> {
  const id = assistantIdOf(c);
  const filters = await authorize(c, "assistants", action, { ...value, assistant_id: id });
  const found = await c.var.deps.assistants.get(id);
  if (!found) throw notFound("Assistant not found");
  ensureVisible(filters, found.metadata, "Assistant not found");
  return found;
}

function requireGraph(c: Context, graphId: string): void {
  if (!c.var.deps.graphs.ids.has(graphId)) throw notFound(`Graph "${graphId}" not found: it is not served by this deployment`);
}

async function graphOf(c: Context, assistant: Assistant): Promise<unknown> {
  requireGraph(c, assistant.graph_id);
  const { graph } = await c.var.deps.graphs.get(assistant.graph_id, {
    configurable: { ...((assistant.config.configurable as Record<string, unknown> | undefined) ?? {}), ...assistant.context },
  });
  return graph;
}

const graphFile = (c: Context, graphId: string): string | null =>
  c.var.deps.graphs.entries.find((e) => e.graphId === graphId)?.file ?? null;
