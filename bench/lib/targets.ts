/**
 * What a bench question runs against. Every target answers the same operations on the
 * same graphs (bench/graphs/graphs.ts):
 *
 * - `op-one`   openplane `serve` with N_JOBS_PER_WORKER workers in the same process;
 * - `op-split` openplane `serve` N_JOBS_PER_WORKER=0 (API only) + `openplane worker`;
 * - `official` the official in-memory JS server (@langchain/langgraph-api, bench/official);
 * - `floor-pg` `graph.invoke` in this process with PostgresSaver on the same PostgreSQL;
 * - `floor-mem` `graph.invoke` in this process with MemorySaver.
 *
 * Servers are driven with the official SDK Client. openplane targets get their own database
 * and Redis key prefix, so idle targets never take each other's jobs.
 */
import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Client } from "@langchain/langgraph-sdk";
import { MemorySaver } from "@langchain/langgraph";
import type { BaseCheckpointSaver } from "@langchain/langgraph";
import { PostgresSaver } from "@langchain/langgraph-checkpoint-postgres";
import pg from "pg";
import { envSchema } from "../../src/config/schema.js";
import { SERVER_NODE_FLAGS } from "../../src/lib/node-flags.js";
import { tenstepBuilder, trivialBuilder } from "../graphs/graphs.js";
import type { Infra } from "./infra.js";
import { childrenOf, freePort, spawnLogged, tail, waitHttpOk, waitLog } from "./proc.js";
import type { Spawned } from "./proc.js";

export const REPO = fileURLToPath(new URL("../../", import.meta.url));
export const BENCH = join(REPO, "bench");
const BIN = join(REPO, "bin", "openplane.mjs");
const BENCH_CONFIG = join(BENCH, "langgraph.json");
const OFFICIAL_DIR = join(BENCH, "official");

export type TargetId = "op-one" | "op-split" | "official" | "floor-exec" | "floor-pg" | "floor-mem";
export const ALL_TARGETS: TargetId[] = ["op-one", "op-split", "official", "floor-exec", "floor-pg", "floor-mem"];
export const TARGET_LABEL: Record<TargetId, string> = {
  "op-one": "openplane (API+worker, 1 process)",
  "op-split": "openplane (API | worker, 2 processes)",
  official: "official in-memory server (@langchain/langgraph-api)",
  "floor-exec": "openplane's executeRun in process (RunAwarePostgresSaver, in-memory bus): no HTTP, queue, run rows or Redis",
  "floor-pg": "floor: graph.invoke + PostgresSaver",
  "floor-mem": "floor: graph.invoke + MemorySaver",
};

export type GraphId = "trivial" | "tenstep";
/** Inputs reset the state (last-value reducers), so every run on a reused thread ends the same. */
export const INPUT: Record<GraphId, Record<string, unknown>> = { trivial: { n: 0 }, tenstep: { step: 0 } };

/** Checks a run's final values (a wrong answer counts as an error). */
export function checkValues(graph: GraphId, v: unknown): void {
  const o = v as Record<string, unknown> | null;
  if (graph === "trivial" && o?.n !== 1) throw new Error(`unexpected values: ${JSON.stringify(v).slice(0, 200)}`);
  if (graph === "tenstep" && o?.step !== 10) throw new Error(`unexpected values: ${JSON.stringify(v).slice(0, 200)}`);
}

export interface StreamTimes {
  /** First SSE event of any kind (metadata on the servers). */
  firstEvent: number;
  /** First `values` event. */
  firstValues: number;
}

/** The operations a load loop calls. Times are ms from the call. */
export interface Ops {
  newThread(): Promise<string>;
  /** runs.wait on a thread, or stateless (thread null). Resolves to the final values. */
  wait(thread: string | null, graph: GraphId): Promise<unknown>;
  /** runs.stream on a thread (stream_mode values); resolves when the stream ends. */
  stream(thread: string, graph: GraphId, t0: number): Promise<StreamTimes>;
}

export interface Target {
  id: TargetId;
  label: string;
  kind: "server" | "floor";
  url: string | null;
  /** PostgreSQL database this target writes to (null for the in-memory ones). */
  db: string | null;
  /** Processes to measure (name → pid); the floor is this process. */
  pids(): Record<string, number>;
  /** Server log files (JSON lines for openplane). */
  logFiles(): string[];
  ops: Ops;
  client: Client | null;
  stop(): Promise<void>;
}

