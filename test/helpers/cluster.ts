/**
 * Multi-process helpers for the durability tests (test/e2e/durability-*.test.ts
 * and test/soak/): several `openplane serve` / `openplane worker` processes on
 * one PostgreSQL + Redis, a private `redis-server` that a test may flush, kill
 * and restart, and readers for the side record that the fixture graph
 * `test/fixtures/durable` writes (which step ran under which attempt, where, when).
 *
 * Processes are started with {@link startCli} from ./cli.ts, so its `killAll()`
 * (call it in `afterAll`) reaches them too; {@link Cluster.stopAll} and
 * {@link RedisServer.stop} are the polite versions.
 *
 * @example
 * let client: Client;
 * const durable = useDurableCluster({
 *   database: "durable",
 *   logLabel: "durable",
 *   start: async (cluster) => void (client = sdk((await cluster.startApi()).url)),
 * });
 * ...
 * const w1 = await durable.cluster.startWorker();
 * readRecords(durable.log.file, runId);
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect } from "vitest";
import type { StepRecord } from "../fixtures/durable/graph.js";
import { REPO_ROOT, killAll, printLogsOnFailure, startCli } from "./cli.js";
import type { CliProcess } from "./cli.js";
import { freePort } from "./ports.js";
import { pingRedis } from "./redis-server.js";
import { createTestDatabase, redisUri, uniquePrefix } from "./services.js";
import type { TestDatabase } from "./services.js";

export type { StepRecord };

/** langgraph.json of the durable fixture (graph id `durable`). */
export const DURABLE_CONFIG = join(REPO_ROOT, "test", "fixtures", "durable", "langgraph.json");
export const DURABLE_GRAPH = "durable";

/** Input for the durable graph: `total` steps of `ms` each. */
export const durableInput = (total: number, ms: number, label = "run") => ({ total, ms, label, i: 0 });

/**
 * The official JS SDK's SSE decoder turns every `: heartbeat` comment (after
 * the first event) into a chunk `{ id: <last id>, event: "", data: null }`.
 * Those are keep-alives, not run events: drop them before checking a stream.
 */
