import type { CancelAction } from "../domain/run.js";
import type { CancelResult } from "../storage/runs.js";
import type { AppDeps } from "./deps.js";

/**
 * Cancels runs wherever they are: pending ones end in Postgres now (their
 * streams end too); running ones get the durable flag plus a live signal to
 * whichever worker holds them.
 */
export async function cancelRuns(deps: Pick<AppDeps, "runs" | "bus" | "queue" | "logger">, runIds: string[], action: CancelAction): Promise<CancelResult> {
  const result = await deps.runs.cancel(runIds, action);
  await Promise.all([
    ...result.running.map((r) => deps.bus.sendControl(r.run_id, action)),
    ...result.pending.map((r) => deps.bus.finish(r.run_id)),
  ]);
  if (result.next.length > 0) {
    await deps.queue.dispatch(result.next).catch((err) => deps.logger.warn({ err }, "dispatch failed; the sweeper will retry"));
  }
  if (result.pending.length || result.running.length) {
    deps.logger.info({ action, pending: result.pending.length, running: result.running.length }, "runs cancelled");
  }
  return result;
}
