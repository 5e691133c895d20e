/**
 * Builds the real openplane stack in-process for integration tests: our
 * postgres.js pool (migrated), the checkpointer, a stream bus, the run queue
 * and a worker, wired into `createApp(deps)` exactly as `src/bin` does, but
 * without listening on a port (drive it with `app.request()`).
 *
 * Nothing is mocked: Postgres and Redis are the servers from the global setup.
 * `close()` releases everything in reverse order, so vitest can exit.
 *
 * @example
 * const db = await createTestDatabase("http");
 * const stack = await createTestStack({ postgresUri: db.uri });
 * const res = await stack.app.request("/ok");
 * await stack.close(); await db.drop();
 */
import { Redis } from "ioredis";
import type { Hono } from "hono";
import { buildServices } from "../../src/services.js";
import type { RunWorker } from "../../src/executor/worker.js";
import { readLanggraphConfig } from "../../src/graphs/config-file.js";
import { createGraphRegistry } from "../../src/graphs/registry.js";
import type { GraphRegistry } from "../../src/graphs/registry.js";
import { createApp } from "../../src/http/app.js";
import type { AppDeps } from "../../src/http/deps.js";
import { createLogger } from "../../src/lib/logger.js";
import { Releasers } from "../../src/lib/releasers.js";
import { createLocalBell } from "../../src/queue/bell.js";
import { createRunQueue } from "../../src/queue/claim-queue.js";
import { createRedisBell } from "../../src/queue/redis-bell.js";
import type { RunQueue } from "../../src/queue/run-queue.js";
import { createCheckpointer } from "../../src/storage/checkpointer.js";
import { createSql } from "../../src/storage/db.js";
import type { Sql } from "../../src/storage/db.js";
import { migrate } from "../../src/storage/migrate.js";
import type { RunStreamBus } from "../../src/stream/bus.js";
import { createMemoryBus } from "../../src/stream/memory-bus.js";
import { createRedisBus } from "../../src/stream/redis-bus.js";
import { uniquePrefix } from "./services.js";

export interface TestStackOptions {
  /** URI of a database for this stack (e.g. from createTestDatabase). */
  postgresUri: string;
  /** Redis URI: used for the bus and/or the queue's doorbell when they are "redis". */
  redisUri?: string;
  bus?: "memory" | "redis";
  /** The run queue's doorbell: Redis pub/sub, or in-process (the queue itself is always PostgreSQL). */
  queue?: "redis" | "postgres";
  /** Start a worker consuming the queue (default true). */
  worker?: boolean;
  /** langgraph.json to serve (default: the repository's, with the example graphs). */
  configPath?: string;
  maxBodyBytes?: number;
  sseHeartbeatMs?: number;
  workerConcurrency?: number;
  leaseSecs?: number;
  runTimeoutSecs?: number;
}

export interface TestStack {
  app: Hono;
  deps: AppDeps;
  sql: Sql;
  bus: RunStreamBus;
  queue: RunQueue;
  graphs: GraphRegistry;
  worker: RunWorker | null;
  /** Row counts of our tables, to prove a rejected request wrote nothing. */
  counts(): Promise<{ thread: number; run: number; assistant: number }>;
  close(): Promise<void>;
}

