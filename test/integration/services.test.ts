import { Redis } from "ioredis";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createTestDatabase,
  hasRedis,
  postgresUri,
  redisSkipReason,
  redisUri,
  uniquePrefix,
  type TestDatabase,
} from "../helpers/services.js";

async function query<T extends pg.QueryResultRow>(uri: string, sql: string, params: unknown[] = []) {
  const client = new pg.Client({ connectionString: uri });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

describe("test Postgres", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase("services");
  });
  afterAll(async () => {
    await db?.drop();
  });

  it("answers SELECT 1 on the server URI", async () => {
    const rows = await query<{ one: number }>(postgresUri(), "SELECT 1 AS one");
    expect(rows).toEqual([{ one: 1 }]);
  });

  it("gives each file its own database", async () => {
    const rows = await query<{ db: string }>(db.uri, "SELECT current_database() AS db");
    expect(rows).toEqual([{ db: db.name }]);
    await query(db.uri, "CREATE TABLE t (id int primary key)");
    await query(db.uri, "INSERT INTO t VALUES (1)");
    expect(await query(db.uri, "SELECT id FROM t")).toEqual([{ id: 1 }]);
  });

  it("creates unique databases and drops them, even with open connections", async () => {
    const other = await createTestDatabase("services");
    expect(other.name).not.toBe(db.name);
    const open = new pg.Client({ connectionString: other.uri });
    open.on("error", () => {}); // the forced drop terminates this session
    await open.connect();
    await other.drop();
    await other.drop(); // idempotent
    const rows = await query(postgresUri(), "SELECT 1 FROM pg_database WHERE datname = $1", [other.name]);
    expect(rows).toEqual([]);
    await open.end().catch(() => {});
  });

  it("clones a template database", async () => {
    await query(db.uri, "CREATE TABLE tpl AS SELECT 42 AS answer");
    const clone = await createTestDatabase("clone", { template: db.name });
    try {
      expect(await query(clone.uri, "SELECT answer FROM tpl")).toEqual([{ answer: 42 }]);
    } finally {
      await clone.drop();
    }
  });
});

describe("test Redis", () => {
  if (!hasRedis()) {
    it.skip(`skipped: ${redisSkipReason()}`, () => {});
    return;
  }

  it("answers PING and isolates keys by prefix", async () => {
    const redis = new Redis(redisUri(), { maxRetriesPerRequest: 1 });
    try {
      expect(await redis.ping()).toBe("PONG");
      const a = uniquePrefix("services");
      const b = uniquePrefix("services");
      expect(a).not.toBe(b);
      await redis.set(`${a}:k`, "1");
      expect(await redis.get(`${b}:k`)).toBeNull();
      await redis.del(`${a}:k`);
    } finally {
      redis.disconnect();
    }
  });
});
