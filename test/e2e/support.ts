/** Small helpers shared by the e2e tests (not a test file). */
import { Client } from "@langchain/langgraph-sdk";
import { expect } from "vitest";

export const AGENT_ASSISTANT_ID = "fe096781-5601-53d2-b2f6-0d3403f7e9ca";

/** An SDK client with retries off, so a 5xx or a dropped connection fails the test instead of being retried. */
export function sdk(apiUrl: string): Client {
  return new Client({ apiUrl, apiKey: null, callerOptions: { maxRetries: 0 } });
}

export const userInput = (text: string) => ({ messages: [{ role: "user", content: text }] });

export interface Chunk {
  event: string;
  data: unknown;
  id?: string;
}

/** Drains an SDK stream into an array. */
export async function collect(stream: AsyncIterable<unknown>): Promise<Chunk[]> {
  const out: Chunk[] = [];
  for await (const chunk of stream) out.push(chunk as Chunk);
  return out;
}

interface MessageLike {
  type?: string;
  content?: unknown;
}

/** The text of the last message in a values payload (`{messages: [...]}`). */
export function lastMessageText(values: unknown): string | undefined {
  const messages = (values as { messages?: MessageLike[] } | null)?.messages;
  const last = messages?.at(-1);
  return typeof last?.content === "string" ? last.content : undefined;
}

export function messageTypes(values: unknown): Array<string | undefined> {
  return ((values as { messages?: MessageLike[] } | null)?.messages ?? []).map((m) => m.type);
}

/**
 * Checks the shape every openplane stream must have: a first `metadata` event
 * `{run_id, attempt}`, and a last `values` event whose last message is the AI
 * reply. Returns the run id.
 */
export function expectAgentStream(chunks: Chunk[], reply: string): string {
  expect(chunks.length).toBeGreaterThan(1);
  const first = chunks[0]!;
  expect(first.event).toBe("metadata");
  const meta = first.data as { run_id: string; attempt: number };
  expect(meta).toEqual({ run_id: expect.any(String), attempt: 1 });
  const values = chunks.filter((c) => c.event === "values");
  expect(values.length).toBeGreaterThan(0);
  expect(lastMessageText(values.at(-1)!.data)).toBe(reply);
  expect(chunks.some((c) => c.event === "error")).toBe(false);
  return meta.run_id;
}

/** Joins the text of the AI message chunks of `messages` (messages-tuple) events. */
export function streamedText(chunks: Chunk[]): string {
  return chunks
    .filter((c) => c.event === "messages")
    .map((c) => (c.data as [MessageLike, unknown])[0])
    .filter((m) => m.type === "AIMessageChunk" || m.type === "ai")
    .map((m) => (typeof m.content === "string" ? m.content : ""))
    .join("");
}

export interface SseEvent {
  id: string;
  event: string;
  data: unknown;
}

/**
 * Parses a raw SSE body strictly: every block must carry `id:`, `event:` and
 * `data:` (one line each, JSON data); comment blocks (`: heartbeat`) are skipped.
 */
export function parseSse(text: string): SseEvent[] {
  const events: SseEvent[] = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    if (block.trim() === "") continue;
    const lines = block.split(/\r?\n/).filter((l) => !l.startsWith(":"));
    if (lines.length === 0) continue;
    const fields = new Map<string, string>();
    for (const line of lines) {
      const i = line.indexOf(":");
      expect(i, `malformed SSE line ${JSON.stringify(line)}`).toBeGreaterThan(0);
      const key = line.slice(0, i);
      expect(fields.has(key), `duplicate field ${key} in SSE block ${JSON.stringify(block)}`).toBe(false);
      fields.set(key, line.slice(i + 1).replace(/^ /, ""));
    }
    expect([...fields.keys()].sort(), `SSE block ${JSON.stringify(block)}`).toEqual(["data", "event", "id"]);
    events.push({ id: fields.get("id")!, event: fields.get("event")!, data: JSON.parse(fields.get("data")!) });
  }
  return events;
}

/** Orders `<ms>-<seq>` stream ids (bare integers too). */
export function compareEventIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split("-").map(Number);
  const [bm = 0, bs = 0] = b.split("-").map(Number);
  return am !== bm ? am - bm : as - bs;
}

export function expectStrictlyIncreasingIds(events: Array<{ id: string }>): void {
  for (let i = 1; i < events.length; i++) {
    expect(
      compareEventIds(events[i - 1]!.id, events[i]!.id),
      `event ids must increase: ${events[i - 1]!.id} then ${events[i]!.id}`,
    ).toBeLessThan(0);
  }
}
