import { PostgresSaver } from "@langchain/langgraph-checkpoint-postgres";
import pg from "pg";

/**
 * The checkpointer brings its own `pg` pool (the library requires it). The
 * caller sizes it together with our postgres.js pool and closes both.
 */
export function createCheckpointer(
  uri: string,
  max: number,
  onError: (err: Error) => void,
): { saver: PostgresSaver; pool: pg.Pool } {
  const pool = new pg.Pool({ connectionString: uri, max, idleTimeoutMillis: 30_000 });
  // An idle client losing its connection must not crash the process.
  pool.on("error", onError);
  return { saver: new PostgresSaver(pool), pool };
}
