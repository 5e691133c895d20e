import type { Sql } from "./db.js";

/**
 * Direct SQL on the checkpointer's tables (owned by
 * @langchain/langgraph-checkpoint-postgres) for what its API cannot do:
 * removing the checkpoints one run wrote. Their metadata carries `run_id`
 * (see RunAwarePostgresSaver), indexed by `checkpoints_run_id`.
 */
export function createCheckpointsRepo(sql: Sql) {
  return {
    /** Deletes every checkpoint (and its pending writes) that `runId` wrote on `threadId`. */
    async deleteForRun(threadId: string, runId: string): Promise<number> {
      return sql.begin(async (tx) => {
        const ids = await tx<{ checkpoint_id: string; checkpoint_ns: string }[]>`
          DELETE FROM checkpoints
          WHERE thread_id = ${threadId} AND metadata->>'run_id' = ${runId}
          RETURNING checkpoint_id, checkpoint_ns`;
        if (ids.length > 0) {
          await tx`
            DELETE FROM checkpoint_writes
            WHERE thread_id = ${threadId} AND checkpoint_id = ANY(${ids.map((r) => r.checkpoint_id)})`;
        }
        return ids.length;
      });
    },
  };
}

export type CheckpointsRepo = ReturnType<typeof createCheckpointsRepo>;