export async function createTestStack(opts: TestStackOptions): Promise<TestStack> {
  const releasers = new Releasers();
  const busKind = opts.bus ?? "memory";
  const queueKind = opts.queue ?? "postgres";
  try {
    const logger = createLogger({ level: "silent", json: true });
    const sql = createSql(opts.postgresUri, 4);
    releasers.add("sql", () => sql.end({ timeout: 5 }));
    const { saver, pool } = createCheckpointer(opts.postgresUri, 3, () => {});
    releasers.add("checkpointer pool", () => pool.end());
    await migrate(sql, { before: () => saver.setup() });

    let redis: Redis | null = null;
    if (busKind === "redis" || queueKind === "redis") {
      if (!opts.redisUri) throw new Error("createTestStack: redisUri is required for a Redis bus or queue");
      const client = new Redis(opts.redisUri, { maxRetriesPerRequest: null, lazyConnect: true });
      client.on("error", () => {});
      releasers.add("redis", () => client.quit().catch(() => client.disconnect()));
      await client.connect();
      redis = client;
    }
    const prefix = `${uniquePrefix("stack")}:`;
    const bus =
      busKind === "redis"
        ? createRedisBus({ client: redis!, prefix, ttlSecs: 60 })
        : createMemoryBus({ ttlSecs: 60 });
    releasers.add("bus", () => bus.close());
    const queue = createRunQueue(queueKind === "redis" ? createRedisBell(redis!, `${prefix}runs:bell`, () => {}) : createLocalBell(), () => {});
    releasers.add("queue", () => queue.close());

    const file = await readLanggraphConfig(opts.configPath ?? "langgraph.json");
    const graphs = createGraphRegistry(file.graphs, saver);
    await graphs.loadAll();
    const services = buildServices({ sql, checkpointer: saver, bus, queue, graphs, logger });
    await services.registerGraphs();

    let worker: RunWorker | null = null;
    if (opts.worker ?? true) {
      const w = services.worker({
        concurrency: opts.workerConcurrency ?? 4,
        leaseSecs: opts.leaseSecs ?? 30,
        maxAttempts: 3,
        runTimeoutSecs: opts.runTimeoutSecs ?? 60,
        sweepIntervalSecs: 60,
        selfUrl: () => null,
        tracing: null,
      });
      // Registered after the queue, so it is closed before it.
      releasers.add("worker", () => w.close(0));
      await w.start();
      worker = w;
    }

    const shutdown = new AbortController();
    releasers.add("shutdown signal", () => shutdown.abort());
    const deps: AppDeps = services.appDeps({
      version: "0.0.0-test",
      tracingEnabled: false,
      sseHeartbeatMs: opts.sseHeartbeatMs ?? 5_000,
      maxBodyBytes: opts.maxBodyBytes ?? 1024 * 1024,
      shutdown: shutdown.signal,
    });
    const app = createApp(deps);
    return {
      app,
      deps,
      sql,
      bus,
      queue,
      graphs,
      worker,
      async counts() {
        const [row] = await sql<{ thread: number; run: number; assistant: number }[]>`
          SELECT (SELECT count(*)::int FROM thread) AS thread,
                 (SELECT count(*)::int FROM run) AS run,
                 (SELECT count(*)::int FROM assistant) AS assistant`;
        return row!;
      },
      close: () => releasers.release(),
    };
  } catch (err) {
    await releasers.release().catch(() => {});
    throw err;
  }
}

/** One parsed SSE event; `id` is undefined when the frame had none. */
export interface SseEvent {
  id: string | undefined;
  event: string;
  data: unknown;
}

/**
 * Parses a complete SSE body into events (comments such as heartbeats are
 * dropped). Throws on a frame without `event` or `data`, so framing bugs fail
 * the test instead of being skipped.
 */
export function parseSse(text: string): SseEvent[] {
  const events: SseEvent[] = [];
  for (const block of text.split("\n\n")) {
    const lines = block.split("\n").filter((l) => l !== "" && !l.startsWith(":"));
    if (lines.length === 0) continue;
    const fields = new Map<string, string>();
    for (const line of lines) {
      const i = line.indexOf(":");
      if (i < 0) throw new Error(`malformed SSE line: ${JSON.stringify(line)}`);
      const name = line.slice(0, i);
      if (fields.has(name)) throw new Error(`duplicate SSE field "${name}" in frame ${JSON.stringify(block)}`);
      fields.set(name, line.slice(i + 1).replace(/^ /, ""));
    }
    const event = fields.get("event");
    const data = fields.get("data");
    if (event === undefined || data === undefined) throw new Error(`SSE frame without event/data: ${JSON.stringify(block)}`);
    events.push({ id: fields.get("id"), event, data: JSON.parse(data) as unknown });
  }
  return events;
}
