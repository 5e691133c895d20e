/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and sums self time per area of the run hot path,
 * restricted to a time window (the measured load). V8 stamps samples with the same monotonic
 * clock as process.hrtime, so the bench's window applies as is.
 */
import { readFileSync } from "node:fs";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const NATIVE_JSON = new Set(["stringify", "parse", "JSONStringify", "JSONParse"]);
const PROGRAM = "V8 (program: compile, IC, runtime)";

/**
 * The hot-path area of a frame. `fold`: a Node-internal or native frame, charged to its
 * nearest caller from a library or openplane (a socket write made by postgres.js is SQL);
 * with no such caller (callbacks straight from the event loop) it keeps its own area.
 */
export function area(url: string, fn: string): { area: string; fold: boolean } {
  if (fn === "(garbage collector)") return { area: "GC", fold: false };
  if (fn === "(program)") return { area: PROGRAM, fold: false };
  if (fn === "(idle)" || fn === "(root)") return { area: "idle", fold: false };
  if (!url) {
    if (NATIVE_JSON.has(fn)) return { area: "serialization (JSON.parse/stringify)", fold: false };
    return { area: fn === "runMicrotasks" ? "Node event loop (microtasks, timers, ticks)" : "Node / V8 natives", fold: true };
  }
  const u = url.replace(/\\/g, "/");
  if (u.startsWith("node:")) {
    if (/^node:(_http|http|internal\/http)/.test(u)) return { area: "Node HTTP server (parser, response)", fold: true };
    if (/^node:(net|stream|internal\/(streams|stream_base|net|js_stream|webstreams))/.test(u)) return { area: "Node sockets / streams (event-loop reads)", fold: true };
    if (/^node:(internal\/(timers|process|async_hooks|promise|fixed_queue)|timers|async_hooks)/.test(u)) return { area: "Node event loop (microtasks, timers, ticks)", fold: true };
    return { area: "Node other", fold: true };
  }
  const a = (x: string) => ({ area: x, fold: false });
  if (/\/src\/http\/(validate|schemas)\.ts/.test(u) || /\/node_modules\/zod\//.test(u)) return a("validation (zod, request schemas)");
  if (/\/src\/http\//.test(u) || /\/node_modules\/(hono|@hono)\//.test(u)) return a("HTTP (Hono, routes, SSE)");
  if (/\/node_modules\/undici\//.test(u)) return a("HTTP client (undici)");
  if (/langgraph-checkpoint-postgres|\/node_modules\/(pg|pg-pool|pg-protocol|pg-types|pg-connection-string|postgres-array|postgres-date|postgres-bytea|postgres-interval)\//.test(u) || /\/src\/storage\/checkpoint/.test(u)) {
    return a("checkpointer (PostgresSaver over pg)");
  }
  if (/\/node_modules\/postgres\//.test(u) || /\/src\/storage\//.test(u)) return a("SQL: runs/threads (postgres.js)");
  if (/\/node_modules\/(bullmq|cron-parser|msgpackr|semver|node-abort-controller)\//.test(u) || /\/src\/queue\//.test(u)) return a("queue (BullMQ)");
  if (/\/node_modules\/(ioredis|@ioredis|redis-errors|redis-parser|cluster-key-slot|denque|standard-as-callback)\//.test(u) || /\/src\/stream\/redis-bus/.test(u)) {
    return a("Redis (ioredis, stream bus)");
  }
  if (/\/src\/stream\//.test(u)) return a("serialization (src/stream)");
  if (/@langchain\/langgraph-checkpoint\//.test(u)) return a("LangGraph checkpoint serde");
  if (/\/node_modules\/langsmith\//.test(u)) return a("LangSmith RunTree / tracing context");
  if (/@langchain\/(langgraph|core)\/|\/node_modules\/(uuid|p-queue|p-retry|eventemitter3)\//.test(u)) return a("LangGraph / LangChain execution");
  if (/\/src\/executor\//.test(u)) return a("executor (worker, execute-run)");
  if (/\/node_modules\/(pino|pino-std-serializers|sonic-boom|thread-stream|fast-redact|quick-format-unescaped|on-exit-leak-free|safe-stable-stringify|atomic-sleep)\//.test(u) || /\/src\/lib\/logger/.test(u)) {
    return a("logging (pino)");
  }
  if (/\/node_modules\/(winston|winston-transport|logform|winston-console-format|@colors|colors|triple-beam|fecha|safe-stable-stringify)\//.test(u)) return a("logging (winston)");
  if (/\/bench\/graphs\//.test(u)) return a("graph nodes (bench)");
  if (/\/node_modules\/(tsx|esbuild|get-tsconfig)\//.test(u)) return a("loader (tsx)");
  if (/\/src\//.test(u)) return a("openplane other");
  const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u);
  return a(pkg ? `other deps (${pkg[1]})` : "other");
}

export interface ProfileSummary {
  file: string;
  /** CPU ms (excluding idle) in the window. */
  busyMs: number;
  windowMs: number;
  areas: Array<{ area: string; ms: number; pct: number; msPerRun: number }>;
  top: Array<{ fn: string; where: string; area: string; ms: number; pct: number }>;
}

export function summarizeProfile(file: string, windowUs: [number, number] | null, runs: number): ProfileSummary {
  const p = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Area of a node: Node-internal and native frames charged to the nearest caller that is not one.
  const areaOf = new Map<number, string>();
  const resolveArea = (id: number): string => {
    const cached = areaOf.get(id);
    if (cached !== undefined) return cached;
    const n = byId.get(id)!;
    const own = area(n.callFrame.url, n.callFrame.functionName);
    let result = own.area;
    if (own.fold) {
      for (let up = parent.get(id); up !== undefined; up = parent.get(up)) {
        const p = byId.get(up)!;
        const a = area(p.callFrame.url, p.callFrame.functionName);
        if (a.area === "idle") break;
        if (!a.fold) {
          result = a.area === PROGRAM || a.area === "GC" ? own.area : a.area;
          break;
        }
      }
    }
    areaOf.set(id, result);
    return result;
  };
  const self = new Map<number, number>();
  let t = p.startTime;
  const [from, to] = windowUs ?? [-Infinity, Infinity];
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    const dur = p.timeDeltas[i + 1] ?? 0;
    if (t < from || t > to) continue;
    const id = p.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + dur);
  }
  const areas = new Map<string, number>();
  const fns = new Map<string, { fn: string; where: string; area: string; us: number }>();
  let busy = 0;
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const a = resolveArea(id);
    if (a === "idle") continue;
    busy += us;
    areas.set(a, (areas.get(a) ?? 0) + us);
    const where = n.callFrame.url ? `${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}` : "(native)";
    const key = `${n.callFrame.functionName}@${where}@${a}`;
    const f = fns.get(key) ?? { fn: n.callFrame.functionName || "(anonymous)", where, area: a, us: 0 };
    f.us += us;
    fns.set(key, f);
  }
  const n = Math.max(1, runs);
  const windowMs = windowUs ? (windowUs[1] - windowUs[0]) / 1000 : (p.endTime - p.startTime) / 1000;
  return {
    file,
    busyMs: busy / 1000,
    windowMs,
    areas: [...areas.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([a, us]) => ({ area: a, ms: us / 1000, pct: (100 * us) / Math.max(1, busy), msPerRun: us / 1000 / n })),
    top: [...fns.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, 30)
      .map((f) => ({ fn: f.fn, where: f.where, area: f.area, ms: f.us / 1000, pct: (100 * f.us) / Math.max(1, busy) })),
  };
}

function shortUrl(url: string): string {
  const u = url.replace(/^file:\/\//, "");
  const nm = u.lastIndexOf("/node_modules/");
  if (nm >= 0) return u.slice(nm + "/node_modules/".length);
  const src = u.indexOf("/src/");
  if (src >= 0) return u.slice(src + 1);
  return u;
}