export interface StartOptions {
  infra: Infra;
  workDir: string;
  jobsPerWorker: number;
  logLevel: string;
  /** Extra node flags for the server processes (e.g. --cpu-prof). */
  nodeFlags?: string[];
  /** Unique per bench invocation (Redis prefixes, database names). */
  tag: string;
}

export function sdkClient(url: string): Client {
  // The SDK's default caller allows only 4 requests in flight per client and retries 4 times:
  // both would distort a load test (and hide failures).
  return new Client({ apiUrl: url, callerOptions: { maxConcurrency: Infinity, maxRetries: 0 } });
}

function serverOps(client: Client): Ops {
  return {
    newThread: async () => (await client.threads.create()).thread_id,
    async wait(thread, graph) {
      return thread === null ? client.runs.wait(null, graph, { input: INPUT[graph] }) : client.runs.wait(thread, graph, { input: INPUT[graph] });
    },
    async stream(thread, graph, t0) {
      const times: StreamTimes = { firstEvent: -1, firstValues: -1 };
      let last: unknown = null;
      for await (const ev of client.runs.stream(thread, graph, { input: INPUT[graph], streamMode: "values" })) {
        if (times.firstEvent < 0) times.firstEvent = performance.now() - t0;
        if (ev.event === "values") {
          if (times.firstValues < 0) times.firstValues = performance.now() - t0;
          last = ev.data;
        }
        if (ev.event === "error") throw new Error(`stream error: ${JSON.stringify(ev.data).slice(0, 200)}`);
      }
      checkValues(graph, last);
      return times;
    },
  };
}

