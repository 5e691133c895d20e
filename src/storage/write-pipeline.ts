/**
 * One run's checkpoint writes, pipelined. LangGraph calls a run's puts one
 * after another, each once the previous one resolved, so a run committing
 * them one by one waits for a commit per step. In a pipeline a write is
 * accepted at once; the run's writes commit in the order they came, in
 * groups: the first group leaves at the end of the event loop's turn (with
 * all the run wrote in that turn: a graph whose steps await no I/O commits
 * once), and the writes that come while a group is on its way go together in
 * the next one. A group is one statement, so it lands whole or not at all,
 * and the committed writes are always a prefix of the run's writes: a later
 * checkpoint never lands without the blobs an earlier one wrote.
 *
 * `settle()` resolves when every write so far is committed, or rejects with
 * the first failure; the writes after a failed one are dropped (they would
 * land past a gap). A run must settle before it reports its outcome: only
 * then is what it streamed durable. A run that lost its lease `abandon()`s
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
}

export function createWritePipeline<W>(
  commit: (group: PipelinedWrite<W>[]) => Promise<void>,
  opts: WritePipelineOptions,
): WritePipeline<W> {
  let queued: PipelinedWrite<W>[] = [];
  let busy = false;
  let failure: { err: unknown } | null = null;
  let abandoned = false;
  let waiters: (() => void)[] = [];

  const idle = () => {
    for (const wake of waiters.splice(0)) wake();
  };

  function send(): void {
    if (queued.length === 0) {
      busy = false;
      return idle();
    }
    const group: PipelinedWrite<W>[] = [];
    const keys = new Set<string>();
    let bytes = 0;
    let i = 0;
    for (; i < queued.length; i++) {
      const w = queued[i]!;
      const fits = i === 0 || (i < opts.maxWrites && bytes + w.bytes <= opts.maxBytes);
      if (!fits || w.keys.some((k) => keys.has(k))) break;
      group.push(w);
      bytes += w.bytes;
      for (const k of w.keys) keys.add(k);
    }
    queued = queued.slice(i);
    commit(group).then(send, (err: unknown) => {
      failure ??= { err };
      queued = [];
      send();
    });
  }

  return {
    add(write) {
      if (failure || abandoned) return;
      queued.push(write);
      if (busy) return;
      busy = true;
      // The writes of one turn of the event loop go as one group: steps that await no I/O
      // (a short graph's whole run, parallel tasks) commit together, not one group each.
      setImmediate(send);
    },
    async settle() {
      if (busy) await new Promise<void>((resolve) => waiters.push(resolve));
      if (failure) throw failure.err;
    },
    async abandon() {
      abandoned = true;
      queued = [];
      if (busy) await new Promise<void>((resolve) => waiters.push(resolve));
    },
  };
}
