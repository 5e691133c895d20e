/**
 * Helpers for integration and e2e tests that need real Postgres and Redis.
 *
 * The servers are started (or taken from `POSTGRES_URI` / `REDIS_URI`) once per
 * vitest run by `test/helpers/global-setup.ts`, which hands their URIs to the
 * test workers through vitest's `provide`/`inject`. These helpers only read
 * those values, so they work in the `integration` and `e2e` projects and throw
 * a clear error in `unit`, which has no services.
 *
 * @example
 * const db = await createTestDatabase("runs");   // one database per test file
 * afterAll(() => db.drop());
 * describe.skipIf(!hasRedis())("queue", () => {
 *   it("works", async () => { const prefix = uniquePrefix("queue"); ... redisUri() ... });
 * });
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { inject } from "vitest";

declare module "vitest" {
  export interface ProvidedContext {
    /** URI of the test Postgres server, pointing at its `postgres` database (or as given in POSTGRES_URI). */
    postgresUri: string;
    /** URI of the test Redis server, or null when none is available. */
    redisUri: string | null;
    /** Why Redis is unavailable; null when it is available. */
    redisSkipReason: string | null;
  }
}

/** A database created for one test file; see {@link createTestDatabase}. */
export interface TestDatabase {
  /** The database name (lower case, unquoted). */
  readonly name: string;
  /** Connection URI for this database on the test server. */
  readonly uri: string;
  /** Drops the database, terminating open connections. Safe to call twice. */
  drop(): Promise<void>;
}

export interface CreateTestDatabaseOptions {
  /** Clone this database (e.g. a migrated template) instead of `template1`. */
  template?: string;
}

/** Set to 1 to keep test databases after the run for inspection. */
const KEEP_DB_ENV = "OPENPLANE_TEST_KEEP_DB";

function provided<K extends "postgresUri" | "redisUri" | "redisSkipReason">(key: K) {
  const value = inject(key);
  if (value === undefined) {
    throw new Error(
      `test services are not set up ("${key}" was not provided): this helper only works in the ` +
        "integration and e2e vitest projects, whose globalSetup is test/helpers/global-setup.ts",
    );
  }
  return value;
}

/** URI of the test Postgres server. */
export function postgresUri(): string {
  return provided("postgresUri");
}

/** True when a Redis server is available to this run. */
export function hasRedis(): boolean {
  return provided("redisUri") !== null;
}

/** Why Redis-dependent tests are skipped, or null when Redis is available. */
export function redisSkipReason(): string | null {
  return provided("redisSkipReason");
}

/** URI of the test Redis server. Throws when none is available: guard with {@link hasRedis}. */
export function redisUri(): string {
  const uri = provided("redisUri");
  if (uri === null) {
    throw new Error(`no Redis for this test run: ${redisSkipReason() ?? "unknown reason"}`);
  }
  return uri;
}

/** Returns `uri` with its database (the URL path) replaced by `database`. */
export function withDatabase(uri: string, database: string): string {
  const url = new URL(uri);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

/**
 * A short random string, unique per call, for Redis key prefixes, BullMQ
 * prefixes or queue names. Contains only `[a-z0-9-]`.
 */
export function uniquePrefix(label = "test"): string {
  const clean = label.toLowerCase().replace(/[^a-z0-9]+/g, "-").slice(0, 32);
  return `op-${clean}-${process.pid.toString(36)}-${randomBytes(5).toString("hex")}`;
}

function uniqueDatabaseName(prefix: string): string {
  const clean = prefix.toLowerCase().replace(/[^a-z0-9]+/g, "_").slice(0, 30);
  const suffix = `${Date.now().toString(36)}_${randomBytes(4).toString("hex")}`;
  // Postgres truncates identifiers at 63 bytes; stay well below.
  return `test_${clean}_${suffix}`;
}

async function withMaintenanceClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: withDatabase(postgresUri(), "postgres") });
  // An idle-connection error must not crash the worker; the query itself will reject.
  client.on("error", () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const OBJECT_IN_USE = "55006";

/**
 * Creates a fresh, uniquely named database on the test Postgres server and
 * returns its URI. Use one per test file, and drop it in `afterAll`.
 *
 * When cloning a `template`, no session may be connected to the template; a
 * short retry covers connections that are just closing.
 */
export async function createTestDatabase(
  prefix: string,
  options: CreateTestDatabaseOptions = {},
): Promise<TestDatabase> {
  const name = uniqueDatabaseName(prefix);
  await withMaintenanceClient(async (client) => {
    let sql = `CREATE DATABASE ${client.escapeIdentifier(name)}`;
    if (options.template !== undefined) sql += ` TEMPLATE ${client.escapeIdentifier(options.template)}`;
    for (let attempt = 1; ; attempt++) {
      try {
        await client.query(sql);
        return;
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (code !== OBJECT_IN_USE || attempt >= 20) throw err;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  });

  let dropped = false;
  return {
    name,
    uri: withDatabase(postgresUri(), name),
    async drop() {
      if (dropped) return;
      dropped = true;
      if (process.env[KEEP_DB_ENV] === "1") {
        console.info(`[test services] keeping database ${name} (${KEEP_DB_ENV}=1)`);
        return;
      }
      await withMaintenanceClient(async (client) => {
        // Connections still closing (e.g. a queue backend whose close we stopped awaiting)
        // get a moment to go; killing them mid-close surfaces as an unhandled driver error.
        for (let i = 0; i < 30; i++) {
          const { rows } = await client.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1", [name]);
          if (rows[0].n === 0) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        // WITH (FORCE) (Postgres 13+) ends sessions a test forgot to close.
        await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`);
      });
    },
  };
}
