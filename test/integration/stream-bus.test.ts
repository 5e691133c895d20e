import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CancelAction } from "../../src/domain/run.js";
import { uuidv7 } from "../../src/lib/uuid.js";
import { END_EVENT, compareIds } from "../../src/stream/bus.js";
import type { RunStreamBus, StreamEvent, Subscription } from "../../src/stream/bus.js";
import { createMemoryBus } from "../../src/stream/memory-bus.js";
import { createRedisBus } from "../../src/stream/redis-bus.js";
import { hasRedis, redisSkipReason, redisUri, uniquePrefix } from "../helpers/services.js";

const TIMEOUT_MS = 5_000;

/** Reads a subscription to its end; fails (instead of hanging) if it does not end in time. */
async function collect(sub: Subscription, ms = TIMEOUT_MS): Promise<StreamEvent[]> {
  const got: StreamEvent[] = [];
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void sub.close();
      reject(new Error(`subscription did not end within ${ms} ms; got ${JSON.stringify(got.map((e) => e.data))}`));
    }, ms);
  });
  try {
    await Promise.race([
      (async () => {
        for await (const ev of sub) got.push(ev);
      })(),
      timeout,
    ]);
    return got;
  } finally {
    clearTimeout(timer);
  }
}

/** Reads the first `n` events, then stops reading (the subscription stays open). */
async function take(sub: Subscription, n: number, ms = TIMEOUT_MS): Promise<StreamEvent[]> {
  const got: StreamEvent[] = [];
  const it = sub[Symbol.asyncIterator]();
  const deadline = Date.now() + ms;
  while (got.length < n) {
    const left = deadline - Date.now();
    const next = await Promise.race([
      it.next(),
      new Promise<"timeout">((r) => setTimeout(() => r("timeout"), Math.max(0, left)).unref()),
    ]);
    if (next === "timeout") throw new Error(`only ${got.length} of ${n} events within ${ms} ms`);
    if (next.done) break;
    got.push(next.value);
  }
  return got;
}

const datas = (evs: StreamEvent[]) => evs.map((e) => JSON.parse(e.data) as unknown);

function expectIncreasing(evs: StreamEvent[]) {
  for (let i = 1; i < evs.length; i++) expect(compareIds(evs[i]!.id, evs[i - 1]!.id), `${evs[i - 1]!.id} → ${evs[i]!.id}`).toBeGreaterThan(0);
}

async function publishN(bus: RunStreamBus, runId: string, from: number, to: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = from; i < to; i++) ids.push(await bus.publish(runId, "values", JSON.stringify({ i })));
  return ids;
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => ({ i: from + k }));

interface BusFactory {
  make(): Promise<RunStreamBus>;
}

