import { describe, expect, it } from "vitest";
import { withoutNul } from "../../src/lib/nul.js";

describe("withoutNul", () => {
  it("returns a value without NUL as it is (same object)", () => {
    const v = { a: [1, "x", { b: null }], when: new Date(0) };
    expect(withoutNul(v)).toBe(v);
  });

  it("removes NULs from strings and keys at any depth, as JSON would send them", () => {
    const v = { "k\u0000": ["a\u0000b", { c: "\u0000" }], when: new Date(0), n: 1 };
    expect(withoutNul(v)).toEqual({ k: ["ab", { c: "" }], when: "1970-01-01T00:00:00.000Z", n: 1 });
    expect(v["k\u0000"][0]).toBe("a\u0000b");
  });
});
