import { describe, expect, it, vi } from "vitest";
import { LINGER_MS, createWritePipeline, type PipelinedWrite } from "../../src/storage/write-pipeline.js";

/** A commit whose groups stay in flight until the test lets them go. */
function controlledCommit(fail?: (group: string[]) => unknown) {
  const sent: string[][] = [];
  const gates: Array<() => void> = [];
  const commit = async (group: PipelinedWrite<string>[]) => {
    const writes = group.map((g) => g.write);
    sent.push(writes);
    await new Promise<void>((r) => gates.push(r));
    const err = fail?.(writes);
    if (err) throw err;
  };
  const finishOne = async () => {
    gates.shift()!();
    await tick();
  };
  return { sent, commit, finishOne, inFlight: () => gates.length };
}

/** Longer than the pipeline's linger. */
const tick = () => new Promise((r) => setTimeout(r, LINGER_MS + 8));
const turn = () => new Promise((r) => setImmediate(r));
const w = (write: string, ...keys: string[]): PipelinedWrite<string> => ({ write, keys: keys.length ? keys : [write], bytes: 1 });
const opts = { maxWrites: 64, maxBytes: 1_000 };

describe("write pipeline", () => {
  it("sends the first write after a short linger, and groups what comes while it is on its way, in order", async () => {
    const c = controlledCommit();
    const p = createWritePipeline(c.commit, opts);
    p.add(w("a"));
    await tick();
    expect(c.sent).toEqual([["a"]]);
    p.add(w("b"));
    p.add(w("c"));
    await tick();
    // One group at a time: b and c wait for a.
    expect(c.inFlight()).toBe(1);
    await c.finishOne();
    expect(c.sent).toEqual([["a"], ["b", "c"]]);
    await c.finishOne();
    expect(c.inFlight()).toBe(0);
  });

  it("writes added while the first lingers go as one group, several event-loop turns apart", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const c = controlledCommit();
    try {
      const p = createWritePipeline(c.commit, opts);
      p.add(w("a"));
      p.add(w("b"));
      await turn();
      await turn();
      p.add(w("c"));
      vi.advanceTimersByTime(LINGER_MS - 1);
      expect(c.sent).toEqual([]);
      vi.advanceTimersByTime(1);
      expect(c.sent).toEqual([["a", "b", "c"]]);
    } finally {
      vi.useRealTimers();
    }
    await c.finishOne();
  });

  it("settle sends a lingering group at once", async () => {
    const c = controlledCommit();
    const p = createWritePipeline(c.commit, opts);
    p.add(w("a"));
    const s = p.settle();
    expect(c.sent).toEqual([["a"]]);
    await c.finishOne();
    await s;
  });

  it("a group never holds two writes to one row: the second starts the next group", async () => {
    const c = controlledCommit();
    const p = createWritePipeline(c.commit, opts);
    p.add(w("a", "k1", "k2"));
    p.add(w("b", "k3"));
    p.add(w("c", "k2"));
    p.add(w("d", "k4"));
    await tick();
    expect(c.sent).toEqual([["a", "b"]]);
    await c.finishOne();
    expect(c.sent).toEqual([["a", "b"], ["c", "d"]]);
    await c.finishOne();
  });

  it("a group holds at most maxWrites writes and maxBytes bytes, but a larger write still goes alone", async () => {
    const c = controlledCommit();
    const p = createWritePipeline(c.commit, { maxWrites: 2, maxBytes: 10 });
    p.add({ write: "big", keys: ["big"], bytes: 50 });
    p.add(w("a"));
    await tick();
    expect(c.sent).toEqual([["big"]]);
    p.add(w("b"));
    p.add(w("c"));
    p.add({ write: "d", keys: ["d"], bytes: 10 });
    await c.finishOne();
    expect(c.sent).toEqual([["big"], ["a", "b"]]);
    await c.finishOne();
    expect(c.sent).toEqual([["big"], ["a", "b"], ["c"]]);
    await c.finishOne();
    expect(c.sent).toEqual([["big"], ["a", "b"], ["c"], ["d"]]);
    await c.finishOne();
  });

  it("settle waits until every write added so far is committed", async () => {
    const c = controlledCommit();
    const p = createWritePipeline(c.commit, opts);
    await expect(p.settle()).resolves.toBeUndefined();
    p.add(w("a"));
    let settled = false;
    const s = p.settle().then(() => (settled = true));
    await tick();
    p.add(w("b"));
    await c.finishOne();
    expect(settled).toBe(false);
    await c.finishOne();
    await s;
    expect(settled).toBe(true);
  });

  it("after a failed group, the writes behind it are dropped and settle rejects with the failure", async () => {
    const boom = new Error("commit failed");
    const c = controlledCommit((g) => (g.includes("b") ? boom : null));
    const p = createWritePipeline(c.commit, opts);
    p.add(w("a"));
    await tick();
    p.add(w("b"));
    await c.finishOne();
    p.add(w("c")); // queued behind b
    const s = p.settle().then(() => null, (err: unknown) => err);
    await c.finishOne(); // b fails
    expect(await s).toBe(boom);
    p.add(w("d")); // after the failure: never sent
    await tick();
    expect(c.sent).toEqual([["a"], ["b"]]);
    await expect(p.settle()).rejects.toBe(boom);
  });

  it("abandon drops what is not sent yet, waits for the group on its way, and ignores later writes", async () => {
    const c = controlledCommit();
    const p = createWritePipeline(c.commit, opts);
    p.add(w("a"));
    await tick();
    p.add(w("b"));
    let done = false;
    const abandoned = p.abandon().then(() => (done = true));
    await tick();
    expect(done).toBe(false);
    await c.finishOne();
    await abandoned;
    p.add(w("c"));
    await tick();
    expect(c.sent).toEqual([["a"]]);
    await expect(p.settle()).resolves.toBeUndefined();
  });

  describe("take", () => {
    it("hands over the lingering writes unsent, and ignores later ones", async () => {
      const c = controlledCommit();
      const p = createWritePipeline(c.commit, opts);
      p.add(w("a"));
      p.add(w("b"));
      expect(await p.take()).toEqual(["a", "b"]);
      p.add(w("c"));
      await tick();
      expect(c.sent).toEqual([]);
    });

    it("waits for the group on its way, then hands over what came behind it", async () => {
      const c = controlledCommit();
      const p = createWritePipeline(c.commit, opts);
      p.add(w("a"));
      await tick();
      p.add(w("b"));
      let tail: string[] | null = null;
      const taken = p.take().then((t) => (tail = t));
      await turn();
      expect(tail).toBeNull();
      await c.finishOne();
      await taken;
      expect(tail).toEqual(["b"]);
      expect(c.sent).toEqual([["a"]]);
    });

    it("hands over one group at most: what does not fit it is committed first", async () => {
      const c = controlledCommit();
      const p = createWritePipeline(c.commit, opts);
      p.add(w("a", "k1"));
      p.add(w("b", "k2"));
      p.add(w("c", "k1")); // a second write to a's row: the next group
      const taken = p.take();
      expect(c.sent).toEqual([["a", "b"]]);
      await c.finishOne();
      expect(await taken).toEqual(["c"]);
    });

    it("rejects with an earlier failure, handing nothing over", async () => {
      const boom = new Error("commit failed");
      const c = controlledCommit(() => boom);
      const p = createWritePipeline(c.commit, opts);
      p.add(w("a"));
      await tick();
      p.add(w("b"));
      const taken = p.take().then(() => null, (err: unknown) => err);
      await c.finishOne();
      expect(await taken).toBe(boom);
    });

    it("with nothing unsent, hands over nothing", async () => {
      const c = controlledCommit();
      const p = createWritePipeline(c.commit, opts);
      expect(await p.take()).toEqual([]);
    });
  });
});
