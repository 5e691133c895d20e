import { describe, expect, it } from "vitest";
import { Releasers } from "../../src/lib/releasers.js";

describe("Releasers", () => {
  it("runs cleanups in LIFO order, awaiting each", async () => {
    const r = new Releasers();
    const order: string[] = [];
    r.add("a", () => void order.push("a"));
    r.add("b", async () => {
      await new Promise((resolve) => setTimeout(resolve, 10));
      order.push("b");
    });
    r.add("c", () => void order.push("c"));
    await r.release();
    expect(order).toEqual(["c", "b", "a"]);
  });

  it("runs every cleanup even if some throw, and rethrows the first error", async () => {
    const r = new Releasers();
    const ran: string[] = [];
    const reported: Array<[string, unknown]> = [];
    const first = new Error("first (registered last)");
    const second = new Error("second");
    r.add("one", () => void ran.push("one"));
    r.add("two", async () => {
      ran.push("two");
      throw second;
    });
    r.add("three", () => {
      ran.push("three");
      throw first;
    });
    await expect(r.release((name, err) => reported.push([name, err]))).rejects.toBe(first);
    expect(ran).toEqual(["three", "two", "one"]);
    expect(reported).toEqual([
      ["three", first],
      ["two", second],
    ]);
  });

  it("returns the same promise when release is called again, running nothing twice", async () => {
    const r = new Releasers();
    let calls = 0;
    r.add("x", async () => {
      calls++;
      await new Promise((resolve) => setTimeout(resolve, 5));
    });
    const p1 = r.release();
    const p2 = r.release();
    expect(p2).toBe(p1);
    await p1;
    expect(r.release()).toBe(p1);
    expect(calls).toBe(1);
  });

  it("refuses new cleanups once release has started", async () => {
    const r = new Releasers();
    const done = r.release();
    expect(() => r.add("late", () => {})).toThrow(/late/);
    await done;
  });

  it("resolves with nothing registered", async () => {
    await expect(new Releasers().release()).resolves.toBeUndefined();
  });
});
