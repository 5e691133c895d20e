/**
 * Spawns the real `openplane` CLI (`node bin/openplane.mjs ...`) for e2e tests.
 *
 * - {@link startCli} starts a long-running command (`up`, `serve`, `worker`) on a
 *   free port (never 2024), waits until `GET /ok` answers (or, for `worker`, until
 *   it logs "worker started"), and retries on a port taken in the meantime.
 * - Every child runs in its own process group, so a forced kill also takes down
 *   the embedded PostgreSQL it started. {@link killAll} (call it in `afterAll`)
 *   SIGKILLs whatever is still alive, and a process `exit` hook is the backstop.
 * - stdout and stderr are collected (bounded) so failures can show what the
 *   server said: see {@link CliProcess.logs} and {@link printLogsOnFailure}.
 * - The child environment drops every variable openplane reads (so the test
 *   runner's POSTGRES_URI / REDIS_URI never leak into an "embedded" test) and
 *   then applies the test's own `env`.
 *
 * @example
 * const server = await startCli({ command: "up", env: { OPENPLANE_DATA_DIR: dir } });
 * afterAll(() => killAll());
 * const client = new Client({ apiUrl: server.url });
 * ...
 * const { code } = await server.stop(); // SIGTERM, then awaits the exit
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach } from "vitest";
import { envSchema } from "../../src/config/schema.js";
import { LOG_FLUSH_MS } from "../../src/lib/logger.js";
import { freePort } from "./ports.js";

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const BIN = fileURLToPath(new URL("../../bin/openplane.mjs", import.meta.url));

/** Never used for a test server: it is taken on the CI machines (and is the CLI's default). */
const FORBIDDEN_PORT = 2024;
const MAX_LOG_CHARS = 256 * 1024;
const START_ATTEMPTS = 3;

export type Command = "up" | "serve" | "worker" | "migrate";

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Milliseconds from the stop signal to the exit (0 if it had already exited). */
  ms: number;
  /** True if processes of the child's group (e.g. an embedded PostgreSQL) outlived it and had to be killed. */
  leftovers: boolean;
}

export interface CliProcess {
  readonly command: Command;
  readonly pid: number;
  /** The port the server listens on (a worker serves only /ok and /metrics there). */
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Everything the process wrote so far (stdout and stderr interleaved, bounded). */
  logs(): string;
  /**
   * Resolves once the output matches: the process writes its log lines in batches (every
   * LOG_FLUSH_MS, src/lib/logger.ts), so a line logged a moment ago may not be there yet.
   */
  waitForLog(pattern: RegExp | string, timeoutMs?: number): Promise<void>;
  /** The output once every line logged until now has been written (for checks that a secret is absent). */
  settledLogs(): Promise<string>;
  /** Resolves when the process has exited. */
  readonly exited: Promise<ExitInfo>;
  /** True until the process exits. */
  alive(): boolean;
  /** Sends `signal` (default SIGTERM) to the process only and awaits its exit; SIGKILLs the group after `timeoutMs`. */
  stop(opts?: { signal?: NodeJS.Signals; timeoutMs?: number }): Promise<ExitInfo>;
  /** SIGKILLs the whole process group (the CLI and any embedded PostgreSQL) and awaits the exit. */
  kill(): Promise<ExitInfo>;
}

export interface StartOptions {
  command?: Command;
  /** Path of langgraph.json (`--config`); omitted = the CLI default (./langgraph.json in `cwd`). */
  config?: string;
  /** Extra environment for the child; `undefined` deletes a variable. Applied after the store variables are removed. */
  env?: Record<string, string | undefined>;
  /** Working directory; default the repository root. */
  cwd?: string;
  /** Extra CLI arguments. */
  args?: string[];
  /** How to tell it is ready: "ok" polls GET /ok, a RegExp waits for matching output. Default: "ok", or /worker started/ for `worker`. */
  readyWhen?: "ok" | RegExp;
  /** Default 90 s (an embedded PostgreSQL's first start runs initdb). */
  readyTimeoutMs?: number;
}

