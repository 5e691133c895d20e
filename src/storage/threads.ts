import type { Thread } from "../domain/assistant.js";
import { conflict } from "../domain/errors.js";
import type { ThreadStatus } from "../domain/run.js";
import type { Sql } from "./db.js";
import type { JsonCondition } from "./json-conditions.js";
import { jsonConditions } from "./json-conditions.js";
import type { SearchPage } from "./search-page.js";
import { withoutNul } from "../lib/nul.js";

/** A thread row as the API returns it. */
export const THREAD_COLUMNS = [
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

/** Fields a search may `select` (and the order they come back in). */
export const THREAD_FIELDS = THREAD_COLUMNS;
export type ThreadField = (typeof THREAD_FIELDS)[number];

export const THREAD_SORT_FIELDS = ["thread_id", "status", "created_at", "updated_at", "state_updated_at"] as const;

export const TTL_STRATEGIES = ["delete", "keep_latest"] as const;
export type TtlStrategy = (typeof TTL_STRATEGIES)[number];

/** A thread's TTL as set by the client: expire `ttl` minutes after the last activity. */
export interface ThreadTtlInput {
  ttl: number;
  strategy: TtlStrategy;
}

/** `GET /threads/{id}?include=ttl` */
export interface ThreadTtl {
  strategy: TtlStrategy;
  ttl_minutes: number;
  expires_at: string | null;
}

export interface ThreadFilter {
  metadata?: Record<string, unknown>;
  values?: Record<string, unknown>;
  status?: ThreadStatus;
  ids?: string[];
  /** Authorization filters on metadata (api.md §6.3). */
  auth?: readonly JsonCondition[];
}

export interface ThreadSearch extends ThreadFilter, SearchPage<(typeof THREAD_SORT_FIELDS)[number], ThreadField> {}

export function createThreadsRepo(sql: Sql) {
  const where = (q: ThreadFilter) => sql`
    WHERE true
    ${q.metadata ? sql`AND metadata @> ${sql.json(q.metadata as never)}` : sql``}
    ${q.values ? sql`AND "values" @> ${sql.json(q.values as never)}` : sql``}
    ${q.status ? sql`AND status = ${q.status}` : sql``}
    ${q.ids ? sql`AND thread_id = ANY(${q.ids}::uuid[])` : sql``}
    ${jsonConditions(sql, sql`metadata`, q.auth, true)}`;

  /** Up to `limit` idle threads whose TTL (of this strategy) has passed, locked for the caller. */
  const expiredIdle = (strategy: "delete" | "keep_latest", limit: number) => sql`
    SELECT thread_id FROM thread
    WHERE ttl_expires_at <= now() AND ttl_strategy = ${strategy} AND status <> 'busy'
    ORDER BY ttl_expires_at LIMIT ${limit}
    FOR UPDATE SKIP LOCKED`;

  return {
    async create(input: {
      thread_id: string;
      metadata: Record<string, unknown>;
      if_exists: "raise" | "do_nothing";
      ttl?: ThreadTtlInput | null;
    }): Promise<Thread> {
      const [row] = await sql<Thread[]>`
        INSERT INTO thread (thread_id, metadata, ttl_minutes, ttl_strategy)
        VALUES (${input.thread_id}, ${sql.json(input.metadata as never)}, ${input.ttl?.ttl ?? null}, ${input.ttl?.strategy ?? null})
        ON CONFLICT (thread_id) DO NOTHING
        RETURNING ${sql(THREAD_COLUMNS)}`;
      if (row) return row;
      if (input.if_exists === "raise") throw conflict(`Thread with ID ${input.thread_id} already exists`);
      const existing = await this.get(input.thread_id);
      if (!existing) throw conflict(`Thread with ID ${input.thread_id} was deleted concurrently`);
      return existing;
    },

    async get(threadId: string): Promise<Thread | null> {
      const [row] = await sql<Thread[]>`SELECT ${sql(THREAD_COLUMNS)} FROM thread WHERE thread_id = ${threadId}`;
      return row ?? null;
    },

    /** The thread's TTL, or null when it has none (or the thread is missing). */
    async ttl(threadId: string): Promise<ThreadTtl | null> {
      const [row] = await sql<ThreadTtl[]>`
        SELECT ttl_strategy AS strategy, ttl_minutes, ttl_expires_at AS expires_at
        FROM thread WHERE thread_id = ${threadId} AND ttl_minutes IS NOT NULL`;
      return row ?? null;
    },

    /**
     * Merges `metadata` into the thread's and sets (or with null, removes) its
     * TTL. Moving updated_at counts as activity and refreshes the expiry.
     * Returns null when the thread does not exist.
     */
    async patch(threadId: string, p: { metadata?: Record<string, unknown> | null; ttl?: ThreadTtlInput | null }): Promise<Thread | null> {
      const [row] = await sql<Thread[]>`
        UPDATE thread SET
          metadata = metadata || ${sql.json((p.metadata ?? {}) as never)},
          ${p.ttl !== undefined ? sql`ttl_minutes = ${p.ttl?.ttl ?? null}, ttl_strategy = ${p.ttl?.strategy ?? null},` : sql``}
          updated_at = now()
        WHERE thread_id = ${threadId}
        RETURNING ${sql(THREAD_COLUMNS)}`;
      return row ?? null;
    },

    async search(q: ThreadSearch): Promise<{ items: Partial<Thread>[]; total: number }> {
      const w = where(q);
      // sort_by and select are checked against fixed lists by the caller; sql() quotes them as identifiers.
      const order = q.sort_order === "asc" ? sql`ASC` : sql`DESC`;
      const cols = q.select?.length ? q.select : THREAD_COLUMNS;
      const [items, [count]] = await Promise.all([
        sql<Partial<Thread>[]>`SELECT ${sql(cols as string[])} FROM thread ${w}
          ORDER BY ${sql(q.sort_by)} ${order}, thread_id ${order} LIMIT ${q.limit} OFFSET ${q.offset}`,
        sql<{ n: number }[]>`SELECT count(*)::int AS n FROM thread ${w}`,
      ]);
      return { items: [...items], total: count?.n ?? 0 };
    },

    async count(q: ThreadFilter): Promise<number> {
      const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM thread ${where(q)}`;
      return row?.n ?? 0;
    },

    /** Ids of the threads created for an assistant (`metadata.assistant_id`). */
    async idsForAssistant(assistantId: string): Promise<string[]> {
      const rows = await sql<{ thread_id: string }[]>`
        SELECT thread_id FROM thread WHERE metadata->>'assistant_id' = ${assistantId}`;
      return rows.map((r) => r.thread_id);
    },

    /** The subset of `ids` that exist. */
    async existing(ids: string[]): Promise<string[]> {
      if (ids.length === 0) return [];
      const rows = await sql<{ thread_id: string }[]>`SELECT thread_id FROM thread WHERE thread_id = ANY(${ids}::uuid[])`;
      return rows.map((r) => r.thread_id);
    },

    /**
     * Caches the state after a direct state update. The status moves only when
     * no run is active (an active run will settle it when it ends).
     */
    async setState(threadId: string, state: { values: Record<string, unknown>; interrupts: Record<string, unknown[]>; hasPendingNext: boolean }): Promise<void> {
      await sql`
        UPDATE thread SET
          "values" = ${sql.json(withoutNul(state.values) as never)},
          interrupts = ${sql.json(withoutNul(state.interrupts) as never)},
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

    /**
     * TTL sweep, strategy `delete`: deletes up to `limit` expired threads that
     * have no pending or running run (the status check is re-evaluated on the
     * locked row, so a run created meanwhile keeps its thread). Returns the ids
     * deleted; their checkpoints are the caller's to delete.
     */
    async deleteExpired(limit: number): Promise<string[]> {
      const rows = await sql<{ thread_id: string }[]>`
        DELETE FROM thread t
        WHERE t.thread_id IN (${expiredIdle("delete", limit)})
          AND t.status <> 'busy'
          AND NOT EXISTS (SELECT 1 FROM run r WHERE r.thread_id = t.thread_id AND r.status IN ('pending', 'running'))
        RETURNING t.thread_id`;
      return rows.map((r) => r.thread_id);
    },

    /**
     * TTL sweep, strategy `keep_latest`: takes up to `limit` expired idle
     * threads and clears their expiry until their next activity. Returns the
     * ids; pruning their checkpoints is the caller's job.
     */
    async takeExpiredKeepLatest(limit: number): Promise<string[]> {
      const rows = await sql<{ thread_id: string }[]>`
        UPDATE thread t SET ttl_expires_at = NULL
        WHERE t.thread_id IN (${expiredIdle("keep_latest", limit)})
          AND t.status <> 'busy'
        RETURNING t.thread_id`;
      return rows.map((r) => r.thread_id);
    },

    /** Deletes the thread and (by cascade) its runs. Returns false if it did not exist. */
    async delete(threadId: string): Promise<boolean> {
      const rows = await sql`DELETE FROM thread WHERE thread_id = ${threadId} RETURNING thread_id`;
      return rows.length > 0;
    },
  };
}

export type ThreadsRepo = ReturnType<typeof createThreadsRepo>;
