import { hostname } from "node:os";
import { isTerminal } from "../domain/run.js";
import type { GraphRegistry } from "../graphs/registry.js";
import type { Logger } from "../lib/logger.js";
import { uuidv7 } from "../lib/uuid.js";
import type { HandlerSlot, RunQueue, RunQueueConsumer } from "../queue/run-queue.js";
import type { CheckpointRow } from "../storage/checkpoint-sql.js";
import type { CheckpointsRepo } from "../storage/checkpoints.js";
import type { ClaimedRun, RunsRepo } from "../storage/runs.js";
import type { ThreadsRepo } from "../storage/threads.js";
import type { RunStreamBus } from "../stream/bus.js";
import { toJson } from "../stream/serialize.js";
import { publishThreadEvent } from "../stream/thread-stream.js";
import type { AbortReason, ExecuteDeps } from "./execute-run.js";
import { describe, executeRun, readThreadValues } from "./execute-run.js";
import type { Tracing } from "./tracing.js";
import { deliverWebhook } from "./webhook.js";

export interface WorkerDeps {
  runs: RunsRepo;
  threads: ThreadsRepo;
  checkpoints: CheckpointsRepo;
  queue: RunQueue;
  bus: RunStreamBus;
  graphs: GraphRegistry;
  /** Deletes a thread's checkpoints (temporary runs clean up after themselves). */
  deleteCheckpoints: (threadId: string) => Promise<void>;
  logger: Logger;
  concurrency: number;
  leaseSecs: number;
  maxAttempts: number;
  runTimeoutSecs: number;
  sweepIntervalSecs: number;
  /** LangSmith tracing, or null when off. */
  tracing: Tracing | null;
  /** Base URL for relative webhooks; null when unknown. */
  selfUrl: () => string | null;
  /** Pipelines a run's checkpoint writes until settled (RunAwarePostgresSaver.writeBehind). */
  writeBehind: ExecuteDeps["writeBehind"];
  /** runs.finish can commit a run's last checkpoint writes with its outcome (RunsRepoOptions.checkpoints). */
  writesWithOutcome: boolean;
  /** Hands the checkpointer the checkpoint a claim read for the run (RunAwarePostgresSaver.prime). */
  primeCheckpoint: (runId: string, threadId: string, row: CheckpointRow | null) => () => void;
  /** Has the run's checkpoint writes check the lease just before they are sent (RunAwarePostgresSaver.guard). */
  guardWrites: (runId: string, attempt: number, check: () => void) => () => void;
}

/** How soon a run re-reads its durable cancel flag (a cancel may race its claim). */
const FIRST_CANCEL_CHECK_MS = 1_000;
/** How often an idle worker looks for runs whose doorbell it missed. */
const POLL_MS = 2_000;

/** created → active → stopping → stopped */
export type WorkerState = "created" | "active" | "stopping" | "stopped";

/**
 * Consumes the run queue: claims runs in Postgres, executes each with a
 * renewed lease, records the outcome and rings for the thread's next run.
 * Also sweeps: runs whose worker died go back to pending.
 */
