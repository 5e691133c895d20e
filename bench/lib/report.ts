/** Result types, the Markdown report and the plot of one bench invocation. */
import type { PgDelta } from "./infra.js";
import type { LoadResult, ResourceReport, Summary } from "./load.js";
import type { Panel } from "./plot.js";
import { COLORS, renderPlot } from "./plot.js";
import type { ProfileSummary } from "./profile.js";
import type { GraphId, TargetId } from "./targets.js";
import { ALL_TARGETS, TARGET_LABEL } from "./targets.js";

export type Question = "wait" | "stateless" | "stream" | "heavy" | "rss" | "profile";

export interface RedisDelta {
  commandsPerRun: number;
  /** Socket reads Redis processed per run (absent in files written before it was measured). */
  readsPerRun?: number;
  redisUsecPerRun: number;
  perRun: Record<string, number>;
}

/** Mean ms per segment of a run's life, from openplane's JSON logs (ms resolution). */
export interface Breakdown {
  runs: number;
  /** Client-side mean latency of runs.wait over the same window. */
  clientMean: number;
  /** POST .../runs/wait until the handler returned its streaming response (validate, subscribe, insert, dispatch). */
  createMean: number;
  /** "run created" (API, after dispatch) → "run started" (worker, after the claim). */
  queueMean: number;
  /** "run started" → "run finished" (control listener, execution with checkpoints, getState, finish transaction). */
  execMean: number;
  /** The rest: end of stream, Redis → API, response, client. */
  restMean: number;
  p50: { create: number; queue: number; exec: number };
}

export interface Point {
  question: Question;
  target: TargetId;
  graph: GraphId;
  concurrency: number;
  round: number;
  load: LoadResult;
  resources: ResourceReport;
  /** CPU ms per completed run, per process group (server processes, postgres, redis, client = the load generator). */
  cpuMsPerRun: Record<string, number>;
  /** `settled`: pg_stat_database counters were read after the stats flush (else only WAL and pg_stat_statements are exact). */
  pg: (PgDelta & { settled: boolean }) | null;
  redis: RedisDelta | null;
}

export interface BackgroundResult {
  target: TargetId;
  runs: number;
  submitConcurrency: number;
  /** Seconds to submit every run (POST /threads/{id}/runs). */
  submitS: number;
  /** Seconds from the first submission until every run was terminal. */
  allTerminalS: number;
  runsPerSec: number;
  timedOut: boolean;
  /** Final count of runs by status, and where it was read. */
  statuses: Record<string, number>;
  statusSource: string;
  lost: number;
  resources: ResourceReport;
  cpuMsPerRun: Record<string, number>;
  errors: number;
  errorSamples: string[];
}

export interface ProfileResult {
  target: TargetId;
  process: string;
  runs: number;
  summary: ProfileSummary;
  profileFile: string;
}

export interface Results {
  startedAt: string;
  finishedAt: string;
  command: string;
  options: Record<string, unknown>;
  machine: Record<string, unknown>;
  versions: Record<string, string>;
  pgSettings: Record<string, string>;
  notes: string[];
  points: Point[];
  background: BackgroundResult[];
  profiles: ProfileResult[];
  /** SQL and Redis work per run measured alongside the profiles, and where a run's time goes (from the server logs). */
  profileCounters: Array<{ target: TargetId; runs: number; pg: (PgDelta & { settled: boolean }) | null; redis: RedisDelta | null; breakdown: Breakdown | null }>;
}

// ---------------------------------------------------------------- aggregation

/** Of an even count, the mean of the two middle values: with 2 rounds, not the better one. */
const median = (xs: number[]) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

export interface Agg {
  target: TargetId;
  concurrency: number;
  rounds: number;
  opsPerSec: number;
  /** Runs measured (latency samples), over all rounds. */
  n: number;
  p50: number;
  p99: number;
  errors: number;
  timings: Record<string, { p50: number; p99: number }>;
  cpu: Record<string, number>;
  rssPeak: number;
  otherCores: number;
  stmtsPerRun: number;
  walPerRun: number;
  pg: Point["pg"];
  redis: RedisDelta | null;
}

