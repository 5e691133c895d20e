/**
 * The `process` driver: each revision runs as `openplane serve` (API + queue
 * worker, this same package) in its own process group on a free loopback port.
 *
 * - Secrets travel in the environment only; argv carries nothing but the
 *   config path, the port and our Node flags (lib/node-flags.ts).
 * - Healthy = GET /ok answers 200 (the server migrates its database before it
 *   listens, so migrations have run by then).
 * - An unexpected exit is restarted with exponential backoff; repeated failure
 *   (or exit code 2, a configuration error) marks the workload failed with
 *   the reason.
 * - stop() sends SIGTERM (the server drains: in-flight runs finish or are
 *   handed back) and SIGKILLs the group after the grace period.
 * - The child keeps an IPC channel to us: if the listener dies, the server
 *   drains and exits on its own instead of lingering as an orphan.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import type { Logger } from "../../lib/logger.js";
import { serverNodeFlags } from "../../lib/node-flags.js";
import { sleep } from "../../lib/time.js";
import { failuresAfterExit, nextRestart } from "../restart-policy.js";
import type { RestartPolicy } from "../restart-policy.js";
import type { WorkloadState, WorkloadStatus } from "../types.js";
import { freePort } from "./free-port.js";
import { PermanentError } from "./types.js";
import type { WorkloadDriver, WorkloadSpec } from "./types.js";

export interface ProcessDriverOptions {
  /** bin/openplane.mjs of this package. */
  bin: string;
  /** The Node binary (process.execPath). */
  node: string;
  logger: Logger;
  policy: RestartPolicy;
  /** A server that does not answer /ok within this long is killed (counts as a failure). */
  healthTimeoutMs: number;
  /** After SIGTERM, how long a server may drain before its group is killed. */
  drainMs: number;
  /** Receives each output line of a server (already redacted). */
  output: (spec: WorkloadSpec, line: string) => void;
}

const TAIL_LINES = 15;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** How long it had been healthy when it exited; null = never healthy. */
  healthyForMs: number | null;
  /** Killed by us: it did not answer the health check in time. */
  timedOut: boolean;
  tail: string[];
}

class ManagedServer {
  state: WorkloadState = "starting";
  message: string | null = "starting";
  url: string | null = null;
  child: ChildProcess | null = null;
  restarts = 0;
  private failures = 0;
  private readonly abort = new AbortController();
  private stopping: Promise<void> | null = null;
  readonly done: Promise<void>;

  constructor(
    readonly spec: WorkloadSpec,
    private readonly opts: ProcessDriverOptions,
    private readonly changed: () => void,
  ) {
    this.done = this.run().catch((err: unknown) => this.fail(`internal error: ${String(err)}`));
  }

  status(): WorkloadStatus {
    return {
      deploymentId: this.spec.deploymentId,
      revisionId: this.spec.revisionId,
      state: this.state,
      url: this.state === "healthy" ? this.url : null,
      pid: this.child?.pid ?? null,
      restarts: this.restarts,
      message: this.message,
    };
  }

  private set(state: WorkloadState, message: string | null): void {
    if (this.state === "stopping") return;
    this.state = state;
    this.message = message === null ? null : this.spec.redact(message);
    this.changed();
  }

  private fail(message: string): void {
    this.opts.logger.warn({ deployment: this.spec.name, revision: this.spec.revisionId, reason: this.spec.redact(message) }, "revision failed");
    this.set("failed", message);
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    let prepared: { dir: string; configFile: string } | null = null;
    while (!signal.aborted) {
      if (!prepared) {
        try {
          this.set("starting", "preparing the source");
          prepared = await this.spec.prepare(signal);
        } catch (err) {
          if (signal.aborted) return;
          const msg = err instanceof Error ? err.message : String(err);
          if (err instanceof PermanentError) return this.fail(msg);
          if (!(await this.afterFailure(`preparing the source failed: ${msg}`, null))) return;
          continue;
        }
      }
      const exit = await this.runOnce(prepared, await freePort());
      if (signal.aborted) return;
      // Another process took the port between our probe and its bind: just pick another.
      if (exit.healthyForMs === null && exit.tail.some((l) => /already in use/.test(l))) continue;
      const said = exit.signal ? "" : lastWords(exit.tail);
      const how = exit.timedOut
        ? `did not answer ${this.spec.healthPath} within ${Math.round(this.opts.healthTimeoutMs / 1000)} s and was killed`
        : exit.signal
          ? `was killed by ${exit.signal}`
          : `exited with code ${exit.code}`;
      const reason = `the server ${how}${exit.healthyForMs === null ? " before it was healthy" : ""}${said ? `: ${said}` : ""}`;
      // Exit code 2 is a usage or configuration error: the same start would fail again.
      if (exit.code === 2 && exit.healthyForMs === null) return this.fail(reason);
      if (!(await this.afterFailure(reason, exit.healthyForMs))) return;
    }
  }

  /** Counts the failure; waits out the backoff. False when it gave up (or was stopped). */
  private async afterFailure(reason: string, healthyForMs: number | null): Promise<boolean> {
    this.failures = failuresAfterExit(this.failures, healthyForMs, this.opts.policy);
    const next = nextRestart(this.failures, this.opts.policy);
    if (!next.restart) {
      this.fail(`${reason} (gave up after ${this.failures} consecutive failures)`);
      return false;
    }
    this.restarts++;
    this.url = null;
    this.opts.logger.warn(
      { deployment: this.spec.name, revision: this.spec.revisionId, reason: this.spec.redact(reason), restart_in_ms: next.delayMs },
      "server exited; restarting",
    );
    this.set("restarting", `${reason}; restart ${this.restarts} in ${next.delayMs} ms`);
    await sleep(next.delayMs, this.abort.signal);
    return !this.abort.signal.aborted;
  }

