/**
 * Per-deployment databases on the listener's PostgreSQL (the bundled one, or
 * the server of POSTGRES_URI). Only databases named by managedDatabaseName()
 * are ever created or dropped here; a deployment's POSTGRES_URI_CUSTOM is
 * never touched.
 */
import postgres from "postgres";

const DUPLICATE_DATABASE = "42P04";

export interface DatabaseAdmin {
  /** Creates the database unless it exists. True if it was created now. */
  ensure(name: string): Promise<boolean>;
  /** Drops the database, ending its sessions. */
  drop(name: string): Promise<void>;
  /** Connection URI of `name` on the same server. */
  uriFor(name: string): string;
  close(): Promise<void>;
}

export function createDatabaseAdmin(serverUri: string): DatabaseAdmin {
  const sql = postgres(serverUri, { max: 1, idle_timeout: 30, onnotice: () => {} });
  const checkName = (name: string) => {
    if (!/^op_[a-z0-9_]{1,60}$/.test(name)) throw new Error(`refusing to manage database "${name}": not a managed name`);
  };
  return {
    async ensure(name) {
      checkName(name);
      const rows = await sql`SELECT 1 FROM pg_database WHERE datname = ${name}`;
      if (rows.length > 0) return false;
      try {
        await sql`CREATE DATABASE ${sql(name)}`;
        return true;
      } catch (err) {
        if ((err as { code?: string }).code === DUPLICATE_DATABASE) return false;
        throw err;
      }
    },
    async drop(name) {
      checkName(name);
      // WITH (FORCE): a server that outlived its stop must not keep the data alive.
      await sql`DROP DATABASE IF EXISTS ${sql(name)} WITH (FORCE)`;
    },
    uriFor(name) {
      const u = new URL(serverUri);
      u.pathname = `/${name}`;
      return u.toString();
    },
    close: () => sql.end({ timeout: 5 }),
  };
}