/** Rounds of the same (question, target, concurrency) merged: mean throughput, median latencies. */
export function aggregate(points: Point[], q: Question): Agg[] {
  const groups = new Map<string, Point[]>();
  for (const p of points.filter((x) => x.question === q)) {
    const k = `${p.target}|${p.concurrency}`;
    groups.set(k, [...(groups.get(k) ?? []), p]);
  }
  const out: Agg[] = [];
  for (const ps of groups.values()) {
    const f = ps[0]!;
    const timingKeys = Object.keys(f.load.timings);
    const cpuKeys = Object.keys(f.cpuMsPerRun);
    out.push({
      target: f.target,
      concurrency: f.concurrency,
      rounds: ps.length,
      opsPerSec: ps.reduce((a, p) => a + p.load.opsPerSec, 0) / ps.length,
      n: ps.reduce((a, p) => a + p.load.ops, 0),
      p50: median(ps.map((p) => p.load.latency.p50)),
      p99: median(ps.map((p) => p.load.latency.p99)),
      errors: ps.reduce((a, p) => a + p.load.errors + p.load.stuck, 0),
      timings: Object.fromEntries(timingKeys.map((k) => [k, { p50: median(ps.map((p) => p.load.timings[k]?.p50 ?? NaN)), p99: median(ps.map((p) => p.load.timings[k]?.p99 ?? NaN)) }])),
      cpu: Object.fromEntries(cpuKeys.map((k) => [k, median(ps.map((p) => p.cpuMsPerRun[k] ?? NaN))])),
      rssPeak: Math.max(...ps.flatMap((p) => Object.entries(p.resources.rss).filter(([k]) => k !== "redis").map(([, v]) => v.peak ?? 0))),
      otherCores: median(ps.map((p) => p.resources.otherBusyCores)),
      stmtsPerRun: median(ps.map((p) => p.pg?.statementsPerRun ?? NaN)),
      walPerRun: median(ps.map((p) => p.pg?.walBytesPerRun ?? NaN)),
      pg: f.pg,
      redis: f.redis,
    });
  }
  const order = (t: TargetId) => ALL_TARGETS.indexOf(t);
  return out.sort((a, b) => a.concurrency - b.concurrency || order(a.target) - order(b.target));
}

// ---------------------------------------------------------------- formatting

const n = (v: number | null | undefined, d = 1) => (v === null || v === undefined || !Number.isFinite(v) ? "–" : v >= 100 ? v.toFixed(0) : v.toFixed(d));
const ms = (v: number | undefined) => n(v, v !== undefined && v < 10 ? 2 : 1);
const ratio = (a: number | undefined, b: number | undefined) => (a && b && Number.isFinite(a) && Number.isFinite(b) ? `${(a / b).toFixed(2)}×` : "–");
const kb = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "–" : (v / 1024).toFixed(1));

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

const serverCpu = (a: Agg) =>
  Object.entries(a.cpu)
    .filter(([k]) => !["postgres", "redis", "client"].includes(k))
    .reduce((s, [, v]) => s + v, 0);

function latencySection(title: string, aggs: Agg[], stream: boolean): string {
  if (aggs.length === 0) return "";
  const head = stream
    ? ["conc.", "target", "runs/s", "n", "first event p50", "first event p99", "first values p50", "end p50", "end p99", "err", "CPU ms/run srv \\| pg \\| redis \\| client", "peak RSS MiB", "other load (cores)"]
    : ["conc.", "target", "runs/s", "n", "p50 ms", "p99 ms", "err", "CPU ms/run srv \\| pg \\| redis \\| client", "SQL stmts/run", "WAL KB/run", "peak RSS MiB", "other load (cores)"];
  const rows = aggs.map((a) => {
    const cpu = `${n(serverCpu(a))} \\| ${n(a.cpu.postgres)} \\| ${n(a.cpu.redis)} \\| ${n(a.cpu.client ?? a.cpu.floor)}`;
    const base = [String(a.concurrency), a.target, n(a.opsPerSec), String(a.n)];
    if (stream) {
      const t = a.timings;
      return [...base, ms(t.firstEvent?.p50), ms(t.firstEvent?.p99), ms(t.firstValues?.p50), ms(a.p50), ms(a.p99), String(a.errors), cpu, n(a.rssPeak, 0), n(a.otherCores, 2)];
    }
    return [...base, ms(a.p50), ms(a.p99), String(a.errors), cpu, n(a.stmtsPerRun), kb(a.walPerRun), n(a.rssPeak, 0), n(a.otherCores, 2)];
  });
  return `### ${title}\n\n${table(head, rows)}\n\n${ratioTable(aggs, stream)}\n`;
}