const live = new Set<Spawned>();

interface Spawned {
  child: ChildProcess;
  exited: Promise<ExitInfo>;
  exitedSync: () => boolean;
  markStop: () => void;
}

/** The environment for a child: ours minus every variable openplane reads, plus `extra`. */
export function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(envSchema.shape)) delete env[key];
  // Readable log lines, but not so chatty that the buffer only holds noise.
  env.LOG_LEVEL = "info";
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
}

function spawnCli(args: string[], cwd: string, env: NodeJS.ProcessEnv, onOutput: (s: string) => void): Spawned {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd,
    env,
    stdio: ["ignore", "pipe", "pipe"],
    // Own process group: a forced kill reaches the embedded PostgreSQL too.
    detached: true,
  });
  child.stdout?.setEncoding("utf8").on("data", onOutput);
  child.stderr?.setEncoding("utf8").on("data", onOutput);
  let stopAt = 0;
  let done = false;
  const exited = new Promise<ExitInfo>((resolve) => {
    const finish = async (code: number | null, signal: NodeJS.Signals | null) => {
      done = true;
      const ms = stopAt ? Date.now() - stopAt : 0;
      // Give the group's stragglers (PostgreSQL shutting down after a crash) a moment, then kill them.
      let leftovers = false;
      if (child.pid !== undefined) {
        for (let i = 0; i < 50 && groupAlive(child.pid); i++) await new Promise((r) => setTimeout(r, 100));
        if (groupAlive(child.pid)) {
          leftovers = true;
          killGroup(child.pid);
        }
      }
      live.delete(spawned);
      resolve({ code, signal, ms, leftovers });
    };
    // "close" waits for stdio to drain, so logs() is complete once exited resolves.
    child.once("close", (code, signal) => void finish(code, signal));
    child.once("error", (err) => {
      onOutput(`\n[cli helper] spawn failed: ${String(err)}\n`);
      if (child.pid === undefined) void finish(null, null);
    });
  });
  const spawned: Spawned = { child, exited, exitedSync: () => done, markStop: () => (stopAt ||= Date.now()) };
  live.add(spawned);
  return spawned;
}

async function waitReady(
  s: Spawned,
  readyWhen: "ok" | RegExp,
  url: string,
  output: () => string,
  timeoutMs: number,
): Promise<"ready" | "exited" | "timeout"> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (s.exitedSync()) return "exited";
    if (readyWhen === "ok") {
      try {
        const res = await fetch(`${url}/ok`, { signal: AbortSignal.timeout(2_000) });
        await res.body?.cancel();
        if (res.status === 200) return "ready";
      } catch {
        // not listening yet
      }
    } else if (readyWhen.test(output())) {
      return "ready";
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return "timeout";
}

