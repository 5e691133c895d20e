/**
 * GET /threads/{id}/stream: one long-lived SSE stream of a thread across its runs
 * (run_modes, lifecycle, state_update), resumable with Last-Event-ID, on both buses,
 * and through the official JS SDK's `threads.joinStream` against a listening server.
 */
import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import type { ServerType } from "@hono/node-server";
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compareIds } from "../../src/stream/bus.js";
import { parseThreadEventId, publishThreadEvent } from "../../src/stream/thread-stream.js";
import { createTestStack, parseSse } from "../helpers/app.js";
import type { SseEvent, TestStack } from "../helpers/app.js";
import { createTestDatabase, hasRedis, redisSkipReason, redisUri } from "../helpers/services.js";
import type { TestDatabase } from "../helpers/services.js";

type Json = Record<string, unknown>;

/** An open SSE response read incrementally. */
function reader(res: Response) {
  const events: SseEvent[] = [];
  const body = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  let ended = false;
  const pump = (async () => {
    try {
      for (;;) {
        const { done, value } = await body.read();
        if (done) break;
        buf += value;
        const cut = buf.lastIndexOf("\n\n");
        if (cut < 0) continue;
        events.push(...parseSse(buf.slice(0, cut + 2)));
        buf = buf.slice(cut + 2);
      }
    } catch {
      // cancelled
    } finally {
      ended = true;
    }
  })();
  return {
    events,
    get ended() {
      return ended;
    },
    async until(pred: (evs: SseEvent[]) => boolean, ms = 15_000): Promise<SseEvent[]> {
      const deadline = Date.now() + ms;
      while (!pred(events)) {
        if (Date.now() > deadline) throw new Error(`stream condition not met within ${ms} ms: ${JSON.stringify(events.map((e) => e.event))}`);
        if (ended) throw new Error(`stream ended early: ${JSON.stringify(events.map((e) => e.event))}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return events;
    },
    async close() {
      await body.cancel().catch(() => {});
      await pump;
    },
  };
}

/** Orders thread stream ids: `T` or `T/<run event id>`, compared as pairs. */
function compareThreadIds(a: string, b: string): number {
  const pa = parseThreadEventId(a)!;
  const pb = parseThreadEventId(b)!;
  const c = compareIds(pa.thread, pb.thread);
  if (c !== 0) return c;
  if (pa.run === null || pb.run === null) return (pa.run === null ? 0 : 1) - (pb.run === null ? 0 : 1);
  return compareIds(pa.run, pb.run);
}

const terminal = (e: SseEvent) => e.event === "lifecycle" && (e.data as Json).status !== "running";
const count = (evs: SseEvent[], pred: (e: SseEvent) => boolean) => evs.filter(pred).length;

function suite(name: string, make: () => Promise<TestStack>) {
  describe(`thread stream (${name})`, () => {
    let stack: TestStack;
    const request = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
      stack.app.request(path, { method, headers: { "Content-Type": "application/json", ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
    const json = async (method: string, path: string, body?: unknown, expected = 200): Promise<Json> => {
      const res = await request(method, path, body);
      const text = await res.text();
      expect(res.status, `${method} ${path} → ${text}`).toBe(expected);
      return JSON.parse(text) as Json;
    };
    const thread = async () => (await json("POST", "/threads", {})).thread_id as string;
    const open = async (path: string, headers: Record<string, string> = {}) => {
      const res = await request("GET", path, undefined, headers);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
      return reader(res);
    };
    /** Runs the counter graph to its end; returns the run id. */
    const runToEnd = async (threadId: string) => {
      const res = await request("POST", `/threads/${threadId}/runs/wait`, { assistant_id: "counter", input: {}, stream_mode: ["values", "updates"] });
      expect(res.status).toBe(200);
      await res.text();
      return res.headers.get("Content-Location")!.split("/").at(-1)!;
    };
    const open_: ReturnType<typeof reader>[] = [];
    const track = <T extends ReturnType<typeof reader>>(r: T) => (open_.push(r), r);

    beforeAll(async () => {
      stack = await make();
    });
    afterAll(async () => {
      for (const r of open_) await r.close();
      await stack?.close();
    });

    it("a run's end logged after the next run's start (two processes) does not cut the next run off", async () => {
      const threadId = await thread();
      const s = track(await open(`/threads/${threadId}/stream`));
      const [a, b] = [randomUUID(), randomUUID()];
      const bus = stack.bus;
      await publishThreadEvent(bus, threadId, "lifecycle", { run_id: a, status: "running" });
      await bus.publish(a, "values", '{"n":1}');
      await bus.finish(a);
      // The next run started (another worker) before the first one's end reached the thread log.
      await publishThreadEvent(bus, threadId, "lifecycle", { run_id: b, status: "running" });
      await bus.publish(b, "metadata", `{"run_id":"${b}"}`);
      await s.until((e) => e.some((x) => x.event === "metadata"));
      await publishThreadEvent(bus, threadId, "lifecycle", { run_id: a, status: "success" });
      await new Promise((r) => setTimeout(r, 200)); // the reader has seen the late end before b goes on
      await bus.publish(b, "values", '{"n":2}');
      await bus.finish(b);
      await publishThreadEvent(bus, threadId, "lifecycle", { run_id: b, status: "success" });
      const evs = await s.until((e) => e.some((x) => x.event === "lifecycle" && (x.data as Json).run_id === b && (x.data as Json).status === "success"));
      expect(evs.map((e) => `${e.event}:${JSON.stringify(e.data)}`)).toEqual([
        `lifecycle:{"run_id":"${a}","status":"running"}`,
        'values:{"n":1}',
        `lifecycle:{"run_id":"${b}","status":"running"}`,
        `metadata:{"run_id":"${b}"}`,
        'values:{"n":2}',
        `lifecycle:{"run_id":"${a}","status":"success"}`,
        `lifecycle:{"run_id":"${b}","status":"success"}`,
      ]);
      for (let i = 1; i < evs.length; i++) expect(compareThreadIds(evs[i]!.id!, evs[i - 1]!.id!)).toBeGreaterThan(0);
    });

    it("run_modes (default): two successive runs, in order, with lifecycle markers and ordered ids", async () => {
      const threadId = await thread();
      const s = track(await open(`/threads/${threadId}/stream`));
      const r1 = await runToEnd(threadId);
      const r2 = await runToEnd(threadId);
      const evs = await s.until((e) => count(e, terminal) === 2);
      const shape = evs.map((e) => [e.event, (e.data as Json).run_id ?? null]);
      const i1 = shape.findIndex(([e, r]) => e === "lifecycle" && r === r1);
      const i2 = shape.findIndex(([e, r]) => e === "lifecycle" && r === r2);
      expect(evs[i1]!.data).toEqual({ run_id: r1, status: "running" });
      expect(evs[i1 + 1]).toMatchObject({ event: "metadata", data: { run_id: r1, attempt: 1 } });
      expect(evs[i2 - 1]!.data).toEqual({ run_id: r1, status: "success" });
      expect(evs[i2]!.data).toEqual({ run_id: r2, status: "running" });
      expect(evs[i2 + 1]).toMatchObject({ event: "metadata", data: { run_id: r2, attempt: 1 } });
      expect(evs.at(-1)!.data).toEqual({ run_id: r2, status: "success" });
      // Each run's own events sit between its markers: values and updates of the counter graph.
      const run1 = evs.slice(i1 + 1, i2 - 1).map((e) => e.event);
      expect(run1.filter((e) => e === "updates")).toHaveLength(3);
      expect(run1).toContain("values");
      expect(evs.some((e) => e.event === "state_update" || e.event === "__end__")).toBe(false);
      for (let i = 1; i < evs.length; i++) expect(compareThreadIds(evs[i]!.id!, evs[i - 1]!.id!), `id ${i}`).toBeGreaterThan(0);
      expect(s.ended).toBe(false); // stays open for later runs
    });

    it("lifecycle only: run start and end markers", async () => {
      const threadId = await thread();
      const s = track(await open(`/threads/${threadId}/stream?stream_mode=lifecycle`));
      const r1 = await runToEnd(threadId);
      const evs = await s.until((e) => count(e, terminal) === 1);
      expect(evs.map((e) => [e.event, e.data])).toEqual([
        ["lifecycle", { run_id: r1, status: "running" }],
        ["lifecycle", { run_id: r1, status: "success" }],
      ]);
    });

    it("state_update after a run and after POST /threads/{id}/state (stream_modes, repeated)", async () => {
      const threadId = await thread();
      const s = track(await open(`/threads/${threadId}/stream?stream_modes=state_update&stream_modes=lifecycle`));
      const r1 = await runToEnd(threadId);
      await s.until((e) => count(e, (x) => x.event === "state_update") === 1);
      await json("POST", `/threads/${threadId}/state`, { values: { count: 10 } });
      const evs = await s.until((e) => count(e, (x) => x.event === "state_update") === 2);
      const updates = evs.filter((e) => e.event === "state_update");
      expect(updates[0]!.data).toMatchObject({ run_id: r1, values: { count: 3, steps: ["one", "two", "three"] } });
      expect(updates[1]!.data).not.toHaveProperty("run_id");
      const state = await json("GET", `/threads/${threadId}/state`);
      expect((updates[1]!.data as Json).values).toEqual(state.values);
      // The run's end marker comes before the state it left.
      expect(evs.map((e) => e.event)).toEqual(["lifecycle", "lifecycle", "state_update", "state_update"]);
    });

    it("Last-Event-ID resumes with every later event exactly once (inside a run, at a marker, from the start)", async () => {
      const threadId = await thread();
      const a = track(await open(`/threads/${threadId}/stream?stream_mode=${encodeURIComponent('["run_modes","state_update"]')}`));
      await runToEnd(threadId);
      await runToEnd(threadId);
      const all = [...(await a.until((e) => count(e, (x) => x.event === "state_update") === 2))];
      const cuts = [
        all.findIndex((e) => e.event === "updates"), // inside run 1
        all.findIndex((e, i) => i > 0 && e.event === "lifecycle" && (e.data as Json).status === "running"), // run 2's marker
        all.findIndex((e) => e.event === "state_update"), // between runs
      ];
      for (const cut of cuts) {
        expect(cut).toBeGreaterThanOrEqual(0);
        const b = await open(`/threads/${threadId}/stream?stream_mode=run_modes&stream_mode=state_update`, { "Last-Event-ID": all[cut]!.id! });
        const want = all.slice(cut + 1);
        await b.until((e) => e.length >= want.length);
        await new Promise((r) => setTimeout(r, 150));
        expect(b.events.map((e) => [e.id, e.event]), `resume after #${cut}`).toEqual(want.map((e) => [e.id, e.event]));
        await b.close();
      }
      const fromStart = await open(`/threads/${threadId}/stream?stream_mode=run_modes&stream_mode=state_update`, { "Last-Event-ID": "-1" });
      await fromStart.until((e) => e.length >= all.length);
      expect(fromStart.events.map((e) => e.id)).toEqual(all.map((e) => e.id));
      await fromStart.close();
      // And the streams keep going: a third run reaches every open reader.
      const r3 = await runToEnd(threadId);
      await a.until((e) => e.some((x) => x.event === "lifecycle" && (x.data as Json).run_id === r3 && x.data && (x.data as Json).status === "success"));
    });

    it("404 for an unknown thread; 422 naming the field for a bad stream_mode or Last-Event-ID", async () => {
      const missing = await request("GET", `/threads/00000000-0000-4000-8000-000000000000/stream`);
      expect(missing.status).toBe(404);
      const threadId = await thread();
      const bad = await request("GET", `/threads/${threadId}/stream?stream_mode=values`);
      expect(bad.status).toBe(422);
      expect(await bad.text()).toMatch(/stream_mode/);
      const badList = await request("GET", `/threads/${threadId}/stream?stream_modes=${encodeURIComponent('["lifecycle","nope"]')}`);
      expect(badList.status).toBe(422);
      expect(await badList.text()).toMatch(/stream_modes/);
      const badId = await request("GET", `/threads/${threadId}/stream`, undefined, { "Last-Event-ID": "garbage" });
      expect(badId.status).toBe(422);
      expect(await badId.text()).toMatch(/Last-Event-ID/);
    });
  });
}

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase("thread_stream");
});
afterAll(async () => {
  await db?.drop();
});