function ratioTable(aggs: Agg[], stream: boolean): string {
  const concs = [...new Set(aggs.map((a) => a.concurrency))];
  const get = (t: TargetId, c: number) => aggs.find((a) => a.target === t && a.concurrency === c);
  const lat = (a: Agg | undefined, k: "p50" | "p99") => (stream ? a?.timings.firstEvent?.[k] : a?.[k]);
  const rows = concs.map((c) => {
    const one = get("op-one", c);
    const split = get("op-split", c);
    const off = get("official", c);
    const fpg = get("floor-pg", c);
    const fexec = get("floor-exec", c);
    const fmem = get("floor-mem", c);
    return [
      String(c),
      ratio(one?.opsPerSec, off?.opsPerSec),
      ratio(one?.p50, off?.p50),
      ratio(one?.p99, off?.p99),
      ratio(split?.opsPerSec, off?.opsPerSec),
      ratio(split?.p50, off?.p50),
      ...(stream ? [ratio(lat(one, "p50"), lat(off, "p50"))] : []),
      ratio(one?.p50, fpg?.p50),
      ratio(one?.opsPerSec, fpg?.opsPerSec),
      ratio(fexec?.p50, fpg?.p50),
      ratio(off?.p50, fmem?.p50),
    ];
  });
  const head = [
    "conc.",
    "1-proc / official runs/s",
    "1-proc / official p50",
    "1-proc / official p99",
    "split / official runs/s",
    "split / official p50",
    ...(stream ? ["1-proc / official first-event p50"] : []),
    "1-proc / floor-pg p50",
    "1-proc / floor-pg runs/s",
    "floor-exec / floor-pg p50",
    "official / floor-mem p50",
  ];
  return `Ratios (runs/s: higher is better for openplane; latency: lower is better):\n\n${table(head, rows)}`;
}

function heavySection(aggs: Agg[]): string {
  if (aggs.length === 0) return "";
  const rows = aggs.map((a) => {
    const pg = a.pg;
    const rel = pg ? (pg.relBytesPerRun.checkpoints ?? 0) + (pg.relBytesPerRun.checkpoint_blobs ?? 0) + (pg.relBytesPerRun.checkpoint_writes ?? 0) : NaN;
    const ours = pg ? (pg.relBytesPerRun.run ?? 0) + (pg.relBytesPerRun.thread ?? 0) : NaN;
    const pr = pg?.perRun ?? {};
    return [
      String(a.concurrency),
      a.target,
      n(a.opsPerSec),
      ms(a.p50),
      ms(a.p99),
      String(a.errors),
      kb(pg?.walBytesPerRun),
      kb(rel),
      kb(ours),
      kb(pg?.dbBytesPerRun),
      pg?.settled ? `${n(pr.tup_inserted)} / ${n(pr.tup_updated)} / ${n(pr.tup_deleted)}` : "–",
      pg?.settled ? n(pr.xact_commit) : "–",
      n(pg?.statementsPerRun),
      `${n(serverCpu(a))} \\| ${n(a.cpu.postgres)}`,
    ];
  });
  const head = ["conc.", "target", "runs/s", "p50 ms", "p99 ms", "err", "WAL KB/run", "checkpoint tables KB/run", "run+thread KB/run", "db size KB/run", "tuples ins / upd / del per run", "commits/run", "SQL stmts/run", "CPU ms/run srv \\| pg"];
  return `### 5. 10-step graph, ~10 KB state (runs.wait on a thread)\n\n${table(head, rows)}\n\nBytes written: **WAL KB/run** is exact (pg_wal_lsn_diff of pg_current_wal_lsn() around the load, cluster-wide, only this target loaded). Table sizes are pg_total_relation_size deltas (heap + TOAST + indexes; page-granular). Tuples and commits are pg_stat_database deltas read after the 10 s stats flush.\n`;
}

