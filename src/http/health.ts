import type { Context } from "hono";
import { AppError } from "../domain/errors.js";
import type { Logger } from "../lib/logger.js";
import { withTimeout } from "../lib/time.js";

/** One store a process depends on, as `/ok?check_db=1` names it. */
export interface StoreCheck {
  /** Shown in the 503 body, e.g. "PostgreSQL". */
  name: string;
  /** Resolves once the store answers (a `SELECT 1`, a PING). */
  check: () => Promise<unknown>;
}

/**
 * A check slower than this counts as failed. ioredis queues commands while it
 * reconnects, so a PING to a dead Redis never settles on its own; and the
 * probes give up after 3 s, so they should get the 503 before that.
 */
export const STORE_CHECK_TIMEOUT_MS = 2_000;

/** `?check_db=1` or `?check_db=true`. */
export function wantsStoreCheck(c: Context): boolean {
  const v = c.req.query("check_db");
  return v === "1" || v === "true";
}

/**
 * Runs every check at once and throws UNAVAILABLE (503) naming the stores that
 * failed. Driver errors can carry hosts, users or a whole connection string, so
 * neither the body nor the log gets their message: the log gets the error code.
 */
export async function assertStoresReachable(checks: readonly StoreCheck[], logger: Logger, timeoutMs = STORE_CHECK_TIMEOUT_MS): Promise<void> {
  const failed: string[] = [];
  await Promise.all(
    checks.map(async ({ name, check }) => {
      try {
        await withTimeout(check(), timeoutMs, () => new CheckTimeout());
      } catch (err) {
        failed.push(name);
        logger.warn({ store: name, code: errorCode(err) }, "store check failed");
      }
    }),
  );
  if (failed.length === 0) return;
  // Stable order in the message whatever order the checks failed in.
  const names = checks.map((c) => c.name).filter((n) => failed.includes(n));
  const list = names.length === 1 ? names[0]! : `${names.slice(0, -1).join(", ")} and ${names.at(-1)!}`;
  throw new AppError("UNAVAILABLE", `${list} ${names.length === 1 ? "is" : "are"} not reachable`);
}

class CheckTimeout extends Error {
  readonly code = "TIMEOUT";
}

/** A driver's error code (ECONNREFUSED, a SQLSTATE, TIMEOUT), never its message. */
function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[A-Za-z0-9_]{1,40}$/.test(code) ? code : "UNKNOWN";
}
