import { conflict, notFound } from "../domain/errors.js";
import type { CancelAction, MultitaskStrategy, Run, RunKwargs, RunLease, RunStatus } from "../domain/run.js";
import type { Sql } from "./db.js";
import { withoutNul } from "../lib/nul.js";
import { takeCheckpoint, type CheckpointColumns, type CheckpointRow, type CheckpointStatements, type CheckpointWrite } from "./checkpoint-sql.js";

const COLUMNS = [
  "run_id",
  "thread_id",
  "assistant_id",
  "created_at",
  "updated_at",
  "status",
  "metadata",
  "kwargs",
  "multitask_strategy",
] as const;
const LEASE_COLUMNS = ["attempt", "lease_owner", "lease_expires_at", "cancel_action"] as const;

export type ClaimedRun = Run &
  RunLease & {
    /**
     * With `checkpoints`: the thread's newest root checkpoint (null: none), read in the
     * claim's round trip for the run's start (RunAwarePostgresSaver.prime). Absent: not read.
     */
    checkpoint?: CheckpointRow | null;
  };

export interface RunsRepoOptions {
  /**
   * The checkpointer's statements (RunAwarePostgresSaver.statements; its setup creates the
   * function). With them a claim also reads the claimed run's first checkpoint, and a finish
   * commits the run's last checkpoint writes (FinishInput.writes): one round trip each fewer
   * per run.
   */
  checkpoints?: Pick<CheckpointStatements, "latestFunction" | "writeWith">;
}

/** A row of openplane_finish_run_v2: the finish, then the claimed run's columns (all null when none). */
type FinishRow = {
  thread_id: string;
  next_run_id: string | null;
  next_attempt: number | null;
  next_delay_ms: number | null;
  claimed_thread_id: string | null;
} & { [K in Exclude<keyof ClaimedRun, "thread_id">]: ClaimedRun[K] | null };

export interface CreateRunInput {
  run_id: string;
  thread_id: string;
  /** create: make the thread if it is missing (stateless runs, if_not_exists=create). */
  if_not_exists: "create" | "reject";
  assistant_id: string;
  graph_id: string;
  metadata: Record<string, unknown>;
  kwargs: RunKwargs;
  multitask_strategy: MultitaskStrategy;
  after_seconds: number;
}

export interface CreateRunExtras {
  /** The assistant's token from assistants.resolveForRun: the insert is refused ("stale") if the row changed since. */
  assistant_token?: string | null;
  /** A local worker's free slot: a run that can start now is inserted claimed by it. */
  claim?: { owner: string; leaseSecs: number } | null;
}

export type CreatedRun =
  | { outcome: "created"; run: Run; inflight: string[]; claimed: ClaimedRun | null }
  | { outcome: "stale" };

/** A pending run the queue should (re)dispatch, and when it becomes eligible. */
export interface Dispatch {
  run_id: string;
  thread_id: string;
  delay_ms: number;
  /** Attempts made so far (0 for a new run). */
  attempt?: number;
}

export interface CancelResult {
  /** Pending runs ended (interrupt) or deleted (rollback) right away. */
  pending: Array<{ run_id: string; thread_id: string }>;
  /** Running runs flagged; their workers stop them. */
  running: Array<{ run_id: string; thread_id: string }>;
  /** Runs to dispatch on threads freed by the cancel. */
  next: Dispatch[];
}

export interface FinishInput {
  run_id: string;
  owner: string;
  status: Exclude<RunStatus, "pending" | "running">;
  /** Cached on the thread; null leaves the cached values alone. */
  values: Record<string, unknown> | null;
  interrupts: Record<string, unknown[]>;
  hasPendingNext: boolean;
  error: { error: string; message: string } | null;
  /** The run's checkpoint writes not committed yet: they commit with the outcome, or neither does. */
  writes?: readonly CheckpointWrite[];
}