function backgroundSection(bg: BackgroundResult[]): string {
  if (bg.length === 0) return "";
  const rows = bg.map((b) => [
    b.target,
    String(b.runs),
    n(b.submitS, 2),
    `${n(b.allTerminalS, 2)}${b.timedOut ? " (timed out)" : ""}`,
    n(b.runsPerSec),
    Object.entries(b.statuses)
      .map(([k, v]) => `${k} ${v}`)
      .join(", "),
    String(b.lost),
    String(b.errors),
    n(Object.entries(b.cpuMsPerRun).filter(([k]) => !["postgres", "redis", "client"].includes(k)).reduce((s, [, v]) => s + v, 0)),
    n(Math.max(...Object.entries(b.resources.rss).filter(([k]) => k !== "redis").map(([, v]) => v.peak ?? 0)), 0),
    b.statusSource,
  ]);
  const head = ["target", "runs", "submit s", "all terminal s", "runs/s", "final statuses", "lost", "submit errors", "CPU ms/run srv", "peak RSS MiB", "counted in"];
  return `### 4. Background runs on distinct threads\n\n${table(head, rows)}\n`;
}

function rssSection(points: Point[]): string {
  const ps = points.filter((p) => p.question === "rss");
  if (ps.length === 0) return "";
  const rows: string[][] = [];
  for (const p of ps) {
    for (const [proc, r] of Object.entries(p.resources.rss)) {
      if (proc === "redis") continue;
      rows.push([p.target, proc, n(r.idle, 0), n(r.mean, 0), n(r.peak, 0), String(p.concurrency), n(p.load.opsPerSec)]);
    }
  }
  return `### 6. Server memory (VmRSS from /proc/<pid>/status)\n\n${table(["target", "process", "idle MiB", "mean under load MiB", "peak under load MiB", "load conc.", "runs/s during load"], rows)}\n\nIdle is read after start-up and before this question's load (earlier questions in the same invocation may have run on the same process).\n`;
}

function profileSection(r: Results): string {
  if (r.profiles.length === 0) return "";
  const parts: string[] = ["### Profile of the hot path (node --cpu-prof, samples inside the load window only)\n"];
  for (const p of r.profiles) {
    const s = p.summary;
    parts.push(`#### ${p.target} / ${p.process}: ${n(s.busyMs, 0)} ms CPU over ${n(s.windowMs / 1000, 1)} s, ${p.runs} runs → ${n(s.busyMs / Math.max(1, p.runs), 2)} ms CPU per run\n`);
    parts.push(table(["area", "ms/run", "% of CPU"], s.areas.slice(0, 16).map((a) => [a.area, n(a.msPerRun, 3), n(a.pct, 1)])));
    parts.push("\nTop self-time functions:\n");
    parts.push(table(["function", "where", "area", "% of CPU"], s.top.slice(0, 15).map((f) => [`\`${f.fn}\``, `\`${f.where}\``, f.area, n(f.pct, 1)])));
    parts.push("");
  }
  for (const c of r.profileCounters) {
    parts.push(`#### ${c.target}: where a run's time goes, SQL and Redis per run (${c.runs} runs)\n`);
    const b = c.breakdown;
    if (b) {
      parts.push(
        `Mean runs.wait latency ${n(b.clientMean)} ms (client) = create ${n(b.createMean)} + queue→claim ${n(b.queueMean)} + execute→finish ${n(b.execMean)} + rest ${n(b.restMean)} ms ` +
          `(from the server's JSON logs, ${b.runs} runs, ms resolution; medians: create ${n(b.p50.create)}, queue ${n(b.p50.queue)}, execute ${n(b.p50.exec)}).\n`,
      );
    }
    if (c.pg) {
      const pr = c.pg.perRun;
      parts.push(
        `SQL statements/run: **${n(c.pg.statementsPerRun, 2)}** (pg_stat_statements, exact); commits/run ${c.pg.settled ? n(pr.xact_commit, 2) : "–"}; rows returned/fetched per run ${c.pg.settled ? `${n(pr.tup_returned)} / ${n(pr.tup_fetched)}` : "–"}; WAL ${kb(c.pg.walBytesPerRun)} KB/run.\n`,
      );
      parts.push(table(["calls/run", "rows/call", "mean ms", "statement"], c.pg.topStatements.slice(0, 25).map((s) => [n(s.callsPerRun, 2), n(s.rowsPerCall, 1), n(s.meanMs, 3), `\`${s.query.replace(/\|/g, "\\|")}\``])));
      parts.push("");
    }
    if (c.redis) {
      const reads = c.redis.readsPerRun === undefined ? "" : `, in ${n(c.redis.readsPerRun, 2)} socket reads (INFO stats: client writes, pipelined commands share one)`;
      parts.push(`Redis commands/run: **${n(c.redis.commandsPerRun, 2)}**${reads} (INFO commandstats; Redis-side ${n(c.redis.redisUsecPerRun, 0)} µs/run):\n`);
      parts.push(table(["command", "calls/run"], Object.entries(c.redis.perRun).slice(0, 20).map(([k, v]) => [k, n(v, 2)])));
      parts.push("");
    }
  }
  return parts.join("\n");
}

