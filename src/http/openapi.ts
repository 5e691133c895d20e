import { z } from "zod";
import * as s from "./schemas.js";

/**
 * The OpenAPI 3.1 document of the routes this server implements, generated
 * from the same zod schemas that validate requests (z.toJSONSchema, input
 * side: fields with defaults are optional), so the document cannot drift
 * from validation.
 */

type Method = "get" | "post" | "put" | "patch" | "delete";

interface Operation {
  method: Method;
  path: string;
  tag: string;
  summary: string;
  body?: z.ZodType;
  query?: z.ZodObject;
  /** Component name of the 200 response body, or a status → description map. */
  returns?: string;
  status?: number;
  array?: boolean;
}

const json = z.record(z.string(), z.unknown());
const nullableString = z.string().nullable();

/** Response objects, as the API returns them. */
const components: Record<string, z.ZodType> = {
  Assistant: z.object({
    assistant_id: z.string(),
    graph_id: z.string(),
    config: json,
    context: json,
    metadata: json,
    name: z.string(),
    description: nullableString,
    version: z.number().int(),
    created_at: z.string(),
    updated_at: z.string(),
  }),
  Thread: z.object({
    thread_id: z.string(),
    created_at: z.string(),
    updated_at: z.string(),
    state_updated_at: z.string(),
    metadata: json,
    config: json,
    status: z.enum(["idle", "busy", "interrupted", "error"]),
    values: json.nullable(),
    interrupts: z.record(z.string(), z.array(z.unknown())),
    error: z.unknown(),
  }),
  ThreadState: z.object({
    values: z.unknown(),
    next: z.array(z.string()),
    tasks: z.array(json),
    checkpoint: json.nullable(),
    metadata: json.nullable(),
    created_at: nullableString,
    parent_checkpoint: json.nullable(),
    interrupts: z.array(z.unknown()),
  }),
  Run: z.object({
    run_id: z.string(),
    thread_id: z.string(),
    assistant_id: z.string(),
    created_at: z.string(),
    updated_at: z.string(),
    status: z.enum(["pending", "running", "success", "error", "timeout", "interrupted"]),
    metadata: json,
    kwargs: json,
    multitask_strategy: z.string(),
  }),
  Item: z.object({
    namespace: z.array(z.string()),
    key: z.string(),
    value: json,
    created_at: z.string(),
    updated_at: z.string(),
  }),
  Cron: z.object({
    cron_id: z.string(),
    assistant_id: z.string(),
    thread_id: nullableString,
    on_run_completed: z.enum(["delete", "keep"]).nullable(),
    end_time: nullableString,
    schedule: z.string(),
    timezone: nullableString,
    created_at: z.string(),
    updated_at: z.string(),
    payload: json,
    user_id: nullableString,
    next_run_date: nullableString,
    metadata: json,
    enabled: z.boolean(),
  }),
  ErrorResponse: z.object({ detail: z.string() }),
};

const assistant = "/assistants/{assistant_id}";
const thread = "/threads/{thread_id}";
const run = "/threads/{thread_id}/runs/{run_id}";

