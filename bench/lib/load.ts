/**
 * Closed-loop load: `concurrency` loops, each on its own state (its own thread), each
 * starting its next operation when the previous one ends. Operations that start during the
 * warm-up, or end after the deadline, are not counted; throughput is the counted operations
 * over the measured window. A resource monitor samples the target's processes meanwhile.
 */
import { cpuMs, machineTicks, rssMb, sleep } from "./proc.js";

export interface Summary {
  n: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function summarize(xs: number[]): Summary {
  if (xs.length === 0) return { n: 0, mean: NaN, p50: NaN, p90: NaN, p99: NaN, max: NaN };
  const s = [...xs].sort((a, b) => a - b);
  // Nearest rank.
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
  return { n: s.length, mean: s.reduce((a, b) => a + b, 0) / s.length, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: s[s.length - 1]! };
}

export interface LoadResult {
  ops: number;
  errors: number;
  errorSamples: string[];
  /** The measured window and the warm-up before it, in seconds (both adapt: see closedLoop). */
  windowS: number;
  warmupS: number;
  opsPerSec: number;
  latency: Summary;
  /** Extra named timings returned by the operation (e.g. time to first event). */
  timings: Record<string, Summary>;
  /** Operations still running at the deadline that did not end within the drain timeout. */
  stuck: number;
  /** Every operation that completed, warm-up and drain included (for per-run counters). */
  completed: number;
  /** Operations that ended inside the measured window (throughput and CPU per run use this). */
  completedInWindow: number;
}

export interface LoadOptions<S> {
  concurrency: number;
  /** Minimum warm-up; it goes on until every loop has completed about one run (see maxWarmupMs). */
  warmupMs: number;
  /** Minimum measured window; longer when needed for each loop to complete `minRunsPerLoop` runs (see maxDurationMs). */
  durationMs: number;
  minRunsPerLoop?: number;
  maxWarmupMs?: number;
  maxDurationMs?: number;
  /** Per-loop state (e.g. its thread), made before the clock starts. */
  setup: (loop: number) => Promise<S>;
  /** One operation; may return extra timings in ms. */
  op: (state: S, t0: number) => Promise<Record<string, number> | void>;
  /** Give up on in-flight operations this long after the window closed. */
  drainMs?: number;
  /** Awaited after setup, before the first operation (e.g. a statistics snapshot). */
  beforeStart?: () => Promise<void>;
  /** Called when the measured window opens and closes. */
  onWindow?: { start(): void; end(): void };
}

/**
 * With many loops and slow runs a fixed window would hold few complete runs, all from the
 * same synchronised first wave. So the warm-up lasts until about one run per loop completed
 * (loops desynchronise), and the window until each loop can complete `minRunsPerLoop` runs at
 * the warm-up's rate; both are capped.
 */
export async function closedLoop<S>(o: LoadOptions<S>): Promise<LoadResult> {
  const states: S[] = [];
  // Thread creation in small parallel batches (not timed).
  for (let i = 0; i < o.concurrency; i += 16) {
    const batch = await Promise.all(Array.from({ length: Math.min(16, o.concurrency - i) }, (_, k) => o.setup(i + k)));
    states.push(...batch);
  }
  await o.beforeStart?.();
  const latencies: number[] = [];
  let completed = 0;
  let completedInWindow = 0;
  const timings: Record<string, number[]> = {};
  const errorSamples: string[] = [];
  let errors = 0;
  let inflight = 0;
  let measureFrom = Infinity;
  let deadline = Infinity;
  let stopped = false;
  const loop = async (state: S) => {
    while (!stopped) {
      // An in-memory floor can resolve without any I/O: yield so timers (window, sampling) run.
      await new Promise<void>((r) => setImmediate(r));
      if (stopped) break;
      const t0 = performance.now();
      inflight++;
      try {
        const extra = await o.op(state, t0);
        const t1 = performance.now();
        completed++;
        if (t1 >= measureFrom && t1 <= deadline) completedInWindow++;
        if (t0 >= measureFrom && t1 <= deadline) {
          latencies.push(t1 - t0);
          for (const [k, v] of Object.entries(extra ?? {})) (timings[k] ??= []).push(v);
        }
      } catch (err) {
        if (t0 >= measureFrom && t0 <= deadline) {
          errors++;
          if (errorSamples.length < 5) errorSamples.push(String((err as Error)?.message ?? err).slice(0, 300));
        }
        // Do not spin on a failing target.
        await sleep(50);
      } finally {
        inflight--;
      }
    }
  };
  const start = performance.now();
  const all = Promise.all(states.map(loop));
  // Warm-up.
  const maxWarmup = Math.max(o.warmupMs, o.maxWarmupMs ?? 30_000);
  while (performance.now() - start < maxWarmup && (performance.now() - start < o.warmupMs || completed < o.concurrency)) await sleep(25);
  const warmS = (performance.now() - start) / 1000;
  const rate = completed / warmS;
  const wantMs = rate > 0 ? ((o.minRunsPerLoop ?? 3) * o.concurrency * 1000) / rate : Infinity;
  const windowMs = Math.min(Math.max(o.durationMs, wantMs), Math.max(o.durationMs, o.maxDurationMs ?? 60_000));
  measureFrom = performance.now();
  o.onWindow?.start();
  await sleep(windowMs);
  deadline = performance.now();
  stopped = true;
  o.onWindow?.end();
  let t3: NodeJS.Timeout | undefined;
  await Promise.race([all, new Promise<void>((r) => (t3 = setTimeout(r, o.drainMs ?? 60_000)))]);
  clearTimeout(t3);
  const windowS = (deadline - measureFrom) / 1000;
  return {
    ops: latencies.length,
    errors,
    errorSamples,
    windowS,
    warmupS: warmS,
    opsPerSec: completedInWindow / windowS,
    latency: summarize(latencies),
    timings: Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, summarize(v)])),
    stuck: inflight,
    completed,
    completedInWindow,
  };
}