export function markdown(r: Results): string {
  const meanOther = r.points.length ? r.points.reduce((a, p) => a + p.resources.otherBusyCores, 0) / r.points.length : NaN;
  const parts = [
    `# openplane bench: ${r.startedAt}`,
    "",
    `Command: \`${r.command}\``,
    "",
    `Machine: ${String(r.machine.cores)} cores (${String(r.machine.cpuModel)}), load average at start ${JSON.stringify(r.machine.loadavgStart)}, at end ${JSON.stringify(r.machine.loadavgEnd)}. ` +
      `Other processes (not the bench, its servers, PostgreSQL or Redis) kept **${n(meanOther, 2)} cores** busy on average during the measured windows (column "other load").`,
    "",
    `Versions: ${Object.entries(r.versions).map(([k, v]) => `${k} ${v}`).join(", ")}. PostgreSQL settings: ${Object.entries(r.pgSettings).map(([k, v]) => `${k}=${v}`).join(", ")}.`,
    "",
    `Options: ${JSON.stringify(r.options)}`,
    "",
    "Targets: " + Object.entries(TARGET_LABEL).map(([k, v]) => `\`${k}\` = ${v}`).join("; ") + ".",
    "",
    ...r.notes.map((x) => `- ${x}`),
    "",
    latencySection("1. runs.wait on a thread, trivial graph (closed loop, one thread per loop)", aggregate(r.points, "wait"), false),
    latencySection("2. Stateless runs.wait, trivial graph", aggregate(r.points, "stateless"), false),
    latencySection("3. runs.stream on a thread, trivial graph (stream_mode values; first event = metadata on servers)", aggregate(r.points, "stream"), true),
    backgroundSection(r.background),
    heavySection(aggregate(r.points, "heavy")),
    rssSection(r.points),
    profileSection(r),
  ];
  return parts.filter((p) => p !== undefined).join("\n");
}

export function plot(r: Results, file: string): boolean {
  const panels: Panel[] = [];
  const qs: Array<[Question, string]> = [
    ["wait", "runs.wait on a thread"],
    ["stateless", "stateless runs.wait"],
    ["stream", "runs.stream (end of stream)"],
  ];
  for (const [q, title] of qs) {
    const aggs = aggregate(r.points, q);
    if (aggs.length === 0) continue;
    const targets = [...new Set(aggs.map((a) => a.target))];
    const latency = (k: "p50" | "p99"): Panel["series"] =>
      targets.map((t) => ({
        name: `${t} ${k}`,
        color: COLORS[t] ?? "#000",
        dashed: k === "p99",
        points: aggs.filter((a) => a.target === t).map((a) => [a.concurrency, a[k]] as [number, number]),
      }));
    panels.push({ title: `${title}: latency`, xLabel: "concurrency (closed-loop clients)", yLabel: "ms (solid p50, dashed p99)", xLog: true, yLog: true, series: [...latency("p50"), ...latency("p99")] });
    panels.push({
      title: `${title}: throughput`,
      xLabel: "concurrency (closed-loop clients)",
      yLabel: "runs/s",
      xLog: true,
      yLog: true,
      series: targets.map((t) => ({ name: t, color: COLORS[t] ?? "#000", points: aggs.filter((a) => a.target === t).map((a) => [a.concurrency, a.opsPerSec] as [number, number]) })),
    });
  }
  if (panels.length === 0) return false;
  renderPlot(panels, `openplane vs official server vs floor (trivial graph), ${r.startedAt}`, file);
  return true;
}

export const summaryLine = (s: Summary) => `p50 ${ms(s.p50)} ms, p99 ${ms(s.p99)} ms`;