const OPERATIONS: Operation[] = [
  { method: "post", path: "/assistants", tag: "Assistants", summary: "Create an assistant", body: s.assistantCreateSchema, returns: "Assistant" },
  { method: "post", path: "/assistants/search", tag: "Assistants", summary: "Search assistants", body: s.assistantSearchSchema, returns: "Assistant", array: true },
  { method: "post", path: "/assistants/count", tag: "Assistants", summary: "Count assistants", body: s.assistantCountSchema },
  { method: "get", path: assistant, tag: "Assistants", summary: "Get an assistant (or a graph's system assistant)", returns: "Assistant" },
  { method: "patch", path: assistant, tag: "Assistants", summary: "Patch an assistant (creates a new version)", body: s.assistantPatchSchema, returns: "Assistant" },
  { method: "delete", path: assistant, tag: "Assistants", summary: "Delete an assistant", query: s.assistantDeleteQuerySchema, status: 204 },
  { method: "post", path: `${assistant}/versions`, tag: "Assistants", summary: "List versions, newest first", body: s.assistantVersionsSchema, returns: "Assistant", array: true },
  { method: "post", path: `${assistant}/latest`, tag: "Assistants", summary: "Make a version the latest", body: s.assistantLatestSchema, returns: "Assistant" },
  { method: "get", path: `${assistant}/graph`, tag: "Assistants", summary: "Drawable graph", query: s.graphQuerySchema },
  { method: "get", path: `${assistant}/schemas`, tag: "Assistants", summary: "JSON schemas of the graph" },
  { method: "get", path: `${assistant}/subgraphs`, tag: "Assistants", summary: "Schemas of the subgraphs", query: s.subgraphsQuerySchema },
  { method: "get", path: `${assistant}/subgraphs/{namespace}`, tag: "Assistants", summary: "Schemas of one subgraph", query: s.subgraphsQuerySchema },

  { method: "post", path: "/threads", tag: "Threads", summary: "Create a thread", body: s.threadCreateSchema, returns: "Thread" },
  { method: "post", path: "/threads/search", tag: "Threads", summary: "Search threads", body: s.threadSearchSchema, returns: "Thread", array: true },
  { method: "post", path: "/threads/count", tag: "Threads", summary: "Count threads", body: s.threadCountSchema },
  { method: "post", path: "/threads/prune", tag: "Threads", summary: "Delete threads or keep only their latest checkpoint", body: s.threadPruneSchema },
  { method: "get", path: thread, tag: "Threads", summary: "Get a thread", query: s.threadGetQuerySchema, returns: "Thread" },
  { method: "patch", path: thread, tag: "Threads", summary: "Patch a thread (metadata merge, TTL)", body: s.threadPatchSchema, returns: "Thread" },
  { method: "delete", path: thread, tag: "Threads", summary: "Delete a thread, its runs and checkpoints", status: 204 },
  { method: "post", path: `${thread}/copy`, tag: "Threads", summary: "Copy a thread with its checkpoints", returns: "Thread" },
  { method: "get", path: `${thread}/state`, tag: "Threads", summary: "Current state", query: s.stateQuerySchema, returns: "ThreadState" },
  { method: "post", path: `${thread}/state`, tag: "Threads", summary: "Update the state", body: s.updateStateSchema },
  { method: "get", path: `${thread}/state/{checkpoint_id}`, tag: "Threads", summary: "State at a checkpoint", query: s.stateQuerySchema, returns: "ThreadState" },
  { method: "post", path: `${thread}/state/checkpoint`, tag: "Threads", summary: "State at a checkpoint (subgraphs)", body: s.stateAtCheckpointSchema, returns: "ThreadState" },
  { method: "post", path: `${thread}/history`, tag: "Threads", summary: "State history, newest first", body: s.historySchema, returns: "ThreadState", array: true },
  { method: "get", path: `${thread}/history`, tag: "Threads", summary: "State history, newest first", returns: "ThreadState", array: true },
  { method: "get", path: `${thread}/stream`, tag: "Threads", summary: "SSE of every run on the thread (stream_mode run_modes | lifecycle | state_update; Last-Event-ID resumes)" },

  { method: "post", path: `${thread}/runs`, tag: "Thread runs", summary: "Create a background run", body: s.runCreateStatefulSchema, returns: "Run" },
  { method: "post", path: `${thread}/runs/stream`, tag: "Thread runs", summary: "Create a run and stream it (SSE)", body: s.runCreateStatefulSchema },
  { method: "post", path: `${thread}/runs/wait`, tag: "Thread runs", summary: "Create a run and wait for its result", body: s.runCreateStatefulSchema },
  { method: "get", path: `${thread}/runs`, tag: "Thread runs", summary: "List a thread's runs", returns: "Run", array: true },
  { method: "get", path: run, tag: "Thread runs", summary: "Get a run", returns: "Run" },
  { method: "delete", path: run, tag: "Thread runs", summary: "Delete a finished run", status: 204 },
  { method: "get", path: `${run}/join`, tag: "Thread runs", summary: "Wait for a run's result" },
  { method: "get", path: `${run}/stream`, tag: "Thread runs", summary: "Join a run's stream (Last-Event-ID resumes)", query: s.joinQuerySchema },
  { method: "post", path: `${run}/cancel`, tag: "Thread runs", summary: "Cancel a run", query: s.cancelQuerySchema, status: 202 },

  { method: "post", path: "/runs", tag: "Stateless runs", summary: "Create a stateless background run", body: s.runCreateStatelessSchema, returns: "Run" },
  { method: "post", path: "/runs/stream", tag: "Stateless runs", summary: "Create a stateless run and stream it", body: s.runCreateStatelessSchema },
  { method: "post", path: "/runs/wait", tag: "Stateless runs", summary: "Create a stateless run and wait", body: s.runCreateStatelessSchema },
  { method: "post", path: "/runs/batch", tag: "Stateless runs", summary: "Create several stateless runs", body: s.runBatchSchema, returns: "Run", array: true },
  { method: "post", path: "/runs/cancel", tag: "Stateless runs", summary: "Cancel runs by status or ids", body: s.bulkCancelSchema, query: s.bulkCancelQuerySchema, status: 204 },
  { method: "get", path: "/runs/{run_id}/stream", tag: "Stateless runs", summary: "Join a run's stream" },
  { method: "get", path: "/runs/{run_id}/join", tag: "Stateless runs", summary: "Wait for a run's result" },

  { method: "post", path: "/runs/crons", tag: "Crons", summary: "Create a stateless cron (a new thread per run)", body: s.cronCreateSchema, returns: "Cron" },
  { method: "post", path: `${thread}/runs/crons`, tag: "Crons", summary: "Create a cron on a thread", body: s.cronCreateSchema, returns: "Cron" },
  { method: "get", path: "/runs/crons/{cron_id}", tag: "Crons", summary: "Get a cron", returns: "Cron" },
  { method: "patch", path: "/runs/crons/{cron_id}", tag: "Crons", summary: "Patch a cron (end_time null clears it)", body: s.cronPatchSchema, returns: "Cron" },
  { method: "delete", path: "/runs/crons/{cron_id}", tag: "Crons", summary: "Delete a cron", status: 204 },
  { method: "post", path: "/runs/crons/search", tag: "Crons", summary: "Search crons", body: s.cronSearchSchema, returns: "Cron", array: true },
  { method: "post", path: "/runs/crons/count", tag: "Crons", summary: "Count crons", body: s.cronCountSchema },

  { method: "put", path: "/store/items", tag: "Store", summary: "Put an item", body: s.storePutSchema, status: 204 },
  { method: "get", path: "/store/items", tag: "Store", summary: "Get an item (null when missing)", query: s.storeGetQuerySchema, returns: "Item" },
  { method: "delete", path: "/store/items", tag: "Store", summary: "Delete an item", body: s.storeDeleteSchema, status: 204 },
  { method: "post", path: "/store/items/search", tag: "Store", summary: "Search items under a namespace prefix", body: s.storeSearchSchema },
  { method: "post", path: "/store/namespaces", tag: "Store", summary: "List namespaces", body: s.storeNamespacesSchema },

  { method: "get", path: "/ok", tag: "System", summary: "Health check (check_db=1 also checks Postgres)" },
  { method: "get", path: "/info", tag: "System", summary: "Server version and feature flags" },
  { method: "get", path: "/metrics", tag: "System", summary: "Prometheus metrics (format=json for JSON)" },
  { method: "get", path: "/openapi.json", tag: "System", summary: "This document" },
  { method: "get", path: "/docs", tag: "System", summary: "API reference page" },
];

