import type { Logger } from "../lib/logger.js";
import type { CronQueue } from "../queue/cron-queue.js";
import type { Cron, CronCreate, CronPatch, CronsRepo } from "../storage/crons.js";
import { nextRunDate } from "./schedule.js";

/**
 * Cron writes: the row in Postgres first (the source of truth), then its job
 * scheduler. A scheduler call that fails is logged, not reported: the
 * scheduler's periodic reconcile rebuilds the schedulers from Postgres.
 */
export function createCronService(deps: { repo: CronsRepo; queue: CronQueue | null; logger: Logger }) {
  const log = deps.logger.child({ component: "crons" });

  /** Makes the scheduler match the row: present while enabled and unexpired, absent otherwise. */
  async function sync(cron: Pick<Cron, "cron_id" | "schedule" | "timezone" | "end_time" | "enabled">): Promise<void> {
    if (!deps.queue) return;
    try {
      const live = cron.enabled && (cron.end_time === null || Date.parse(cron.end_time) > Date.now());
      if (live) {
        await deps.queue.upsert(cron.cron_id, {
          pattern: cron.schedule,
          tz: cron.timezone ?? undefined,
          endDate: cron.end_time ? new Date(cron.end_time) : undefined,
        });
      } else {
        await deps.queue.remove(cron.cron_id);
      }
    } catch (err) {
      log.warn({ err, cron_id: cron.cron_id }, "cron scheduler update failed; the reconcile will retry");
    }
  }

  return {
    repo: deps.repo,

    async create(input: Omit<CronCreate, "next_run_date">): Promise<Cron> {
      const cron = await deps.repo.create({ ...input, next_run_date: input.enabled ? nextRunDate(input) : null });
      await sync(cron);
      log.info({ cron_id: cron.cron_id, schedule: cron.schedule, thread_id: cron.thread_id }, "cron created");
      return cron;
    },

    /** Applies a patch to `current` (already read and authorized); null when it vanished meanwhile. */
    async patch(current: Cron, p: Omit<CronPatch, "next_run_date">): Promise<Cron | null> {
      const merged = {
        schedule: p.schedule ?? current.schedule,
        timezone: p.timezone !== undefined ? p.timezone : current.timezone,
        end_time: p.end_time !== undefined ? p.end_time : current.end_time,
      };
      const enabled = p.enabled ?? current.enabled;
      const updated = await deps.repo.patch(current.cron_id, { ...p, next_run_date: enabled ? nextRunDate(merged) : null });
      if (updated) await sync(updated);
      return updated;
    },

    async delete(cronId: string): Promise<boolean> {
      const deleted = await deps.repo.delete(cronId);
      if (deleted) await sync({ cron_id: cronId, schedule: "", timezone: null, end_time: null, enabled: false });
      return deleted;
    },
  };
}

export type CronService = ReturnType<typeof createCronService>;