/** The contract every RunStreamBus implementation must meet. */
function busContract(name: string, factory: () => BusFactory) {
  describe(`${name}: RunStreamBus contract`, () => {
    let bus: RunStreamBus;
    beforeAll(async () => {
      bus = await factory().make();
    });
    afterAll(async () => {
      await bus?.close();
    });

    it('subscribe from the start ("-1") gets every event in order, then ends on finish()', async () => {
      const run = uuidv7();
      const sub = await bus.subscribe(run, { after: "-1" });
      const reading = collect(sub);
      await publishN(bus, run, 0, 20);
      await bus.finish(run);
      const evs = await reading;
      expect(datas(evs)).toEqual(range(0, 20));
      expect(evs.every((e) => e.event === "values")).toBe(true);
      expect(evs.some((e) => e.event === END_EVENT)).toBe(false);
      await sub.close();
    });

    it("a subscription made before the first event misses nothing (subscribe-then-create)", async () => {
      const run = uuidv7();
      const sub = await bus.subscribe(run, { after: "-1" });
      await bus.publish(run, "metadata", JSON.stringify({ run_id: run, attempt: 1 }));
      await bus.finish(run);
      const evs = await collect(sub);
      expect(evs.map((e) => e.event)).toEqual(["metadata"]);
      expect(datas(evs)).toEqual([{ run_id: run, attempt: 1 }]);
    });

    it("gives strictly increasing <ms>-<seq> ids, also across calls in one millisecond", async () => {
      const run = uuidv7();
      const ids = await Promise.all(Array.from({ length: 50 }, (_, i) => bus.publish(run, "e", String(i))));
      const sequential = await publishN(bus, run, 0, 50);
      for (const id of [...ids, ...sequential]) expect(id).toMatch(/^\d+-\d+$/);
      expect(new Set([...ids, ...sequential]).size).toBe(100);
      const sorted = [...sequential].sort(compareIds);
      expect(sorted).toEqual(sequential);
      await bus.finish(run);
      const all = await collect(await bus.subscribe(run, { after: "-1" }));
      expect(all).toHaveLength(100);
      expectIncreasing(all);
    });

    it("subscribe after an id gets only the later events", async () => {
      const run = uuidv7();
      const ids = await publishN(bus, run, 0, 10);
      const sub = await bus.subscribe(run, { after: ids[3] });
      const reading = collect(sub);
      await publishN(bus, run, 10, 13);
      await bus.finish(run);
      const evs = await reading;
      expect(datas(evs)).toEqual(range(4, 13));
      expect(evs[0]!.id).toBe(ids[4]);
    });

    it("a live subscriber (no after) attached mid-run gets only new events, then ends", async () => {
      const run = uuidv7();
      await publishN(bus, run, 0, 5);
      const sub = await bus.subscribe(run, {});
      const reading = collect(sub);
      await publishN(bus, run, 5, 9);
      await bus.finish(run);
      expect(datas(await reading)).toEqual(range(5, 9));
    });

    it("two concurrent subscribers both get every event (no splitting)", async () => {
      const run = uuidv7();
      const [s1, s2] = await Promise.all([bus.subscribe(run, { after: "-1" }), bus.subscribe(run, { after: "-1" })]);
      const r1 = collect(s1);
      const r2 = collect(s2);
      await publishN(bus, run, 0, 30);
      await bus.finish(run);
      const [e1, e2] = await Promise.all([r1, r2]);
      expect(datas(e1)).toEqual(range(0, 30));
      expect(e2).toEqual(e1);
    });

    it("a subscriber closing does not disturb another", async () => {
      const run = uuidv7();
      const s1 = await bus.subscribe(run, { after: "-1" });
      const s2 = await bus.subscribe(run, { after: "-1" });
      await publishN(bus, run, 0, 2);
      expect(datas(await take(s1, 2))).toEqual(range(0, 2));
      await s1.close();
      await publishN(bus, run, 2, 4);
      await bus.finish(run);
      expect(datas(await collect(s2))).toEqual(range(0, 4));
    });

    it('subscribing to a finished run with "-1" replays everything and ends', async () => {
      const run = uuidv7();
      await publishN(bus, run, 0, 7);
      await bus.finish(run);
      const evs = await collect(await bus.subscribe(run, { after: "-1" }));
      expect(datas(evs)).toEqual(range(0, 7));
      expectIncreasing(evs);
      // Every start marker means the same thing.
      for (const after of ["0", "-", "0-0"]) {
        expect(datas(await collect(await bus.subscribe(run, { after })))).toEqual(range(0, 7));
      }
    });

    it("a live subscriber to a finished run ends at once with nothing", async () => {
      const run = uuidv7();
      await publishN(bus, run, 0, 3);
      await bus.finish(run);
      expect(await collect(await bus.subscribe(run, {}))).toEqual([]);
    });

    it("subscribing after an id of a finished run gets the rest and ends", async () => {
      const run = uuidv7();
      const ids = await publishN(bus, run, 0, 5);
      await bus.finish(run);
      expect(datas(await collect(await bus.subscribe(run, { after: ids[2] })))).toEqual(range(3, 5));
      expect(await collect(await bus.subscribe(run, { after: ids[4] }))).toEqual([]);
    });

    it("drainAndStop delivers what the log holds, then ends (run ended without an end marker)", async () => {
      const run = uuidv7();
      await publishN(bus, run, 0, 4);
      const sub = await bus.subscribe(run, { after: "-1" });
      sub.drainAndStop();
      expect(datas(await collect(sub))).toEqual(range(0, 4));
    });

    it("drainAndStop on a finished run ends", async () => {
      const run = uuidv7();
      await publishN(bus, run, 0, 2);
      await bus.finish(run);
      const live = await bus.subscribe(run, {});
      live.drainAndStop();
      expect(await collect(live)).toEqual([]);
      const fromStart = await bus.subscribe(run, { after: "-1" });
      fromStart.drainAndStop();
      expect(datas(await collect(fromStart))).toEqual(range(0, 2));
    });

    it("close() ends an open subscription's iteration", async () => {
      const run = uuidv7();
      const sub = await bus.subscribe(run, { after: "-1" });
      const reading = collect(sub);
      await bus.publish(run, "values", "1");
      await new Promise((r) => setTimeout(r, 50));
      await sub.close();
      expect(datas(await reading)).toEqual([1]);
    });

    it("a run published to again after finish continues with later ids; its end marker still ends readers", async () => {
      const run = uuidv7();
      const first = await publishN(bus, run, 0, 3);
      await bus.finish(run);
      const second = await publishN(bus, run, 3, 6);
      expect(compareIds(second[0]!, first[2]!)).toBeGreaterThan(0);
      expect([...second].sort(compareIds)).toEqual(second);
      // The end marker is the end: a reader from the start stops there.
      const fromStart = await collect(await bus.subscribe(run, { after: "-1" }));
      expect(datas(fromStart)).toEqual(range(0, 3));
      // A reader resuming after the new events' ids sees what follows them.
      const resumed = await bus.subscribe(run, { after: second[1] });
      const reading = collect(resumed);
      await bus.finish(run);
      expect(datas(await reading)).toEqual(range(5, 6));
    });

    it("delivers control messages to listeners of that run only, until unsubscribed", async () => {
      const run = uuidv7();
      const other = uuidv7();
      const got: CancelAction[] = [];
      const gotOther: CancelAction[] = [];
      const off = await bus.onControl(run, (a) => got.push(a));
      const offOther = await bus.onControl(other, (a) => gotOther.push(a));
      await bus.sendControl(run, "interrupt");
      await bus.sendControl(run, "rollback");
      await waitFor(() => got.length === 2);
      expect(got).toEqual(["interrupt", "rollback"]);
      await off();
      await bus.sendControl(run, "interrupt");
      await bus.sendControl(other, "rollback");
      await waitFor(() => gotOther.length === 1);
      expect(got).toEqual(["interrupt", "rollback"]);
      expect(gotOther).toEqual(["rollback"]);
      await offOther();
    });
  });
}

