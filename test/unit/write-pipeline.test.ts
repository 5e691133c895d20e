import { describe, expect, it } from "vitest";
import { createWritePipeline, type PipelinedWrite } from "../../src/storage/write-pipeline.js";

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

const tick = () => new Promise((r) => setTimeout(r, 0));
const w = (write: string, ...keys: string[]): PipelinedWrite<string> => ({ write, keys: keys.length ? keys : [write], bytes: 1 });
const opts = { maxWrites: 64, maxBytes: 1_000 };

describe("write pipeline", () => {
  it("sends the first write at once, and groups what comes while it is on its way, in order", async () => {
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

  it("writes added in one turn go as one group", async () => {
    const c = controlledCommit();
    const p = createWritePipeline(c.commit, opts);
    p.add(w("a"));
    p.add(w("b"));
    await tick();
    expect(c.sent).toEqual([["a", "b"]]);
    await c.finishOne();
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
});
