import { AIMessage, AIMessageChunk, HumanMessage, ToolMessage } from "@langchain/core/messages";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Hono } from "hono";
import { frame, streamBody } from "../../src/http/sse.js";
import type { BodyWriter } from "../../src/http/sse.js";
import { IdClock, compareIds, isFromStart } from "../../src/stream/bus.js";
import { EventQueue } from "../../src/stream/event-queue.js";
import { toJson, toPlain } from "../../src/stream/serialize.js";

describe("compareIds", () => {
  it("orders by milliseconds, then by sequence, numerically", () => {
    expect(compareIds("1-0", "2-0")).toBeLessThan(0);
    expect(compareIds("2-0", "1-9")).toBeGreaterThan(0);
    expect(compareIds("5-2", "5-10")).toBeLessThan(0); // not lexicographic
    expect(compareIds("10-0", "9-0")).toBeGreaterThan(0);
    expect(compareIds("7-3", "7-3")).toBe(0);
  });

  it("accepts bare integers as <ms>-0", () => {
    expect(compareIds("5", "5-0")).toBe(0);
    expect(compareIds("5", "5-1")).toBeLessThan(0);
    expect(compareIds("6", "5-99")).toBeGreaterThan(0);
  });

  it("sorts a shuffled list of ids", () => {
    const ids = ["1700000000001-0", "1700000000000-10", "1700000000000-2", "1700000000000-0", "1700000000002-0"];
    expect([...ids].sort(compareIds)).toEqual([
      "1700000000000-0",
      "1700000000000-2",
      "1700000000000-10",
      "1700000000001-0",
      "1700000000002-0",
    ]);
  });
});

describe("isFromStart", () => {
  it.each(["-1", "0", "-", "0-0"])("treats %j as from the beginning", (after) => {
    expect(isFromStart(after)).toBe(true);
  });
  it.each([undefined, "1-0", "1700000000000-0", ""])("does not treat %j as from the beginning", (after) => {
    expect(isFromStart(after)).toBe(false);
  });
});

describe("IdClock", () => {
  afterEach(() => vi.useRealTimers());

  it("gives strictly increasing ids per run, even in one millisecond", () => {
    vi.useFakeTimers({ now: 1_700_000_000_000, toFake: ["Date"] });
    const clock = new IdClock();
    const ids = Array.from({ length: 5 }, () => clock.next("r"));
    expect(ids).toEqual(["1700000000000-0", "1700000000000-1", "1700000000000-2", "1700000000000-3", "1700000000000-4"]);
    vi.setSystemTime(1_700_000_000_007);
    expect(clock.next("r")).toBe("1700000000007-0");
  });

  it("never goes backwards when the wall clock does", () => {
    vi.useFakeTimers({ now: 1_700_000_000_100, toFake: ["Date"] });
    const clock = new IdClock();
    const a = clock.next("r");
    vi.setSystemTime(1_700_000_000_000);
    const b = clock.next("r");
    expect(compareIds(b, a)).toBeGreaterThan(0);
    expect(b).toBe("1700000000100-1");
  });

  it("keeps runs independent", () => {
    vi.useFakeTimers({ now: 1_700_000_000_000, toFake: ["Date"] });
    const clock = new IdClock();
    clock.next("a");
    clock.next("a");
    expect(clock.next("b")).toBe("1700000000000-0");
  });

  it("advance() moves past an id seen elsewhere, and never moves back", () => {
    vi.useFakeTimers({ now: 1_700_000_000_000, toFake: ["Date"] });
    const clock = new IdClock();
    clock.advance("r", "1700000005000-3");
    expect(clock.next("r")).toBe("1700000005000-4");
    clock.advance("r", "1700000001000-0"); // older: ignored
    expect(clock.next("r")).toBe("1700000005000-5");
    clock.advance("r", "1700000005000-9"); // same ms, later seq
    expect(clock.next("r")).toBe("1700000005000-10");
    vi.setSystemTime(1_700_000_006_000);
    expect(clock.next("r")).toBe("1700000006000-0");
  });

  it("forget() drops a run's state", () => {
    vi.useFakeTimers({ now: 1_700_000_000_000, toFake: ["Date"] });
    const clock = new IdClock();
    clock.advance("r", "1700000009000-0");
    clock.forget("r");
    expect(clock.next("r")).toBe("1700000000000-0");
  });
});

describe("sse frame", () => {
  it("writes id, event and data lines ending in a blank line", () => {
    expect(frame({ id: "1-0", event: "values", data: '{"a":1}' })).toBe('id: 1-0\nevent: values\ndata: {"a":1}\n\n');
  });

  it("omits the id line when there is no id", () => {
    expect(frame({ event: "metadata", data: "null" })).toBe("event: metadata\ndata: null\n\n");
  });

  it("strips CR and LF from the event name and id so they cannot inject fields", () => {
    const out = frame({ id: "1-0\r\ndata: evil", event: "values\nid: 9\r", data: "{}" });
    expect(out).toBe("id: 1-0data: evil\nevent: valuesid: 9\ndata: {}\n\n");
    // Exactly three field lines and the terminating blank line.
    expect(out.split("\n")).toEqual(["id: 1-0data: evil", "event: valuesid: 9", "data: {}", "", ""]);
  });
});

