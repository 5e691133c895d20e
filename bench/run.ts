/**
 * openplane bench: the run hot path, side by side with the official in-memory server and the
 * in-process floor, on the same graphs, machine, PostgreSQL and Redis. See bench/README.md.
 *
 *   tsx bench/run.ts <question...> [options]
 *
 * Questions: wait stateless stream background heavy rss profile, or `all` (every question but
 * profile). Every run is bounded: points last --warmup + --duration seconds, background runs
 * have a deadline, and every process this starts is stopped at the end.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { checkpoint, pgDelta, pgSnapshot, redisCommandStats, redisDelta, settleStats, startInfra } from "./lib/infra.js";
import type { Infra, PgSnapshot } from "./lib/infra.js";
import { closedLoop, monitor } from "./lib/load.js";
import type { ResourceReport } from "./lib/load.js";
import { machineInfo, rssMb, sleep } from "./lib/proc.js";
import { summarizeProfile } from "./lib/profile.js";
import { markdown, plot, summaryLine } from "./lib/report.js";
import type { BackgroundResult, Breakdown, Point, Question, Results } from "./lib/report.js";
import { ALL_TARGETS, BENCH, INPUT, REPO, checkValues, postgresPids, startTarget } from "./lib/targets.js";
import type { GraphId, StartOptions, Target, TargetId } from "./lib/targets.js";

const QUESTIONS = ["wait", "stateless", "stream", "background", "heavy", "rss", "profile"] as const;
type Q = (typeof QUESTIONS)[number];

const USAGE = `Usage: tsx bench/run.ts <question...> [options]

Questions (run in the order given; "all" = wait stateless stream background heavy rss):
  wait        runs.wait on a thread, trivial graph: runs/s, p50/p99 per concurrency
  stateless   stateless runs.wait, same
  stream      runs.stream: time to first event and to the end
  background  N background runs on distinct threads: time until all terminal, none lost
  heavy       10-step graph with ~10 KB state: runs/s and PostgreSQL bytes written per run
  rss         server RSS idle and under load
  profile     node --cpu-prof of openplane under load + SQL statements and Redis commands per run

Options:
  --targets a,b        among ${ALL_TARGETS.join(", ")} (default: all that apply)
  --concurrency list   default 1,8,32,128
  --duration s         minimum measured seconds per point (default 10); longer, up to
                       --max-duration (60), until each loop can complete 3 runs
  --warmup s           minimum unmeasured seconds before each point (default 2); longer, up to
                       --max-warmup (30), until about one run per loop completed
  --rounds n           repeat every point n times, alternating target order (default 1)
  --runs n             background runs (default 1000); --full = 10000
  --heavy-concurrency  default 8     --rss-concurrency  default 32
  --profile-concurrency default 8    --profile-duration s  default 15
  --jobs n             N_JOBS_PER_WORKER for openplane and nWorkers for the official server (default 10)
  --log-level l        server log level (default info, as deployed)
  --pg-unsafe          fsync=off, synchronous_commit=off, full_page_writes=off (default: durable)
  --quick              smoke test: --duration 3 --warmup 1 --concurrency 1,8 --runs 200
  --out dir            default bench/results
  --keep               keep the temporary work directory (server logs)`;

function parse() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      targets: { type: "string" },
      concurrency: { type: "string" },
      duration: { type: "string" },
      warmup: { type: "string" },
      "max-duration": { type: "string" },
      "max-warmup": { type: "string" },
      rounds: { type: "string" },
      runs: { type: "string" },
      full: { type: "boolean", default: false },
      "heavy-concurrency": { type: "string" },
      "rss-concurrency": { type: "string" },
      "profile-concurrency": { type: "string" },
      "profile-duration": { type: "string" },
      jobs: { type: "string" },
      "log-level": { type: "string" },
      "pg-unsafe": { type: "boolean", default: false },
      quick: { type: "boolean", default: false },
      out: { type: "string" },
      keep: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help || positionals.length === 0) {
    console.log(USAGE);
    process.exit(positionals.length === 0 && !values.help ? 2 : 0);
  }
  const questions: Q[] = [];
  for (const p of positionals) {
    if (p === "all") questions.push("wait", "stateless", "stream", "background", "heavy", "rss");
    else if ((QUESTIONS as readonly string[]).includes(p)) questions.push(p as Q);
    else {
      console.error(`unknown question "${p}"\n\n${USAGE}`);
      process.exit(2);
    }
  }
  const num = (v: string | undefined, d: number) => (v === undefined ? d : Number(v));
  const q = values.quick;
  const targets = values.targets ? (values.targets.split(",") as TargetId[]) : null;
  for (const t of targets ?? []) {
    if (!ALL_TARGETS.includes(t)) {
      console.error(`unknown target "${t}" (${ALL_TARGETS.join(", ")})`);
      process.exit(2);
    }
  }
  return {
    questions: [...new Set(questions)],
    targets,
    concurrency: (values.concurrency ?? (q ? "1,8" : "1,8,32,128")).split(",").map(Number),
    durationS: num(values.duration, q ? 3 : 10),
    warmupS: num(values.warmup, q ? 1 : 2),
    maxDurationS: num(values["max-duration"], q ? 10 : 60),
    maxWarmupS: num(values["max-warmup"], q ? 10 : 30),
    rounds: num(values.rounds, 1),
    runs: values.full ? 10_000 : num(values.runs, q ? 200 : 1000),
    heavyConcurrency: num(values["heavy-concurrency"], 8),
    rssConcurrency: num(values["rss-concurrency"], q ? 8 : 32),
    profileConcurrency: num(values["profile-concurrency"], 8),
    profileDurationS: num(values["profile-duration"], q ? 5 : 15),
    jobs: num(values.jobs, 10),
    logLevel: values["log-level"] ?? "info",
    pgUnsafe: values["pg-unsafe"],
    out: values.out ?? join(BENCH, "results"),
    keep: values.keep,
  };
}

type Opts = ReturnType<typeof parse>;

const hrUs = () => Number(process.hrtime.bigint() / 1000n);
const log = (s: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}`);
const f1 = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "–" : v.toFixed(1));

class Bench {
  readonly targets = new Map<TargetId, Target>();
  readonly stamp = new Date().toISOString().replace(/\.\d+Z$/, "Z").replace(/:/g, "-");
  readonly tag = Math.random().toString(36).slice(2, 8);
  readonly cores = machineInfo().cores;
  results!: Results;

  constructor(
    readonly o: Opts,
    readonly infra: Infra,
    readonly workDir: string,
  ) {}

  startOptions(extra: Partial<StartOptions> = {}): StartOptions {
    return { infra: this.infra, workDir: this.workDir, jobsPerWorker: this.o.jobs, logLevel: this.o.logLevel, tag: this.tag, ...extra };
  }

  async ensure(id: TargetId): Promise<Target> {
    let t = this.targets.get(id);
    if (!t) {
      const t0 = Date.now();
      t = await startTarget(id, this.startOptions());
      this.targets.set(id, t);
      log(`started ${id} in ${((Date.now() - t0) / 1000).toFixed(1)} s ${t.url ?? ""} pids ${JSON.stringify(t.pids())}`);
    }
    return t;
  }

  async stopAll(): Promise<void> {
    for (const [id, t] of this.targets) {
      await t.stop().catch((err) => log(`stopping ${id}: ${String(err)}`));
      this.targets.delete(id);
    }
  }

  /** Process groups measured for a target: its processes, PostgreSQL, Redis and this process (the load generator, or the floor itself). */
  groups(t: Target): { cpu: Record<string, () => number[]>; rss: Record<string, number> } {
    const cpu: Record<string, () => number[]> = {};
    const rss: Record<string, number> = {};
    for (const [k, pid] of Object.entries(t.pids())) {
      const name = t.kind === "floor" ? "floor" : k;
      cpu[name] = () => [pid];
      rss[name] = pid;
    }
    if (t.kind === "server") cpu.client = () => [process.pid];
    cpu.postgres = () => postgresPids(this.infra);
    cpu.redis = () => [this.infra.redisPid()];
    rss.redis = this.infra.redisPid();
    return { cpu, rss };
  }

  async measure(
    t: Target,
    p: { question: Question; graph: GraphId; mode: "wait" | "stateless" | "stream"; concurrency: number; round: number; settle: boolean; durationS?: number; onWindow?: { start(): void; end(): void } },
  ): Promise<Point> {
    const g = this.groups(t);
    const idle: Record<string, number | null> = {};
    for (const [k, pid] of Object.entries(g.rss)) idle[k] = rssMb(pid);
    let mon: ReturnType<typeof monitor> | null = null;
    let res: ResourceReport | null = null;
    let pgBefore: PgSnapshot | null = null;
    let redisBefore: Awaited<ReturnType<typeof redisCommandStats>> | null = null;
    const load = await closedLoop<string>({
      concurrency: p.concurrency,
      warmupMs: this.o.warmupS * 1000,
      durationMs: (p.durationS ?? this.o.durationS) * 1000,
      maxWarmupMs: this.o.maxWarmupS * 1000,
      maxDurationMs: Math.max(p.durationS ?? 0, this.o.maxDurationS) * 1000,
      setup: async () => (p.mode === "stateless" ? "" : t.ops.newThread()),
      beforeStart: async () => {
        if (t.db) {
          if (p.settle) await settleStats();
          pgBefore = await pgSnapshot(this.infra, t.db);
        }
        if (t.id === "op-one" || t.id === "op-split") redisBefore = await redisCommandStats(this.infra.redis);
      },
      op: async (thread, t0) => {
        if (p.mode === "stream") {
          const s = await t.ops.stream(thread, p.graph, t0);
          return { firstEvent: s.firstEvent, firstValues: s.firstValues };
        }
        checkValues(p.graph, await t.ops.wait(p.mode === "stateless" ? null : thread, p.graph));
      },
      onWindow: {
        start: () => {
          mon = monitor(g.cpu, g.rss, this.cores, idle);
          p.onWindow?.start();
        },
        end: () => {
          res = mon?.stop() ?? null;
          p.onWindow?.end();
        },
      },
    });
    let redis: Point["redis"] = null;
    if (redisBefore) redis = redisDelta(redisBefore, await redisCommandStats(this.infra.redis), load.completed);
    let pgd: Point["pg"] = null;
    if (t.db && pgBefore) {
      if (p.settle) await settleStats();
      pgd = { ...(await pgDelta(this.infra, pgBefore, await pgSnapshot(this.infra, t.db), load.completed)), settled: p.settle };
    }
    const resources = (res ?? mon!.stop()) as ResourceReport;
    const perRun = Math.max(1, load.completedInWindow);
    const point: Point = {
      question: p.question,
      target: t.id,
      graph: p.graph,
      concurrency: p.concurrency,
      round: p.round,
      load,
      resources,
      cpuMsPerRun: Object.fromEntries(Object.entries(resources.cpuMs).map(([k, v]) => [k, v / perRun])),
      pg: pgd,
      redis,
    };
    const srv = Object.entries(point.cpuMsPerRun)
      .filter(([k]) => !["postgres", "redis", "client"].includes(k))
      .reduce((s, [, v]) => s + v, 0);
    const extra = p.mode === "stream" ? ` first event ${summaryLine(load.timings.firstEvent ?? load.latency)}` : "";
    log(
      `${p.question} c=${p.concurrency} ${t.id}: ${f1(load.opsPerSec)} runs/s, ${summaryLine(load.latency)}${extra}, errors ${load.errors}${load.stuck ? ` stuck ${load.stuck}` : ""}` +
        `, CPU ms/run srv ${f1(srv)} pg ${f1(point.cpuMsPerRun.postgres)}${pgd ? `, SQL ${f1(pgd.statementsPerRun)}/run, WAL ${f1(pgd.walBytesPerRun / 1024)} KB/run` : ""}` +
        `, other load ${resources.otherBusyCores.toFixed(2)} cores${load.errorSamples[0] ? `\n    first error: ${load.errorSamples[0]}` : ""}`,
    );
    this.results.points.push(point);
    this.save();
    return point;
  }

  pick(defaults: TargetId[]): TargetId[] {
    return this.o.targets ? this.o.targets.filter((t) => defaults.includes(t)) : defaults;
  }

  async latencyQuestion(question: "wait" | "stateless" | "stream"): Promise<void> {
    const ids = this.pick(question === "wait" ? ALL_TARGETS : ALL_TARGETS.filter((t) => t !== "floor-exec"));
    for (const id of ids) await this.ensure(id);
    let k = 0;
    for (const c of this.o.concurrency) {
      for (let round = 1; round <= this.o.rounds; round++, k++) {
        // Rotate the order at every point so no target always goes first (or last).
        const order = ids.map((_, i) => ids[(i + k) % ids.length]!);
        for (const id of order) {
          await this.measure(await this.ensure(id), { question, graph: "trivial", mode: question === "stream" ? "stream" : question, concurrency: c, round, settle: false });
        }
      }
    }
  }

  async heavy(): Promise<void> {
    const ids = this.pick(ALL_TARGETS);
    for (const id of ids) await this.ensure(id);
    for (let round = 1; round <= this.o.rounds; round++) {
      for (const id of round % 2 ? ids : [...ids].reverse()) {
        await this.measure(await this.ensure(id), { question: "heavy", graph: "tenstep", mode: "wait", concurrency: this.o.heavyConcurrency, round, settle: true });
      }
    }
  }

  async rss(): Promise<void> {
    for (const id of this.pick(["op-one", "op-split", "official"])) {
      await this.measure(await this.ensure(id), { question: "rss", graph: "trivial", mode: "wait", concurrency: this.o.rssConcurrency, round: 1, settle: false });
    }
  }

  async background(): Promise<void> {
    for (const id of this.pick(["op-split", "op-one", "official", "floor-pg"])) {
      this.results.background.push(await this.backgroundOne(await this.ensure(id), this.o.runs));
      this.save();
    }
  }

  async backgroundOne(t: Target, n: number): Promise<BackgroundResult> {
    const submitConcurrency = 16;
    const timeoutMs = Math.max(120_000, n * 200);
    const batch = `bg_${this.tag}_${t.id}_${Date.now()}`;
    const g = this.groups(t);
    const errorSamples: string[] = [];
    let errors = 0;
    const pool = async (count: number, conc: number, fn: (i: number) => Promise<void>) => {
      let next = 0;
      await Promise.all(
        Array.from({ length: conc }, async () => {
          while (next < count) {
            const i = next++;
            try {
              await fn(i);
            } catch (err) {
              errors++;
              if (errorSamples.length < 5) errorSamples.push(String((err as Error)?.message ?? err).slice(0, 300));
            }
          }
        }),
      );
    };
    log(`background ${t.id}: ${n} runs on distinct threads`);
    if (t.kind === "floor") {
      // The floor: the same runs executed in process, as many at a time as a worker would.
      const mon = monitor(g.cpu, g.rss, this.cores);
      const t0 = performance.now();
      let ok = 0;
      await pool(n, this.o.jobs, async () => {
        checkValues("trivial", await t.ops.wait(await t.ops.newThread(), "trivial"));
        ok++;
      });
      const s = (performance.now() - t0) / 1000;
      const resources = mon.stop();
      const r: BackgroundResult = {
        target: t.id, runs: n, submitConcurrency: this.o.jobs, submitS: 0, allTerminalS: s, runsPerSec: n / s, timedOut: false,
        statuses: { success: ok, error: n - ok }, statusSource: "in process", lost: n - ok, resources,
        cpuMsPerRun: Object.fromEntries(Object.entries(resources.cpuMs).map(([k, v]) => [k, v / n])), errors, errorSamples,
      };
      log(`background ${t.id}: all ${n} done in ${s.toFixed(2)} s (${(n / s).toFixed(1)} runs/s)`);
      return r;
    }
    const client = t.client!;
    // Threads first (not timed), tagged so the server can count them.
    const threads: string[] = new Array(n);
    await pool(n, 32, async (i) => {
      threads[i] = (await client.threads.create({ metadata: { bench_batch: batch } })).thread_id;
    });
    const threadErrors = errors;
    const sqlPool = t.db ? new pg.Pool({ connectionString: this.infra.pgUri(t.db), max: 1 }) : null;
    const terminalCount = async (): Promise<number> => {
      if (sqlPool) {
        const { rows } = await sqlPool.query<{ c: string }>(
          "SELECT count(*)::text AS c FROM run WHERE metadata->>'bench_batch' = $1 AND status IN ('success','error','interrupted','timeout')",
          [batch],
        );
        return Number(rows[0]?.c ?? 0);
      }
      const counts = await Promise.all(["idle", "error", "interrupted"].map((status) => client.threads.count({ metadata: { bench_batch: batch }, status: status as "idle" })));
      return counts.reduce((a, b) => a + b, 0);
    };
    const mon = monitor(g.cpu, g.rss, this.cores);
    const t0 = performance.now();
    await pool(n, submitConcurrency, async (i) => {
      if (!threads[i]) throw new Error("thread not created");
      await client.runs.create(threads[i]!, "trivial", { input: INPUT.trivial, metadata: { bench_batch: batch } });
    });
    const submitS = (performance.now() - t0) / 1000;
    const submitted = n - (errors - threadErrors) - threadErrors;
    log(`background ${t.id}: submitted ${submitted} in ${submitS.toFixed(2)} s`);
    let done = 0;
    let timedOut = false;
    for (;;) {
      done = await terminalCount().catch(() => done);
      if (done >= submitted) break;
      if (performance.now() - t0 > timeoutMs) {
        timedOut = true;
        break;
      }
      await sleep(250);
    }
    const allTerminalS = (performance.now() - t0) / 1000;
    const resources = mon.stop();
    log(`background ${t.id}: ${done}/${submitted} terminal after ${allTerminalS.toFixed(2)} s${timedOut ? " (TIMED OUT)" : ""}`);
    // Final statuses: PostgreSQL for openplane (the source of truth), the API for the official server.
    const statuses: Record<string, number> = {};
    let statusSource: string;
    if (sqlPool) {
      const { rows } = await sqlPool.query<{ status: string; c: string }>("SELECT status, count(*)::text AS c FROM run WHERE metadata->>'bench_batch' = $1 GROUP BY status", [batch]);
      for (const r of rows) statuses[r.status] = Number(r.c);
      statusSource = "PostgreSQL (run table)";
      await sqlPool.end();
    } else {
      const before = errors;
      await pool(n, 32, async (i) => {
        const runs = threads[i] ? await client.runs.list(threads[i]!) : [];
        if (runs.length === 0) statuses.missing = (statuses.missing ?? 0) + 1;
        for (const r of runs) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      });
      errors = before;
      statusSource = "API (runs.list per thread)";
    }
    const terminal = ["success", "error", "interrupted", "timeout"].reduce((a, k) => a + (statuses[k] ?? 0), 0);
    return {
      target: t.id,
      runs: n,
      submitConcurrency,
      submitS,
      allTerminalS,
      runsPerSec: done / allTerminalS,
      timedOut,
      statuses,
      statusSource,
      lost: submitted - terminal,
      resources,
      cpuMsPerRun: Object.fromEntries(Object.entries(resources.cpuMs).map(([k, v]) => [k, v / Math.max(1, done)])),
      errors,
      errorSamples,
    };
  }

  async profile(): Promise<void> {
    // Alone on the stores: idle targets would add their own SQL and Redis traffic.
    await this.stopAll();
    for (const id of this.pick(["op-one", "op-split"])) {
      const dir = join(this.o.out, `${this.stamp}-cpuprofiles`, id);
      mkdirSync(dir, { recursive: true });
      const t = await startTarget(id, this.startOptions({ nodeFlags: ["--cpu-prof", `--cpu-prof-dir=${dir}`], tag: `${this.tag}p` }));
      log(`profiling ${id} (pids ${JSON.stringify(t.pids())})`);
      let w0 = 0;
      let w1 = 0;
      let wall0 = 0;
      let wall1 = 0;
      let point: Point;
      try {
        point = await this.measure(t, {
          question: "profile",
          graph: "trivial",
          mode: "wait",
          concurrency: this.o.profileConcurrency,
          round: 1,
          settle: true,
          durationS: this.o.profileDurationS,
          onWindow: {
            start: () => {
              w0 = hrUs();
              wall0 = Date.now();
            },
            end: () => {
              w1 = hrUs();
              wall1 = Date.now();
            },
          },
        });
      } finally {
        await t.stop(); // the profile is written at exit
      }
      const breakdown = logBreakdown(t.logFiles(), wall0, wall1, point.load.latency.mean);
      this.results.profileCounters.push({ target: id, runs: point.load.completed, pg: point.pg, redis: point.redis, breakdown });
      if (!breakdown) log(`${id}: no time breakdown (it needs --log-level debug)`);
      if (breakdown) {
        log(`${id}: mean ${breakdown.clientMean.toFixed(1)} ms = create ${breakdown.createMean.toFixed(1)} + queue ${breakdown.queueMean.toFixed(1)} + execute ${breakdown.execMean.toFixed(1)} + rest ${breakdown.restMean.toFixed(1)}`);
      }
      const files = readdirSync(dir);
      for (const [proc, pid] of Object.entries(t.pids())) {
        const file = files.find((f) => f.includes(`.${pid}.`) && f.endsWith(".cpuprofile"));
        if (!file) {
          log(`no profile for ${id}/${proc} (pid ${pid}) in ${dir}`);
          continue;
        }
        const summary = summarizeProfile(join(dir, file), [w0, w1], point.load.completedInWindow);
        this.results.profiles.push({ target: id, process: proc, runs: point.load.completedInWindow, summary, profileFile: relative(REPO, join(dir, file)) });
        log(`${id}/${proc}: ${(summary.busyMs / Math.max(1, point.load.completedInWindow)).toFixed(2)} ms CPU/run; top areas: ${summary.areas.slice(0, 6).map((a) => `${a.area} ${a.pct.toFixed(0)}%`).join(", ")}`);
      }
      this.save();
    }
  }

  save(): void {
    const r = this.results;
    r.finishedAt = new Date().toISOString();
    r.machine.loadavgEnd = machineInfo().loadavg.map((x) => Number(x.toFixed(2)));
    mkdirSync(this.o.out, { recursive: true });
    const base = join(this.o.out, this.stamp);
    writeFileSync(`${base}.json`, JSON.stringify(r, null, 2));
    writeFileSync(`${base}.md`, markdown(r));
  }
}