export function createWorker(deps: WorkerDeps) {
  const owner = `${hostname()}:${process.pid}:${uuidv7().slice(-12)}`;
  const log = deps.logger.child({ component: "worker" });
  const active = new Map<string, AbortController>();
  let state: WorkerState = "created";
  let consumer: RunQueueConsumer | null = null;
  let sweepTimer: NodeJS.Timeout | null = null;
  let sweeping: Promise<void> | null = null;
  /** Handlers in progress. */
  const handling = new Set<Promise<void>>();
  const tracked = (claimed: Claimed, slot: HandlerSlot<Claimed>): Promise<void> => {
    const p = handle(claimed, slot).finally(() => handling.delete(p));
    handling.add(p);
    return p;
  };
  type Claimed = { run: ClaimedRun; claimStarted: number };
  const claim = async (): Promise<Claimed | null> => {
    if (state !== "active") return null;
    const claimStarted = performance.now();
    const run = await deps.runs.claimNext(owner, deps.leaseSecs);
    return run ? { run, claimStarted } : null;
  };

  /**
   * Executes a claimed run and records its end. When runs wait for this slot, the end also
   * claims the next one, which starts in this slot at once (slot.handOver).
   */
  async function handle({ run, claimStarted }: Claimed, slot: HandlerSlot<Claimed>): Promise<void> {
    if (state !== "active") {
      // Claimed as we began to stop: give it straight back.
      const back = await deps.runs.release(run.run_id, owner).catch(() => null);
      if (back) await deps.queue.dispatch([back]).catch(() => {});
      return;
    }
    const rlog = log.child({ run_id: run.run_id, thread_id: run.thread_id, attempt: run.attempt });
    const { attempt: _a, lease_owner: _o, lease_expires_at: _e, cancel_action: _c, checkpoint, ...publicRun } = run;
    // The thread's stream (GET /threads/{id}/stream): run start/end and state changes only.
    // Sent without holding up the run: the bus issues appends in call order on one
    // connection, so they stay in order.
    const threadSends: Promise<void>[] = [];
    const threadEvent = (event: "lifecycle" | "state_update", data: unknown): Promise<void> => {
      const p = publishThreadEvent(deps.bus, run.thread_id, event, data).then(
        () => {},
        (err) => rlog.warn({ err }, "thread stream publish failed"),
      );
      threadSends.push(p);
      return p;
    };
    if (run.attempt > deps.maxAttempts) {
      rlog.warn("run exceeded max attempts");
      const next = await deps.runs.failExhausted(run.run_id, owner);
      if (next) await deps.queue.dispatch([next]).catch((err) => rlog.warn({ err }, "ring failed"));
      await deps.bus.finish(run.run_id);
      await threadEvent("lifecycle", { run_id: run.run_id, status: "error" });
      return;
    }
    rlog.debug("run started");
    void threadEvent("lifecycle", { run_id: run.run_id, status: "running" });
    const controller = new AbortController();
    active.set(run.run_id, controller);
    const abort = (reason: AbortReason) => {
      if (!controller.signal.aborted) controller.abort(reason);
    };
    // The lease as this process knows it, counted from before the claim or the last renewal
    // that held, so it never outlasts the database's. Past it another worker may already run
    // the run: stop at once, even when no renewal answered (Postgres unreachable) or the
    // process only just woke from a pause longer than the lease (SIGSTOP, a frozen VM).
    let leaseUntil = claimStarted + deps.leaseSecs * 1000;
    let leaseTimer: NodeJS.Timeout | undefined;
    let settled = false;
    const armLease = () => {
      clearTimeout(leaseTimer);
      if (settled) return; // a renewal that answered after the run ended
      leaseTimer = setTimeout(() => abort("lease_lost"), Math.max(0, leaseUntil - performance.now()));
    };
    armLease();
    // The timer above may fire late: after a pause of the process, a write queued before it
    // (the pipeline's linger has a timer of its own, due earlier) would be sent first.
    const unguard = deps.guardWrites(run.run_id, run.attempt, () => {
      if (performance.now() < leaseUntil) return;
      abort("lease_lost");
      throw new Error(`run ${run.run_id}: lease lost, checkpoint write not sent`);
    });
    // The live cancel signal is pub/sub: one published before we listened, or while our
    // subscriber was reconnecting (Redis restarted), is lost. The durable flag is not: it is
    // read soon after the start (a cancel racing the claim) and with every renewal.
    const checkCancel = () =>
      deps.runs.cancelRequested(run.run_id).then(
        (requested) => void (requested && abort(requested)),
        (err) => rlog.warn({ err }, "cancel check failed"),
      );
    const heartbeat = setInterval(() => {
      const sentAt = performance.now();
      deps.runs.heartbeat(run.run_id, owner, deps.leaseSecs).then(
        async (held) => {
          if (!held) return abort("lease_lost");
          leaseUntil = Math.max(leaseUntil, sentAt + deps.leaseSecs * 1000);
          armLease();
          await checkCancel();
        },
        (err) => rlog.warn({ err }, "lease renewal failed"),
      );
    }, (deps.leaseSecs * 1000) / 3);
    const timeout = setTimeout(() => abort("timeout"), deps.runTimeoutSecs * 1000);
    const firstCancelCheck = setTimeout(() => void checkCancel(), FIRST_CANCEL_CHECK_MS);
    // Listening for cancels goes on while the run starts (its first event is not held up);
    // a cancel published before the subscription took is caught by the flag checks.
    const listening = deps.bus.onControl(run.run_id, (action) => abort(action));
    listening.catch((err) => rlog.warn({ err }, "cancel subscription failed"));
    if (run.cancel_action) abort(run.cancel_action);
    const unprime = checkpoint === undefined ? null : deps.primeCheckpoint(run.run_id, run.thread_id, checkpoint);
    const started = Date.now();
    try {
      let outcome = await executeRun(deps, run, controller.signal);
      if (controller.signal.reason === "rollback") {
        await rollback(run.run_id, run.thread_id, String(run.kwargs.config.configurable?.graph_id ?? ""));
        rlog.info({ ms: Date.now() - started }, "run rolled back");
        await threadEvent("lifecycle", { run_id: run.run_id, status: "interrupted" });
        return;
      }
      const claimAlso = state === "active" && slot.wantsMore();
      const finishStarted = performance.now();
      const claim = claimAlso ? { owner, leaseSecs: deps.leaseSecs } : null;
      const { finished, next, claimed } = await deps.runs.finish({ run_id: run.run_id, owner, ...outcome, claim }).catch(async (err: unknown) => {
        if (outcome.writes.length === 0) throw err;
        // Its last checkpoint writes failed with it: the run fails, as when a write fails
        // while it executes (a finish that fails again hands the run back, as any other).
        rlog.warn({ err }, "run's last checkpoint writes failed");
        const error = describe(err);
        outcome = { status: "error", values: null, interrupts: {}, hasPendingNext: false, error, writes: [] };
        const recorded = await deps.runs.finish({ run_id: run.run_id, owner, ...outcome, claim });
        // Said once recorded: a run handed back instead may yet succeed. Before the stream's end, below.
        if (recorded.finished) await deps.bus.publish(run.run_id, "error", toJson(error)).catch(() => {});
        return recorded;
      });
      // It starts now, leased and heartbeating in its own handler, while this one ends the stream.
      if (claimed) slot.handOver({ run: claimed, claimStarted: finishStarted });
      rlog.info({ status: outcome.status, ms: Date.now() - started, recorded: finished }, "run finished");
      if (finished) {
        // Before the end of the run's stream: a client that saw the run end and follows the
        // thread finds them there.
        void threadEvent("lifecycle", { run_id: run.run_id, status: outcome.status });
        if (outcome.values) void threadEvent("state_update", { values: outcome.values, run_id: run.run_id });
      }
      // Not recorded: if our lease lapsed and the run is pending again or held by another
      // worker, that attempt will end the stream; ending it here would cut its readers off.
      const fresh = finished ? null : await deps.runs.get(null, run.run_id);
      if (!fresh || isTerminal(fresh.status)) await deps.bus.finish(run.run_id);
      // A lost ring only delays the next run until a worker polls: never skip what follows.
      if (next) await deps.queue.dispatch([next]).catch((err) => rlog.warn({ err }, "ring failed"));
      if (finished && !outcome.values) {
        // A failed run leaves the thread's values as they were: say what they are.
        const values = (await deps.threads.get(run.thread_id).catch(() => null))?.values ?? null;
        if (values) void threadEvent("state_update", { values, run_id: run.run_id });
      }
      if (run.kwargs.webhook && finished) {
        const payload = {
          ...publicRun,
          status: outcome.status,
          run_started_at: new Date(started).toISOString(),
          run_ended_at: new Date().toISOString(),
          webhook_sent_at: new Date().toISOString(),
          values: outcome.values,
          ...(outcome.error ? { error: outcome.error.message } : {}),
        };
        void deliverWebhook(run.kwargs.webhook, payload, { attempts: 3, timeoutMs: 10_000, selfUrl: deps.selfUrl(), logger: rlog });
      }
      if (run.kwargs.temporary && finished) {
        await deps.threads.delete(run.thread_id);
        await deps.deleteCheckpoints(run.thread_id);
      }
    } catch (err) {
      // Aborted for shutdown or lease loss. On shutdown, give the run back now
      // rather than waiting for the lease to lapse; another worker resumes it
      // from its last checkpoint.
      const reason = controller.signal.reason as AbortReason | undefined;
      if (reason === "shutdown") {
        // Said before the release, so it cannot follow the next attempt's "running".
        await threadEvent("lifecycle", { run_id: run.run_id, status: "pending" });
        const back = await deps.runs.release(run.run_id, owner).catch(() => null);
        if (back) await deps.queue.dispatch([back]).catch(() => {});
      }
      rlog.warn({ err: reason ? undefined : err, reason }, "run handed back");
    } finally {
      settled = true;
      unguard();
      unprime?.();
      clearInterval(heartbeat);
      clearTimeout(leaseTimer);
      clearTimeout(timeout);
      clearTimeout(firstCancelCheck);
      active.delete(run.run_id);
      await listening.then((unlisten) => unlisten()).catch(() => {});
      await Promise.all(threadSends);
    }
  }

  /** Rollback: the run and every checkpoint it wrote disappear; the thread shows the state before it. */
  async function rollback(runId: string, threadId: string, graphId: string): Promise<void> {
    await deps.checkpoints.deleteForRun(threadId, runId);
    const values = await readThreadValues(deps.graphs, graphId, threadId).catch(() => null);
    const next = await deps.runs.deleteRolledBack(runId, owner, values);
    await deps.bus.finish(runId);
    if (next) await deps.queue.dispatch([next]).catch((err) => log.warn({ err, run_id: runId }, "ring failed"));
  }

  async function sweep(): Promise<void> {
    const { requeued, failed } = await deps.runs.reclaimExpired(deps.maxAttempts);
    for (const id of failed) await deps.bus.finish(id).catch(() => {});
    if (requeued.length > 0) await deps.queue.dispatch(requeued);
    if (requeued.length || failed.length) log.info({ requeued: requeued.length, failed: failed.length }, "swept expired leases");
  }

  const runSweep = () => {
    sweeping ??= sweep()
      .catch((err) => log.warn({ err }, "sweep failed"))
      .finally(() => (sweeping = null));
    return sweeping;
  };

  return {
    get state() {
      return state;
    },
    get owner() {
      return owner;
    },
    async start(): Promise<void> {
      if (state !== "created") return;
      state = "active";
      consumer = await deps.queue.consume({
        concurrency: deps.concurrency,
        claim,
        handler: tracked,
        pollMs: POLL_MS,
        // Run creation in this process may insert a run already claimed for us (one round trip fewer).
        local: { owner, leaseSecs: deps.leaseSecs, item: (run, claimStarted) => ({ run, claimStarted }) },
      });
      await runSweep();
      sweepTimer = setInterval(runSweep, deps.sweepIntervalSecs * 1000);
      sweepTimer.unref();
    },
    /**
     * Stops taking runs, lets active runs finish for `graceMs`, then aborts
     * the rest; their leases lapse and another worker resumes them from their
     * last checkpoint.
     */
    async close(graceMs: number): Promise<void> {
      if (state === "stopped" || state === "stopping") return;
      state = "stopping";
      if (sweepTimer) clearInterval(sweepTimer);
      // No new run is claimed once stopping; drained = the claim in flight (if any) and every
      // handler, a run claimed meanwhile included (it is handed back), have settled.
      const drained = consumer?.close(false) ?? Promise.resolve();
      const timer = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), graceMs).unref());
      if ((await Promise.race([drained.then(() => "drained" as const), timer])) === "timeout") {
        log.warn({ active: active.size }, "grace period over: handing back active runs");
        for (const c of active.values()) c.abort("shutdown");
        // Let the aborted handlers record the hand-back before the stores close (bounded), runs
        // handed over meanwhile included.
        const settled = (async () => {
          while (handling.size > 0) await Promise.allSettled([...handling]);
        })();
        await Promise.race([settled, new Promise((r) => setTimeout(r, 5_000).unref())]);
        await consumer?.close(true);
      }
      await sweeping;
      await deps.tracing?.flush();
      state = "stopped";
    },
  };
}

export type RunWorker = ReturnType<typeof createWorker>;
