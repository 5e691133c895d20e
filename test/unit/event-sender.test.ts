import { describe, expect, it } from "vitest";
import { createEventSender } from "../../src/executor/event-sender.js";

/** A send whose answers come only when the test says. */
function controlledSend() {
  const sent: string[] = [];
  const answers: Array<(err?: unknown) => void> = [];
  const send = (event: string) => {
    sent.push(event);
    return new Promise<void>((resolve, reject) => answers.push((err) => (err ? reject(err) : resolve())));
  };
  const answer = async (err?: unknown) => {
    answers.shift()!(err);
    await new Promise((r) => setTimeout(r, 0));
  };
  return { sent, send, answer };
}

describe("event sender", () => {
  it("sends in call order without waiting for answers, up to max unanswered", async () => {
    const c = controlledSend();
    const s = createEventSender(c.send, 2);
    await s.send("a", "");
    let third = false;
    const b = s.send("b", "");
    const held = b.then(() => s.send("c", "")).then(() => (third = true));
    await new Promise((r) => setTimeout(r, 0));
    expect(c.sent).toEqual(["a", "b"]);
    expect(third).toBe(false);
    await c.answer(); // a: b's send returns, c goes out and waits (b and c unanswered)
    expect(c.sent).toEqual(["a", "b", "c"]);
    expect(third).toBe(false);
    let flushed = false;
    const f = s.flush().then(() => (flushed = true));
    await c.answer(); // b
    await held;
    expect(flushed).toBe(false);
    await c.answer(); // c
    await f;
    expect(flushed).toBe(true);
  });

  it("after a failure, later sends and flush throw it", async () => {
    const c = controlledSend();
    const s = createEventSender(c.send, 8);
    const boom = new Error("redis down");
    await s.send("a", "");
    await c.answer(boom);
    await expect(s.send("b", "")).rejects.toBe(boom);
    await expect(s.flush()).rejects.toBe(boom);
    expect(c.sent).toEqual(["a"]);
  });
});