/** Starts a long-running CLI command and waits until it is ready. Throws (with its output) if it is not. */
export async function startCli(opts: StartOptions = {}): Promise<CliProcess> {
  const command = opts.command ?? "up";
  const readyWhen = opts.readyWhen ?? (command === "worker" ? /worker started/ : "ok");
  const timeoutMs = opts.readyTimeoutMs ?? 90_000;
  const env = childEnv(opts.env);
  for (let attempt = 1; ; attempt++) {
    let port = await freePort();
    while (port === FORBIDDEN_PORT) port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    let out = "";
    const onOutput = (chunk: string) => {
      out += chunk;
      if (out.length > MAX_LOG_CHARS) out = out.slice(-MAX_LOG_CHARS);
    };
    const args = [command, "--port", String(port), "--host", "127.0.0.1", ...(opts.config ? ["--config", opts.config] : []), ...(opts.args ?? [])];
    const s = spawnCli(args, opts.cwd ?? REPO_ROOT, env, onOutput);
    const proc: CliProcess = {
      command,
      pid: s.child.pid ?? -1,
      port,
      url,
      logs: () => out,
      async waitForLog(pattern, ms = 5_000) {
        const matches = () => (typeof pattern === "string" ? out.includes(pattern) : pattern.test(out));
        const deadline = Date.now() + ms;
        while (!matches()) {
          if (Date.now() > deadline) throw new Error(`openplane ${command}: no ${String(pattern)} in its output within ${ms} ms\n${tail(out)}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      },
      async settledLogs() {
        // Two batching hops for a server under `up` (its own, then up's), on a loaded machine.
        if (!s.exitedSync()) await new Promise((r) => setTimeout(r, 10 * LOG_FLUSH_MS));
        return out;
      },
      exited: s.exited,
      alive: () => !s.exitedSync(),
      async stop({ signal = "SIGTERM", timeoutMs: stopTimeout = 30_000 } = {}) {
        if (s.exitedSync()) return s.exited;
        s.markStop();
        s.child.kill(signal);
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), stopTimeout)));
        const result = await Promise.race([s.exited, timedOut]);
        clearTimeout(timer);
        if (result === "timeout") {
          if (s.child.pid !== undefined) killGroup(s.child.pid);
          await s.exited;
          throw new Error(`openplane ${command} did not exit within ${stopTimeout} ms of ${signal}; killed it.\n${tail(out)}`);
        }
        return result;
      },
      async kill() {
        if (!s.exitedSync()) {
          s.markStop();
          if (s.child.pid !== undefined) killGroup(s.child.pid);
        }
        return s.exited;
      },
    };
    const state = await waitReady(s, readyWhen, url, () => out, timeoutMs);
    if (state === "ready") return proc;
    if (state === "timeout") await proc.kill();
    else await s.exited;
    // Another process may have taken the port between freePort() and the bind.
    if (state === "exited" && attempt < START_ATTEMPTS && /already in use/.test(out)) continue;
    const info = await s.exited;
    throw new Error(
      `openplane ${args.join(" ")} ${state === "timeout" ? `was not ready within ${timeoutMs} ms` : `exited before it was ready (code ${info.code}, signal ${info.signal})`}\n${tail(out)}`,
    );
  }
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a short CLI command to completion (e.g. `--help`, a usage error). Kills it after `timeoutMs`. */
export async function runCli(
  args: string[],
  opts: { env?: Record<string, string | undefined>; cwd?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? REPO_ROOT,
    env: childEnv(opts.env),
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
  child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
  const s: Spawned = {
    child,
    exited: new Promise<ExitInfo>((resolve) =>
      child.once("close", (code, signal) => {
        live.delete(s);
        resolve({ code, signal, ms: 0, leftovers: false });
      }),
    ),
    exitedSync: () => child.exitCode !== null || child.signalCode !== null,
    markStop: () => {},
  };
  live.add(s);
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const timer = setTimeout(() => child.pid !== undefined && killGroup(child.pid), timeoutMs);
  const { code, signal } = await s.exited;
  clearTimeout(timer);
  if (signal === "SIGKILL") throw new Error(`openplane ${args.join(" ")} did not exit within ${timeoutMs} ms\n${stdout}${stderr}`);
  return { code, signal, stdout, stderr };
}

/** SIGKILLs every CLI process (and its process group) still alive. Call it in `afterAll`. */
export async function killAll(): Promise<void> {
  const all = [...live];
  for (const s of all) if (s.child.pid !== undefined) killGroup(s.child.pid);
  await Promise.all(all.map((s) => s.exited));
}

// Backstop: never leave a server (or its PostgreSQL) behind when the worker exits.
process.once("exit", () => {
  for (const s of live) if (s.child.pid !== undefined) killGroup(s.child.pid);
});

const tail = (text: string, n = 8_000) => (text.length > n ? `…${text.slice(-n)}` : text) || "(no output)";

/** Registers an afterEach that prints the output of `procs()` when a test failed. */
export function printLogsOnFailure(procs: () => Array<CliProcess | null | undefined>): void {
  afterEach((ctx) => {
    if (ctx.task.result?.state !== "fail") return;
    for (const p of procs()) {
      if (p) console.error(`----- openplane ${p.command} (pid ${p.pid}, ${p.url}) output -----\n${tail(p.logs())}`);
    }
  });
}