const toSchema = (schema: z.ZodType): Record<string, unknown> => {
  const out = z.toJSONSchema(schema, { io: "input", unrepresentable: "any", target: "draft-2020-12" }) as Record<string, unknown>;
  delete out.$schema;
  return out;
};

const pathParams = (path: string) =>
  [...path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: "path", required: true, schema: { type: "string" } }));

function queryParams(q: z.ZodObject | undefined) {
  if (!q) return [];
  const props = (toSchema(q).properties ?? {}) as Record<string, unknown>;
  return Object.keys(q.shape).map((name) => ({ name, in: "query", required: false, schema: props[name] ?? {} }));
}

const errorResponse = (description: string) => ({
  description,
  content: { "application/json": { schema: { $ref: "#/components/schemas/ErrorResponse" } } },
});

function operationObject(op: Operation) {
  const success: Record<string, unknown> = { description: op.status === 204 ? "No content" : op.status === 202 ? "Accepted" : "OK" };
  if (op.returns && !op.status) {
    const ref = { $ref: `#/components/schemas/${op.returns}` };
    success.content = { "application/json": { schema: op.array ? { type: "array", items: ref } : ref } };
  }
  return {
    tags: [op.tag],
    summary: op.summary,
    operationId: `${op.method}_${op.path.replace(/[{}]/g, "").replace(/[^a-zA-Z0-9]+/g, "_").replace(/^_|_$/g, "")}`,
    parameters: [...pathParams(op.path), ...queryParams(op.query)],
    ...(op.body ? { requestBody: { required: true, content: { "application/json": { schema: toSchema(op.body) } } } } : {}),
    responses: {
      [String(op.status ?? 200)]: success,
      "404": errorResponse("Not found"),
      "409": errorResponse("Conflict"),
      "422": errorResponse("Validation error: the detail names the field"),
    },
  };
}