async function waitFor(cond: () => boolean | Promise<boolean>, ms = TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

// ------------------------------------------------------------------------------------------------

busContract("memory", () => ({ make: async () => createMemoryBus({ ttlSecs: 60 }) }));

describe("memory bus specifics", () => {
  it("forgets a finished run's log after the TTL", async () => {
    const bus = createMemoryBus({ ttlSecs: 1 });
    try {
      const run = uuidv7();
      await publishN(bus, run, 0, 3);
      await bus.finish(run);
      await new Promise((r) => setTimeout(r, 1_100));
      const sub = await bus.subscribe(run, { after: "-1" });
      sub.drainAndStop();
      expect(await collect(sub)).toEqual([]);
    } finally {
      await bus.close();
    }
  });

  it("a rolling log expires ttl after its latest event, not before", async () => {
    const bus = createMemoryBus({ ttlSecs: 1 });
    try {
      const stream = `thread:${uuidv7()}`;
      await bus.publish(stream, "lifecycle", "{}", { rolling: true });
      await new Promise((r) => setTimeout(r, 700));
      await bus.publish(stream, "lifecycle", "{}", { rolling: true });
      await new Promise((r) => setTimeout(r, 700));
      const kept = await bus.subscribe(stream, { after: "-1" });
      kept.drainAndStop();
      expect(await collect(kept)).toHaveLength(2);
      await new Promise((r) => setTimeout(r, 400));
      const gone = await bus.subscribe(stream, { after: "-1" });
      gone.drainAndStop();
      expect(await collect(gone)).toEqual([]);
    } finally {
      await bus.close();
    }
  });

  it("keeps only the last maxEvents events", async () => {
    const bus = createMemoryBus({ ttlSecs: 60, maxEvents: 5 });
    try {
      const run = uuidv7();
      await publishN(bus, run, 0, 12);
      await bus.finish(run);
      const evs = await collect(await bus.subscribe(run, { after: "-1" }));
      expect(datas(evs)).toEqual(range(8, 12));
    } finally {
      await bus.close();
    }
  });
});

// ------------------------------------------------------------------------------------------------

describe.skipIf(!hasRedis())(`redis bus${hasRedis() ? "" : ` (skipped: ${redisSkipReason()})`}`, () => {
  const clients: Redis[] = [];
  const buses: RunStreamBus[] = [];
  const client = (connectionName?: string) => {
    const c = new Redis(redisUri(), { maxRetriesPerRequest: 3, ...(connectionName ? { connectionName } : {}) });
    c.on("error", () => {});
    clients.push(c);
    return c;
  };
  /**
   * A MONITOR connection, once monitoring. Not ioredis' monitor(): it marks the connection as
   * monitoring only a tick after MONITOR's OK, so a line of another client's traffic read in the
   * same chunk (other test files share this Redis) is taken for a reply and fails it with
   * "Command queue state error". Such a line comes before our commands: it is dropped.
   */
  const openMonitor = async (): Promise<Redis> => {
    const monitor = new Redis(redisUri(), { monitor: true, lazyConnect: true });
    monitor.on("error", () => {});
    clients.push(monitor);
    const monitoring = new Promise((resolve) => monitor.once("monitoring", resolve));
    await monitor.connect();
    await monitoring;
    return monitor;
  };
  const makeBus = (prefix: string, ttlSecs = 60, connectionName?: string) => {
    const b = createRedisBus({ client: client(connectionName), prefix, ttlSecs, onError: () => {} });
    buses.push(b);
    return b;
  };
  afterAll(async () => {
    await Promise.all(buses.map((b) => b.close()));
    await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
  });
  /** Two writer processes and a reader already collecting one run's events from the start. */
  const twoWritersOneReader = async (name: string) => {
    const prefix = `${uniquePrefix(name)}:`;
    const [p1, p2, reader] = [makeBus(prefix), makeBus(prefix), makeBus(prefix)];
    const run = uuidv7();
    const reading = collect(await reader.subscribe(run, { after: "-1" }));
    return { prefix, p1, p2, run, reading };
  };

  busContract("redis", () => ({ make: async () => makeBus(`${uniquePrefix("bus")}:`) }));

  it("after finish the log key expires after the TTL; a new attempt makes it persistent again", async () => {
    const prefix = `${uniquePrefix("ttl")}:`;
    const bus = makeBus(prefix, 120);
    const redis = client();
    const run = uuidv7();
    const key = `${prefix}run:${run}:log`;
    await publishN(bus, run, 0, 3);
    expect(await redis.ttl(key)).toBe(-1);
    await bus.finish(run);
    const ttl = await redis.ttl(key);
    expect(ttl).toBeGreaterThan(100);
    expect(ttl).toBeLessThanOrEqual(120);
    expect(await redis.xlen(key)).toBe(4); // three events and the end marker
    await bus.publish(run, "values", "{}");
    expect(await redis.ttl(key)).toBe(-1);
  });

  it("a rolling log (a thread's) expires ttl after its latest event, with Redis-made increasing ids", async () => {
    const prefix = `${uniquePrefix("roll")}:`;
    const bus = makeBus(prefix, 120);
    const redis = client();
    const stream = `thread:${uuidv7()}`;
    const key = `${prefix}run:${stream}:log`;
    const a = await bus.publish(stream, "lifecycle", "{}", { rolling: true });
    const ttl = await redis.ttl(key);
    expect(ttl).toBeGreaterThan(100);
    expect(ttl).toBeLessThanOrEqual(120);
    await redis.expire(key, 5);
    const b = await bus.publish(stream, "state_update", "{}", { rolling: true });
    expect(await redis.ttl(key)).toBeGreaterThan(100); // refreshed by each event
    expect(compareIds(b, a)).toBeGreaterThan(0);
    const sub = await bus.subscribe(stream, { after: "-1" });
    sub.drainAndStop();
    expect((await collect(sub)).map((e) => e.id)).toEqual([a, b]);
  });

  it("rolling appends issued in the same tick go to Redis in one script call, in order, each delivered live", async () => {
    const prefix = `${uniquePrefix("rollbatch")}:`;
    const bus = makeBus(prefix, 120);
    const stream = `thread:${uuidv7()}`;
    const key = `${prefix}run:${stream}:log`;
    const monitor = await openMonitor();
    const calls: string[][] = [];
    monitor.on("monitor", (_time: string, args: string[]) => {
      if (args.includes(key) && /^eval/i.test(args[0] ?? "")) calls.push(args);
    });
    const sub = await bus.subscribe(stream, {});
    const reading = (async () => {
      const seen: string[] = [];
      for await (const ev of sub) {
        seen.push(`${ev.event}:${ev.data}`);
        if (seen.length === 4) break;
      }
      return seen;
    })();
    const first = await Promise.all([
      bus.publish(stream, "lifecycle", '{"n":1}', { rolling: true }),
      bus.publish(stream, "state_update", '{"n":2}', { rolling: true }),
    ]);
    const second = await Promise.all([
      bus.publish(stream, "lifecycle", '{"n":3}', { rolling: true }),
      bus.publish(stream, "state_update", '{"n":4}', { rolling: true }),
    ]);
    const ids = [...first, ...second];
    for (let i = 1; i < ids.length; i++) expect(compareIds(ids[i]!, ids[i - 1]!)).toBeGreaterThan(0);
    expect(await reading).toEqual(['lifecycle:{"n":1}', 'state_update:{"n":2}', 'lifecycle:{"n":3}', 'state_update:{"n":4}']);
    await sub.close();
    await new Promise((r) => setTimeout(r, 100)); // MONITOR lines trail the replies
    expect(calls).toHaveLength(2);
    monitor.disconnect();
  });

  /** Commands Redis ran (scripts' inner ones included) that touch keys or channels under `prefix`. */
  const monitorPrefix = async (prefix: string) => {
    const monitor = await openMonitor();
    const seen: string[] = [];
    monitor.on("monitor", (_time: string, args: string[]) => {
      if (args.slice(1).some((a) => String(a).startsWith(prefix))) seen.push(String(args[0]).toLowerCase());
    });
    const count = (cmd: string) => seen.filter((c) => c === cmd).length;
    return {
      count,
      stop: async () => {
        await new Promise((r) => setTimeout(r, 50)); // MONITOR lines trail the replies
        monitor.disconnect();
      },
    };
  };

  /**
   * A reader takes the first `head` of `n` events another process writes to a new run, closes
   * its subscription, and resumes after the last it took: what it got in all.
   */
  async function resumeAfterHead(writer: RunStreamBus, reader: RunStreamBus, n: number, head: number): Promise<StreamEvent[]> {
    const run = uuidv7();
    const first = await reader.subscribe(run, { after: "-1" });
    const writing = (async () => {
      for (let i = 0; i < n; i++) await writer.publish(run, "values", JSON.stringify({ i }));
      await writer.finish(run);
    })();
    const got = await take(first, head);
    await first.close();
    const rest = await collect(await reader.subscribe(run, { after: got.at(-1)!.id }));
    await writing;
    return [...got, ...rest];
  }

  /** Makes Redis know the bus's script (an append elsewhere), so a monitored call is one EVALSHA. */
  const loadScript = (bus: RunStreamBus) => bus.publish(uuidv7(), "values", "{}");

  /** The keys each XADD Redis ran touched, in order, and how many script calls it received, under `prefix`. */
  const monitorAppends = async (prefix: string) => {
    const monitor = await openMonitor();
    const xadds: string[] = [];
    let calls = 0;
    monitor.on("monitor", (_time: string, args: string[]) => {
      const cmd = String(args[0]).toLowerCase();
      if (!args.slice(1).some((x) => String(x).startsWith(prefix))) return;
      if (cmd === "xadd") xadds.push(String(args[1]).slice(prefix.length));
      if (cmd === "evalsha" || cmd === "eval") calls++;
    });
    return {
      stop: async () => {
        await new Promise((r) => setTimeout(r, 100)); // MONITOR lines trail the replies
        monitor.disconnect();
        return { xadds, calls };
      },
    };
  };

  it("appends issued together go to Redis in one script call, in call order across logs (a run's end status precedes its stream's end)", async () => {
    const prefix = `${uniquePrefix("together")}:`;
    const bus = makeBus(prefix, 120);
    const stream = `thread:${uuidv7()}`;
    const run = uuidv7();
    await loadScript(bus);
    const mon = await monitorAppends(prefix);
    const status = bus.publish(stream, "lifecycle", '{"status":"success"}', { rolling: true });
    const state = bus.publish(stream, "state_update", "{}", { rolling: true });
    await bus.finish(run);
    await Promise.all([status, state]);
    const { xadds, calls } = await mon.stop();
    expect(xadds).toEqual([`run:${stream}:log`, `run:${stream}:log`, `run:${run}:log`]);
    expect(calls).toBe(1);
  });

  it("appends issued while a script call is on its way go together in the next one, after it", async () => {
    const prefix = `${uniquePrefix("nagle")}:`;
    const bus = makeBus(prefix);
    const [r1, r2] = [uuidv7(), uuidv7()];
    const sub = await bus.subscribe(r1, { after: "-1" });
    const reading = collect(sub);
    await loadScript(bus);
    const mon = await monitorAppends(prefix);
    const first = bus.publish(r1, "values", JSON.stringify({ i: 0 }));
    // The queued call leaves before each continuation below, and is not answered until I/O runs.
    const tick = () => new Promise<void>((r) => queueMicrotask(r));
    await tick();
    const later: Promise<string>[] = [];
    for (let i = 1; i < 4; i++) {
      later.push(bus.publish(r1, "values", JSON.stringify({ i })));
      await tick();
    }
    const other = bus.publish(r2, "values", "{}");
    const ids = await Promise.all([first, ...later, other]);
    await bus.finish(r1);
    const { calls } = await mon.stop();
    expect(calls).toBe(3); // [0], [1, 2, 3, the other run's], [end]
    expect(datas(await reading)).toEqual(range(0, 4));
    for (let i = 1; i < 4; i++) expect(compareIds(ids[i]!, ids[i - 1]!)).toBeGreaterThan(0);
  });

  /** A run with event 0 from `bus`, then event 1 written by another process with an id 300 ms ahead of `bus`'s clock. */
  async function runWithLaterIdElsewhere(tag: string) {
    const prefix = `${uniquePrefix(tag)}:`;
    const bus = makeBus(prefix);
    const run = uuidv7();
    await publishN(bus, run, 0, 1);
    const ahead = `${Date.now() + 300}-0`;
    await client().xadd(`${prefix}run:${run}:log`, ahead, "e", "values", "d", JSON.stringify({ i: 1 }));
    return { bus, run, ahead };
  }

  it("a run's events behind an id collision in one call are all sent again after it, in order", async () => {
    const { bus, run, ahead } = await runWithLaterIdElsewhere("collide-batch");
    const ids = await Promise.all([2, 3, 4].map((i) => bus.publish(run, "values", JSON.stringify({ i }))));
    for (const id of ids) expect(compareIds(id, ahead)).toBeGreaterThan(0);
    await bus.finish(run);
    expect(datas(await collect(await bus.subscribe(run, { after: "-1" })))).toEqual(range(0, 5));
  });

  it("a run event queued while its collided predecessor's call is on its way lands after the retried one", async () => {
    const { bus, run, ahead } = await runWithLaterIdElsewhere("collide-next");
    const first = bus.publish(run, "values", JSON.stringify({ i: 2 }));
    await new Promise<void>((r) => queueMicrotask(r)); // its call leaves: the next waits behind it
    const second = bus.publish(run, "values", JSON.stringify({ i: 3 }));
    const [a, b] = await Promise.all([first, second]);
    expect(compareIds(a, ahead)).toBeGreaterThan(0);
    expect(compareIds(b, a)).toBeGreaterThan(0);
    await bus.finish(run);
    expect(datas(await collect(await bus.subscribe(run, { after: "-1" })))).toEqual(range(0, 4));
  });

  it("a script call run twice (ioredis re-sends a call left unanswered by a dropped connection) writes each run event once", async () => {
    const prefix = `${uniquePrefix("resent")}:`;
    const c = client();
    // Every call reaches Redis twice, the first answer lost: what a re-sent call does once Redis had run it.
    for (const name of ["evalsha", "eval"] as const) {
      const call = (c[name] as (...a: unknown[]) => Promise<unknown>).bind(c);
      (c as unknown as Record<string, unknown>)[name] = async (...a: unknown[]) => {
        await call(...a).catch(() => {});
        return call(...a);
      };
    }
    const bus = createRedisBus({ client: c, prefix, ttlSecs: 60, onError: () => {} });
    buses.push(bus);
    const run = uuidv7();
    const live = collect(await bus.subscribe(run, { after: "-1" }));
    const together = await Promise.all([0, 1, 2].map((i) => bus.publish(run, "values", JSON.stringify({ i }))));
    const alone = await publishN(bus, run, 3, 5);
    await bus.finish(run);
    const evs = await live;
    expect(datas(evs)).toEqual(range(0, 5));
    expect(evs.map((e) => e.id)).toEqual([...together, ...alone]);
    expect(await client().xlen(`${prefix}run:${run}:log`)).toBe(6); // with the end marker
    expect(datas(await collect(await bus.subscribe(run, { after: "-1" })))).toEqual(range(0, 5));
  });

  it("an event refused by Redis fails alone: the other logs' events of its call land", async () => {
    const prefix = `${uniquePrefix("refused")}:`;
    const bus = makeBus(prefix);
    const raw = client();
    const [bad, good] = [uuidv7(), uuidv7()];
    await raw.set(`${prefix}run:${bad}:log`, "not a stream");
    const [refused, landed] = await Promise.allSettled([bus.publish(bad, "values", "{}"), bus.publish(good, "values", "{}")]);
    expect(refused.status).toBe("rejected");
    expect(String((refused as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/);
    expect(landed.status).toBe("fulfilled");
    await bus.finish(good);
    expect(await collect(await bus.subscribe(good, { after: "-1" }))).toHaveLength(1);
  });

  it("subscriptions opened together take one SUBSCRIBE; a channel left and joined again in one tick stays subscribed", async () => {
    const prefix = `${uniquePrefix("subs")}:`;
    const bus = makeBus(prefix);
    const runs = [uuidv7(), uuidv7(), uuidv7()];
    const mon = await monitorPrefix(prefix);
    const subs = await Promise.all(runs.map((run) => bus.subscribe(run, { after: "-1", fresh: true })));
    const closing = subs[0]!.close();
    const again = await bus.subscribe(runs[0]!, { after: "-1" });
    await closing;
    await bus.publish(runs[0]!, "values", JSON.stringify({ i: 0 }));
    await bus.finish(runs[0]!);
    expect(datas(await collect(again))).toEqual(range(0, 1));
    await Promise.all(subs.slice(1).map((s) => s.close()));
    // close() does not wait for the UNSUBSCRIBE: it is sent once due, with the others left meanwhile.
    const raw = client();
    const subscribers = async () => ((await raw.pubsub("NUMSUB", ...runs.slice(1).map((r) => `${prefix}run:${r}:ev`))) as unknown[]).filter((_, i) => i % 2 === 1).map(Number);
    await waitFor(async () => (await subscribers()).every((n) => n === 0));
    await mon.stop();
    expect(mon.count("subscribe")).toBe(1);
    expect(mon.count("unsubscribe")).toBe(1); // the two left last, together; the first never
  });

  it("channels left one after another are unsubscribed together once due; one joined again meanwhile stays subscribed without a command", async () => {
    const prefix = `${uniquePrefix("unsubs")}:`;
    const bus = createRedisBus({ client: client(), prefix, ttlSecs: 60, onError: () => {}, unsubscribeAfterMs: 1_500 });
    buses.push(bus);
    const runs = [uuidv7(), uuidv7(), uuidv7(), uuidv7()];
    const raw = client();
    const subscribers = async () =>
      ((await raw.pubsub("NUMSUB", ...runs.map((r) => `${prefix}run:${r}:ev`))) as unknown[]).filter((_, i) => i % 2 === 1).map(Number);
    const mon = await monitorPrefix(prefix);
    const subs = await Promise.all(runs.map((run) => bus.subscribe(run, { after: "-1", fresh: true })));
    for (const sub of subs) {
      await sub.close();
      await new Promise((r) => setTimeout(r, 10));
    }
    const back = await bus.subscribe(runs[3]!, { after: "-1" });
    expect(await subscribers()).toEqual([1, 1, 1, 1]); // nothing sent yet
    await waitFor(async () => (await subscribers()).join() === "0,0,0,1");
    await bus.publish(runs[3]!, "values", JSON.stringify({ i: 0 }));
    await bus.finish(runs[3]!);
    expect(datas(await collect(back))).toEqual(range(0, 1));
    await mon.stop();
    expect(mon.count("subscribe")).toBe(1);
    expect(mon.count("unsubscribe")).toBe(1);
    await back.close();
  });

  it("a subscription opened while the channel's previous one is being unsubscribed gets exactly the events after its id", async () => {
    const prefix = `${uniquePrefix("resubscribe")}:`;
    const writer = makeBus(prefix);
    const reader = makeBus(prefix);
    // Its messages may arrive before the new SUBSCRIBE answers: they must not start it from the log's beginning.
    for (let round = 0; round < 20; round++) expect(datas(await resumeAfterHead(writer, reader, 60, 7))).toEqual(range(0, 60));
  });

  it("keys live under the configured prefix", async () => {
    const prefix = `${uniquePrefix("keys")}:`;
    const bus = makeBus(prefix);
    const redis = client();
    const run = uuidv7();
    await publishN(bus, run, 0, 1);
    expect(await redis.keys(`${prefix}*`)).toEqual([`${prefix}run:${run}:log`]);
  });

  it("a subscriber in another process sees every event once, published by two processes in turn", async () => {
    const { p1, p2, run, reading } = await twoWritersOneReader("xproc");
    // Attempt 1 on process 1, then attempt 2 on process 2 (after a lease loss), then
    // interleaved writes (a stale holder): each process's pub/sub "previous id" is stale,
    // so the reader sees gaps in the live channel and must fill them from the log.
    await publishN(p1, run, 0, 5);
    await publishN(p2, run, 5, 10);
    for (let i = 10; i < 20; i++) await (i % 2 ? p1 : p2).publish(run, "values", JSON.stringify({ i }));
    await p2.finish(run);
    const evs = await reading;
    expect(datas(evs)).toEqual(range(0, 20));
    expectIncreasing(evs);
  });

  /** Closes the subscriber connection(s) of the bus whose client is named `name` (it reconnects). */
  const dropSubscriber = async (raw: Redis, name: string) => {
    const list = String(await raw.call("CLIENT", "LIST"));
    const ids = list
      .split("\n")
      .filter((l) => l.includes(` name=${name} `) && / (p?sub)=[1-9]/.test(l))
      .map((l) => /\bid=(\d+)/.exec(l)![1]!);
    expect(ids.length).toBeGreaterThan(0);
    for (const id of ids) await raw.call("CLIENT", "KILL", "ID", id);
  };

  /**
   * Events that reach the log but whose pub/sub message this subscriber never
   * sees (another process wrote them while the subscriber's connection was
   * down): the connection is dropped, then they are written straight to the
   * stream, never published. `aheadMs` places them relative to the publisher's
   * clock: behind it (its next id is simply later) or ahead of it (its next XADD
   * collides and is retried).
   */
  it.each([
    ["behind the publisher's clock", -1],
    ["ahead of the publisher's clock (id collision)", 200],
  ])("a subscriber that misses pub/sub messages still gets every event exactly once: %s", async (_, aheadMs) => {
    const prefix = `${uniquePrefix("gap")}:`;
    const bus = makeBus(prefix);
    const readerName = `reader-${uniquePrefix("gap")}`;
    const reader = makeBus(prefix, 60, readerName);
    const raw = client();
    const run = uuidv7();
    const key = `${prefix}run:${run}:log`;
    const sub = await reader.subscribe(run, { after: "-1" });
    const reading = collect(sub);
    const ids = await publishN(bus, run, 0, 3);
    await dropSubscriber(raw, readerName);
    const lastMs = Number(ids[2]!.split("-")[0]);
    const ms = aheadMs < 0 ? lastMs + 1 : Date.now() + aheadMs;
    await raw.xadd(key, `${ms}-0`, "e", "values", "d", JSON.stringify({ i: 3 }));
    await raw.xadd(key, `${ms}-1`, "e", "values", "d", JSON.stringify({ i: 4 }));
    if (aheadMs < 0) await new Promise((r) => setTimeout(r, 5)); // the publisher's clock moves past them
    const later = await publishN(bus, run, 5, 8);
    expect(compareIds(later[0]!, `${ms}-1`)).toBeGreaterThan(0);
    await bus.finish(run);
    const evs = await reading;
    expect(datas(evs)).toEqual(range(0, 8));
    expectIncreasing(evs);
    // Every delivered id is a real log entry (nothing published that the log refused).
    const logIds = (await raw.xrange(key, "-", "+")).map(([id]) => id);
    for (const ev of evs) expect(logIds).toContain(ev.id);
  });

  it("Last-Event-ID resume from another process has no gaps and no duplicates under load", async () => {
    const prefix = `${uniquePrefix("resume")}:`;
    const writer = makeBus(prefix);
    const reader = makeBus(prefix);
    expect(datas(await resumeAfterHead(writer, reader, 200, 37))).toEqual(range(0, 200));
  });

  it("delivers control messages across processes", async () => {
    const prefix = `${uniquePrefix("ctl")}:`;
    const api = makeBus(prefix);
    const worker = makeBus(prefix);
    const run = uuidv7();
    const got: CancelAction[] = [];
    const off = await worker.onControl(run, (a) => got.push(a));
    await api.sendControl(run, "interrupt");
    await waitFor(() => got.length === 1);
    expect(got).toEqual(["interrupt"]);
    await off();
    await api.sendControl(run, "rollback");
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toEqual(["interrupt"]);
  });

  it("buses with different prefixes do not see each other's runs", async () => {
    const a = makeBus(`${uniquePrefix("a")}:`);
    const b = makeBus(`${uniquePrefix("b")}:`);
    const run = uuidv7();
    await publishN(a, run, 0, 3);
    await a.finish(run);
    const sub = await b.subscribe(run, { after: "-1" });
    sub.drainAndStop();
    expect(await collect(sub)).toEqual([]);
  });

  it("reads a run log's last id and clears its expiry only on the process's first append; finish sets the TTL in the same script", async () => {
    const prefix = `${uniquePrefix("cheap")}:`;
    const bus = makeBus(prefix, 120);
    const redis = client();
    const run = uuidv7();
    const key = `${prefix}run:${run}:log`;
    const mon = await monitorPrefix(prefix);
    await publishN(bus, run, 0, 5);
    expect(await redis.ttl(key)).toBe(-1);
    await bus.finish(run);
    await mon.stop();
    expect(await redis.ttl(key)).toBeGreaterThan(100);
    expect(mon.count("xadd")).toBe(6);
    expect(mon.count("publish")).toBe(6);
    expect(mon.count("xrevrange")).toBe(1);
    expect(mon.count("persist")).toBe(0); // the first append created the log: no expiry to clear
    expect(mon.count("expire")).toBe(1);
    // A later attempt in the same process reads the log again and makes it persistent.
    const next = await bus.publish(run, "values", "{}");
    expect(await redis.ttl(key)).toBe(-1);
    const [last] = await redis.xrevrange(key, "+", "-", "COUNT", 1);
    expect(last![0]).toBe(next);
  });

  it("ids keep increasing when the log vanishes under the writer (FLUSHALL, Redis restarted empty) and its script cache is flushed", async () => {
    const prefix = `${uniquePrefix("flush")}:`;
    const bus = makeBus(prefix);
    const redis = client();
    const run = uuidv7();
    const key = `${prefix}run:${run}:log`;
    const live = await bus.subscribe(run, { after: "-1" });
    const reading = collect(live);
    const before = await publishN(bus, run, 0, 3);
    await redis.del(key);
    await redis.script("FLUSH"); // as after a restart: the next append falls back to EVAL
    const after = await publishN(bus, run, 3, 6);
    expect(compareIds(after[0]!, before[2]!)).toBeGreaterThan(0);
    await bus.finish(run);
    const evs = await reading;
    expect(datas(evs)).toEqual(range(0, 6));
    expectIncreasing(evs);
    const replay = await bus.subscribe(run, { after: "-1" });
    expect(datas(await collect(replay))).toEqual(range(3, 6));
  });

  it("a writer whose id collides with a later one written elsewhere retries after it, and readers see no gap", async () => {
    const { prefix, p1, p2, run, reading } = await twoWritersOneReader("collide");
    await publishN(p1, run, 0, 2);
    // p2's clock is ahead (another machine, or events in the same millisecond): its ids are later.
    const raw = client();
    const key = `${prefix}run:${run}:log`;
    const ahead = Date.now() + 300;
    await raw.xadd(key, `${ahead}-0`, "e", "values", "d", JSON.stringify({ i: 2 }));
    await raw.publish(`${prefix}run:${run}:ev`, `${ahead}-0\nnot-the-real-prev\nvalues\n${JSON.stringify({ i: 2 })}`);
    const ids = await publishN(p1, run, 3, 5);
    expect(compareIds(ids[0]!, `${ahead}-0`)).toBeGreaterThan(0);
    await p2.finish(run);
    const evs = await reading;
    expect(datas(evs)).toEqual(range(0, 5));
    expectIncreasing(evs);
  });

  it("a fresh subscription (run id just minted, not inserted) reads nothing from the log and still gets every event", async () => {
    const prefix = `${uniquePrefix("fresh")}:`;
    const api = makeBus(prefix);
    const worker = makeBus(prefix);
    const run = uuidv7();
    const mon = await monitorPrefix(prefix);
    const sub = await api.subscribe(run, { after: "-1", fresh: true });
    const reading = collect(sub);
    await publishN(worker, run, 0, 4);
    await worker.finish(run);
    const evs = await reading;
    await mon.stop();
    expect(datas(evs)).toEqual(range(0, 4));
    expectIncreasing(evs);
    expect(mon.count("xrange")).toBe(0);
  });

  it("one pattern subscription per process delivers cancels for several runs, each to its own listeners", async () => {
    const prefix = `${uniquePrefix("ctlmany")}:`;
    const api = makeBus(prefix);
    const workerName = `worker-${uniquePrefix("ctl")}`;
    const worker = makeBus(prefix, 60, workerName);
    const raw = client();
    const runs = [uuidv7(), uuidv7(), uuidv7()];
    const got = new Map<string, CancelAction[]>(runs.map((r) => [r, []]));
    const offs = await Promise.all(runs.map((r) => worker.onControl(r, (a) => got.get(r)!.push(a))));
    // One PSUBSCRIBE for the process, no SUBSCRIBE per run.
    const line = String(await raw.call("CLIENT", "LIST"))
      .split("\n")
      .find((l) => l.includes(` name=${workerName} `) && / psub=1 /.test(l));
    expect(line).toMatch(/ sub=0 /);
    await api.sendControl(runs[0]!, "interrupt");
    await api.sendControl(runs[2]!, "rollback");
    await waitFor(() => got.get(runs[0]!)!.length === 1 && got.get(runs[2]!)!.length === 1);
    await offs[0]!();
    await api.sendControl(runs[0]!, "rollback");
    await api.sendControl(runs[1]!, "interrupt");
    await waitFor(() => got.get(runs[1]!)!.length === 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(Object.fromEntries(got)).toEqual({ [runs[0]!]: ["interrupt"], [runs[1]!]: ["interrupt"], [runs[2]!]: ["rollback"] });
    // The pattern is escaped: a prefix with glob characters does not hear other prefixes.
    const globby = makeBus(`${uniquePrefix("ctl")}*:`);
    const heard: CancelAction[] = [];
    const off = await globby.onControl(runs[1]!, (a) => heard.push(a));
    await api.sendControl(runs[1]!, "interrupt");
    await new Promise((r) => setTimeout(r, 100));
    expect(heard).toEqual([]);
    await off();
  });

  it("control listeners hear cancels again after the subscriber connection dropped", async () => {
    const prefix = `${uniquePrefix("ctlre")}:`;
    const api = makeBus(prefix);
    const workerName = `worker-${uniquePrefix("ctlre")}`;
    const worker = makeBus(prefix, 60, workerName);
    const raw = client();
    const run = uuidv7();
    const got: CancelAction[] = [];
    await worker.onControl(run, (a) => got.push(a));
    await dropSubscriber(raw, workerName);
    await waitFor(async () => {
      await api.sendControl(run, "interrupt");
      return got.length > 0;
    });
    expect(got[0]).toBe("interrupt");
  });
  it("watched: a run is watched while a live subscription of this process follows it", async () => {
    const bus = makeBus(`${uniquePrefix("watched")}:`);
    const run = uuidv7();
    expect(bus.watched(run)).toBe(false);
    const waiting = await bus.subscribe(run, { after: "-1" });
    expect(bus.watched(run)).toBe(false); // not live: a /wait
    const a = await bus.subscribe(run, { after: "-1", fresh: true, live: true });
    const b = await bus.subscribe(run, { live: true });
    expect(bus.watched(run)).toBe(true);
    await a.close();
    await a.close(); // idempotent: counted once
    expect(bus.watched(run)).toBe(true);
    await b.close();
    expect(bus.watched(run)).toBe(false);
    await waiting.close();
    // Last in this block and closed here: placed before the MONITOR-based tests, with its
    // connections left open, those failed intermittently (not explained yet).
    await bus.close();
  });
});
