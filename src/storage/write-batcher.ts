/**
 * Group commit for checkpoint writes. Writes submitted while `maxInFlight`
 * batches are already on their way wait, and then go together: one statement,
 * one round trip, one commit for many runs' checkpoints. An idle saver sends a
 * write at once (at the end of the current microtask), so a lone run waits for
 * nothing; under load the batches grow by themselves.
 *
 * Every write names the rows it touches (keys). A batch never holds two writes
 * with a common key (one statement may not change a row twice), and a write
 * waits while an earlier write to one of its rows is queued or in flight, so
 * writes to one row commit in the order they were submitted. A write's promise
 * settles only after its batch committed: nothing is acknowledged before it is
 * durable, as with one statement per write. A failed batch is retried write by
 * write, so one write's bad data fails only that write.
 *
 * With `maxInFlight` lanes, one slow statement (a large state, a row lock held by
 * another writer) holds up the writes queued behind it until a lane frees.
 */

export interface WriteBatcherOptions {
  /** Batches sent at once (connections the writes may hold). */
  maxInFlight: number;
  /** Writes per batch. */
  maxWrites: number;
  /** Payload bytes per batch; a single larger write still goes, alone. */
  maxBytes: number;
}

interface Pending<W> {
  write: W;
  keys: readonly string[];
  bytes: number;
  guard: (() => void) | undefined;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface WriteBatcher<W> {
  /**
   * Resolves once the write is committed. `guard` runs as the write is put in a batch, just
   * before it is sent: if it throws, the write is not sent and rejects with that error.
   */
  submit(write: W, keys: readonly string[], bytes: number, guard?: () => void): Promise<void>;
}

export function createWriteBatcher<W>(send: (writes: W[]) => Promise<void>, opts: WriteBatcherOptions): WriteBatcher<W> {
  let queue: Pending<W>[] = [];
  let inFlight = 0;
  let scheduled = false;
  /** Keys of the batches in flight (never shared between two of them). */
  const busy = new Set<string>();

  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    // Writes issued in the same turn (parallel tasks of one step) go together.
    queueMicrotask(() => {
      scheduled = false;
      pump();
    });
  };

  function pump(): void {
    while (inFlight < opts.maxInFlight && queue.length > 0) {
      const taken: Pending<W>[] = [];
      const rest: Pending<W>[] = [];
      const keys = new Set<string>();
      // Keys of writes left behind: a later write to the same row must not overtake them.
      const blocked = new Set<string>();
      let bytes = 0;
      for (const p of queue) {
        if (p.guard && !allowed(p)) continue;
        const fits = taken.length === 0 || (taken.length < opts.maxWrites && bytes + p.bytes <= opts.maxBytes);
        if (fits && !p.keys.some((k) => busy.has(k) || keys.has(k) || blocked.has(k))) {
          taken.push(p);
          for (const k of p.keys) keys.add(k);
          bytes += p.bytes;
        } else {
          rest.push(p);
          for (const k of p.keys) blocked.add(k);
        }
      }
      queue = rest;
      if (taken.length === 0) return; // everything waits for a batch in flight
      for (const k of keys) busy.add(k);
      inFlight++;
      void commit(taken).finally(() => {
        inFlight--;
        for (const k of keys) busy.delete(k);
        pump();
      });
    }
  }

  /** Runs a write's guard; a write it refuses is rejected (and dropped from the queue). */
  function allowed(p: Pending<W>): boolean {
    try {
      p.guard!();
      return true;
    } catch (err) {
      p.reject(err);
      return false;
    }
  }

  async function commit(batch: Pending<W>[]): Promise<void> {
    try {
      await send(batch.map((p) => p.write));
    } catch (err) {
      if (batch.length === 1) return batch[0]!.reject(err);
      // One by one, on the same connection budget (the writes are idempotent, and no later
      // write to their rows has started): a write fails only for its own fault, or as it
      // would have alone (a lost connection, a deadlock, a timeout).
      for (const p of batch) if (!p.guard || allowed(p)) await send([p.write]).then(p.resolve, p.reject);
      return;
    }
    for (const p of batch) p.resolve();
  }

  return {
    submit(write, keys, bytes, guard) {
      return new Promise<void>((resolve, reject) => {
        queue.push({ write, keys, bytes, guard, resolve, reject });
        schedule();
      });
    },
  };
}