/** The child environment: ours minus every variable openplane reads, plus `extra`. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(envSchema.shape)) delete env[k];
  delete env.NODE_OPTIONS;
  return { ...env, ...extra };
}

async function spawnReady(
  name: string,
  start: (port: number) => Spawned,
  ready: (s: Spawned, url: string) => Promise<"ready" | "exited" | "timeout">,
): Promise<{ proc: Spawned; url: string }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const proc = start(port);
    const state = await ready(proc, url);
    if (state === "ready") return { proc, url };
    await proc.stop(5_000);
    if (state === "exited" && attempt < 3 && /already in use|EADDRINUSE/.test(proc.log())) continue;
    throw new Error(`${name} was not ready (${state})\n${tail(proc.log())}`);
  }
}

async function startOpenplane(id: "op-one" | "op-split", o: StartOptions): Promise<Target> {
  const db = `bench_${id.replace("-", "_")}_${o.tag}`;
  await o.infra.createDb(db);
  const env = (jobs: number) =>
    childEnv({
      POSTGRES_URI: o.infra.pgUri(db),
      REDIS_URI: o.infra.redisUri,
      REDIS_KEY_PREFIX: `${id}-${o.tag}:`,
      N_JOBS_PER_WORKER: String(jobs),
      LOG_LEVEL: o.logLevel,
      LOG_JSON: "true",
    });
  // Started as the image and `up` start it: with our Node flags.
  const node = (args: string[]) => [...SERVER_NODE_FLAGS, ...(o.nodeFlags ?? []), BIN, ...args, "--config", BENCH_CONFIG];
  const procs: Record<string, Spawned> = {};
  const api = await spawnReady(
    `openplane serve (${id})`,
    (port) =>
      spawnLogged(process.execPath, node(["serve", "--port", String(port), "--host", "127.0.0.1"]), {
        cwd: REPO,
        env: env(id === "op-one" ? o.jobsPerWorker : 0),
        logFile: join(o.workDir, `${id}-api-${port}.log`),
      }),
    (s, url) => waitHttpOk(url, s, 120_000),
  );
  procs[id === "op-one" ? "server" : "api"] = api.proc;
  if (id === "op-split") {
    // A worker given --port serves /ok and /metrics there.
    const w = await spawnReady(
      "openplane worker",
      (port) =>
        spawnLogged(process.execPath, node(["worker", "--port", String(port), "--host", "127.0.0.1"]), {
          cwd: REPO,
          env: env(o.jobsPerWorker),
          logFile: join(o.workDir, `${id}-worker-${port}.log`),
        }),
      (s) => waitLog(s, /worker started/, 120_000),
    );
    procs.worker = w.proc;
  }
  const client = sdkClient(api.url);
  return {
    id,
    label: TARGET_LABEL[id],
    kind: "server",
    url: api.url,
    db,
    pids: () => Object.fromEntries(Object.entries(procs).map(([k, p]) => [k, p.pid])),
    logFiles: () => Object.values(procs).map((p) => p.logFile),
    ops: serverOps(client),
    client,
    async stop() {
      // The API first (it only rings the queue), then the worker.
      for (const p of Object.values(procs)) await p.stop(30_000);
    },
  };
}

async function startOfficial(o: StartOptions): Promise<Target> {
  const serverEntry = join(OFFICIAL_DIR, "server.mjs");
  const preload = join(OFFICIAL_DIR, "node_modules", "@langchain", "langgraph-api", "dist", "preload.mjs");
  if (!existsSync(preload)) {
    throw new Error("the official server is not installed: run `npm run bench:setup` (npm ci in bench/official)");
  }
  // Its own working directory: the in-memory server persists its state under <cwd>/.langgraph_api.
  const cwd = join(o.workDir, "official-cwd");
  mkdirSync(cwd, { recursive: true });
  const graphFile = relative(cwd, join(BENCH, "graphs", "graphs.ts"));
  const tsx = createRequire(import.meta.url).resolve("tsx");
  const { proc, url } = await spawnReady(
    "official server",
    (port) => {
      // What `langgraphjs dev` passes its entrypoint (cli/spawn.mjs), minus the file watcher.
      const payload = {
        port,
        nWorkers: o.jobsPerWorker,
        host: "127.0.0.1",
        graphs: { trivial: `${graphFile}:trivial`, tenstep: `${graphFile}:tenstep` },
        cwd,
      };
      return spawnLogged(
        process.execPath,
        [...(o.nodeFlags ?? []), "--import", pathToFileURL(tsx).href, "--import", pathToFileURL(preload).href, serverEntry, JSON.stringify(payload)],
        {
          cwd,
          env: { ...childEnv({}), NODE_ENV: "development", LANGGRAPH_API_URL: `http://127.0.0.1:${port}`, LOG_LEVEL: o.logLevel },
          logFile: join(o.workDir, `official-${port}.log`),
        },
      );
    },
    (s, url) => waitHttpOk(url, s, 120_000),
  );
  const client = sdkClient(url);
  return {
    id: "official",
    label: TARGET_LABEL.official,
    kind: "server",
    url,
    db: null,
    pids: () => ({ server: proc.pid }),
    logFiles: () => [proc.logFile],
    ops: serverOps(client),
    client,
    stop: () => proc.stop(15_000),
  };
}

async function startFloor(id: "floor-pg" | "floor-mem", o: StartOptions): Promise<Target> {
  let saver: BaseCheckpointSaver;
  let pool: pg.Pool | null = null;
  let db: string | null = null;
  if (id === "floor-pg") {
    db = `bench_floor_${o.tag}`;
    await o.infra.createDb(db);
    // The pool openplane gives its checkpointer by default (LANGGRAPH_POSTGRES_POOL_MAX_SIZE 20 → 8).
    pool = new pg.Pool({ connectionString: o.infra.pgUri(db), max: 8 });
    pool.on("error", () => {});
    const s = new PostgresSaver(pool);
    await s.setup();
    saver = s;
  } else {
    saver = new MemorySaver();
  }
  const graphs = { trivial: trivialBuilder.compile({ checkpointer: saver }), tenstep: tenstepBuilder.compile({ checkpointer: saver }) };
  const cfg = (thread: string) => ({ configurable: { thread_id: thread } });
  const ops: Ops = {
    newThread: async () => randomUUID(),
    async wait(thread, graph) {
      return (graphs[graph] as { invoke(i: unknown, c: unknown): Promise<unknown> }).invoke(INPUT[graph], cfg(thread ?? randomUUID()));
    },
    async stream(thread, graph, t0) {
      const times: StreamTimes = { firstEvent: -1, firstValues: -1 };
      let last: unknown = null;
      const g = graphs[graph] as { stream(i: unknown, c: unknown): Promise<AsyncIterable<unknown>> };
      for await (const chunk of await g.stream(INPUT[graph], { ...cfg(thread), streamMode: "values" })) {
        if (times.firstEvent < 0) times.firstEvent = times.firstValues = performance.now() - t0;
        last = chunk;
      }
      checkValues(graph, last);
      return times;
    },
  };
  return {
    id,
    label: TARGET_LABEL[id],
    kind: "floor",
    url: null,
    db,
    pids: () => ({ bench: process.pid }),
    logFiles: () => [],
    ops,
    client: null,
    stop: async () => void (await pool?.end()),
  };
}

/**
 * openplane's own executor (src/executor/execute-run.ts) driven in this process: the graph
 * registry, RunAwarePostgresSaver on a pool of 8 and the in-memory bus, with the run's kwargs
 * shaped as the API builds them. It is what a worker does for a claimed run, minus the run
 * rows, the queue, Redis and HTTP: the gap to floor-pg is how openplane drives LangGraph, the
 * gap from here to op-one is the platform. src/ is imported by path at run time, so a change
 * of its internals can break this target but never the project's typecheck.
 */
