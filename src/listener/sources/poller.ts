/**
 * Reads a source over and over: at its interval (with jitter) while it
 * answers, with exponential backoff (and jitter) while it fails, and at once
 * when its watch says something changed.
 */
import { sleep } from "../../lib/time.js";
import { pollDelay } from "../restart-policy.js";
import type { DesiredDeployment } from "../types.js";
import type { DesiredStateSource } from "./types.js";

export interface PollHandlers {
  onDesired(deployments: DesiredDeployment[]): void;
  /** `consecutive` failures so far; the next attempt comes after `retryInMs`. */
  onError(err: unknown, consecutive: number, retryInMs: number): void;
}

export function startPolling(source: DesiredStateSource, h: PollHandlers): { wake(): void; stop(): Promise<void> } {
  const stopped = new AbortController();
  let nap = new AbortController();
  const wake = () => nap.abort();
  const unwatch = source.watch?.(wake);
  const loop = (async () => {
    let errors = 0;
    while (!stopped.signal.aborted) {
      nap = new AbortController();
      try {
        const desired = await source.fetch(stopped.signal);
        if (stopped.signal.aborted) break;
        errors = 0;
        h.onDesired(desired);
      } catch (err) {
        if (stopped.signal.aborted) break;
        errors++;
        h.onError(err, errors, pollDelay(errors, source.intervalMs, source.maxBackoffMs));
      }
      await sleep(pollDelay(errors, source.intervalMs, source.maxBackoffMs), AbortSignal.any([stopped.signal, nap.signal]));
    }
  })();
  return {
    wake,
    async stop() {
      unwatch?.();
      stopped.abort();
      await loop;
    },
  };
}