export function createRunsRepo(sql: Sql, opts: RunsRepoOptions = {}) {
  const cp = opts.checkpoints ?? null;
  /**
   * Joins the claimed run's first checkpoint (ck_* columns) when `claimed` holds; nothing
   * without the checkpointer's statements. The function
   * runs after the claim and reads with a snapshot of its own: it sees what the thread's
   * previous run committed before the claim saw that run end.
   */
  const joinCheckpoint = (thread: string, claimed: string) =>
    cp ? `LEFT JOIN LATERAL (SELECT * FROM ${cp.latestFunction}(${thread}::text) WHERE ${claimed}) ck ON true` : "";
  const withCheckpoint = (thread: string, claimed: string) => sql.unsafe(joinCheckpoint(thread, claimed));
  return {
    /**
     * Inserts a run in one round trip (migrations 0005/0007): the thread row is locked, so
     * the in-flight check (multitask `reject`) and the insert are atomic. And:
     * - with `assistant_token` (the assistant's `token` when it was read): "stale", writing
     *   nothing, when the assistant changed since;
     * - with `claim`: a run that can start now (nothing in flight on its thread, no delay)
     *   is inserted already claimed for that worker, returned as `claimed`.
     */
    async create(input: CreateRunInput & CreateRunExtras): Promise<CreatedRun> {
      const claim = input.claim ?? null;
      const [row] = await sql<Array<ClaimedRun & CheckpointColumns & { outcome: "created" | "missing" | "conflict" | "stale"; inflight: string[] }>>`
        SELECT * FROM openplane_create_run_v2(
          ${input.run_id}::uuid, ${input.thread_id}::uuid, ${input.assistant_id}::uuid, ${input.graph_id}::text,
          ${sql.json(input.metadata as never)}::jsonb, ${sql.json(input.kwargs as never)}::jsonb,
          ${input.multitask_strategy}::text, ${input.after_seconds}::float8, ${input.if_not_exists === "create"}::boolean,
          ${input.assistant_token ?? null}::text, ${claim?.owner ?? null}::text, ${claim?.leaseSecs ?? null}::float8) f
        ${claim ? withCheckpoint("f.thread_id", "f.status = 'running'") : sql``}`;
      const { outcome, inflight, ...claimed } = takeCheckpoint(row!);
      if (outcome === "stale") return { outcome };
      if (outcome === "missing") throw notFound(`Thread with ID ${input.thread_id} not found`);
      if (outcome === "conflict") {
        throw conflict(
          "Thread is already running a task. Wait for it to finish or choose a different multitask strategy.",
        );
      }
      const { attempt: _a, lease_owner: _o, lease_expires_at: _e, cancel_action: _c, checkpoint: _k, ...run } = claimed;
      return { outcome, run, inflight, claimed: claimed.status === "running" ? claimed : null };
    },

    async get(threadId: string | null, runId: string): Promise<Run | null> {
      const [row] = await sql<Run[]>`
        SELECT ${sql(COLUMNS)} FROM run
        WHERE run_id = ${runId} ${threadId ? sql`AND thread_id = ${threadId}` : sql``}`;
      return row ?? null;
    },

    /** A thread's runs, newest first. */
    async list(threadId: string, limit: number, offset: number): Promise<Run[]> {
      const rows = await sql<Run[]>`
        SELECT ${sql(COLUMNS)} FROM run WHERE thread_id = ${threadId}
        ORDER BY created_at DESC, run_id DESC LIMIT ${limit} OFFSET ${offset}`;
      return [...rows];
    },

    /** Runs of a thread that are executing right now (to signal them before a delete). */
    async running(threadId: string): Promise<string[]> {
      const rows = await sql<{ run_id: string }[]>`
        SELECT run_id FROM run WHERE thread_id = ${threadId} AND status = 'running'`;
      return rows.map((r) => r.run_id);
    },

    /**
     * Takes the run for execution if it is eligible: pending and due (or
     * running with an expired lease: its worker died), no other run executing
     * on the thread, and no older pending run on the thread (FIFO).
     * The partial unique index settles races between two claimers.
     */
    async claim(runId: string, owner: string, leaseSecs: number): Promise<ClaimedRun | null> {
      try {
        const [row] = await sql<ClaimedRun[]>`
          UPDATE run r SET ${takeFor(sql, owner, leaseSecs)}
          WHERE r.run_id = ${runId}
            AND (
              (r.status = 'pending' AND r.created_at <= now())
              OR (r.status = 'running' AND r.lease_expires_at < now())
            )
            AND NOT EXISTS (
              SELECT 1 FROM run o WHERE o.thread_id = r.thread_id AND o.status = 'running' AND o.run_id <> r.run_id)
            AND NOT EXISTS (
              SELECT 1 FROM run o WHERE o.thread_id = r.thread_id AND o.status = 'pending'
                AND (o.created_at, o.run_id) < (r.created_at, r.run_id))
          RETURNING ${sql(COLUMNS)}, ${sql(LEASE_COLUMNS)}`;
        return row ?? null;
      } catch (err) {
        if ((err as { code?: string }).code === "23505") return null; // another run on the thread won
        throw err;
      }
    },

    /** Extends the lease; false means the lease was lost (run reclaimed or deleted). */
    async heartbeat(runId: string, owner: string, leaseSecs: number): Promise<boolean> {
      const rows = await sql`
        UPDATE run SET lease_expires_at = now() + make_interval(secs => ${leaseSecs})
        WHERE run_id = ${runId} AND lease_owner = ${owner} AND status = 'running'
        RETURNING run_id`;
      return rows.length > 0;
    },

    /**
     * Records the outcome, refreshes the thread's cached state and status, and
     * returns the thread's next pending run so the caller can dispatch it.
     * `finished` is false if this worker no longer holds the run.
     * With `claim`, the same round trip then claims the next eligible run of any
     * thread for that worker (as claimNext; migration 0008), returned as `claimed`.
     */
    async finish(f: FinishInput & { claim?: { owner: string; leaseSecs: number } | null }): Promise<{
      finished: boolean;
      next: Dispatch | null;
      claimed: ClaimedRun | null;
    }> {
      // One round trip and one transaction, the run's last checkpoint writes included; the
      // thread is locked first (migration 0006 says why).
      if (f.writes?.length && !cp) throw new Error("runs.finish: checkpoint writes given, but no checkpoint statements");
      // The writes land only if the finish did (a row: this worker still held the run, checked
      // under the run row's lock); past its lease another worker may own the run.
      const writes = f.writes?.length ? cp!.writeWith(f.writes, "EXISTS (SELECT 1 FROM f)") : null;
      const n = writes?.values.length ?? 0;
      const p = (i: number) => `$${n + i}`;
      // postgres.js learns each parameter's type from PostgreSQL and encodes jsonb itself.
      const json = (v: unknown) => (v === null ? null : withoutNul(v));
      const [row] = await sql.unsafe<Array<FinishRow & CheckpointColumns>>(
        `WITH f AS (
          SELECT * FROM openplane_finish_run_v2(
            ${p(1)}::uuid, ${p(2)}::text, ${p(3)}::text, ${p(4)}::boolean, ${p(5)}::jsonb, ${p(6)}::jsonb,
            ${p(7)}::jsonb, ${p(8)}::boolean, ${p(9)}::text, ${p(10)}::float8))${writes ? `,\n${writes.ctes}` : ""}
        SELECT * FROM f ${f.claim ? joinCheckpoint("f.claimed_thread_id", "f.run_id IS NOT NULL") : ""}`,
        [
          ...((writes?.values ?? []) as never[]),
          f.run_id, f.owner, f.status, f.values !== null, json(f.values), json(f.interrupts),
          json(f.error), f.hasPendingNext, f.claim?.owner ?? null, f.claim?.leaseSecs ?? null,
        ] as never[],
        { prepare: true },
      );
      if (!row) return { finished: false, next: null, claimed: null };
      const { thread_id, next_run_id, next_attempt, next_delay_ms, claimed_thread_id, ...claimed } = takeCheckpoint(row);
      // Claimed on a thread these writes touch: its checkpoint was read beside them, not after
      // them (a statement's CTEs are not visible to it); the run reads it itself.
      if (f.writes?.some((w) => w.thread_id === claimed_thread_id)) delete claimed.checkpoint;
      const next = next_run_id ? { run_id: next_run_id, thread_id, attempt: next_attempt!, delay_ms: next_delay_ms! } : null;
      return { finished: true, next, claimed: claimed.run_id ? ({ ...claimed, thread_id: claimed_thread_id } as ClaimedRun) : null };
    },

    /**
     * Claims the oldest eligible pending run of any thread (see `claim` for
     * eligibility). Claimers skip each other's candidates (SKIP LOCKED); a
     * race on one thread is settled by the unique index and retried.
     * openplane_finish_run_v2 (migration 0008) runs the same statement: keep them alike.
     */
    async claimNext(owner: string, leaseSecs: number): Promise<ClaimedRun | null> {
      for (let tries = 0; ; tries++) {
        try {
          const [row] = await sql<Array<ClaimedRun & CheckpointColumns>>`
            WITH c AS (
            UPDATE run r SET ${takeFor(sql, owner, leaseSecs)}
            WHERE r.run_id = (
              SELECT c.run_id FROM run c
              WHERE c.status = 'pending' AND c.created_at <= now()
                AND NOT EXISTS (SELECT 1 FROM run o WHERE o.thread_id = c.thread_id AND o.status = 'running')
                AND NOT EXISTS (
                  SELECT 1 FROM run o WHERE o.thread_id = c.thread_id AND o.status = 'pending'
                    AND (o.created_at, o.run_id) < (c.created_at, c.run_id))
              ORDER BY c.created_at, c.run_id
              LIMIT 1
              FOR UPDATE SKIP LOCKED)
            AND r.status = 'pending'
            RETURNING ${sql(COLUMNS)}, ${sql(LEASE_COLUMNS)})
            SELECT * FROM c ${withCheckpoint("c.thread_id", "true")}`;
          return row ? takeCheckpoint(row) : null;
        } catch (err) {
          // Another claimer took a run of the same thread first: look again.
          if ((err as { code?: string }).code === "23505" && tries < 3) continue;
          if ((err as { code?: string }).code === "23505") return null;
          throw err;
        }
      }
    },

    /**
     * Runs whose worker stopped renewing its lease: back to pending for another
     * attempt, or `error` once attempts are exhausted. Returns the ones to re-dispatch.
     */
    async reclaimExpired(maxAttempts: number): Promise<{ requeued: Dispatch[]; failed: string[] }> {
      const rows = await sql<{ run_id: string; thread_id: string; status: RunStatus; attempt: number }[]>`
        UPDATE run SET
          status = CASE WHEN attempt >= ${maxAttempts} THEN 'error' ELSE 'pending' END,
          lease_owner = NULL, lease_expires_at = NULL, updated_at = now(),
          ended_at = CASE WHEN attempt >= ${maxAttempts} THEN now() ELSE NULL END
        WHERE run_id IN (
          SELECT run_id FROM run WHERE status = 'running' AND lease_expires_at < now()
          FOR UPDATE SKIP LOCKED)
        RETURNING run_id, thread_id, status, attempt`;
      const failed = rows.filter((r) => r.status === "error");
      for (const r of failed) {
        await sql`
          UPDATE thread SET status = CASE WHEN EXISTS (
              SELECT 1 FROM run WHERE thread_id = ${r.thread_id} AND status IN ('pending','running')) THEN 'busy' ELSE 'error' END,
            error = ${sql.json({ error: "RunAttemptsExceeded", message: `Run ${r.run_id} exceeded max attempts` })},
            updated_at = now()
          WHERE thread_id = ${r.thread_id}`;
      }
      return {
        requeued: rows.filter((r) => r.status === "pending").map((r) => ({ run_id: r.run_id, thread_id: r.thread_id, delay_ms: 0, attempt: r.attempt })),
        failed: failed.map((r) => r.run_id),
      };
    },

    /**
     * Cancels runs. Pending ones end now (`interrupted`, or deleted for
     * rollback); running ones get a durable cancel flag the worker reads,
     * besides the live signal the caller sends. Terminal runs are left alone.
     */
    async cancel(runIds: string[], action: CancelAction): Promise<CancelResult> {
      if (runIds.length === 0) return { pending: [], running: [], next: [] };
      return sql.begin(async (tx) => {
        const pending =
          action === "rollback"
            ? await tx<{ run_id: string; thread_id: string }[]>`
                DELETE FROM run WHERE run_id = ANY(${runIds}::uuid[]) AND status = 'pending'
                RETURNING run_id, thread_id`
            : await tx<{ run_id: string; thread_id: string }[]>`
                UPDATE run SET status = 'interrupted', ended_at = now(), updated_at = now()
                WHERE run_id = ANY(${runIds}::uuid[]) AND status = 'pending'
                RETURNING run_id, thread_id`;
        const running = await tx<{ run_id: string; thread_id: string }[]>`
          UPDATE run SET cancel_action = ${action}, updated_at = now()
          WHERE run_id = ANY(${runIds}::uuid[]) AND status = 'running'
          RETURNING run_id, thread_id`;
        const next: Dispatch[] = [];
        for (const threadId of new Set(pending.map((r) => r.thread_id))) {
          const n = await settleThread(tx as unknown as Sql, threadId);
          if (n) next.push(n);
        }
        return { pending: [...pending], running: [...running], next };
      });
    },

    /** The cancel requested for a running run, if any (a cancel may race the worker's subscription). */
    async cancelRequested(runId: string): Promise<CancelAction | null> {
      const [row] = await sql<{ cancel_action: CancelAction | null }[]>`
        SELECT cancel_action FROM run WHERE run_id = ${runId}`;
      return row?.cancel_action ?? null;
    },

    /** Active runs matching a bulk-cancel filter. */
    async activeIds(filter: { status: "pending" | "running" | "all" } | { thread_id: string; run_ids: string[] }): Promise<string[]> {
      const rows =
        "status" in filter
          ? await sql<{ run_id: string }[]>`
              SELECT run_id FROM run WHERE ${
                filter.status === "all" ? sql`status IN ('pending', 'running')` : sql`status = ${filter.status}`
              }`
          : await sql<{ run_id: string }[]>`
              SELECT run_id FROM run WHERE thread_id = ${filter.thread_id} AND run_id = ANY(${filter.run_ids}::uuid[])`;
      return rows.map((r) => r.run_id);
    },

    /**
     * Removes a rolled-back run this worker holds. The caller deletes its
     * checkpoints first; the thread's cached values are refreshed by `values`.
     */
    async deleteRolledBack(runId: string, owner: string, values: Record<string, unknown> | null): Promise<Dispatch | null> {
      return sql.begin(async (tx) => {
        const [run] = await tx<{ thread_id: string }[]>`
          DELETE FROM run WHERE run_id = ${runId} AND lease_owner = ${owner} RETURNING thread_id`;
        if (!run) return null;
        await tx`UPDATE thread SET "values" = ${values === null ? null : tx.json(withoutNul(values) as never)}, state_updated_at = now()
          WHERE thread_id = ${run.thread_id}`;
        return settleThread(tx as unknown as Sql, run.thread_id);
      });
    },

    /** Deletes a finished run. Active runs must be cancelled first. */
    async delete(threadId: string, runId: string): Promise<"deleted" | "missing" | "active"> {
      const [row] = await sql<{ status: RunStatus }[]>`
        SELECT status FROM run WHERE run_id = ${runId} AND thread_id = ${threadId}`;
      if (!row) return "missing";
      if (row.status === "pending" || row.status === "running") return "active";
      await sql`DELETE FROM run WHERE run_id = ${runId} AND thread_id = ${threadId}`;
      return "deleted";
    },

    /** Returns a run this worker holds to the queue (graceful shutdown). */
    async release(runId: string, owner: string): Promise<Dispatch | null> {
      const [row] = await sql<Dispatch[]>`
        UPDATE run SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
        WHERE run_id = ${runId} AND lease_owner = ${owner} AND status = 'running'
        RETURNING run_id, thread_id, 0 AS delay_ms, attempt`;
      return row ?? null;
    },

    /** Marks a run that exceeded its attempt budget at claim time; returns the thread's next run. */
    async failExhausted(runId: string, owner: string): Promise<Dispatch | null> {
      const { next } = await this.finish({
        run_id: runId,
        owner,
        status: "error",
        values: null,
        interrupts: {},
        hasPendingNext: false,
        error: { error: "RunAttemptsExceeded", message: `Run ${runId} exceeded max attempts` },
      });
      return next;
    },
  };
}