  /** Spawns the server and resolves when it has exited. */
  private runOnce(prepared: { dir: string; configFile: string }, port: number): Promise<Exit> {
    const tail: string[] = [];
    const child = spawn(
      this.opts.node,
      [
        ...serverNodeFlags(this.spec.env.NODE_OPTIONS),
        this.opts.bin, "serve", "--config", prepared.configFile, "--port", String(port), "--host", "127.0.0.1",
      ],
      {
        cwd: this.spec.cwd ?? prepared.dir,
        env: this.spec.env,
        // Own process group: a terminal's Ctrl-C reaches only the listener, which drains servers in order.
        detached: true,
        stdio: ["ignore", "pipe", "pipe", "ipc"],
      },
    );
    this.child = child;
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream, crlfDelay: Infinity }).on("line", (raw) => {
        const line = this.spec.redact(raw);
        tail.push(line);
        if (tail.length > TAIL_LINES) tail.shift();
        this.opts.output(this.spec, line);
      });
    }
    const url = `http://127.0.0.1:${port}`;
    let healthyAt: number | null = null;
    const health = { timedOut: false };
    const exited = new Promise<Exit>((resolve) => {
      child.once("error", (err) => tail.push(`spawn failed: ${err.message}`));
      // "close": stdio has drained too, so the tail holds the last words.
      child.once("close", (code, signal) => {
        resolve({ code, signal, healthyForMs: healthyAt === null ? null : Date.now() - healthyAt, timedOut: health.timedOut, tail });
      });
    });
    this.set("starting", "waiting for /ok");
    void this.waitHealthy(url, child, exited, health).then((ok) => {
      if (!ok || this.abort.signal.aborted) return;
      healthyAt = Date.now();
      this.url = url;
      this.set("healthy", null);
      this.opts.logger.info({ deployment: this.spec.name, revision: this.spec.revisionId, url, pid: child.pid }, "server healthy");
    });
    return exited;
  }

  private async waitHealthy(url: string, child: ChildProcess, exited: Promise<Exit>, health: { timedOut: boolean }): Promise<boolean> {
    let gone = false;
    void exited.then(() => (gone = true));
    const deadline = Date.now() + this.opts.healthTimeoutMs;
    while (!gone && !this.abort.signal.aborted) {
      if (Date.now() > deadline) {
        health.timedOut = true;
        killGroup(child.pid, "SIGKILL");
        return false;
      }
      try {
        const res = await fetch(`${url}${this.spec.healthPath}`, { signal: AbortSignal.timeout(2_000) });
        await res.body?.cancel();
        if (res.status === 200) return !gone;
      } catch {
        // not listening yet
      }
      await sleep(200, this.abort.signal);
    }
    return false;
  }

  /** SIGTERM, wait for the drain (bounded), then make sure the whole group is gone. */
  stop(quiesce?: () => Promise<void>): Promise<void> {
    this.stopping ??= (async () => {
      this.state = "stopping";
      this.message = null;
      this.changed();
      if (quiesce) await quiesce().catch(() => {});
      this.abort.abort();
      const child = this.child;
      if (child && child.exitCode === null && child.signalCode === null) {
        const closed = new Promise<void>((r) => child.once("close", () => r()));
        child.kill("SIGTERM");
        const timer = setTimeout(() => killGroup(child.pid, "SIGKILL"), this.opts.drainMs);
        await closed;
        clearTimeout(timer);
      }
      killGroup(child?.pid, "SIGKILL");
      await this.done;
    })();
    return this.stopping;
  }
}

/** The lines of a server's last output that say why it stopped (errors first; stack frames dropped). */
function lastWords(tail: string[]): string {
  const lines = tail.map((l) => l.trim()).filter((l) => l && !l.startsWith("at "));
  const errors = lines.filter((l) => /error|fail|fatal|cannot|exception|invalid|not found/i.test(l));
  return (errors.length ? errors : lines).slice(-2).join(" | ").slice(0, 500);
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

export function createProcessDriver(opts: ProcessDriverOptions): WorkloadDriver {
  const servers = new Map<string, ManagedServer>();
  const listeners: Array<() => void> = [];
  const key = (deploymentId: string, revisionId: string) => `${deploymentId}\u0000${revisionId}`;
  const changed = () => {
    for (const l of listeners) l();
  };
  let closing: Promise<void> | null = null;

  // Backstop for an exit that skips the drain (second signal, deadline, crash): no orphans.
  const onExit = () => {
    for (const s of servers.values()) killGroup(s.child?.pid, "SIGKILL");
  };
  process.on("exit", onExit);

  const driver: WorkloadDriver = {
    start(spec) {
      if (closing) return;
      const k = key(spec.deploymentId, spec.revisionId);
      if (servers.has(k)) return;
      opts.logger.info({ deployment: spec.name, revision: spec.revisionId }, "starting server");
      servers.set(k, new ManagedServer(spec, opts, changed));
      changed();
    },
    async stop(deploymentId, revisionId, o) {
      const k = key(deploymentId, revisionId);
      const s = servers.get(k);
      if (!s) return;
      if (s.state !== "stopping") opts.logger.info({ deployment: s.spec.name, revision: revisionId, pid: s.child?.pid }, "stopping server");
      await s.stop(o?.quiesce);
      if (servers.get(k) === s) servers.delete(k);
      changed();
    },
    list() {
      return [...servers.values()].map((s) => s.status());
    },
    onChange(listener) {
      listeners.push(listener);
    },
    close() {
      closing ??= (async () => {
        await Promise.all([...servers.values()].map((s) => driver.stop(s.spec.deploymentId, s.spec.revisionId)));
        process.removeListener("exit", onExit);
      })();
      return closing;
    },
  };
  return driver;
}
