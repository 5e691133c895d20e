import type { Thread } from "../domain/assistant.js";
import type { Sql } from "./db.js";
import { THREAD_COLUMNS } from "./threads.js";


/**
 * Whole-thread operations on the checkpointer's tables
 * (@langchain/langgraph-checkpoint-postgres: `checkpoints`,
 * `checkpoint_blobs`, `checkpoint_writes`, all keyed by a text `thread_id`)
 * that its API cannot do in one statement: copying a thread and dropping all
 * but the latest checkpoint.
 */
export function createThreadCheckpointsRepo(sql: Sql) {
  return {
    /**
     * Copies a thread under a new id: its row (metadata, config, cached
     * values, interrupts; status idle if it was busy; no TTL, no runs) and
     * every checkpoint, blob and pending write, rewriting `thread_id` (also
     * inside checkpoint metadata, if present). One transaction: readers never
     * see a half-copied thread. Returns null when the source does not exist.
     */
    async copy(sourceId: string, targetId: string): Promise<Thread | null> {
      return sql.begin(async (tx) => {
        const [row] = await tx<Thread[]>`
          INSERT INTO thread (thread_id, metadata, config, status, "values", interrupts, error, state_updated_at)
          SELECT ${targetId}, metadata, config, CASE WHEN status = 'busy' THEN 'idle' ELSE status END,
                 "values", interrupts, error, state_updated_at
          FROM thread WHERE thread_id = ${sourceId}
          RETURNING ${tx(THREAD_COLUMNS)}`;
        if (!row) return null;
        await tx`
          INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata)
          SELECT ${targetId}, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint,
                 CASE WHEN metadata ? 'thread_id' THEN jsonb_set(metadata, '{thread_id}', to_jsonb(${targetId}::text))
                      ELSE metadata END
          FROM checkpoints WHERE thread_id = ${sourceId}`;
        await tx`
          INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)
          SELECT ${targetId}, checkpoint_ns, channel, version, type, blob
          FROM checkpoint_blobs WHERE thread_id = ${sourceId}`;
        await tx`
          INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob)
          SELECT ${targetId}, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob
          FROM checkpoint_writes WHERE thread_id = ${sourceId}`;
        return row;
      });
    },

    /**
     * Keeps only the newest checkpoint of each namespace of each thread (ids
     * are time-ordered UUIDs, so the greatest is the newest), the pending
     * writes of the kept checkpoints and the blobs they reference. The kept
     * checkpoints lose their parent pointer, since the parent is gone.
     * Returns how many checkpoints were deleted.
     */
    async keepLatest(threadIds: string[]): Promise<number> {
      if (threadIds.length === 0) return 0;
      return sql.begin(async (tx) => {
        const gone = await tx`
          DELETE FROM checkpoints c
          WHERE c.thread_id = ANY(${threadIds}::text[])
            AND c.checkpoint_id < (
              SELECT max(m.checkpoint_id) FROM checkpoints m
              WHERE m.thread_id = c.thread_id AND m.checkpoint_ns = c.checkpoint_ns)
          RETURNING 1`;
        await tx`
          DELETE FROM checkpoint_writes w
          WHERE w.thread_id = ANY(${threadIds}::text[])
            AND NOT EXISTS (
              SELECT 1 FROM checkpoints c
              WHERE c.thread_id = w.thread_id AND c.checkpoint_ns = w.checkpoint_ns AND c.checkpoint_id = w.checkpoint_id)`;
        await tx`
          DELETE FROM checkpoint_blobs b
          WHERE b.thread_id = ANY(${threadIds}::text[])
            AND NOT EXISTS (
              SELECT 1 FROM checkpoints c
              WHERE c.thread_id = b.thread_id AND c.checkpoint_ns = b.checkpoint_ns
                AND c.checkpoint->'channel_versions'->>b.channel = b.version)`;
        await tx`
          UPDATE checkpoints SET parent_checkpoint_id = NULL
          WHERE thread_id = ANY(${threadIds}::text[]) AND parent_checkpoint_id IS NOT NULL`;
        return gone.length;
      });
    },
  };
}

export type ThreadCheckpointsRepo = ReturnType<typeof createThreadCheckpointsRepo>;
