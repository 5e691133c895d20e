import type { Context } from "hono";
import { ERROR_CODES, isAppError } from "../domain/errors.js";
import type { Logger } from "../lib/logger.js";

/**
 * The single place errors become HTTP responses: `{"detail": "..."}` with the
 * status for the error's code. Anything unexpected is logged and answered 500
 * without internals.
 */
export function errorHandler(logger: Logger) {
  return (err: Error, c: Context): Response => {
    if (isAppError(err)) return c.json({ detail: err.message }, ERROR_CODES[err.code]);
    const status = (err as { status?: number }).status;
    // Hono's own HTTPExceptions (e.g. body limit) carry a status.
    if (typeof status === "number" && status >= 400 && status < 500) {
      return c.json({ detail: err.message || "Bad request" }, status as 400);
    }
    logger.error({ err, method: c.req.method, path: c.req.path }, "unhandled error");
    return c.json({ detail: "Internal server error" }, 500);
  };
}
