import type { Thread } from "../domain/assistant.js";
import { conflict } from "../domain/errors.js";
import type { ThreadStatus } from "../domain/run.js";
import type { Sql } from "./db.js";

const COLUMNS = [
  "thread_id",
  "created_at",
  "updated_at",
  "state_updated_at",
  "metadata",
  "config",
  "status",
  "values",
  "interrupts",
  "error",
] as const;

export const THREAD_SORT_FIELDS = ["thread_id", "status", "created_at", "updated_at", "state_updated_at"] as const;

export interface ThreadSearch {
  metadata?: Record<string, unknown>;
  values?: Record<string, unknown>;
  status?: ThreadStatus;
  ids?: string[];
  limit: number;
  offset: number;
  sort_by: (typeof THREAD_SORT_FIELDS)[number];
  sort_order: "asc" | "desc";
}

export function createThreadsRepo(sql: Sql) {
  return {
    async create(input: {
      thread_id: string;
      metadata: Record<string, unknown>;
      if_exists: "raise" | "do_nothing";
    }): Promise<Thread> {
      const [row] = await sql<Thread[]>`
        INSERT INTO thread (thread_id, metadata)
        VALUES (${input.thread_id}, ${sql.json(input.metadata as never)})
        ON CONFLICT (thread_id) DO NOTHING
        RETURNING ${sql(COLUMNS)}`;
      if (row) return row;
      if (input.if_exists === "raise") throw conflict(`Thread with ID ${input.thread_id} already exists`);
      const existing = await this.get(input.thread_id);
      if (!existing) throw conflict(`Thread with ID ${input.thread_id} was deleted concurrently`);
      return existing;
    },

    async get(threadId: string): Promise<Thread | null> {
      const [row] = await sql<Thread[]>`SELECT ${sql(COLUMNS)} FROM thread WHERE thread_id = ${threadId}`;
      return row ?? null;
    },

    async search(q: ThreadSearch): Promise<{ items: Thread[]; total: number }> {
      const where = sql`
        WHERE true
        ${q.metadata ? sql`AND metadata @> ${sql.json(q.metadata as never)}` : sql``}
        ${q.values ? sql`AND "values" @> ${sql.json(q.values as never)}` : sql``}
        ${q.status ? sql`AND status = ${q.status}` : sql``}
        ${q.ids ? sql`AND thread_id = ANY(${q.ids}::uuid[])` : sql``}`;
      // sort_by is checked against THREAD_SORT_FIELDS by the caller; sql() quotes it as an identifier.
      const order = q.sort_order === "asc" ? sql`ASC` : sql`DESC`;
      const [items, [count]] = await Promise.all([
        sql<Thread[]>`SELECT ${sql(COLUMNS)} FROM thread ${where}
          ORDER BY ${sql(q.sort_by)} ${order}, thread_id ${order} LIMIT ${q.limit} OFFSET ${q.offset}`,
        sql<{ n: number }[]>`SELECT count(*)::int AS n FROM thread ${where}`,
      ]);
      return { items: [...items], total: count?.n ?? 0 };
    },

    /**
     * Caches the state after a direct state update. The status moves only when
     * no run is active (an active run will settle it when it ends).
     */
    async setState(threadId: string, state: { values: Record<string, unknown>; interrupts: Record<string, unknown[]>; hasPendingNext: boolean }): Promise<void> {
      await sql`
        UPDATE thread SET
          "values" = ${sql.json(state.values as never)},
          interrupts = ${sql.json(state.interrupts as never)},
          status = CASE WHEN status = 'busy' THEN status ELSE ${state.hasPendingNext ? "interrupted" : "idle"} END,
          state_updated_at = now(),
          updated_at = now()
        WHERE thread_id = ${threadId}`;
    },

    /** True while a run is pending or running on the thread. */
    async isBusy(threadId: string): Promise<boolean> {
      const rows = await sql`SELECT 1 FROM run WHERE thread_id = ${threadId} AND status IN ('pending', 'running') LIMIT 1`;
      return rows.length > 0;
    },

    /** Deletes the thread and (by cascade) its runs. Returns false if it did not exist. */
    async delete(threadId: string): Promise<boolean> {
      const rows = await sql`DELETE FROM thread WHERE thread_id = ${threadId} RETURNING thread_id`;
      return rows.length > 0;
    },
  };
}

export type ThreadsRepo = ReturnType<typeof createThreadsRepo>;
