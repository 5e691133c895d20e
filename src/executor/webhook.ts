import type { Logger } from "../lib/logger.js";
import { backoffMs, sleep } from "../lib/time.js";

export interface WebhookOptions {
  attempts: number;
  timeoutMs: number;
  /** Base for relative webhook URLs ("/my/route"): the API's own address, when known. */
  selfUrl: string | null;
  logger: Logger;
}

/**
 * POSTs the run's final record to its webhook. Transient failures (network,
 * 5xx, 429) are retried with backoff; the outcome is logged and never changes
 * the run. The URL is logged without its query string (it may carry tokens).
 */
export async function deliverWebhook(url: string, payload: unknown, opts: WebhookOptions): Promise<boolean> {
  let target: URL;
  try {
    target = url.startsWith("/") ? new URL(url, requireBase(opts.selfUrl)) : new URL(url);
  } catch (err) {
    opts.logger.warn({ reason: (err as Error).message }, "webhook not sent: invalid URL");
    return false;
  }
  const shown = `${target.origin}${target.pathname}`;
  const body = JSON.stringify(payload);
  for (let attempt = 0; attempt < opts.attempts; attempt++) {
    if (attempt > 0) await sleep(backoffMs(attempt, 500, 10_000));
    try {
      const res = await fetch(target, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        signal: AbortSignal.timeout(opts.timeoutMs),
      });
      await res.body?.cancel();
      if (res.ok) return true;
      if (res.status < 500 && res.status !== 429) {
        opts.logger.warn({ url: shown, status: res.status }, "webhook rejected");
        return false;
      }
      opts.logger.warn({ url: shown, status: res.status, attempt: attempt + 1 }, "webhook failed");
    } catch (err) {
      opts.logger.warn({ url: shown, attempt: attempt + 1, reason: (err as Error).message }, "webhook failed");
    }
  }
  return false;
}

function requireBase(base: string | null): string {
  if (!base) throw new Error("relative webhook URL but this worker does not know the API address (set LANGGRAPH_API_URL)");
  return base;
}
