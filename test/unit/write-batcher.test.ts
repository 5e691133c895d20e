import { describe, expect, it } from "vitest";
import { createWriteBatcher, type WriteBatcherOptions } from "../../src/storage/write-batcher.js";

/** A send whose batches stay in flight until the test lets them go. */
function controlledSend(fail?: (batch: string[]) => unknown) {
  const sent: string[][] = [];
  const gates: Array<() => void> = [];
  const send = async (batch: string[]) => {
    sent.push(batch);
    await new Promise<void>((r) => gates.push(r));
    const err = fail?.(batch);
    if (err) throw err;
  };
  /** Lets the oldest batch in flight complete, then lets the batcher react. */
  const finishOne = async () => {
    gates.shift()!();
    await settle();
  };
  return { sent, send, finishOne, inFlight: () => gates.length };
}

/** A guard that refuses once the lease is lost, as the worker's does. */
function leaseGuard() {
  let held = true;
  return {
    guard: () => {
      if (!held) throw new Error("lease lost");
    },
    lose: () => void (held = false),
  };
}

const settle = () => new Promise((r) => setTimeout(r, 0));

const opts = (over: Partial<WriteBatcherOptions> = {}): WriteBatcherOptions => ({
  maxInFlight: 1,
  maxWrites: 64,
  maxBytes: 1_000,
  ...over,
});

