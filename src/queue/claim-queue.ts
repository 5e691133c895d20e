import type { Bell } from "./bell.js";
import type { ConsumeOptions, RunQueue, RunQueueConsumer } from "./run-queue.js";

/** Rings remembered while every slot was busy, at most this many per slot. */
const CREDIT_PER_SLOT = 4;
/** After a failed claim (database unreachable), the next try. */
const CLAIM_RETRY_MS = 1_000;

/**
 * The run queue on PostgreSQL claims plus a doorbell (see run-queue.ts).
 *
 * A consumer keeps "credits": how many runs the rings it heard announced.
 * Free slots spend them on claims; a claim that finds nothing clears them.
 * So an idle worker answers a ring with one claim, a busy one remembers it
 * until a slot frees, and a finished run costs no extra query unless a ring
 * came in meanwhile.
 */
export function createRunQueue(bell: Bell, onError: (err: unknown) => void): RunQueue {
  const consumers = new Set<RunQueueConsumer>();
  return {
    async dispatch(items) {
      if (items.length === 0) return;
      const now = items.filter((d) => d.delay_ms <= 0).length;
      if (now > 0) await bell.ring(now, 0);
      for (const d of items) if (d.delay_ms > 0) await bell.ring(1, d.delay_ms);
    },

    async consume<T>(opts: ConsumeOptions<T>): Promise<RunQueueConsumer> {
      const consumer = startConsumer(opts, onError);
      await bell.listen((count, delayMs) => consumer.ring(count, delayMs));
      consumers.add(consumer);
      // Runs that were waiting before this consumer existed.
      consumer.ring(opts.concurrency, 0);
      return {
        async close(force) {
          consumers.delete(consumer);
          await consumer.close(force);
        },
      };
    },

    async close() {
      await Promise.all([...consumers].map((c) => c.close(true)));
      await bell.close();
    },
  };
}

function startConsumer<T>(opts: ConsumeOptions<T>, onError: (err: unknown) => void) {
  let credits = 0;
  let active = 0;
  let pumping: Promise<void> | null = null;
  let closed = false;
  const handlers = new Set<Promise<void>>();
  const timers = new Set<NodeJS.Timeout>();
  const maxCredits = opts.concurrency * CREDIT_PER_SLOT;

  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    t.unref();
    timers.add(t);
  };

  const ring = (count: number, delayMs: number) => {
    if (closed) return;
    if (delayMs > 0) return later(delayMs, () => ring(count, 0));
    credits = Math.min(maxCredits, credits + count);
    kick();
  };

  const kick = () => {
    pumping ??= pump().finally(() => {
      pumping = null;
      // A ring or a freed slot that came while this pump was finishing.
      if (!closed && credits > 0 && active < opts.concurrency) kick();
    });
  };

  /** Claims while there are credits and free slots. A run claimed as we close still goes to the handler (it hands it back). */
  async function pump(): Promise<void> {
    while (!closed && credits > 0 && active < opts.concurrency) {
      let item: T | null;
      try {
        item = await opts.claim();
      } catch (err) {
        onError(err);
        credits = 0;
        later(CLAIM_RETRY_MS, () => ring(opts.concurrency, 0));
        return;
      }
      if (item === null) {
        credits = 0;
        return;
      }
      credits--;
      active++;
      const p: Promise<void> = opts
        .handler(item)
        .catch(onError)
        .finally(() => {
          active--;
          handlers.delete(p);
          if (credits > 0) kick();
        });
      handlers.add(p);
    }
  }

  const poll = setInterval(() => ring(opts.concurrency, 0), opts.pollMs);
  poll.unref();

  return {
    ring,
    async close(force?: boolean): Promise<void> {
      closed = true;
      clearInterval(poll);
      for (const t of timers) clearTimeout(t);
      timers.clear();
      if (force) return;
      await pumping;
      await Promise.allSettled([...handlers]);
    },
  };
}
