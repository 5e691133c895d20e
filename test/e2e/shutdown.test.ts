/**
 * Promise 5 of the foundation: SIGTERM drains. With a slow run in flight and
 * an SSE stream open, `openplane up` (embedded PostgreSQL) stops taking new
 * connections, lets the run finish within BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS,
 * ends the stream cleanly (the SDK iterator completes without throwing), and
 * exits 0 well within the grace period. After a restart the run is `success`.
 */
import { request } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, killAll, printLogsOnFailure, startCli } from "../helpers/cli.js";
import type { CliProcess } from "../helpers/cli.js";
import type { Chunk } from "./support.js";
import { sdk } from "./support.js";

const CONFIG = join(REPO_ROOT, "test", "fixtures", "slow", "langgraph.json");
const GRACE_SECS = 10;

/** GET /ok on a brand-new connection (no keep-alive reuse): true if the server answered. */
function answersOnNewConnection(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(`${url}/ok`, { agent: false, timeout: 2_000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode === 200));
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("SIGTERM with a run in flight and an SSE stream open", () => {
  let dataDir: string;
  let server: CliProcess | undefined;
  let client: Client;

  const start = async () => {
    server = await startCli({
      command: "up",
      config: CONFIG,
      env: { OPENPLANE_DATA_DIR: dataDir, BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS: String(GRACE_SECS) },
    });
    client = sdk(server.url);
  };

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "openplane-e2e-shutdown-"));
    await start();
  });

  afterAll(async () => {
    await killAll();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  printLogsOnFailure(() => [server]);

  it("finishes the run, ends the stream cleanly, exits 0 within the grace period; the run is success after a restart", async () => {
    // A background run, in flight (running) when the signal comes.
    const bgThread = await client.threads.create();
    const bgRun = await client.runs.create(bgThread.thread_id, "slow", { input: {} });

    // A streamed run: wait until its first node has reported, so it is mid-run.
    const thread = await client.threads.create();
    const chunks: Chunk[] = [];
    let midRun!: () => void;
    const reachedMidRun = new Promise<void>((r) => (midRun = r));
    const streamed = (async () => {
      for await (const chunk of client.runs.stream(thread.thread_id, "slow", { input: {}, streamMode: ["values", "updates"] })) {
        chunks.push(chunk as Chunk);
        if (chunk.event === "updates" && "start" in (chunk.data as object)) midRun();
      }
    })();
    streamed.catch(() => midRun()); // surface a stream failure below instead of hanging here
    await reachedMidRun;
    await until("the background run to be running", async () => (await client.runs.get(bgThread.thread_id, bgRun.run_id)).status === "running");

    const url = server!.url;
    const stopping = server!.stop({ timeoutMs: (GRACE_SECS + 20) * 1000 });

    // It stops taking new connections while the runs are still finishing.
    await until("the listener to close", async () => !(await answersOnNewConnection(url)), 3_000);
    expect(server!.alive()).toBe(true);

    // The stream ends without an error, after the run's last event.
    await expect(streamed).resolves.toBeUndefined();
    expect(chunks[0]!.event).toBe("metadata");
    expect(chunks.some((c) => c.event === "error")).toBe(false);
    const runId = (chunks[0]!.data as { run_id: string }).run_id;
    const lastValues = chunks.filter((c) => c.event === "values").at(-1)!.data as { steps: string[] };
    expect(lastValues.steps).toEqual(["start", "slept"]);

    const exit = await stopping;
    expect(exit.code, server!.logs()).toBe(0);
    expect(exit.ms).toBeLessThan((GRACE_SECS * 1000) / 2);
    expect(exit.leftovers, "the embedded PostgreSQL must be stopped with the server").toBe(false);
    expect(server!.logs()).not.toMatch(/handed back/);

    await start();
    expect((await client.runs.get(thread.thread_id, runId)).status).toBe("success");
    expect((await client.runs.get(bgThread.thread_id, bgRun.run_id)).status).toBe("success");
    expect((await client.threads.getState(thread.thread_id)).values).toEqual({ steps: ["start", "slept"] });
    expect((await client.threads.getState(bgThread.thread_id)).values).toEqual({ steps: ["start", "slept"] });
    expect((await client.threads.get(thread.thread_id)).status).toBe("idle");

    const exit2 = await server!.stop();
    expect(exit2.code, server!.logs()).toBe(0);
  });
});
