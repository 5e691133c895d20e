import type { Sql } from "./db.js";

export interface RunStats {
  /** Runs per status (every status present, 0 when none). */
  byStatus: Record<string, number>;
  /** Pending runs that are due (not waiting for after_seconds). */
  pendingDue: number;
  /** Age of the oldest due pending run, in seconds (0 when none). */
  oldestPendingSecs: number;
}

/** Read-only counters for GET /metrics. Cheap: served by the run indexes. */
export function createStatsRepo(sql: Sql) {
  return {
    async runs(): Promise<RunStats> {
      const [byStatus, [queue]] = await Promise.all([
        sql<{ status: string; n: number }[]>`SELECT status, count(*)::int AS n FROM run GROUP BY status`,
        sql<{ due: number; age: number | null }[]>`
          SELECT count(*)::int AS due, extract(epoch FROM now() - min(created_at))::float8 AS age
          FROM run WHERE status = 'pending' AND created_at <= now()`,
      ]);
      return {
        byStatus: Object.fromEntries(byStatus.map((r) => [r.status, r.n])),
        pendingDue: queue?.due ?? 0,
        oldestPendingSecs: Math.max(0, queue?.age ?? 0),
      };
    },
  };
}

export type StatsRepo = ReturnType<typeof createStatsRepo>;