/**
 * Where a run's time goes, from openplane's JSON log lines: the request line of POST
 * .../runs/wait (ms until the handler returned its streaming response), "run created" (API,
 * after dispatch), "run started" (worker, after the claim), "run finished" (with `ms`).
 * The request line of a created run and "run started" are debug lines: run the profile with
 * `--log-level debug` to get this breakdown (debug logging costs CPU; profile without it).
 */
function logBreakdown(files: string[], fromMs: number, toMs: number, clientMean: number): Breakdown | null {
  const created = new Map<string, number>();
  const started = new Map<string, number>();
  const exec: number[] = [];
  const create: number[] = [];
  for (const f of files) {
    let text = "";
    try {
      text = readFileSync(f, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n")) {
      if (!line.startsWith("{")) continue;
      let o: { time?: string; msg?: string; run_id?: string; ms?: number; method?: string; path?: string };
      try {
        o = JSON.parse(line) as typeof o;
      } catch {
        continue;
      }
      const at = Date.parse(o.time ?? "");
      if (!(at >= fromMs && at <= toMs)) continue;
      if (o.msg === "request" && o.method === "POST" && o.path?.endsWith("/runs/wait") && typeof o.ms === "number") create.push(o.ms);
      else if (o.msg === "run created" && o.run_id) created.set(o.run_id, at);
      else if (o.msg === "run started" && o.run_id) started.set(o.run_id, at);
      else if (o.msg === "run finished" && typeof o.ms === "number") exec.push(o.ms);
    }
  }
  const queue: number[] = [];
  for (const [id, at] of created) {
    const s = started.get(id);
    if (s !== undefined) queue.push(s - at);
  }
  if (exec.length === 0 || queue.length === 0 || create.length === 0) return null;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
  const b = { create: mean(create), queue: mean(queue), exec: mean(exec) };
  return {
    runs: exec.length,
    clientMean,
    createMean: b.create,
    queueMean: b.queue,
    execMean: b.exec,
    restMean: clientMean - b.create - b.queue - b.exec,
    p50: { create: p50(create), queue: p50(queue), exec: p50(exec) },
  };
}

/** Which openplane was measured: the commit, how many src/ files differ from it, and a hash of src/ as it was read. */
function sourceState(): Record<string, string> {
  const git = (...args: string[]) => {
    try {
      return execFileSync("git", args, { cwd: REPO, encoding: "utf8" }).trim();
    } catch {
      return "?";
    }
  };
  const files = git("ls-files", "-co", "--exclude-standard", "src").split("\n").filter(Boolean).sort();
  const h = createHash("sha1");
  for (const f of files) {
    try {
      h.update(f).update(readFileSync(join(REPO, f)));
    } catch {
      // deleted meanwhile
    }
  }
  const dirty = git("status", "--porcelain", "src").split("\n").filter(Boolean).length;
  return { commit: git("rev-parse", "--short", "HEAD"), "src files changed vs commit": String(dirty), "src sha1": h.digest("hex").slice(0, 12) };
}

function versions(infra: Infra): Record<string, string> {
  const v = (p: string) => {
    try {
      return (JSON.parse(readFileSync(p, "utf8")) as { version: string }).version;
    } catch {
      return "not installed";
    }
  };
  return {
    openplane: v(join(REPO, "package.json")),
    "@langchain/langgraph": v(join(REPO, "node_modules/@langchain/langgraph/package.json")),
    "@langchain/langgraph-api": v(join(BENCH, "official/node_modules/@langchain/langgraph-api/package.json")),
    "@langchain/langgraph-sdk": v(join(REPO, "node_modules/@langchain/langgraph-sdk/package.json")),
    node: process.version,
    postgresql: infra.pgSettings.server_version ?? "?",
  };
}

async function main(): Promise<void> {
  const o = parse();
  const workDir = mkdtempSync(join(tmpdir(), "openplane-bench-"));
  log(`work dir ${workDir}; questions ${o.questions.join(", ")}`);
  const m = machineInfo();
  const infra = await startInfra({ pgUnsafe: o.pgUnsafe, workDir });
  await checkpoint(infra);
  const redisVersion = /redis_version:(\S+)/.exec(await infra.redis.info("server"))?.[1] ?? "?";
  const b = new Bench(o, infra, workDir);
  b.results = {
    startedAt: new Date().toISOString(),
    finishedAt: "",
    command: `tsx bench/run.ts ${process.argv.slice(2).join(" ")}`,
    options: { ...o },
    machine: { cores: m.cores, cpuModel: m.cpuModel, loadavgStart: m.loadavg.map((x) => Number(x.toFixed(2))) },
    versions: { ...versions(infra), redis: redisVersion, ...sourceState() },
    pgSettings: infra.pgSettings,
    notes: [
      "Closed loop: each client loop waits for its run before starting the next; each loop has its own thread. The load generator (SDK Client, maxConcurrency unlimited, no retries) runs in the bench process on the same machine; its CPU is the `client` column.",
      "The floor runs in the bench process (no HTTP, no queue): `floor` CPU is that process.",
      "CPU ms/run: utime+stime from /proc over the measured window, divided by runs completed in it. `pg` sums every PostgreSQL backend (all targets share the cluster; only the measured one is loaded).",
      "The official in-memory server's latency is set by two timers, not by work (langgraph-api 2.0.0): idle workers poll for pending runs every 0–1 s (dist/queue.mjs), and a runs.wait / join / stream only ends when its 500 ms queue.get timeout fires and the run is seen finished (storage/ops.mjs: no `done` control message is published). Its p50 is therefore ≥ ~0.5 s at any load; compare CPU per run for efficiency.",
    ],
    points: [],
    background: [],
    profiles: [],
    profileCounters: [],
  };
  let failed = false;
  try {
    for (const q of o.questions) {
      log(`--- ${q}`);
      if (q === "wait" || q === "stateless" || q === "stream") await b.latencyQuestion(q);
      else if (q === "heavy") await b.heavy();
      else if (q === "rss") await b.rss();
      else if (q === "background") await b.background();
      else if (q === "profile") await b.profile();
    }
  } catch (err) {
    failed = true;
    console.error(err);
    b.results.notes.push(`Aborted: ${String((err as Error)?.message ?? err).slice(0, 500)}`);
  } finally {
    await b.stopAll();
    b.save();
    const base = join(o.out, b.stamp);
    try {
      if (plot(b.results, `${base}.png`)) log(`plot ${relative(process.cwd(), `${base}.png`)}`);
    } catch (err) {
      log(`plot failed: ${String(err)}`);
    }
    await infra.stop();
    if (o.keep || failed) log(`server logs kept in ${workDir}`);
    else rmSync(workDir, { recursive: true, force: true });
    log(`results ${relative(process.cwd(), `${base}.json`)} and ${relative(process.cwd(), `${base}.md`)}`);
  }
  process.exit(failed ? 1 : 0);
}

await main();
