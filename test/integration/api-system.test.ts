import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/index.js";
import { systemAssistantId } from "../../src/domain/assistant.js";
import { createApp } from "../../src/http/app.js";
import type { TestStack } from "../helpers/app.js";
import type { TestDatabase } from "../helpers/services.js";
import type { ApiClient, Json } from "./api-support.js";
import { apiClient, apiStack } from "./api-support.js";

let db: TestDatabase;
let stack: TestStack;
let api: ApiClient;

beforeAll(async () => {
  ({ db, stack, api } = await apiStack("api_system", { worker: true }));
});
afterAll(async () => {
  await stack?.close();
  await db?.drop();
});

describe("GET /metrics", () => {
  it("serves Prometheus text: requests by route template and status, runs, queue depth, pools", async () => {
    const t = await api.json("POST", "/threads", {});
    await api.json("POST", `/threads/${t.thread_id}/runs/wait`, { assistant_id: "counter", input: {} });
    await api.fails("GET", `/threads/${randomUUID()}`, undefined, 404);
    await api.request("GET", "/no/such/route");
    const res = await api.request("GET", "/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/openplane_http_requests_total\{method="POST",route="\/threads",status="200"\} \d+/);
    expect(text).toMatch(/openplane_http_requests_total\{method="GET",route="\/threads\/:thread_id",status="404"\} 1/);
    expect(text).toMatch(/openplane_http_requests_total\{method="GET",route="unmatched",status="404"\} 1/);
    expect(text).toMatch(/openplane_http_request_duration_seconds_bucket\{le="0.1",method="POST",route="\/threads\/:thread_id\/runs\/wait",status="200"\}/);
    // Raw ids never become labels.
    expect(text).not.toContain(t.thread_id as string);
    expect(text).toMatch(/openplane_runs\{status="success"\} [1-9]/);
    expect(text).toMatch(/openplane_runs\{status="pending"\} \d+/);
    expect(text).toMatch(/openplane_run_queue_depth\{state="pending"\} \d+/);
    expect(text).toMatch(/openplane_run_queue_depth\{state="running"\} \d+/);
    expect(text).toMatch(/openplane_db_pool_connections\{pool="api",kind="max"\} 4/);
    expect(text).toMatch(/openplane_db_pool_connections\{pool="checkpointer",kind="total"\} \d+/);
    expect(text).toMatch(/openplane_process_cpu_user_seconds_total/);
  });

  it("?format=json returns the same metrics as JSON", async () => {
    const body = await api.json<Json[]>("GET", "/metrics?format=json");
    expect(body.map((m) => m.name)).toContain("openplane_runs");
  });
});

describe("GET /openapi.json and /docs", () => {
  it("is an OpenAPI 3.1 document generated from the request schemas", async () => {
    const doc = await api.json<{ openapi: string; paths: Record<string, Record<string, Json>>; components: { schemas: Record<string, Json> } }>(
      "GET",
      "/openapi.json",
    );
    expect(doc.openapi).toBe("3.1.0");
    for (const [path, method] of [
      ["/assistants", "post"],
      ["/assistants/{assistant_id}", "patch"],
      ["/assistants/{assistant_id}/versions", "post"],
      ["/threads/{thread_id}/copy", "post"],
      ["/threads/prune", "post"],
      ["/store/items", "put"],
      ["/store/namespaces", "post"],
      ["/threads/{thread_id}/runs/stream", "post"],
    ] as const) {
      expect(doc.paths[path]?.[method], `${method} ${path}`).toBeDefined();
    }
    const create = doc.paths["/assistants"]!.post as { requestBody: { content: { "application/json": { schema: Json } } } };
    const schema = create.requestBody.content["application/json"].schema as { properties: Record<string, Json>; required: string[] };
    expect(schema.properties.if_exists).toMatchObject({ enum: ["raise", "do_nothing"] });
    expect(schema.required).toEqual(["graph_id"]);
    const search = doc.paths["/assistants/search"]!.post as { requestBody: { content: { "application/json": { schema: { required?: string[]; properties: Record<string, Json> } } } } };
    // Fields with defaults are optional on the input side.
    expect(search.requestBody.content["application/json"].schema.required ?? []).not.toContain("limit");
    expect(search.requestBody.content["application/json"].schema.properties.sort_by).toMatchObject({ enum: ["assistant_id", "graph_id", "name", "created_at", "updated_at"] });
    const params = (doc.paths["/assistants/{assistant_id}/graph"]!.get as { parameters: Json[] }).parameters;
    expect(params.map((p) => `${p.in}:${p.name}`)).toEqual(["path:assistant_id", "query:xray"]);
    expect(doc.components.schemas.Assistant).toMatchObject({ type: "object" });
  });

  it("/docs is a self-contained HTML page listing the operations", async () => {
    const res = await api.request("GET", "/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/text\/html/);
    const html = await res.text();
    expect(html).toContain("/threads/{thread_id}/copy");
    expect(html).toContain('href="/openapi.json"');
    expect(html).not.toMatch(/<script|https?:\/\//);
  });
});

describe("http options", () => {
  it("MOUNT_PREFIX serves everything under the prefix, and nothing at the root", async () => {
    const prefixed = apiClient({ app: createApp({ ...stack.deps, http: { mountPrefix: "/api/v1/" } }) });
    expect(await prefixed.json("GET", "/api/v1/ok")).toEqual({ ok: true });
    expect(await prefixed.json("GET", "/api/v1/assistants/agent")).toMatchObject({ graph_id: "agent" });
    const t = await prefixed.json("POST", "/api/v1/threads", {});
    const res = await prefixed.request("POST", `/api/v1/threads/${t.thread_id}/runs`, { assistant_id: "counter", input: {} });
    expect(res.status).toBe(200);
    // Relative to the client's base URL (which includes the prefix), as the SDKs join them.
    expect(res.headers.get("Content-Location")).toMatch(new RegExp(`^/threads/${t.thread_id}/runs/[0-9a-f-]{36}$`));
    await prefixed.fails("GET", "/ok", undefined, 404);
    await prefixed.fails("GET", "/api/v1/nope", undefined, 404);
    const doc = await prefixed.json<{ servers: Json[] }>("GET", "/api/v1/openapi.json");
    expect(doc.servers).toEqual([{ url: "/api/v1" }]);
    expect(await (await prefixed.request("GET", "/api/v1/docs")).text()).toContain('href="/api/v1/openapi.json"');
  });

  it("CORS: any origin by default, exposing the run and pagination headers", async () => {
    const res = await stack.app.request("/assistants/search", { method: "POST", headers: { Origin: "https://studio.example", "Content-Type": "text/plain" }, body: "{}" });
    expect(res.status).toBe(200);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe("*");
    const exposed = (res.headers.get("Access-Control-Expose-Headers") ?? "").toLowerCase().split(/,\s*/);
    expect(exposed).toEqual(expect.arrayContaining(["content-location", "location", "x-pagination-total", "x-pagination-next"]));
    const pre = await stack.app.request("/threads", {
      method: "OPTIONS",
      headers: { Origin: "https://studio.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-api-key" },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("Access-Control-Allow-Methods")).toContain("PATCH");
  });

  it("CORS_ALLOW_ORIGINS limits origins; credentials and private network when enabled", async () => {
    const app = createApp({
      ...stack.deps,
      http: { corsAllowOrigins: ["https://a.example"], corsAllowCredentials: true, allowPrivateNetwork: true },
    });
    const ok = await app.request("/ok", { headers: { Origin: "https://a.example" } });
    expect(ok.headers.get("Access-Control-Allow-Origin")).toBe("https://a.example");
    expect(ok.headers.get("Access-Control-Allow-Credentials")).toBe("true");
    const other = await app.request("/ok", { headers: { Origin: "https://b.example" } });
    expect(other.headers.get("Access-Control-Allow-Origin")).toBeNull();
    const pre = await app.request("/ok", {
      method: "OPTIONS",
      headers: { Origin: "https://a.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Private-Network": "true" },
    });
    expect(pre.headers.get("Access-Control-Allow-Private-Network")).toBe("true");
  });
});

describe("configuration", () => {
  it("reads MOUNT_PREFIX, CORS_ALLOW_ORIGINS, CORS_ALLOW_CREDENTIALS, ALLOW_PRIVATE_NETWORK, OPENPLANE_ENABLE_TRUNCATE", () => {
    expect(loadConfig({}).http).toEqual({
      mountPrefix: "",
      corsAllowOrigins: ["*"],
      corsAllowCredentials: false,
      allowPrivateNetwork: false,
      enableTruncate: false,
    });
    const c = loadConfig({
      MOUNT_PREFIX: "/api/v1",
      CORS_ALLOW_ORIGINS: "https://a.example, http://localhost:3000",
      CORS_ALLOW_CREDENTIALS: "true",
      ALLOW_PRIVATE_NETWORK: "1",
      OPENPLANE_ENABLE_TRUNCATE: "yes",
    });
    expect(c.http).toEqual({
      mountPrefix: "/api/v1",
      corsAllowOrigins: ["https://a.example", "http://localhost:3000"],
      corsAllowCredentials: true,
      allowPrivateNetwork: true,
      enableTruncate: true,
    });
  });

  it("rejects bad values, naming the variable", () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig(env);
        return [];
      } catch (err) {
        return (err as ConfigError).problems;
      }
    };
    expect(problems({ MOUNT_PREFIX: "/a b" })).toEqual([expect.stringMatching(/^MOUNT_PREFIX: /)]);
    expect(problems({ CORS_ALLOW_ORIGINS: "a.example" })).toEqual([expect.stringMatching(/^CORS_ALLOW_ORIGINS: /)]);
    expect(problems({ OPENPLANE_ENABLE_TRUNCATE: "sure" })).toEqual([expect.stringMatching(/^OPENPLANE_ENABLE_TRUNCATE: /)]);
  });
});

describe("POST /internal/truncate", () => {
  it("is 404 unless enabled", async () => {
    await api.fails("POST", "/internal/truncate", { threads: true }, 404);
    expect(await stack.sql`SELECT 1 FROM thread LIMIT 1`).toHaveLength(1);
  });

  it("empties what it is asked to; keeps system assistants; accepts checkpoint or checkpointer", async () => {
    const admin = apiClient({ app: createApp({ ...stack.deps, http: { enableTruncate: true } }) });
    const t = await admin.json("POST", "/threads", {});
    await admin.json("POST", `/threads/${t.thread_id}/runs/wait`, { assistant_id: "counter", input: {} });
    await admin.json("POST", "/assistants", { graph_id: "agent" });
    await admin.json("PATCH", "/assistants/counter", { metadata: { created_by: "someone" } });
    expect((await admin.request("PUT", "/store/items", { namespace: ["n"], key: "k", value: {} })).status).toBe(204);

    await admin.fails("POST", "/internal/truncate", { threads: "yes" }, 422, /threads/);
    expect(await admin.json("POST", "/internal/truncate", { runs: true })).toEqual({ ok: true });
    expect((await stack.sql`SELECT count(*)::int AS n FROM run`)[0]!.n).toBe(0);
    expect((await stack.sql`SELECT count(*)::int AS n FROM thread`)[0]!.n).toBeGreaterThan(0);

    expect(await admin.json("POST", "/internal/truncate", { threads: true, assistants: true, checkpoint: true, store: true })).toEqual({ ok: true });
    const count = async (table: "thread" | "checkpoints" | "checkpoint_writes" | "checkpoint_blobs" | "store_item") =>
      (await stack.sql`SELECT count(*)::int AS n FROM ${stack.sql(table)}`)[0]!.n;
    for (const table of ["thread", "checkpoints", "checkpoint_writes", "checkpoint_blobs", "store_item"] as const) expect(await count(table)).toBe(0);
    const left = await stack.sql<{ assistant_id: string }[]>`SELECT assistant_id FROM assistant ORDER BY assistant_id`;
    expect(left.map((r) => r.assistant_id).sort()).toEqual(["agent", "counter", "memory", "nested"].map(systemAssistantId).sort());
  });
});