suite("memory bus", () => createTestStack({ postgresUri: db.uri, bus: "memory", queue: "postgres" }));

describe.skipIf(!hasRedis())(`with Redis${hasRedis() ? "" : ` (skipped: ${redisSkipReason()})`}`, () => {
  suite("redis bus", () => createTestStack({ postgresUri: db.uri, redisUri: redisUri(), bus: "redis", queue: "redis" }));
});

describe("SDK: client.threads.joinStream against a listening server", () => {
  let stack: TestStack;
  let server: ServerType;
  let client: Client;
  beforeAll(async () => {
    stack = await createTestStack({ postgresUri: db.uri });
    server = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: stack.app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s));
    });
    client = new Client({ apiUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, apiKey: null, callerOptions: { maxRetries: 0 } });
  });
  afterAll(async () => {
    (server as unknown as { closeAllConnections?: () => void })?.closeAllConnections?.();
    await new Promise((r) => server?.close(r));
    await stack?.close();
  });

  /** Collects a joinStream until `stop` says so, then aborts it. */
  async function collect(threadId: string, opts: { streamMode?: ("run_modes" | "lifecycle" | "state_update")[]; lastEventId?: string }, stop: (evs: { id?: string; event: string; data: unknown }[]) => boolean, started?: () => Promise<unknown>) {
    const ctl = new AbortController();
    const evs: { id?: string; event: string; data: unknown }[] = [];
    const reading = (async () => {
      try {
        for await (const ev of client.threads.joinStream(threadId, { ...opts, signal: ctl.signal } as never)) {
          const e = ev as { id?: string; event: string; data: unknown };
          evs.push(e);
          if (stop(evs)) ctl.abort();
        }
      } catch (err) {
        if (!ctl.signal.aborted) throw err;
      }
    })();
    await new Promise((r) => setTimeout(r, 200)); // the stream is attached
    await started?.();
    const timer = setTimeout(() => ctl.abort(), 15_000);
    await reading;
    clearTimeout(timer);
    return evs;
  }

  it("streams a run's lifecycle and state, and resumes with lastEventId", async () => {
    const t = await client.threads.create();
    let runId = "";
    const evs = await collect(t.thread_id, { streamMode: ["lifecycle", "state_update"] }, (e) => e.some((x) => x.event === "state_update"), async () => {
      const run = await client.runs.create(t.thread_id, "counter", { input: {} });
      runId = run.run_id;
    });
    expect(evs.map((e) => e.event)).toEqual(["lifecycle", "lifecycle", "state_update"]);
    expect(evs[0]!.data).toEqual({ run_id: runId, status: "running" });
    expect(evs[1]!.data).toEqual({ run_id: runId, status: "success" });
    expect(evs[2]!.data).toMatchObject({ run_id: runId, values: { count: 3 } });

    // Resume after the start marker with run_modes: the run's events, then its end marker.
    const resumed = await collect(t.thread_id, { streamMode: ["run_modes"], lastEventId: evs[0]!.id }, (e) => e.some((x) => x.event === "lifecycle"));
    expect(resumed[0]).toMatchObject({ event: "metadata", data: { run_id: runId, attempt: 1 } });
    expect(resumed.at(-1)).toMatchObject({ event: "lifecycle", data: { run_id: runId, status: "success" }, id: evs[1]!.id });
  });
});