export interface ResourceReport {
  /** MiB per process: before the load, mean and peak during it. */
  rss: Record<string, { idle: number | null; mean: number | null; peak: number | null }>;
  /** CPU ms used per process group over the window. */
  cpuMs: Record<string, number>;
  /** Whole machine: cores busy on average, and how many of them were not ours. */
  machineBusyCores: number;
  otherBusyCores: number;
  seconds: number;
}

/**
 * Samples RSS every 500 ms and CPU time at both ends. `groups` maps a name to a function
 * returning its current pids (PostgreSQL backends come and go); `self` adds this process.
 */
export function monitor(groups: Record<string, () => number[]>, rssOf: Record<string, number>, cores: number, idleRss?: Record<string, number | null>) {
  const idle: Record<string, number | null> = { ...idleRss };
  for (const [k, pid] of Object.entries(rssOf)) if (!(k in idle)) idle[k] = rssMb(pid);
  const samples: Record<string, number[]> = {};
  const cpuAt = () => {
    const o: Record<string, Map<number, number>> = {};
    for (const [k, f] of Object.entries(groups)) o[k] = new Map(f().map((p) => [p, p === process.pid ? selfCpu() : cpuMs(p)]));
    return o;
  };
  const selfCpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const c0 = cpuAt();
  const m0 = machineTicks();
  const t0 = performance.now();
  const timer = setInterval(() => {
    for (const [k, pid] of Object.entries(rssOf)) {
      const v = rssMb(pid);
      if (v !== null) (samples[k] ??= []).push(v);
    }
  }, 500);
  return {
    stop(): ResourceReport {
      clearInterval(timer);
      const c1 = cpuAt();
      const m1 = machineTicks();
      const seconds = (performance.now() - t0) / 1000;
      const cpu: Record<string, number> = {};
      let ours = 0;
      for (const k of Object.keys(groups)) {
        let sum = 0;
        for (const [pid, v] of c1[k] ?? new Map<number, number>()) sum += v - (c0[k]?.get(pid) ?? 0);
        cpu[k] = sum;
        ours += sum;
      }
      const busyMs = ((m1.busy - m0.busy) * 1000) / 100;
      const rss: ResourceReport["rss"] = {};
      for (const k of Object.keys(rssOf)) {
        const s = samples[k] ?? [];
        rss[k] = { idle: idle[k] ?? null, mean: s.length ? s.reduce((a, b) => a + b, 0) / s.length : null, peak: s.length ? Math.max(...s) : null };
      }
      return {
        rss,
        cpuMs: cpu,
        machineBusyCores: Math.min(cores, busyMs / 1000 / seconds),
        otherBusyCores: Math.max(0, (busyMs - ours) / 1000 / seconds),
        seconds,
      };
    },
  };
}
