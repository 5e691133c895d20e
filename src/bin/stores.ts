import { Redis } from "ioredis";
import type { Config } from "../config/index.js";
import type { Releasers } from "../lib/releasers.js";
import type { Logger } from "../lib/logger.js";
import { createLocalBell } from "../queue/bell.js";
import { createRunQueue } from "../queue/claim-queue.js";
import { createRedisBell } from "../queue/redis-bell.js";
import type { RunQueue } from "../queue/run-queue.js";
import { createCheckpointer } from "../storage/checkpointer.js";
import { createSql } from "../storage/db.js";
import type { Sql } from "../storage/db.js";
import { startEmbeddedPostgres } from "../storage/embedded.js";
import { checkPostgresServer, checkRedisConnect } from "../storage/server-version.js";
import type { RunStreamBus } from "../stream/bus.js";
import { createMemoryBus } from "../stream/memory-bus.js";
import { createRedisBus } from "../stream/redis-bus.js";

export interface Stores {
  postgresUri: string;
  embedded: boolean;
  sql: Sql;
  checkpointer: ReturnType<typeof createCheckpointer>["saver"];
  redis: Redis | null;
  bus: RunStreamBus;
  queue: RunQueue;
}

/**
 * Opens every store, registering each cleanup as soon as the resource exists.
 * Pool budget: LANGGRAPH_POSTGRES_POOL_MAX_SIZE split between our pool (half),
 * the checkpointer's pool and the cron queue's PostgreSQL backend.
 */
/** How long start-up waits for Redis (ioredis itself would retry forever). */
const REDIS_CONNECT_TIMEOUT_MS = 10_000;

/** Throws StoreStartupError (one operator-facing line) for an unreachable or unsupported store. */
export async function openStores(config: Config, releasers: Releasers, logger: Logger): Promise<Stores> {
  let postgresUri = config.postgresUri;
  const embedded = postgresUri === null;
  if (postgresUri === null) {
    const pg = await startEmbeddedPostgres(config.dataDir, (m) => logger.info(m));
    releasers.add("embedded postgres", () => pg.stop());
    postgresUri = pg.uri;
    logger.info({ port: pg.port, data_dir: config.dataDir }, "embedded PostgreSQL started");
  }
  const budget = config.postgresPoolMax;
  const ours = Math.max(2, Math.floor(budget / 2));
  const sql = createSql(postgresUri, ours);
  releasers.add("postgres pool", () => sql.end({ timeout: 5 }));
  if (!embedded) {
    await checkPostgresServer(
      async () => Number((await sql.unsafe<Array<{ server_version_num: string }>>("SHOW server_version_num"))[0]!.server_version_num),
      { uri: postgresUri, variable: config.postgresUriVar ?? "POSTGRES_URI" },
    );
  }
  const { saver, pool } = createCheckpointer(postgresUri, Math.max(2, budget - ours - 2), (err) =>
    logger.warn({ err }, "checkpointer pool error"),
  );
  releasers.add("checkpointer pool", () => pool.end());

  let redis: Redis | null = null;
  if (config.redisUri) {
    const client = new Redis(config.redisUri, { maxRetriesPerRequest: null, lazyConnect: true });
    // Until the first connect succeeds, its failure is reported once, below.
    let connected = false;
    let firstError: unknown = null;
    client.on("error", (err) => (connected ? logger.warn({ err: err.message }, "redis error") : (firstError ??= err)));
    releasers.add("redis", () => (connected ? client.quit().then(() => {}, () => client.disconnect()) : client.disconnect()));
    // connect() rejects with "Connection is closed."; the cause arrived as an "error" event.
    await checkRedisConnect(() => client.connect().catch((err: unknown) => Promise.reject(firstError ?? err)), {
      uri: config.redisUri,
      variable: config.redisUriVar ?? "REDIS_URI",
      timeoutMs: REDIS_CONNECT_TIMEOUT_MS,
    });
    connected = true;
    redis = client;
  }
  const onError = (err: unknown) => logger.warn({ err }, "queue/stream error");
  const bus = redis
    ? createRedisBus({ client: redis, prefix: config.redisKeyPrefix, ttlSecs: config.resumableStreamTtlSecs, onError })
    : createMemoryBus({ ttlSecs: config.resumableStreamTtlSecs });
  releasers.add("stream bus", () => bus.close());
  // Runs queue in PostgreSQL; Redis (when there is one) only rings the workers.
  const bell = redis ? createRedisBell(redis, `${config.redisKeyPrefix}runs:bell`, onError) : createLocalBell();
  const queue = createRunQueue(bell, onError);
  releasers.add("run queue", () => queue.close());
  return { postgresUri, embedded, sql, checkpointer: saver, redis, bus, queue };
}
