import { afterEach, describe, expect, it, vi } from "vitest";
import { SYSTEM_ASSISTANT_NAMESPACE, systemAssistantId } from "../../src/domain/assistant.js";
import { isUuid, uuidv5, uuidv7 } from "../../src/lib/uuid.js";

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("uuidv5", () => {
  it("gives the official server's system assistant id for the graph 'agent'", () => {
    expect(systemAssistantId("agent")).toBe("fe096781-5601-53d2-b2f6-0d3403f7e9ca");
    expect(uuidv5("agent", SYSTEM_ASSISTANT_NAMESPACE)).toBe("fe096781-5601-53d2-b2f6-0d3403f7e9ca");
  });

  it("matches the RFC 9562 example (DNS namespace, www.example.com)", () => {
    expect(uuidv5("www.example.com", "6ba7b810-9dad-11d1-80b4-00c04fd430c8")).toBe(
      "2ed6657d-e927-568b-95e1-2665a8aea6a2",
    );
  });

  it("is deterministic, version 5, RFC variant, and differs per name", () => {
    const a = systemAssistantId("counter");
    expect(systemAssistantId("counter")).toBe(a);
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(systemAssistantId("counter2")).not.toBe(a);
  });
});

describe("uuidv7", () => {
  afterEach(() => vi.useRealTimers());

  it("has the v7 version and RFC variant bits", () => {
    for (let i = 0; i < 200; i++) expect(uuidv7()).toMatch(V7);
  });

  it("encodes the current time in the first 48 bits", () => {
    const before = Date.now();
    const id = uuidv7();
    const after = Date.now();
    const ms = parseInt(id.replace(/-/g, "").slice(0, 12), 16);
    // Monotonic ordering may push the timestamp ahead of the wall clock by a little.
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(after + 5);
  });

  it("sorts in creation order, even many in the same millisecond", () => {
    const ids = Array.from({ length: 10_000 }, () => uuidv7());
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
  });

  it("stays ordered when the clock is frozen past the 4096-per-ms sequence", () => {
    vi.useFakeTimers({ now: Date.now() + 60_000, toFake: ["Date"] });
    const ids = Array.from({ length: 5_000 }, () => uuidv7());
    expect([...ids].sort()).toEqual(ids);
    for (const id of ids) expect(id).toMatch(V7);
  });

  it("stays ordered when the clock goes backwards", () => {
    const first = uuidv7();
    vi.useFakeTimers({ now: Date.now() - 10_000, toFake: ["Date"] });
    const second = uuidv7();
    expect(second > first).toBe(true);
  });
});

describe("isUuid", () => {
  it("accepts canonical UUIDs in either case and rejects others", () => {
    expect(isUuid(uuidv7())).toBe(true);
    expect(isUuid("FE096781-5601-53D2-B2F6-0D3403F7E9CA")).toBe(true);
    expect(isUuid("fe0967815601-53d2-b2f6-0d3403f7e9ca")).toBe(false);
    expect(isUuid("agent")).toBe(false);
    expect(isUuid("")).toBe(false);
  });
});
