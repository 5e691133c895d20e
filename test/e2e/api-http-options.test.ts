/**
 * The HTTP options reach the server through the environment: `openplane up`
 * with MOUNT_PREFIX, CORS_ALLOW_ORIGINS and OPENPLANE_ENABLE_TRUNCATE, driven
 * by the official SDK through the prefixed base URL.
 */
import { join } from "node:path";
import type { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, killAll, printLogsOnFailure, startCli } from "../helpers/cli.js";
import type { CliProcess } from "../helpers/cli.js";
import { createTestDatabase } from "../helpers/services.js";
import type { TestDatabase } from "../helpers/services.js";
import { sdk } from "./support.js";

const CONFIG = join(REPO_ROOT, "test/fixtures/api-graphs/langgraph.json");

describe("openplane up with MOUNT_PREFIX, CORS_ALLOW_ORIGINS and OPENPLANE_ENABLE_TRUNCATE", () => {
  let db: TestDatabase | undefined;
  let server: CliProcess | undefined;
  let client: Client;
  let base: string;

  beforeAll(async () => {
    db = await createTestDatabase("e2e_api_http");
    server = await startCli({
      command: "up",
      config: CONFIG,
      env: {
        POSTGRES_URI: db.uri,
        N_JOBS_PER_WORKER: "2",
        MOUNT_PREFIX: "/lg/",
        CORS_ALLOW_ORIGINS: "https://a.example, https://b.example",
        OPENPLANE_ENABLE_TRUNCATE: "true",
      },
      // GET /ok is under the prefix, so wait for the log line instead.
      readyWhen: /openplane is serving/,
    });
    base = `${server.url}/lg`;
    client = sdk(base);
  });

  afterAll(async () => {
    await killAll();
    await db?.drop();
  });

  printLogsOnFailure(() => [server]);

  it("serves under the prefix only", async () => {
    expect((await fetch(`${base}/ok`)).status).toBe(200);
    expect((await fetch(`${server!.url}/ok`)).status).toBe(404);
    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as { servers: Array<{ url: string }> };
    expect(doc.servers).toEqual([{ url: "/lg" }]);
  });

  it("the SDK works through the prefixed base URL", async () => {
    const schemas = await client.assistants.getSchemas("nested");
    expect(schemas.state_schema).toMatchObject({ properties: { topic: { type: "string" } } });
    const thread = await client.threads.create({ metadata: { e2e: true } });
    const values = await client.runs.wait(thread.thread_id, "counter", { input: { count: 1 } });
    expect(values).toMatchObject({ count: 4 });
    const copy = await client.threads.copy(thread.thread_id);
    expect((await client.threads.getState(copy.thread_id)).values).toMatchObject({ count: 4 });
    await client.store.putItem(["e2e"], "k", { v: 1 });
    expect(await client.store.getItem(["e2e"], "k")).toMatchObject({ value: { v: 1 } });
  });

  it("CORS allows the configured origins only", async () => {
    const ok = await fetch(`${base}/info`, { headers: { Origin: "https://b.example" } });
    expect(ok.headers.get("access-control-allow-origin")).toBe("https://b.example");
    const other = await fetch(`${base}/info`, { headers: { Origin: "https://evil.example" } });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("metrics count the requests by route template", async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/openplane_http_requests_total\{method="POST",route="\/lg\/threads\/:thread_id\/runs\/wait",status="200"\} 1/);
    expect(text).toMatch(/openplane_runs\{status="success"\} 1/);
  });

  it("truncate is enabled and keeps the system assistants", async () => {
    const res = await fetch(`${base}/internal/truncate`, { method: "POST", body: JSON.stringify({ threads: true, assistants: true, checkpointer: true, store: true }) });
    expect(res.status).toBe(200);
    expect(await client.threads.search()).toEqual([]);
    expect(await client.store.getItem(["e2e"], "k")).toBeNull();
    expect((await client.assistants.search()).map((a) => a.graph_id).sort()).toEqual(["agent", "counter", "memory", "nested"]);
  });
});
