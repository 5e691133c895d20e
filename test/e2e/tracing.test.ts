/**
 * Tracing to self-hosted LangSmith: with LANGSMITH_RUNS_ENDPOINTS naming two
 * endpoints, every run's trace reaches both, each endpoint only ever sees its
 * own key (in its auth header), and no key appears in any trace body, in the
 * server's logs, or in /info.
 */
import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { gunzipSync } from "node:zlib";
import { serve } from "@hono/node-server";
import type { ServerType } from "@hono/node-server";
import { Hono } from "hono";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, killAll, printLogsOnFailure, startCli } from "../helpers/cli.js";
import type { CliProcess } from "../helpers/cli.js";
import { sdk, userInput } from "./support.js";

interface Received {
  method: string;
  path: string;
  apiKey: string | null;
  body: string;
}

/** A stand-in LangSmith: accepts the tracing endpoints and records what arrives. */
async function fakeLangsmith(): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const app = new Hono();
  app.get("/info", (c) => c.json({ version: "0.0.0-fake", batch_ingest_config: { size_limit_bytes: 20_000_000, size_limit: 100, scale_up_nthreads_limit: 1, scale_up_qsize_trigger: 1000, scale_down_nempty_trigger: 4 } }));
  app.all("*", async (c) => {
    const raw = Buffer.from(await c.req.arrayBuffer());
    const body = c.req.header("content-encoding") === "gzip" ? gunzipSync(raw).toString("utf8") : raw.toString("utf8");
    received.push({ method: c.req.method, path: c.req.path, apiKey: c.req.header("x-api-key") ?? null, body });
    return c.json({});
  });
  const server: ServerType = await new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

const KEY_A = "lsv2_sk_secret_for_endpoint_A_0123456789";
const KEY_B = "lsv2_sk_secret_for_endpoint_B_9876543210";

describe("tracing to two self-hosted LangSmith endpoints", () => {
  let a: Awaited<ReturnType<typeof fakeLangsmith>>;
  let b: Awaited<ReturnType<typeof fakeLangsmith>>;
  let server: CliProcess | undefined;
  printLogsOnFailure(() => [server]);

  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "openplane-tracing-"));
    [a, b] = await Promise.all([fakeLangsmith(), fakeLangsmith()]);
    server = await startCli({
      command: "serve",
      config: join(REPO_ROOT, "langgraph.json"),
      env: {
        LANGSMITH_TRACING: "true",
        LANGSMITH_RUNS_ENDPOINTS: JSON.stringify([
          { api_url: a.url, api_key: KEY_A, project_name: "project-a" },
          { api_url: b.url, api_key: KEY_B, project_name: "project-b" },
        ]),
        OPENPLANE_DATA_DIR: dataDir,
      },
    });
  });

  afterAll(async () => {
    await killAll();
    await Promise.all([a?.close(), b?.close()]);
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("sends each run's trace to both endpoints without leaking any key", async () => {
    const client = sdk(server!.url);
    const info = (await (await fetch(`${server!.url}/info`)).json()) as { flags: Record<string, boolean> };
    expect(info.flags.langsmith).toBe(true);
    expect(JSON.stringify(info)).not.toContain(KEY_A);

    const thread = await client.threads.create();
    await client.runs.wait(thread.thread_id, "agent", { input: userInput("trace me") });
    // SIGTERM flushes pending trace batches before exit.
    const exit = await server!.stop();
    expect(exit.code).toBe(0);

    for (const [endpoint, key, other, project] of [
      [a, KEY_A, KEY_B, "project-a"],
      [b, KEY_B, KEY_A, "project-b"],
    ] as const) {
      const posts = endpoint.received.filter((r) => r.method !== "GET");
      expect(posts.length).toBeGreaterThan(0);
      const bodies = posts.map((r) => r.body).join("\n");
      // The run tree arrived: the graph's root run and the node inside it, in this replica's project.
      expect(bodies).toContain('"agent"');
      expect(bodies).toContain("trace me");
      expect(bodies).toContain(project);
      // Only this endpoint's own key, and only in the auth header.
      for (const r of endpoint.received) expect(r.apiKey === null || r.apiKey === key).toBe(true);
      expect(bodies).not.toContain(KEY_A);
      expect(bodies).not.toContain(KEY_B);
      expect(bodies).not.toContain("LANGSMITH_RUNS_ENDPOINTS");
      expect(endpoint.received.some((r) => r.apiKey === other)).toBe(false);
    }
    const logs = await server!.settledLogs();
    expect(logs).not.toContain(KEY_A);
    expect(logs).not.toContain(KEY_B);
  });
});