describe("toJson", () => {
  it("turns LangChain messages into plain dicts with a type", () => {
    const human = new HumanMessage({ content: "hi", id: "h1" });
    const ai = new AIMessage({
      content: "hello",
      id: "a1",
      tool_calls: [{ id: "call1", name: "search", args: { q: "x" }, type: "tool_call" }],
    });
    const tool = new ToolMessage({ content: "result", tool_call_id: "call1", id: "t1" });
    const out = JSON.parse(toJson({ messages: [human, ai, tool] })) as { messages: Record<string, unknown>[] };
    const [h, a, t] = out.messages;
    expect(h).toMatchObject({ type: "human", content: "hi", id: "h1" });
    expect(a).toMatchObject({ type: "ai", content: "hello", id: "a1" });
    expect(a!.tool_calls).toEqual([expect.objectContaining({ id: "call1", name: "search", args: { q: "x" } })]);
    expect(t).toMatchObject({ type: "tool", content: "result", tool_call_id: "call1", id: "t1" });
    // Not LangChain's constructor serialisation.
    for (const m of out.messages) {
      expect(m).not.toHaveProperty("lc");
      expect(m).not.toHaveProperty("kwargs");
    }
  });

  it("gives messages without an id an explicit null id", () => {
    const out = JSON.parse(toJson(new HumanMessage("no id"))) as Record<string, unknown>;
    expect(out).toMatchObject({ type: "human", content: "no id", id: null });
  });

  it("serialises message chunks as AI messages in tuples", () => {
    const chunk = new AIMessageChunk({ content: "tok", id: "c1" });
    const out = JSON.parse(toJson([chunk, { langgraph_node: "agent" }])) as [Record<string, unknown>, unknown];
    expect(out[0]).toMatchObject({ type: "ai", content: "tok", id: "c1", tool_call_chunks: [] });
    expect(out[1]).toEqual({ langgraph_node: "agent" });
  });

  it("handles bigint, Error, bytes and undefined", () => {
    expect(JSON.parse(toJson({ n: 10n }))).toEqual({ n: "10" });
    expect(JSON.parse(toJson({ e: new TypeError("boom") }))).toEqual({ e: { error: "TypeError", message: "boom" } });
    expect(JSON.parse(toJson({ b: new Uint8Array([1, 2, 3]) }))).toEqual({ b: "AQID" });
    expect(toJson(undefined)).toBe("null");
  });

  it("toPlain returns a plain-object copy", () => {
    const plain = toPlain<{ messages: Array<{ type: string }> }>({ messages: [new HumanMessage("x")] });
    expect(plain.messages[0]!.type).toBe("human");
    expect(Object.getPrototypeOf(plain.messages[0])).toBe(Object.prototype);
  });

  it("emits one-line JSON even when strings contain newlines (safe for SSE data)", () => {
    const text = toJson({ content: "line1\nline2\r\n" });
    expect(text).not.toMatch(/[\r\n]/);
    expect(frame({ id: "1-0", event: "values", data: text }).split("\n")).toHaveLength(5);
  });
});

describe("EventQueue", () => {
  it("yields pushed events in order, then ends after draining", async () => {
    const q = new EventQueue();
    const got: string[] = [];
    const consumer = (async () => {
      for await (const ev of q) got.push(ev.id);
    })();
    q.push({ id: "1", event: "e", data: "1" });
    await Promise.resolve();
    q.push({ id: "2", event: "e", data: "2" });
    q.push({ id: "3", event: "e", data: "3" });
    q.end();
    q.push({ id: "4", event: "e", data: "4" }); // ignored after end
    await consumer;
    expect(got).toEqual(["1", "2", "3"]);
    expect(q.isEnded).toBe(true);
  });
});

describe("streamBody", () => {
  /** An app whose one route streams with `produce`; returns the response of a request to it. */
  const respond = (produce: (w: BodyWriter) => Promise<void>) => {
    const app = new Hono();
    app.get("/", (c) => {
      c.header("Content-Type", "application/json");
      c.header("Content-Location", "/runs/x");
      return streamBody(c, produce);
    });
    return app.request("/");
  };

  it("sends the context's headers and every chunk in order, then ends when the producer returns", async () => {
    const res = await respond(async (w) => {
      await w.write("\n");
      await Promise.all([w.write("a"), w.write("b")]); // a heartbeat racing a write
      await w.write('{"done":true}');
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Location")).toBe("/runs/x");
    expect(res.headers.get("Content-Type")).toBe("application/json");
    expect(await res.text()).toBe('\nab{"done":true}');
  });

  it("holds a write until the reader takes the chunk before it (backpressure)", async () => {
    let written = 0;
    const res = await respond(async (w) => {
      for (let i = 0; i < 5; i++) {
        await w.write(String(i));
        written++;
      }
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(written).toBeLessThan(5); // nobody reads yet
    expect(await res.text()).toBe("01234");
    expect(written).toBe(5);
  });

  it("calls onAbort once when the client cancels before the end, and later writes resolve without effect", async () => {
    const aborted = vi.fn();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let after: Promise<void> | null = null;
    const res = await respond(async (w) => {
      w.onAbort(aborted);
      await w.write("first");
      await gate;
      after = w.write("after");
    });
    const reader = res.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("first");
    await reader.cancel();
    expect(aborted).toHaveBeenCalledTimes(1);
    release();
    await new Promise((r) => setTimeout(r, 10));
    await expect(after).resolves.toBeUndefined();
    expect(aborted).toHaveBeenCalledTimes(1);
  });

  it("does not call onAbort when the body was read to its end", async () => {
    const aborted = vi.fn();
    const res = await respond(async (w) => {
      w.onAbort(aborted);
      await w.write("x");
    });
    expect(await res.text()).toBe("x");
    expect(aborted).not.toHaveBeenCalled();
  });
});