let cached: Record<string, unknown> | null = null;

/** The document; `serverUrl` is the mount prefix ("/" when none). */
export function openApiDocument(version: string, serverUrl: string): Record<string, unknown> {
  cached ??= (() => {
    const paths: Record<string, Record<string, unknown>> = {};
    for (const op of OPERATIONS) (paths[op.path] ??= {})[op.method] = operationObject(op);
    return {
      openapi: "3.1.0",
      info: { title: "openplane — LangGraph Agent Server API", version },
      paths,
      components: { schemas: Object.fromEntries(Object.entries(components).map(([k, v]) => [k, toSchema(v)])) },
    };
  })();
  return { ...cached, info: { ...(cached.info as object), version }, servers: [{ url: serverUrl }] };
}

export const operations = (): readonly Operation[] => OPERATIONS;

const escapeHtml = (t: string) => t.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** A self-contained reference page (no external scripts or styles). */
export function docsPage(version: string, specUrl: string): string {
  const tags = [...new Set(OPERATIONS.map((o) => o.tag))];
  const section = (tag: string) => {
    const rows = OPERATIONS.filter((o) => o.tag === tag)
      .map((o) => {
        const detail = o.body ? `<details><summary>request body</summary><pre>${escapeHtml(JSON.stringify(toSchema(o.body), null, 2))}</pre></details>` : "";
        return `<tr><td class="m ${o.method}">${o.method.toUpperCase()}</td><td><code>${escapeHtml(o.path)}</code></td><td>${escapeHtml(o.summary)}${detail}</td></tr>`;
      })
      .join("\n");
    return `<h2>${escapeHtml(tag)}</h2>\n<table>${rows}</table>`;
  };
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>openplane API ${escapeHtml(version)}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%}td{border-bottom:1px solid #eee;padding:.35rem;vertical-align:top}
td.m{font-weight:600;width:5rem}.get{color:#0a6}.post{color:#06c}.put{color:#a60}.patch{color:#a0a}.delete{color:#c00}
pre{background:#f6f6f6;padding:.5rem;overflow:auto;font-size:.8rem}
</style></head><body>
<h1>openplane — LangGraph Agent Server API</h1>
<p>Version ${escapeHtml(version)}. Machine-readable: <a href="${escapeHtml(specUrl)}">openapi.json</a>. Errors are JSON <code>{"detail": "..."}</code>.</p>
${tags.map(section).join("\n")}
</body></html>`;
}
