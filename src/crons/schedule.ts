import { getNextMillis } from "bullmq";

/**
 * Cron expressions are read by the same parser the BullMQ job schedulers use
 * (cron-parser, through BullMQ), so what the API accepts is exactly what fires:
 * five fields (minute first), or six with seconds first ("*\/10 * * * * *").
 */

/** The problem with `pattern`, or null when it is a cron expression that fires at least once. */
export function scheduleProblem(pattern: string): string | null {
  const fields = pattern.trim().split(/\s+/);
  if (fields.length < 5 || fields.length > 6) return "must be a cron expression with 5 fields (or 6, seconds first)";
  try {
    const next = getNextMillis(Date.now(), { pattern });
    return next === undefined ? "never fires" : null;
  } catch (err) {
    return `is not a valid cron expression (${(err as Error).message})`;
  }
}

/** True for an IANA time zone name this runtime knows ("UTC", "Europe/Paris"). */
export function isTimezone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/**
 * The next fire strictly after `from` (ISO string), or null when the cron
 * never fires again (past its end time).
 */
export function nextRunDate(c: { schedule: string; timezone: string | null; end_time: string | null }, from = Date.now()): string | null {
  let next: number | undefined;
  try {
    next = getNextMillis(from, { pattern: c.schedule, tz: c.timezone ?? undefined });
  } catch {
    return null;
  }
  if (next === undefined) return null;
  if (c.end_time && next > Date.parse(c.end_time)) return null;
  return new Date(next).toISOString();
}
