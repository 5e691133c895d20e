import type { RunCreateStateless } from "../http/schemas.js";
import type { CronWithOwner } from "../storage/crons.js";

/**
 * The run-create body of one fire: the cron's payload, with the cron's id in
 * the run metadata. A stateless cron's thread is kept or deleted after the run
 * as `on_run_completed` says; a thread cron queues behind the thread's runs
 * unless its payload chose another multitask strategy.
 */
export function cronRunBody(cron: CronWithOwner): RunCreateStateless {
  const payload = cron.payload as Partial<RunCreateStateless>;
  return {
    ...payload,
    assistant_id: typeof payload.assistant_id === "string" ? payload.assistant_id : cron.assistant_id,
    metadata: { ...(payload.metadata ?? cron.metadata), cron_id: cron.cron_id },
    multitask_strategy: payload.multitask_strategy ?? "enqueue",
    ...(cron.thread_id ? { if_not_exists: "reject" as const } : { on_completion: cron.on_run_completed ?? "delete" }),
  };
}