async function startFloorExec(o: StartOptions): Promise<Target> {
  const db = `bench_floor_exec_${o.tag}`;
  await o.infra.createDb(db);
  const load = async <T>(rel: string) => (await import(pathToFileURL(join(REPO, rel)).href)) as T;
  const { createCheckpointer } = await load<{ createCheckpointer(uri: string, max: number, onError: (e: Error) => void): { saver: { setup(): Promise<void>; writeBehind(runId: string): unknown }; pool: pg.Pool } }>("src/storage/checkpointer.ts");
  const { createGraphRegistry } = await load<{ createGraphRegistry(entries: unknown[], saver: unknown): { loadAll(): Promise<void> } }>("src/graphs/registry.ts");
  const { createMemoryBus } = await load<{ createMemoryBus(o: { ttlSecs: number }): { finish(runId: string): Promise<void>; close(): Promise<void> } }>("src/stream/memory-bus.ts");
  const { readLanggraphConfig } = await load<{ readLanggraphConfig(p: string): Promise<{ graphs: unknown[] }> }>("src/graphs/config-file.ts");
  const { executeRun } = await load<{
    executeRun(deps: unknown, run: unknown, signal: AbortSignal): Promise<{ status: string; values: unknown; error: unknown }>;
  }>("src/executor/execute-run.ts");
  // The kwargs of a plain run, as the tests build them.
  const { runKwargs } = await load<{ runKwargs(over: Record<string, unknown>): unknown }>("test/helpers/runs.ts");
  const { saver, pool } = createCheckpointer(o.infra.pgUri(db), 8, () => {});
  await saver.setup();
  const graphs = createGraphRegistry((await readLanggraphConfig(BENCH_CONFIG)).graphs, saver);
  await graphs.loadAll();
  const bus = createMemoryBus({ ttlSecs: 60 });
  const assistantId = randomUUID();
  const exec = async (thread: string, graph: GraphId) => {
    const runId = randomUUID();
    const now = new Date().toISOString();
    const run = {
      run_id: runId,
      thread_id: thread,
      assistant_id: assistantId,
      created_at: now,
      updated_at: now,
      status: "running",
      metadata: {},
      multitask_strategy: "enqueue",
      attempt: 1,
      kwargs: runKwargs({
        input: INPUT[graph],
        config: { configurable: { run_id: runId, thread_id: thread, graph_id: graph, assistant_id: assistantId } },
        context: {},
      }),
    };
    const writeBehind = (id: string) => saver.writeBehind(id);
    const out = await executeRun({ graphs, bus, tracing: null, writeBehind }, run, new AbortController().signal);
    await bus.finish(runId);
    if (out.status !== "success") throw new Error(`run ${out.status}: ${JSON.stringify(out.error)}`);
    return out.values;
  };
  return {
    id: "floor-exec",
    label: TARGET_LABEL["floor-exec"],
    kind: "floor",
    url: null,
    db,
    pids: () => ({ bench: process.pid }),
    logFiles: () => [],
    ops: {
      newThread: async () => randomUUID(),
      wait: (thread, graph) => exec(thread ?? randomUUID(), graph),
      stream: () => Promise.reject(new Error("floor-exec measures runs.wait only")),
    },
    client: null,
    async stop() {
      await bus.close();
      await pool.end();
    },
  };
}

export async function startTarget(id: TargetId, o: StartOptions): Promise<Target> {
  if (id === "op-one" || id === "op-split") return startOpenplane(id, o);
  if (id === "official") return startOfficial(o);
  if (id === "floor-exec") return startFloorExec(o);
  return startFloor(id, o);
}

/** The PostgreSQL backends of the bench cluster (all databases). */
export const postgresPids = (infra: Infra): number[] => {
  const pm = infra.postmasterPid();
  return pm ? [pm, ...childrenOf(pm)] : [];
};