/** The SET clause of a claim: the run is running, leased to `owner`, one attempt more. */
function takeFor(sql: Sql, owner: string, leaseSecs: number) {
  return sql`
    status = 'running',
    attempt = r.attempt + 1,
    lease_owner = ${owner},
    lease_expires_at = now() + make_interval(secs => ${leaseSecs}),
    started_at = coalesce(r.started_at, now()),
    updated_at = now()`;
}

/**
 * After runs left a thread without a worker finishing them (cancelled while
 * pending, rolled back): busy if runs remain (returning the next to
 * dispatch), otherwise idle.
 */
async function settleThread(sql: Sql, threadId: string): Promise<Dispatch | null> {
  const next = await nextPendingFor(sql, threadId);
  const [running] = await sql`SELECT 1 FROM run WHERE thread_id = ${threadId} AND status = 'running'`;
  await sql`
    UPDATE thread SET status = ${next || running ? "busy" : "idle"}, updated_at = now()
    WHERE thread_id = ${threadId} AND status = 'busy'`;
  return running ? null : next;
}

async function nextPendingFor(sql: Sql, threadId: string): Promise<Dispatch | null> {
  const [row] = await sql<Dispatch[]>`
    SELECT run_id, thread_id, attempt, greatest(0, extract(epoch FROM created_at - now()) * 1000)::int AS delay_ms
    FROM run WHERE thread_id = ${threadId} AND status = 'pending'
    ORDER BY created_at, run_id LIMIT 1`;
  return row ?? null;
}

export type RunsRepo = ReturnType<typeof createRunsRepo>;
