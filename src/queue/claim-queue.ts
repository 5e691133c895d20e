import type { Bell } from "./bell.js";
import type { ConsumeOptions, LocalSlot, RunQueue, RunQueueConsumer } from "./run-queue.js";

/** After a failed claim (database unreachable), the next try. */
const CLAIM_RETRY_MS = 1_000;

/**
 * The run queue on PostgreSQL claims plus a doorbell (see run-queue.ts).
 *
 * A consumer keeps "credits": how many runs the rings it heard announced
 * (an upper bound: other workers claim some of them). Free slots spend them
 * on claims; a claim that finds nothing clears them. So an idle worker answers
 * a ring with one claim, a busy one remembers every ring until slots free,
 * and a finished run costs no extra query unless a ring came in meanwhile.
 * When the amount is unknown (start-up, the poll, a retry after an error)
 * the consumer claims until a claim finds nothing.
 */
export function createRunQueue(bell: Bell, onError: (err: unknown) => void): RunQueue {
  const consumers = new Set<RunQueueConsumer & { reserve(): LocalSlot | null }>();
  return {
    async dispatch(items) {
      if (items.length === 0) return;
      const now = items.filter((d) => d.delay_ms <= 0).length;
      if (now > 0) await bell.ring(now, 0);
      for (const d of items) if (d.delay_ms > 0) await bell.ring(1, d.delay_ms);
    },

    async consume<T>(opts: ConsumeOptions<T>): Promise<RunQueueConsumer> {
      const consumer = startConsumer(opts, onError);
      try {
        await bell.listen((count, delayMs) => consumer.ring(count, delayMs));
      } catch (err) {
        await consumer.close(true);
        throw err;
      }
      const entry = {
        reserve: consumer.reserve,
        async close(force?: boolean) {
          consumers.delete(entry);
          await consumer.close(force);
        },
      };
      consumers.add(entry);
      // Runs that were waiting before this consumer existed.
      consumer.lookAround();
      return entry;
    },

    reserve() {
      for (const c of consumers) {
        const slot = c.reserve();
        if (slot) return slot;
      }
      return null;
    },

    async close() {
      await Promise.all([...consumers].map((c) => c.close(true)));
      await bell.close();
    },
  };
}

function startConsumer<T>(opts: ConsumeOptions<T>, onError: (err: unknown) => void) {
  let credits = 0;
  /** Claim until a claim finds nothing, whatever the credits say. */
  let unknown = false;
  /** Rings and look-arounds so far: a claim that found nothing only clears what came before it. */
  let rung = 0;
  let looked = 0;
  let active = 0;
  let pumping: Promise<void> | null = null;
  /** A pump claim in flight: it takes a slot if it finds a run, whatever the credits say by then. */
  let claiming = false;
  let closed = false;
  const handlers = new Set<Promise<void>>();
  /** Slots held for runs being inserted claimed (reserve): close waits for them too. */
  const reservations = new Set<Promise<void>>();
  const timers = new Set<NodeJS.Timeout>();

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
    credits += count;
    rung += count;
    kick();
  };

  const lookAround = () => {
    if (closed) return;
    unknown = true;
    looked++;
    kick();
  };

  const wanted = () => credits > 0 || unknown;

  const kick = () => {
    pumping ??= pump().finally(() => {
      pumping = null;
      // A ring or a freed slot that came while this pump was finishing.
      if (!closed && wanted() && active < opts.concurrency) kick();
    });
  };

  /** Claims while there are credits and free slots. A run claimed as we close still goes to the handler (it hands it back). */
  async function pump(): Promise<void> {
    while (!closed && wanted() && active < opts.concurrency) {
      let item: T | null;
      const [rungBefore, lookedBefore] = [rung, looked];
      claiming = true;
      try {
        item = await opts.claim();
      } catch (err) {
        // The retry looks around for everything: what was announced is not lost.
        onError(err);
        credits = 0;
        unknown = false;
        later(CLAIM_RETRY_MS, lookAround);
        return;
      } finally {
        claiming = false;
      }
      if (item === null) {
        // Nothing to claim: forget what was announced before this claim, not what came
        // while it ran (that run's insert may not have been visible to it).
        credits = Math.min(credits, rung - rungBefore);
        unknown = looked !== lookedBefore;
        continue;
      }
      if (credits > 0) credits--;
      active++;
      run(item);
    }
  }

  const wantsMore = () => !closed && wanted();

  /** Runs the handler in a slot already counted in `active`, until it ends or hands the slot over. */
  const run = (item: T) => {
    let handedOver = false;
    const slot = {
      wantsMore,
      handOver(next: T) {
        if (handedOver) throw new Error("slot already handed over");
        handedOver = true;
        if (credits > 0) credits--;
        run(next); // same slot: `active` unchanged
      },
    };
    const p: Promise<void> = opts
      .handler(item, slot)
      .catch(onError)
      .finally(() => {
        handlers.delete(p);
        if (handedOver) return;
        active--;
        if (wanted()) kick();
      });
    handlers.add(p);
  };

  /**
   * Only a slot no waiting run needs: one beyond the runs announced and not yet claimed
   * (`credits`; a claim in flight counts even if a hand-over spent its credit), and none
   * while how many wait is unknown. A run claimed at insert then never takes a waiting
   * run's place.
   */
  const reserve = (): LocalSlot | null => {
    const local = opts.local;
    if (!local || closed || unknown || active + Math.max(credits, claiming ? 1 : 0) >= opts.concurrency) return null;
    active++;
    let settled = false;
    let done!: () => void;
    const held = new Promise<void>((r) => (done = r));
    reservations.add(held);
    const settle = (use: () => void) => {
      if (settled) throw new Error("slot already taken or released");
      settled = true;
      try {
        use();
      } finally {
        reservations.delete(held);
        done();
      }
    };
    return {
      owner: local.owner,
      leaseSecs: local.leaseSecs,
      // The handler is registered before close() stops waiting for the slot.
      take: (claimed, claimStarted) => settle(() => run(local.item(claimed, claimStarted))),
      release: () =>
        settle(() => {
          active--;
          if (wanted()) kick();
        }),
    };
  };

  const poll = setInterval(lookAround, opts.pollMs);
  poll.unref();

  return {
    ring,
    lookAround,
    reserve,
    async close(force?: boolean): Promise<void> {
      closed = true;
      clearInterval(poll);
      for (const t of timers) clearTimeout(t);
      timers.clear();
      if (force) return;
      await pumping;
      // A run inserted claimed while we close still reaches its handler, which hands it back.
      await Promise.allSettled([...reservations]);
      // A handler may hand its slot to a run it claimed as it ended: wait for that one too.
      while (handlers.size > 0) await Promise.allSettled([...handlers]);
    },
  };
}
