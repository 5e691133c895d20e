import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createSql } from "../../src/storage/db.js";
import type { Sql } from "../../src/storage/db.js";
import { SchemaTooNewError, assertSchemaCurrent, loadMigrations, migrate } from "../../src/storage/migrate.js";
import { createTestDatabase } from "../helpers/services.js";
import type { TestDatabase } from "../helpers/services.js";

const dbs: TestDatabase[] = [];
const pools: Sql[] = [];

async function fresh(label: string): Promise<{ db: TestDatabase; sql: Sql }> {
  const db = await createTestDatabase(`migrate_${label}`);
  dbs.push(db);
  const sql = open(db.uri);
  return { db, sql };
}

function open(uri: string, max = 2): Sql {
  const sql = createSql(uri, max);
  pools.push(sql);
  return sql;
}

afterEach(async () => {
  await Promise.all(pools.splice(0).map((s) => s.end({ timeout: 5 })));
});
afterAll(async () => {
  await Promise.all(dbs.map((d) => d.drop()));
});

const tables = async (sql: Sql) =>
  (
    await sql<{ t: string }[]>`
      SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`
  ).map((r) => r.t);

const recorded = (sql: Sql) =>
  sql<{ version: number; name: string }[]>`SELECT version, name FROM openplane_migration ORDER BY version`;

describe("migrate", () => {
  it("ships numbered migrations starting with 0001_core", async () => {
    const all = await loadMigrations();
    expect(all[0]).toMatchObject({ version: 1, name: "core" });
    expect(all.map((m) => m.version)).toEqual(all.map((_, i) => i + 1));
  });

  it("applies 0001 on a fresh database, then re-running is a no-op", async () => {
    const { sql } = await fresh("once");
    const latest = (await loadMigrations()).at(-1)!.version;
    const first = await migrate(sql);
    expect(first.applied).toEqual(Array.from({ length: latest }, (_, i) => i + 1));
    expect(await tables(sql)).toEqual(expect.arrayContaining(["assistant", "assistant_version", "openplane_migration", "run", "thread"]));
    const before = await recorded(sql);
    expect(before[0]).toMatchObject({ version: 1, name: "core" });

    const again = await migrate(sql);
    expect(again.applied).toEqual([]);
    expect(await recorded(sql)).toEqual(before);
    await expect(assertSchemaCurrent(sql)).resolves.toBeUndefined();
  });

  it("applies each migration exactly once when 5 replicas migrate together", async () => {
    const { db } = await fresh("concurrent");
    // Five separate pools, like five replicas starting at once.
    const replicas = Array.from({ length: 5 }, () => open(db.uri, 1));
    let underLock = 0;
    let maxUnderLock = 0;
    const results = await Promise.all(
      replicas.map((sql) =>
        migrate(sql, {
          before: async () => {
            underLock++;
            maxUnderLock = Math.max(maxUnderLock, underLock);
            await new Promise((r) => setTimeout(r, 20));
            underLock--;
          },
        }),
      ),
    );
    const latest = (await loadMigrations()).at(-1)!.version;
    const appliedEverywhere = results.flatMap((r) => r.applied).sort((a, b) => a - b);
    expect(appliedEverywhere).toEqual(Array.from({ length: latest }, (_, i) => i + 1));
    expect(results.filter((r) => r.applied.length > 0)).toHaveLength(1);
    // The "before" step (the checkpointer setup) ran once per replica, never two at a time.
    expect(maxUnderLock).toBe(1);
    const rows = await recorded(replicas[0]!);
    expect(rows.map((r) => r.version)).toEqual(appliedEverywhere);
  });

  it("refuses a database migrated by a newer openplane", async () => {
    const { sql } = await fresh("too_new");
    await migrate(sql);
    await sql`INSERT INTO openplane_migration (version, name) VALUES (999, 'from_the_future')`;
    const err = await migrate(sql).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SchemaTooNewError);
    expect((err as Error).message).toMatch(/version 999/);
    await expect(assertSchemaCurrent(sql)).rejects.toBeInstanceOf(SchemaTooNewError);
    // The lock was released: another migrate call does not hang, it fails the same way.
    await expect(migrate(sql)).rejects.toBeInstanceOf(SchemaTooNewError);
  });

  it("reports an unmigrated database as behind", async () => {
    const { sql } = await fresh("behind");
    await expect(assertSchemaCurrent(sql)).rejects.toThrow(/openplane migrate/);
  });

  it("rolls back a failing migration entirely and records nothing for it", async () => {
    const { sql } = await fresh("failing");
    const migrations = [
      { version: 1, name: "ok", sql: "CREATE TABLE good (id int)" },
      { version: 2, name: "broken", sql: "CREATE TABLE half (id int); SELECT * FROM no_such_table" },
    ];
    await expect(migrate(sql, { migrations })).rejects.toThrow(/migration 2_broken failed/);
    expect((await recorded(sql)).map((r) => r.version)).toEqual([1]);
    const t = await tables(sql);
    expect(t).toContain("good");
    expect(t).not.toContain("half");
    // Fixed, it applies on the next start.
    migrations[1] = { version: 2, name: "broken", sql: "CREATE TABLE half (id int)" };
    expect((await migrate(sql, { migrations })).applied).toEqual([2]);
  });
});
