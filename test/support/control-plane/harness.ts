/**
 * Helpers for the listener's e2e tests: polling until a condition holds,
 * reading the listener's status, checking processes and databases, and a
 * steady request load that counts every failure.
 */
import pg from "pg";
import type { WorkloadStatus } from "../../../src/listener/types.js";

export async function waitFor<T>(what: string, check: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface ListenerStatus {
  state: string;
  source: { kind: string; error: string | null };
  desired: Array<{ id: string; name: string; revision_id: string; source: string }>;
  workloads: WorkloadStatus[];
  routes: Array<{ deploymentId: string; name: string; revisionId: string | null; upstream: string | null; unavailable: string | null }>;
  failed: Record<string, string>;
}

export async function listenerStatus(gatewayUrl: string): Promise<ListenerStatus> {
  const res = await fetch(`${gatewayUrl}/_openplane/status`);
  if (res.status !== 200) throw new Error(`status answered ${res.status}`);
  return (await res.json()) as ListenerStatus;
}

/** The healthy server of a deployment's revision, if any. */
export async function healthyWorkload(gatewayUrl: string, deploymentId: string, revisionId?: string): Promise<WorkloadStatus | null> {
  const s = await listenerStatus(gatewayUrl);
  return s.workloads.find((w) => w.deploymentId === deploymentId && w.state === "healthy" && (!revisionId || w.revisionId === revisionId)) ?? null;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The command line of a process, as `ps` would show it. */
export async function commandLine(pid: number): Promise<string> {
  const { readFile } = await import("node:fs/promises");
  return (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0").join(" ");
}

export async function databaseExists(serverUri: string, name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: serverUri });
  client.on("error", () => {});
  await client.connect();
  try {
    return (await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name])).rowCount === 1;
  } finally {
    await client.end();
  }
}

export async function dropDatabases(serverUri: string, names: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: serverUri });
  client.on("error", () => {});
  await client.connect();
  try {
    for (const n of names) await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(n)} WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

export interface LoadResult {
  ok: number;
  failures: string[];
  /** Distinct results seen, in order of first appearance. */
  seen: string[];
}

/**
 * Runs `request` from `concurrency` loops until stop() is called. Every
 * rejection is a failure; the result value (stringified) is collected.
 */
export function steadyLoad(request: () => Promise<unknown>, concurrency = 4) {
  let stopped = false;
  const result: LoadResult = { ok: 0, failures: [], seen: [] };
  const loops = Array.from({ length: concurrency }, async () => {
    while (!stopped) {
      try {
        const v = String(await request());
        result.ok++;
        if (!result.seen.includes(v)) result.seen.push(v);
      } catch (err) {
        result.failures.push(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
      }
    }
  });
  return {
    result,
    async stop(): Promise<LoadResult> {
      stopped = true;
      await Promise.all(loops);
      return result;
    },
  };
}
