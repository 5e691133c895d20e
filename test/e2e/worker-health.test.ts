/**
 * `openplane worker` serves its own health endpoint on --port / --host: /ok is
 * 200 while the worker is active (`?check_db=1` also reaches PostgreSQL and
 * Redis), a taken port fails start-up with the API's message, and on SIGTERM
 * /ok answers 503 while the worker drains an in-flight run, before it exits 0
 * with the run finished.
 */
import { request } from "node:http";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import type { Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, killAll, printLogsOnFailure, runCli, startCli } from "../helpers/cli.js";
import type { CliProcess } from "../helpers/cli.js";
import { freePort } from "../helpers/ports.js";
import { createTestDatabase, hasRedis, redisSkipReason, redisUri, uniquePrefix } from "../helpers/services.js";
import type { TestDatabase } from "../helpers/services.js";
import { sdk } from "./support.js";

const SLOW_GRAPH = join(REPO_ROOT, "test", "fixtures", "slow", "graph.ts");

/** GET `path` on a brand-new connection: the status, or the connection error's code. */
function probe(url: string, path: string): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = request(`${url}${path}`, { agent: false, timeout: 5_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "TIMEOUT" })));
    req.end();
  });
}

const title = "openplane worker health endpoint";

describe.skipIf(!hasRedis())(hasRedis() ? title : `${title} (skipped: ${redisSkipReason() ?? "no Redis"})`, () => {
  let db: TestDatabase | undefined;
  let dir: string | undefined;
  let config: string;
  let env: Record<string, string>;
  let worker: CliProcess | undefined;
  let api: CliProcess | undefined;
  let client: Client;

  beforeAll(async () => {
    db = await createTestDatabase("e2e_worker_health");
    // Our own langgraph.json: only the slow fixture graph, whatever else that fixture serves.
    dir = await mkdtemp(join(tmpdir(), "openplane-e2e-worker-health-"));
    config = join(dir, "langgraph.json");
    await writeFile(config, JSON.stringify({ graphs: { slow: `${SLOW_GRAPH}:graph` } }));
    env = {
      POSTGRES_URI: db.uri,
      REDIS_URI: redisUri(),
      REDIS_KEY_PREFIX: `${uniquePrefix("e2e-worker-health")}:`,
      SLOW_GRAPH_SLEEP_MS: "4000",
      BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS: "20",
    };
    [worker, api] = await Promise.all([
      startCli({ command: "worker", config, env }),
      startCli({ command: "serve", config, env: { ...env, N_JOBS_PER_WORKER: "0" } }),
    ]);
    client = sdk(api.url);
  });

  afterAll(async () => {
    await killAll();
    await db?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  printLogsOnFailure(() => [worker, api]);

  it("answers /ok, /ok?check_db=1 and /metrics on its --port while active", async () => {
    expect(worker!.logs()).toMatch(new RegExp(`worker started.*${worker!.url.replace(/[.]/g, "\\.")}`));
    expect(await probe(worker!.url, "/ok")).toEqual({ status: 200, body: '{"ok":true}' });
    expect(await probe(worker!.url, "/ok?check_db=1")).toEqual({ status: 200, body: '{"ok":true}' });
    const metrics = await probe(worker!.url, "/metrics");
    expect(metrics).toMatchObject({ status: 200 });
    expect((metrics as { body: string }).body).toMatch(/^openplane_process_resident_memory_bytes \d+/m);
    expect((metrics as { body: string }).body).toMatch(/^openplane_db_pool_connections\{pool="checkpointer",kind="max"\} \d+/m);
    expect(await probe(worker!.url, "/threads")).toEqual({ status: 404, body: '{"detail":"Not Found"}' });
  });

  it("fails start-up on a taken port with the same message as the API", async () => {
    const holder: Server = createServer();
    let port = await freePort();
    while (port === 2024) port = await freePort();
    await new Promise<void>((resolve, reject) => holder.once("error", reject).listen(port, "127.0.0.1", resolve));
    try {
      const args = ["--config", config, "--port", String(port), "--host", "127.0.0.1"];
      const [w, s] = await Promise.all([
        runCli(["worker", ...args], { env, timeoutMs: 60_000 }),
        runCli(["serve", ...args], { env: { ...env, N_JOBS_PER_WORKER: "0" }, timeoutMs: 60_000 }),
      ]);
      const message = `port ${port} on 127.0.0.1 is already in use (choose another with --port)`;
      for (const r of [w, s]) {
        expect(r.code, r.stdout + r.stderr).toBe(1);
        expect(r.stdout + r.stderr).toContain(message);
      }
      // Bound before the worker starts: it never reported itself started.
      expect(w.stdout + w.stderr).not.toContain("worker started");
    } finally {
      await new Promise((r) => holder.close(r));
    }
  });

  it("on SIGTERM answers 503 while it drains a run, then exits 0 with the run finished", async () => {
    const thread = await client.threads.create();
    const run = await client.runs.create(thread.thread_id, "slow", { input: {} });
    const deadline = Date.now() + 20_000;
    while ((await client.runs.get(thread.thread_id, run.run_id)).status !== "running") {
      if (Date.now() > deadline) throw new Error("the run never started");
      await new Promise((r) => setTimeout(r, 50));
    }

    const exit = worker!.stop({ timeoutMs: 40_000 });
    let answer = await probe(worker!.url, "/ok");
    const until = Date.now() + 5_000;
    while ("status" in answer && answer.status === 200 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 20));
      answer = await probe(worker!.url, "/ok");
    }
    // Still draining (the run sleeps 4 s), and no longer healthy; the health server stays up
    // through the drain, so it says so, and /metrics can still be scraped.
    expect(worker!.alive()).toBe(true);
    expect(answer).toEqual({ status: 503, body: '{"detail":"Worker is shutting down"}' });
    expect(await probe(worker!.url, "/metrics")).toMatchObject({ status: 200 });
    expect(await probe(worker!.url, "/ok")).toEqual({ status: 503, body: '{"detail":"Worker is shutting down"}' });
    expect(worker!.alive()).toBe(true);

    const info = await exit;
    expect(info.code).toBe(0);
    expect((await client.runs.get(thread.thread_id, run.run_id)).status).toBe("success");
  });
});