describe("write batcher", () => {
  it("sends a lone write at once, alone", async () => {
    const s = controlledSend();
    const b = createWriteBatcher(s.send, opts());
    const done = b.submit("a", ["k1"], 1);
    await settle();
    expect(s.sent).toEqual([["a"]]);
    await s.finishOne();
    await expect(done).resolves.toBeUndefined();
  });

  it("groups writes that arrive while batches are in flight, and settles none before its batch committed", async () => {
    const s = controlledSend();
    const b = createWriteBatcher(s.send, opts());
    const first = b.submit("a", ["k1"], 1);
    await settle();
    const settled: string[] = [];
    const rest = ["b", "c", "d"].map((w, i) => b.submit(w, [`k${i + 2}`], 1).then(() => settled.push(w)));
    await settle();
    expect(s.sent).toEqual([["a"]]);
    await s.finishOne();
    await first;
    expect(s.sent).toEqual([["a"], ["b", "c", "d"]]);
    expect(settled).toEqual([]);
    await s.finishOne();
    await Promise.all(rest);
    expect(settled).toEqual(["b", "c", "d"]);
  });

  it("writes issued in one turn go together", async () => {
    const s = controlledSend();
    const b = createWriteBatcher(s.send, opts());
    const all = [b.submit("a", ["k1"], 1), b.submit("b", ["k2"], 1)];
    await settle();
    expect(s.sent).toEqual([["a", "b"]]);
    await s.finishOne();
    await Promise.all(all);
  });

  it("runs a write's guard as it is put in a batch: a write it refuses is never sent and fails with its error", async () => {
    const s = controlledSend();
    const b = createWriteBatcher(s.send, opts());
    const first = b.submit("a", ["k1"], 1);
    await settle();
    // Queued while "a" is in flight; the lease lapses before they leave.
    const lease = leaseGuard();
    const refused = b.submit("b", ["k2"], 1, lease.guard).then(() => "sent", (err: Error) => err.message);
    const other = b.submit("c", ["k3"], 1);
    await settle();
    lease.lose();
    await s.finishOne();
    await first;
    expect(await refused).toBe("lease lost");
    expect(s.sent).toEqual([["a"], ["c"]]);
    await s.finishOne();
    await expect(other).resolves.toBeUndefined();
    // Refused alone in the queue: dropped, the batcher goes on.
    await expect(b.submit("d", ["k4"], 1, lease.guard)).rejects.toThrow("lease lost");
    const last = b.submit("e", ["k5"], 1);
    await settle();
    expect(s.sent).toEqual([["a"], ["c"], ["e"]]);
    await s.finishOne();
    await last;
  });

  it("runs the guard again before a failed batch's writes are sent one by one", async () => {
    const s = controlledSend((batch) => (batch.length > 1 ? new Error("batch failed") : null));
    const b = createWriteBatcher(s.send, opts());
    const lease = leaseGuard();
    const guarded = b.submit("a", ["k1"], 1, lease.guard).then(() => "sent", (err: Error) => err.message);
    const other = b.submit("b", ["k2"], 1);
    await settle();
    expect(s.sent).toEqual([["a", "b"]]);
    lease.lose(); // while the batch is in flight; the batch then fails
    await s.finishOne();
    expect(s.sent).toEqual([["a", "b"], ["b"]]);
    await s.finishOne();
    expect(await guarded).toBe("lease lost");
    await expect(other).resolves.toBeUndefined();
  });

  it("keeps writes to one row in submission order: never two in a batch, never past one in flight", async () => {
    const s = controlledSend();
    const b = createWriteBatcher(s.send, opts({ maxInFlight: 2 }));
    const all = [b.submit("a1", ["row"], 1)];
    await settle(); // a1 in flight
    all.push(b.submit("a2", ["row"], 1), b.submit("x", ["other"], 1), b.submit("a3", ["row", "more"], 1), b.submit("y", ["more"], 1));
    await settle();
    // a2 waits for a1; a3 must not overtake a2, and y (row "more") must not overtake a3.
    expect(s.sent).toEqual([["a1"], ["x"]]);
    await s.finishOne(); // a1 done
    expect(s.sent.at(-1)).toEqual(["a2"]);
    await s.finishOne(); // x done; a3 still behind a2
    expect(s.sent).toHaveLength(3);
    await s.finishOne(); // a2 done
    expect(s.sent.at(-1)).toEqual(["a3"]);
    await s.finishOne();
    expect(s.sent.at(-1)).toEqual(["y"]);
    await s.finishOne();
    await Promise.all(all);
  });

  it("bounds a batch by count and bytes; a write larger than the bound still goes, alone", async () => {
    const s = controlledSend();
    const b = createWriteBatcher(s.send, opts({ maxWrites: 2, maxBytes: 10 }));
    const all = [b.submit("first", ["k0"], 1)];
    await settle();
    all.push(b.submit("big", ["k1"], 50), b.submit("s1", ["k2"], 4), b.submit("s2", ["k3"], 4), b.submit("s3", ["k4"], 4));
    await settle();
    for (let i = 0; i < 4; i++) await s.finishOne();
    await Promise.all(all);
    expect(s.sent).toEqual([["first"], ["big"], ["s1", "s2"], ["s3"]]);
  });

  it("a data error fails only the write that caused it: the batch is retried one by one", async () => {
    const bad = Object.assign(new Error("invalid input"), { code: "22P02" });
    const s = controlledSend((batch) => (batch.includes("bad") ? bad : null));
    const b = createWriteBatcher(s.send, opts());
    const first = b.submit("first", ["k0"], 1);
    await settle();
    const results = ["ok1", "bad", "ok2"].map((w, i) => b.submit(w, [`k${i + 1}`], 1).then(() => "ok", (e: Error) => e.message));
    await settle();
    await s.finishOne(); // first
    await s.finishOne(); // the batch of three fails
    for (let i = 0; i < 3; i++) await s.finishOne(); // one by one
    await first;
    expect(await Promise.all(results)).toEqual(["ok", "invalid input", "ok"]);
    expect(s.sent.slice(1)).toEqual([["ok1", "bad", "ok2"], ["ok1"], ["bad"], ["ok2"]]);
  });

  it("a lost connection fails a write only if it fails alone too; later writes still go", async () => {
    const lost = Object.assign(new Error("connection terminated"), { code: "57P01" });
    let failures = 2; // the batch and the first write retried alone
    const s = controlledSend(() => (failures-- > 0 ? lost : null));
    const b = createWriteBatcher(s.send, opts());
    const results = ["a", "b"].map((w, i) => b.submit(w, [`k${i}`], 1).then(() => "ok", (e: Error) => e.message));
    await settle();
    for (let i = 0; i < 3; i++) await s.finishOne();
    expect(await Promise.all(results)).toEqual(["connection terminated", "ok"]);
    const after = b.submit("c", ["k0"], 1);
    await settle();
    await s.finishOne();
    await expect(after).resolves.toBeUndefined();
    expect(s.sent).toEqual([["a", "b"], ["a"], ["b"], ["c"]]);
  });
});
