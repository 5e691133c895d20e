/**
 * One run's checkpoint writes, pipelined. LangGraph calls a run's puts one
 * after another, each once the previous one resolved, so a run committing
 * them one by one waits for a commit per step. In a pipeline a write is
 * accepted at once; the run's writes commit in the order they came, in
 * groups: the first group leaves after a short linger (with all the run
 * wrote meanwhile: a graph whose steps await no I/O commits once), and the
 * writes that come while a group is on its way go together in the next one.
 * A group is one statement, so it lands whole or not at all, and the
 * committed writes are always a prefix of the run's writes: a later
 * checkpoint never lands without the blobs an earlier one wrote.
 *
 * `settle()` resolves when every write so far is committed, or rejects with
 * the first failure; the writes after a failed one are dropped (they would
 * land past a gap). A run must settle before it reports its outcome (only
 * then is what it streamed durable), or `take()` the writes not sent yet and
 * commit them with the outcome. A run that lost its lease `abandon()`s
 * instead: another worker may own the run by now, so what is not sent yet
 * never is.
 */

export interface PipelinedWrite<W> {
  write: W;
  /** Rows it touches: a group never holds two writes to one row (one statement changes a row once). */
  keys: readonly string[];
  /** Payload bytes, for the group's size bound. */
  bytes: number;
}

export interface WritePipelineOptions {
  /** Writes per group. */
  maxWrites: number;
  /** Payload bytes per group; a single larger write still goes, alone. */
  maxBytes: number;
}

export interface WritePipeline<W> {
  /** Queues a write after the ones before it. */
  add(write: PipelinedWrite<W>): void;
  /** Resolves once every write added so far is committed; rejects with the first failure. */
  settle(): Promise<void>;
  /** Drops the writes not sent yet (and any added later); resolves when the group on its way is done. */
  abandon(): Promise<void>;
  /**
   * Ends the pipeline and hands over its tail: resolves, once every write before the tail is
   * committed, with the writes not sent yet (at most one group; none when all were sent), for
   * the caller to commit in a statement of its own; rejects with the first failure. Writes
   * added later are ignored.
   */
  take(): Promise<W[]>;
}

/**
 * How long a write that finds the pipeline idle waits for others before it is sent. A run's
 * steps that await no I/O write within a few milliseconds of CPU, but under load those are
 * spread over many event-loop turns: a short graph's whole run then still writes once, with its
 * outcome (take), instead of sending a group whose commit the run's end must wait for. A step
 * that calls a model takes far longer than this; its writes become visible this much later.
 */
export const LINGER_MS = 60;

export function createWritePipeline<W>(
  commit: (group: PipelinedWrite<W>[]) => Promise<void>,
  opts: WritePipelineOptions,
): WritePipeline<W> {
  let queued: PipelinedWrite<W>[] = [];
  let busy = false;
  let failure: { err: unknown } | null = null;
  let abandoned = false;
  /** take() was called: the last group is not sent but handed over. */
  let taking = false;
  let waiters: (() => void)[] = [];
  /** The first group's linger, while it lasts. */
  let linger: NodeJS.Timeout | null = null;

  const idle = () => {
    for (const wake of waiters.splice(0)) wake();
  };

  /** How many of the queued writes go in the next group. */
  function groupSize(): number {
    const keys = new Set<string>();
    let bytes = 0;
    let i = 0;
    for (; i < queued.length; i++) {
      const w = queued[i]!;
      const fits = i === 0 || (i < opts.maxWrites && bytes + w.bytes <= opts.maxBytes);
      if (!fits || w.keys.some((k) => keys.has(k))) break;
      bytes += w.bytes;
      for (const k of w.keys) keys.add(k);
    }
    return i;
  }

  function send(): void {
    linger = null;
    const size = groupSize();
    if (queued.length === 0 || (taking && size === queued.length)) {
      busy = false;
      return idle();
    }
    const group = queued.slice(0, size);
    queued = queued.slice(size);
    commit(group).then(send, (err: unknown) => {
      failure ??= { err };
      queued = [];
      send();
    });
  }

  /** The run waits for its writes now: nothing left to linger for. */
  function sendNow(): void {
    if (linger === null) return;
    clearTimeout(linger);
    send();
  }

  return {
    add(write) {
      if (failure || abandoned || taking) return;
      queued.push(write);
      if (busy) return;
      busy = true;
      // A group started from idle lingers: the writes of steps that await no I/O (a short graph's whole
      // run, parallel tasks) go together, and those a run still holds when it ends go with
      // its outcome (take).
      linger = setTimeout(send, LINGER_MS);
    },
    async settle() {
      sendNow();
      if (busy) await new Promise<void>((resolve) => waiters.push(resolve));
      if (failure) throw failure.err;
    },
    async abandon() {
      abandoned = true;
      queued = [];
      sendNow();
      if (busy) await new Promise<void>((resolve) => waiters.push(resolve));
    },
    async take() {
      taking = true;
      sendNow();
      if (busy) await new Promise<void>((resolve) => waiters.push(resolve));
      if (failure) throw failure.err;
      const tail = queued.map((w) => w.write);
      queued = [];
      return tail;
    },
  };
}
