/**
 * Linux /proc readers (RSS, CPU time, children) and child-process helpers for the bench.
 * Every child is spawned in its own process group and stopped by its own pid.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { openSync, readFileSync, readdirSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { createServer } from "node:net";

/** Never used: taken on this machine (and the CLI's default). */
export const FORBIDDEN_PORT = 2024;
const CLK_TCK = 100;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A free loopback port at the time of the call (callers retry when they lose the race). */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.unref();
      s.once("error", reject);
      s.listen(0, "127.0.0.1", () => {
        const a = s.address();
        const p = typeof a === "object" && a ? a.port : 0;
        s.close(() => resolve(p));
      });
    });
    if (port !== FORBIDDEN_PORT && port !== 0) return port;
  }
}

/** VmRSS of a process in MiB, or null when it is gone. */
export function rssMb(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

interface StatLine {
  ppid: number;
  /** utime + stime in ms */
  cpuMs: number;
}

function stat(pid: number): StatLine | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command may contain spaces and parentheses: fields start after the last ')'.
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(f[1]), cpuMs: ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK };
  } catch {
    return null;
  }
}

/** CPU ms (user + system) a process has used, or 0 when it is gone. */
export const cpuMs = (pid: number): number => stat(pid)?.cpuMs ?? 0;

/** Direct children of a process (e.g. the PostgreSQL backends of a postmaster). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    if (stat(Number(d))?.ppid === pid) out.push(Number(d));
  }
  return out;
}

/** Busy and total jiffies of the whole machine (/proc/stat "cpu" line). */
export function machineTicks(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = v;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

export const machineInfo = () => ({ cores: cpus().length, cpuModel: cpus()[0]?.model ?? "?", loadavg: loadavg() });

export interface Spawned {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logFile: string;
  exited(): boolean;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  log(): string;
  /** SIGTERM to the process itself; SIGKILL to its group after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
}

const live = new Set<Spawned>();

/** Spawns a child in its own process group with stdout/stderr going straight to `logFile` (no pipe through us). */
export function spawnLogged(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; logFile: string }): Spawned {
  const fd = openSync(opts.logFile, "a");
  const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ["ignore", fd, fd], detached: true });
  let done = false;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => {
      done = true;
      live.delete(s);
      resolve({ code, signal });
    });
    child.once("error", () => {
      done = true;
      live.delete(s);
      resolve({ code: null, signal: null });
    });
  });
  const s: Spawned = {
    child,
    pid: child.pid ?? -1,
    logFile: opts.logFile,
    exited: () => done,
    exit,
    log: () => {
      try {
        return readFileSync(opts.logFile, "utf8");
      } catch {
        return "";
      }
    },
    async stop(timeoutMs = 30_000) {
      if (done) return;
      child.kill("SIGTERM");
      const t = setTimeout(() => killGroup(child.pid), timeoutMs);
      await exit;
      clearTimeout(t);
      // Anything the child left in its group.
      killGroup(child.pid);
    },
  };
  live.add(s);
  return s;
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // gone
  }
}

/** Backstop: never leave a child of ours behind. */
export function killAllSpawned(): void {
  for (const s of live) killGroup(s.pid);
}
process.once("exit", killAllSpawned);
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    killAllSpawned();
    process.exit(130);
  });
}

/** Polls `GET url/ok` until 200, the child exits, or the deadline. */
export async function waitHttpOk(url: string, s: Spawned, timeoutMs: number): Promise<"ready" | "exited" | "timeout"> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (s.exited()) return "exited";
    try {
      const res = await fetch(`${url}/ok`, { signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      if (res.status === 200) return "ready";
    } catch {
      // not yet
    }
    await sleep(150);
  }
  return "timeout";
}

/** Waits until the child's log matches `re`. */
export async function waitLog(s: Spawned, re: RegExp, timeoutMs: number): Promise<"ready" | "exited" | "timeout"> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (re.test(s.log())) return "ready";
    if (s.exited()) return "exited";
    await sleep(150);
  }
  return "timeout";
}

export const tail = (text: string, n = 4000) => (text.length > n ? `…${text.slice(-n)}` : text) || "(no output)";
