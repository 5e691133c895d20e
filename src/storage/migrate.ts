import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { Sql } from "./db.js";

const MIGRATIONS_DIR = fileURLToPath(new URL("./migrations/", import.meta.url));
/** Arbitrary constant: every openplane replica serialises schema changes on it. */
const MIGRATION_LOCK_KEY = 7_351_042_117;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f)).sort();
  return Promise.all(
    files.map(async (f) => ({
      version: Number(f.slice(0, 4)),
      name: f.slice(5, -4),
      sql: await readFile(`${dir}${f}`, "utf8"),
    })),
  );
}

export class SchemaTooNewError extends Error {
  constructor(dbVersion: number, codeVersion: number) {
    super(
      `database schema is at version ${dbVersion} but this openplane only knows up to ${codeVersion}: upgrade openplane or use another database`,
    );
    this.name = "SchemaTooNewError";
  }
}

/**
 * Applies pending migrations, each in its own transaction, under a
 * session-level advisory lock so replicas starting together apply each
 * migration exactly once. Refuses a database migrated by a newer openplane.
 */
export async function migrate(
  sql: Sql,
  opts: {
    migrations?: Migration[];
    /** Runs under the same lock before ours: the checkpointer's own setup, whose tables ours may index. */
    before?: () => Promise<void>;
  } = {},
): Promise<{ applied: number[] }> {
  const all = opts.migrations ?? (await loadMigrations());
  const latest = all.at(-1)?.version ?? 0;
  const applied: number[] = [];
  const reserved = await sql.reserve();
  try {
    await reserved`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY})`;
    await reserved`
      CREATE TABLE IF NOT EXISTS openplane_migration (
        version    integer PRIMARY KEY,
        name       text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`;
    await opts.before?.();
    const rows = await reserved<{ version: number }[]>`SELECT version FROM openplane_migration`;
    const done = new Set(rows.map((r) => r.version));
    const dbMax = Math.max(0, ...done);
    if (dbMax > latest) throw new SchemaTooNewError(dbMax, latest);
    for (const m of all) {
      if (done.has(m.version)) continue;
      await reserved.unsafe("BEGIN");
      try {
        await reserved.unsafe(m.sql);
        await reserved`INSERT INTO openplane_migration (version, name) VALUES (${m.version}, ${m.name})`;
        await reserved.unsafe("COMMIT");
      } catch (err) {
        await reserved.unsafe("ROLLBACK");
        throw new Error(`migration ${m.version}_${m.name} failed: ${(err as Error).message}`, { cause: err });
      }
      applied.push(m.version);
    }
  } finally {
    await reserved`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.catch(() => {});
    reserved.release();
  }
  return { applied };
}

/** For servers that must not migrate: throws unless the schema is exactly current. */
export async function assertSchemaCurrent(sql: Sql): Promise<void> {
  const latest = (await loadMigrations()).at(-1)?.version ?? 0;
  const [row] = await sql<{ v: number | null }[]>`
    SELECT max(version) AS v FROM openplane_migration`.catch(() => [{ v: null }]);
  const v = row?.v ?? 0;
  if (v > latest) throw new SchemaTooNewError(v, latest);
  if (v < latest) throw new Error(`database schema is at version ${v}, expected ${latest}: run "openplane migrate"`);
}
