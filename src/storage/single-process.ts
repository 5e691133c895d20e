import type { Sql } from "./db.js";

/** Arbitrary constant, distinct from the migration lock. */
const SINGLE_PROCESS_LOCK_KEY = 7_351_042_118;

export class DatabaseInUseError extends Error {
  constructor() {
    super(
      "another openplane without Redis is already serving this database: without Redis, streams and cancel signals stay inside one process. Set REDIS_URI to run several processes on one database.",
    );
    this.name = "DatabaseInUseError";
  }
}

/**
 * Without Redis the event bus lives in one process, so two such processes on
 * one database would execute each other's runs where their clients can't see
 * them. A session-level advisory lock, held for the process's lifetime, makes
 * the second one refuse to start. Returns the release function.
 */
export async function holdSingleProcessLock(sql: Sql): Promise<() => Promise<void>> {
  const conn = await sql.reserve();
  const [row] = await conn<{ ok: boolean }[]>`SELECT pg_try_advisory_lock(${SINGLE_PROCESS_LOCK_KEY}) AS ok`;
  if (!row?.ok) {
    conn.release();
    throw new DatabaseInUseError();
  }
  return async () => {
    await conn`SELECT pg_advisory_unlock(${SINGLE_PROCESS_LOCK_KEY})`.catch(() => {});
    conn.release();
  };
}
