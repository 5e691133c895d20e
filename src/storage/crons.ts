import type { Sql } from "./db.js";
import type { JsonCondition } from "./json-conditions.js";
import { jsonConditions } from "./json-conditions.js";
import type { SearchPage } from "./search-page.js";

/** A cron as the API returns it (api.md §2.5). */
export interface Cron {
  cron_id: string;
  assistant_id: string;
  thread_id: string | null;
  on_run_completed: "delete" | "keep" | null;
  end_time: string | null;
  schedule: string;
  timezone: string | null;
  created_at: string;
  updated_at: string;
  payload: Record<string, unknown>;
  user_id: string | null;
  next_run_date: string | null;
  metadata: Record<string, unknown>;
  enabled: boolean;
}

/** What a fire needs besides the public fields: who created the cron. */
export interface CronWithOwner extends Cron {
  auth_user: Record<string, unknown> | null;
}

const COLUMNS = [
  "cron_id",
  "assistant_id",
  "thread_id",
  "on_run_completed",
  "end_time",
  "schedule",
  "timezone",
  "created_at",
  "updated_at",
  "payload",
  "user_id",
  "next_run_date",
  "metadata",
  "enabled",
] as const;

/** Fields a search may `select`. */
export const CRON_FIELDS = COLUMNS;
export type CronField = (typeof CRON_FIELDS)[number];
export const CRON_SORT_FIELDS = ["cron_id", "assistant_id", "thread_id", "next_run_date", "end_time", "created_at", "updated_at"] as const;

/** A new cron: every field but the timestamps the database sets. */
export type CronCreate = Omit<CronWithOwner, "created_at" | "updated_at">;

/** Fields a patch may set; `undefined` leaves a field alone, `end_time: null` clears it. */
export interface CronPatch {
  schedule?: string;
  timezone?: string | null;
  end_time?: string | null;
  on_run_completed?: "delete" | "keep";
  payload?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  enabled?: boolean;
  next_run_date: string | null;
}

export interface CronFilter {
  assistant_id?: string;
  thread_id?: string;
  enabled?: boolean;
  metadata?: Record<string, unknown>;
  /** Authorization filters on metadata (api.md §6.3). */
  auth?: readonly JsonCondition[];
}

export interface CronSearch extends CronFilter, SearchPage<(typeof CRON_SORT_FIELDS)[number], CronField> {}

/** What the scheduler needs to (re)create a cron's job scheduler. */
export interface CronSchedule {
  cron_id: string;
  schedule: string;
  timezone: string | null;
  end_time: string | null;
}