export function withoutHeartbeats<T extends { event: string }>(chunks: T[]): T[] {
  return chunks.filter((c) => c.event !== "");
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Polls `check` until it returns something other than undefined / false / null,
 * and returns that. Throws `timed out waiting for <what>` after `timeoutMs`.
 */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  opts: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== null && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${lastErr ? ` (last error: ${String(lastErr)})` : ""}`);
    }
    await sleep(opts.intervalMs ?? 50);
  }
}

// ---------------------------------------------------------------- processes

export interface ClusterOptions {
  postgresUri: string;
  redisUri: string;
  /** Side record of the durable fixture (DURABLE_LOG). */
  logFile: string;
  /** REDIS_KEY_PREFIX; default a unique one. */
  redisKeyPrefix?: string;
  /** Extra environment for every process (after the defaults below). */
  env?: Record<string, string | undefined>;
  /** langgraph.json; default the durable fixture. */
  config?: string;
}

/**
 * A set of openplane processes sharing one PostgreSQL database, one Redis and
 * one key prefix. Defaults suit the durability tests: a 3 s lease, a 1 s
 * sweep, a 10 s shutdown grace period.
 */
export class Cluster {
  readonly env: Record<string, string | undefined>;
  readonly config: string;
  readonly apis: CliProcess[] = [];
  readonly workers: CliProcess[] = [];

  constructor(opts: ClusterOptions) {
    this.config = opts.config ?? DURABLE_CONFIG;
    this.env = {
      POSTGRES_URI: opts.postgresUri,
      REDIS_URI: opts.redisUri,
      REDIS_KEY_PREFIX: opts.redisKeyPrefix ?? `${uniquePrefix("durable")}:`,
      OPENPLANE_RUN_LEASE_SECS: "3",
      OPENPLANE_SWEEP_INTERVAL_SECS: "1",
      BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS: "10",
      OPENPLANE_SSE_HEARTBEAT_SECS: "1",
      // Keep each process's pools small: several of them share one test server.
      LANGGRAPH_POSTGRES_POOL_MAX_SIZE: "8",
      DURABLE_LOG: opts.logFile,
      ...opts.env,
    };
  }

  /** `openplane serve` with N_JOBS_PER_WORKER=0 (API only). */
  async startApi(env: Record<string, string | undefined> = {}): Promise<CliProcess> {
    const p = await startCli({ command: "serve", config: this.config, env: { ...this.env, N_JOBS_PER_WORKER: "0", ...env } });
    this.apis.push(p);
    return p;
  }

  /** `openplane worker` (N_JOBS_PER_WORKER default 4 here). */
  async startWorker(env: Record<string, string | undefined> = {}): Promise<CliProcess> {
    const p = await startCli({ command: "worker", config: this.config, env: { ...this.env, N_JOBS_PER_WORKER: "4", ...env } });
    this.workers.push(p);
    return p;
  }

  /** Every process started so far (for printLogsOnFailure). */
  all(): CliProcess[] {
    return [...this.apis, ...this.workers];
  }

  /** The live process with this pid. */
  byPid(pid: number): CliProcess | undefined {
    return this.all().find((p) => p.pid === pid && p.alive());
  }

  /** SIGKILLs every process still alive and waits for the exits. */
  async stopAll(): Promise<void> {
    await Promise.all(this.all().filter((p) => p.alive()).map((p) => p.kill()));
  }

  /** Asserts that no process this cluster started is still running (no orphans). */
  expectNoSurvivors(): void {
    for (const p of this.all()) expect(pidAlive(p.pid), `openplane ${p.command} pid ${p.pid} still alive`).toBe(false);
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A fresh temp dir and the path of a side-record file in it; `cleanup()` removes both (not with OPENPLANE_TEST_KEEP_DB=1). */
export async function tempLog(label: string): Promise<{ dir: string; file: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `openplane-${label}-`));
  const file = join(dir, "steps.jsonl");
  return {
    dir,
    file,
    cleanup: async () => {
      // Kept with the test databases, for inspection.
      if (process.env.OPENPLANE_TEST_KEEP_DB === "1") return void console.info(`[cluster] keeping side record ${file}`);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export type TempLog = Awaited<ReturnType<typeof tempLog>>;

/** What {@link useDurableCluster} sets up; the fields are set before the first test. */
export interface DurableCluster {
  db: TestDatabase;
  log: TempLog;
  cluster: Cluster;
  /** The private redis-server, when `redisBinary` was given. */
  redis: RedisServer | undefined;
}

/**
 * The setup and teardown of a durability test's describe block. Before all: a
 * fresh test database `database`, a side record in a temp dir `logLabel`, a
 * private redis-server when `redisBinary` is given (else the shared Redis),
 * a {@link Cluster} on them (`redisKeyPrefix` and `env` as in
 * {@link ClusterOptions}), then `start(cluster)` to start its processes.
 * After all: every process stopped, none surviving, the private redis-server
 * stopped, the database dropped, the side record removed. The processes' logs
 * are printed when a test fails.
 */
export function useDurableCluster(opts: {
  database: string;
  logLabel: string;
  redisBinary?: string | null;
  redisKeyPrefix?: string;
  env?: Record<string, string | undefined>;
  start: (cluster: Cluster) => Promise<void>;
}): DurableCluster {
  const ctx: Partial<DurableCluster> = {};
  beforeAll(async () => {
    const [db, log, redis] = await Promise.all([
      createTestDatabase(opts.database),
      tempLog(opts.logLabel),
      opts.redisBinary ? startRedisServer(opts.redisBinary) : undefined,
    ]);
    Object.assign(ctx, { db, log, redis });
    ctx.cluster = new Cluster({
      postgresUri: db.uri,
      redisUri: redis?.uri ?? redisUri(),
      logFile: log.file,
      redisKeyPrefix: opts.redisKeyPrefix,
      env: opts.env,
    });
    await opts.start(ctx.cluster);
  });

  afterAll(async () => {
    await ctx.cluster?.stopAll();
    await killAll();
    ctx.cluster?.expectNoSurvivors();
    await ctx.redis?.stop();
    await ctx.db?.drop();
    await ctx.log?.cleanup();
  });

  printLogsOnFailure(() => ctx.cluster?.all() ?? []);
  return ctx as DurableCluster;
}

// ---------------------------------------------------------------- side record

/** Every record the fixture wrote so far (optionally for one run). */
export function readRecords(file: string, runId?: string): StepRecord[] {
  if (!existsSync(file)) return [];
  const out: StepRecord[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    const r = JSON.parse(line) as StepRecord;
    if (runId === undefined || r.run_id === runId) out.push(r);
  }
  return out;
}

export interface AttemptSummary {
  attempt: number;
  pids: number[];
  started: number[];
  ended: number[];
  aborted: number[];
  firstStart: number;
  /** Last record of the attempt (an end or abort; for a killed attempt, its last start). */
  lastEvent: number;
}

/** The run's records grouped by attempt, in attempt order. */
export function attempts(records: StepRecord[]): AttemptSummary[] {
  const by = new Map<number, AttemptSummary>();
  for (const r of records) {
    let a = by.get(r.attempt);
    if (!a) {
      a = { attempt: r.attempt, pids: [], started: [], ended: [], aborted: [], firstStart: Infinity, lastEvent: 0 };
      by.set(r.attempt, a);
    }
    if (!a.pids.includes(r.pid)) a.pids.push(r.pid);
    if (r.ev === "start") {
      a.started.push(r.step);
      a.firstStart = Math.min(a.firstStart, r.t);
    } else if (r.ev === "end") a.ended.push(r.step);
    else a.aborted.push(r.step);
    a.lastEvent = Math.max(a.lastEvent, r.t);
  }
  return [...by.values()].sort((x, y) => x.attempt - y.attempt);
}

/**
 * Checks the side record of a run that completed `total` steps across its
 * attempts:
 * - each attempt ran in one process;
 * - every step 0..total-1 ended in some attempt, and the last attempt ended all
 *   the steps it started;
 * - a later attempt resumes at the step that was in flight (or the one after,
 *   if that step's checkpoint made it out just before the kill), and never
 *   re-executes a step that an earlier attempt had moved past (started the next
 *   step). That last part holds for runs created with `durability: "sync"`,
 *   where LangGraph writes a step's checkpoint before starting the next step;
 *   with the default `"async"` the write may still be in flight when the
 *   worker dies (the official semantics: node side effects are at least once),
 *   so pass `{ strict: false }` to only count such redone steps;
 * - attempts never overlapped in time: attempt n+1 started after attempt n's
 *   last sign of life (and after `notBefore[n]`, e.g. the moment its worker was
 *   killed or signalled).
 * Returns the attempts.
 */
export function expectResumedWithoutRedo(
  records: StepRecord[],
  total: number,
  notBefore: Record<number, number> = {},
  opts: { strict?: boolean } = {},
): AttemptSummary[] & { redone: number } {
  const strict = opts.strict ?? true;
  let redone = 0;
  const all = attempts(records);
  expect(all.length, "attempts").toBeGreaterThan(0);
  const desc = JSON.stringify(all.map((a) => ({ attempt: a.attempt, pids: a.pids, started: a.started, ended: a.ended, aborted: a.aborted })));
  for (const a of all) expect(a.pids.length, `attempt ${a.attempt} ran in one process: ${desc}`).toBe(1);
  const endedSomewhere = new Set(all.flatMap((a) => a.ended));
  for (let s = 0; s < total; s++) expect(endedSomewhere.has(s), `step ${s} ended in some attempt: ${desc}`).toBe(true);
  const last = all.at(-1)!;
  expect([...last.ended].sort((x, y) => x - y), `last attempt finished its steps: ${desc}`).toEqual([...last.started].sort((x, y) => x - y));

  for (let k = 1; k < all.length; k++) {
    const prev = all[k - 1]!;
    const cur = all[k]!;
    // Steps are executed in order within an attempt.
    expect(cur.started, `attempt ${cur.attempt} runs steps in order: ${desc}`).toEqual([...cur.started].sort((x, y) => x - y));
    const highestStartedBefore = Math.max(-1, ...all.slice(0, k).flatMap((a) => a.started));
    const resumeAt = Math.min(...cur.started);
    // Everything below the step in flight was checkpointed: never redone.
    if (strict) expect(resumeAt, `attempt ${cur.attempt} redid a completed step: ${desc}`).toBeGreaterThanOrEqual(highestStartedBefore);
    redone += Math.max(0, highestStartedBefore - resumeAt);
    expect(resumeAt, `attempt ${cur.attempt} skipped a step: ${desc}`).toBeLessThanOrEqual(highestStartedBefore + 1);
    // No overlap: the next attempt starts after the previous one stopped.
    expect(cur.firstStart, `attempt ${cur.attempt} started while attempt ${prev.attempt} was executing: ${desc}`).toBeGreaterThan(prev.lastEvent);
    const floor = notBefore[prev.attempt];
    if (floor !== undefined) {
      expect(cur.firstStart, `attempt ${cur.attempt} started before attempt ${prev.attempt} was stopped: ${desc}`).toBeGreaterThanOrEqual(floor);
    }
  }
  return Object.assign(all, { redone });
}

/**
 * Per thread, runs never executed at the same time: the [first start, last
 * event] spans of the runs on one thread are disjoint. Returns, per thread,
 * the run ids in the order they executed.
 */
export function expectSerialPerThread(records: StepRecord[]): Map<string, string[]> {
  const spans = new Map<string, Map<string, { from: number; to: number }>>();
  for (const r of records) {
    let runs = spans.get(r.thread_id);
    if (!runs) spans.set(r.thread_id, (runs = new Map()));
    const s = runs.get(r.run_id);
    if (!s) runs.set(r.run_id, { from: r.t, to: r.t });
    else {
      s.from = Math.min(s.from, r.t);
      s.to = Math.max(s.to, r.t);
    }
  }
  const order = new Map<string, string[]>();
  for (const [threadId, runs] of spans) {
    const sorted = [...runs.entries()].sort((a, b) => a[1].from - b[1].from);
    for (let i = 1; i < sorted.length; i++) {
      const [prevId, prev] = sorted[i - 1]!;
      const [curId, cur] = sorted[i]!;
      expect(cur.from, `thread ${threadId}: run ${curId} started before run ${prevId} ended`).toBeGreaterThan(prev.to);
    }
    order.set(threadId, sorted.map(([id]) => id));
  }
  return order;
}

// ---------------------------------------------------------------- a private redis-server

export interface RedisServer {
  readonly port: number;
  readonly uri: string;
  /** FLUSHALL through a fresh connection. */
  flushAll(): Promise<void>;
  /** SIGKILLs the server (no save: it starts empty again). */
  kill(): Promise<void>;
  /** Starts it again on the same port (after {@link kill}). */
  start(): Promise<void>;
  alive(): boolean;
  /** Kills it for good. Safe to call twice. */
  stop(): Promise<void>;
}

export { findRedisServer } from "./redis-server.js";

/**
 * Starts a redis-server of our own on a free loopback port (no persistence),
 * so a test can FLUSHALL or restart it without touching the shared one.
 */
export async function startRedisServer(binary: string): Promise<RedisServer> {
  // Assigned inside launch(): the explicit cast stops TypeScript narrowing it to null here.
  let child = null as ChildProcess | null;
  let exited: Promise<void> = Promise.resolve();
  let output = "";
  let stopped = false;
  const killOnExit = () => child?.kill("SIGKILL");
  process.once("exit", killOnExit);

  const launch = async (port: number): Promise<boolean> => {
    output = "";
    const c = spawn(binary, ["--save", "", "--appendonly", "no", "--port", String(port), "--bind", "127.0.0.1", "--daemonize", "no"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    child = c;
    c.stdout?.setEncoding("utf8").on("data", (s: string) => (output += s));
    c.stderr?.setEncoding("utf8").on("data", (s: string) => (output += s));
    exited = new Promise<void>((resolve) => {
      c.once("exit", () => resolve());
      c.once("error", () => resolve());
    });
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (c.exitCode !== null || c.signalCode !== null) return false;
      if (await pingRedis(`redis://127.0.0.1:${port}`, 1_000)) return true;
      await sleep(50);
    }
    return false;
  };

  let port = 0;
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    if (await launch(port)) break;
    child?.kill("SIGKILL");
    await exited;
    if (attempt >= 3) throw new Error(`redis-server did not start on port ${port}\n${output}`);
  }
  const uri = `redis://127.0.0.1:${port}`;

  const kill = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    c.kill("SIGKILL");
    await exited;
  };

  return {
    port,
    uri,
    async flushAll() {
      const c = new Redis(uri, { maxRetriesPerRequest: 1 });
      c.on("error", () => {});
      try {
        await c.flushall();
      } finally {
        c.disconnect();
      }
    },
    kill,
    async start() {
      if (stopped) throw new Error("redis server was stopped");
      // The port was ours a moment ago; retry briefly if the kernel has not released it.
      for (let attempt = 1; ; attempt++) {
        if (await launch(port)) return;
        child?.kill("SIGKILL");
        await exited;
        if (attempt >= 20) throw new Error(`redis-server did not restart on port ${port}\n${output}`);
        await sleep(100);
      }
    },
    alive: () => child !== null && child.exitCode === null && child.signalCode === null,
    async stop() {
      stopped = true;
      process.removeListener("exit", killOnExit);
      await kill();
    },
  };
}
