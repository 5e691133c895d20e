import type { Sql } from "./db.js";

export interface TruncateRequest {
  runs?: boolean;
  threads?: boolean;
  /** All assistants except `keepAssistants` (the system assistants). */
  assistants?: boolean;
  checkpointer?: boolean;
  store?: boolean;
}

/**
 * Empties tables for test suites (`POST /internal/truncate`, only when
 * OPENPLANE_ENABLE_TRUNCATE=true). One transaction: all or nothing.
 */
export function createTruncateRepo(sql: Sql) {
  return {
    async truncate(what: TruncateRequest, keepAssistants: string[]): Promise<void> {
      await sql.begin(async (tx) => {
        if (what.threads) await tx`DELETE FROM thread`;
        else if (what.runs) {
          await tx`DELETE FROM run`;
          // Nothing is pending or running any more.
          await tx`UPDATE thread SET status = 'idle' WHERE status = 'busy'`;
        }
        if (what.assistants) await tx`DELETE FROM assistant WHERE assistant_id <> ALL(${keepAssistants}::uuid[])`;
        if (what.checkpointer) await tx`TRUNCATE checkpoints, checkpoint_blobs, checkpoint_writes`;
        if (what.store) await tx`DELETE FROM store_item`;
      });
    },
  };
}

export type TruncateRepo = ReturnType<typeof createTruncateRepo>;