export function createCronsRepo(sql: Sql) {
  const where = (q: CronFilter) => sql`
    WHERE true
    ${q.assistant_id ? sql`AND assistant_id = ${q.assistant_id}` : sql``}
    ${q.thread_id ? sql`AND thread_id = ${q.thread_id}` : sql``}
    ${q.enabled !== undefined ? sql`AND enabled = ${q.enabled}` : sql``}
    ${q.metadata ? sql`AND metadata @> ${sql.json(q.metadata as never)}` : sql``}
    ${jsonConditions(sql, sql`metadata`, q.auth, true)}`;

  return {
    async create(input: CronCreate): Promise<Cron> {
      const [row] = await sql<Cron[]>`
        INSERT INTO cron (cron_id, assistant_id, thread_id, on_run_completed, end_time, schedule, timezone,
                          payload, user_id, next_run_date, metadata, enabled, auth_user)
        VALUES (${input.cron_id}, ${input.assistant_id}, ${input.thread_id}, ${input.on_run_completed}, ${input.end_time},
                ${input.schedule}, ${input.timezone}, ${sql.json(input.payload as never)}, ${input.user_id},
                ${input.next_run_date}, ${sql.json(input.metadata as never)}, ${input.enabled},
                ${input.auth_user ? sql.json(input.auth_user as never) : null})
        RETURNING ${sql(COLUMNS)}`;
      return row!;
    },

    async get(cronId: string): Promise<Cron | null> {
      const [row] = await sql<Cron[]>`SELECT ${sql(COLUMNS)} FROM cron WHERE cron_id = ${cronId}`;
      return row ?? null;
    },

    /** Applies a patch; returns null when the cron does not exist. */
    async patch(cronId: string, p: CronPatch): Promise<Cron | null> {
      const [row] = await sql<Cron[]>`
        UPDATE cron SET
          ${p.schedule !== undefined ? sql`schedule = ${p.schedule},` : sql``}
          ${p.timezone !== undefined ? sql`timezone = ${p.timezone},` : sql``}
          ${p.end_time !== undefined ? sql`end_time = ${p.end_time},` : sql``}
          ${p.on_run_completed !== undefined ? sql`on_run_completed = ${p.on_run_completed},` : sql``}
          ${p.payload !== undefined ? sql`payload = ${sql.json(p.payload as never)},` : sql``}
          ${p.metadata !== undefined ? sql`metadata = ${sql.json(p.metadata as never)},` : sql``}
          ${p.enabled !== undefined ? sql`enabled = ${p.enabled},` : sql``}
          next_run_date = ${p.next_run_date},
          updated_at = now()
        WHERE cron_id = ${cronId}
        RETURNING ${sql(COLUMNS)}`;
      return row ?? null;
    },

    /** Returns false when the cron did not exist. */
    async delete(cronId: string): Promise<boolean> {
      const rows = await sql`DELETE FROM cron WHERE cron_id = ${cronId} RETURNING cron_id`;
      return rows.length > 0;
    },

    async search(q: CronSearch): Promise<{ items: Partial<Cron>[]; total: number }> {
      const w = where(q);
      // sort_by and select are checked against fixed lists by the caller; sql() quotes them as identifiers.
      const order = q.sort_order === "asc" ? sql`ASC` : sql`DESC`;
      const nulls = q.sort_order === "asc" ? sql`NULLS LAST` : sql`NULLS FIRST`;
      const cols = q.select?.length ? q.select : COLUMNS;
      const [items, [count]] = await Promise.all([
        sql<Partial<Cron>[]>`SELECT ${sql(cols as string[])} FROM cron ${w}
          ORDER BY ${sql(q.sort_by)} ${order} ${nulls}, cron_id ${order} LIMIT ${q.limit} OFFSET ${q.offset}`,
        sql<{ n: number }[]>`SELECT count(*)::int AS n FROM cron ${w}`,
      ]);
      return { items: [...items], total: count?.n ?? 0 };
    },

    async count(q: CronFilter): Promise<number> {
      const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM cron ${where(q)}`;
      return row?.n ?? 0;
    },

    /** Crons that should have a job scheduler: enabled and not past their end time. */
    async schedulable(): Promise<CronSchedule[]> {
      const rows = await sql<CronSchedule[]>`
        SELECT cron_id, schedule, timezone, end_time FROM cron
        WHERE enabled AND (end_time IS NULL OR end_time > now())`;
      return [...rows];
    },

    /**
     * Takes one fire of a cron: only an enabled, unexpired cron whose last
     * handled fire is older than `fireMs` (a fire delivered twice runs once).
     * Records the fire and the next run date. Returns null when the fire must
     * not create a run; `reason` then says whether the scheduler should go.
     */
    async claimFire(
      cronId: string,
      fireMs: number,
      nextRunDate: (c: CronSchedule) => string | null,
    ): Promise<{ cron: CronWithOwner } | { cron: null; reason: "missing" | "disabled" | "expired" | "duplicate" }> {
      return sql.begin(async (tx) => {
        const [row] = await tx<(CronWithOwner & { last_fire_ms: string | null; expired: boolean })[]>`
          SELECT ${tx(COLUMNS)}, auth_user, last_fire_ms, (end_time IS NOT NULL AND end_time <= now()) AS expired
          FROM cron WHERE cron_id = ${cronId} FOR UPDATE`;
        if (!row) return { cron: null, reason: "missing" as const };
        if (!row.enabled) return { cron: null, reason: "disabled" as const };
        if (row.expired) {
          await tx`UPDATE cron SET next_run_date = NULL WHERE cron_id = ${cronId}`;
          return { cron: null, reason: "expired" as const };
        }
        if (row.last_fire_ms !== null && Number(row.last_fire_ms) >= fireMs) return { cron: null, reason: "duplicate" as const };
        const next = nextRunDate(row);
        const [updated] = await tx<CronWithOwner[]>`
          UPDATE cron SET last_fire_ms = ${fireMs}::bigint, next_run_date = ${next}
          WHERE cron_id = ${cronId}
          RETURNING ${tx(COLUMNS)}, auth_user`;
        return { cron: updated! };
      });
    },
  };
}

export type CronsRepo = ReturnType<typeof createCronsRepo>;
