import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uuidv7 } from "../../src/lib/uuid.js";
import type { Bell } from "../../src/queue/bell.js";
import { createLocalBell } from "../../src/queue/bell.js";
import { createRunQueue } from "../../src/queue/claim-queue.js";
import { createRedisBell } from "../../src/queue/redis-bell.js";
import type { RunQueue, RunQueueConsumer } from "../../src/queue/run-queue.js";
import type { ClaimedRun } from "../../src/storage/runs.js";
import { hasRedis, redisSkipReason, redisUri, uniquePrefix } from "../helpers/services.js";

// The queue's consumer logic and its doorbells. What is claimed comes from PostgreSQL in
// production (runs.claimNext, tested in repos.test.ts); here a list stands in for it so the
// tests can count claims exactly.

const ring = (run_id = uuidv7(), delay_ms = 0) => ({ run_id, thread_id: uuidv7(), delay_ms });

async function waitFor(cond: () => boolean, ms = 10_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Work to claim: `claims` counts every claim call, `handled` what reached the handler. */
function source() {
  const items: string[] = [];
  const handled: Array<{ id: string; at: number }> = [];
  let claims = 0;
  return {
    items,
    handled,
    get claims() {
      return claims;
    },
    claim: async () => {
      claims++;
      return items.shift() ?? null;
    },
  };
}

function queueContract(name: string, makeBell: () => Bell) {
  describe(`${name} doorbell`, () => {
    const open: Array<{ queue: RunQueue; consumers: RunQueueConsumer[] }> = [];
    function make() {
      const errors: unknown[] = [];
      const queue = createRunQueue(makeBell(), (err) => errors.push(err));
      const entry = { queue, consumers: [] as RunQueueConsumer[] };
      open.push(entry);
      return {
        queue,
        errors,
        consume: async (
          src: ReturnType<typeof source>,
          opts: { concurrency?: number; pollMs?: number; handler?: (id: string) => Promise<void> } = {},
        ) => {
          const c = await queue.consume({
            concurrency: opts.concurrency ?? 2,
            pollMs: opts.pollMs ?? 60_000,
            claim: src.claim,
            handler: async (id: string) => {
              src.handled.push({ id, at: Date.now() });
              await opts.handler?.(id);
            },
          });
          entry.consumers.push(c);
          return c;
        },
      };
    }
    afterAll(async () => {
      for (const { queue, consumers } of open) {
        await Promise.all(consumers.map((c) => c.close(true)));
        await queue.close();
      }
    });

    it("claims what waited before it started, then answers each ring of an idle consumer with one claim", async () => {
      const { queue, consume, errors } = make();
      const src = source();
      src.items.push("early");
      await consume(src);
      await waitFor(() => src.handled.length === 1, 5_000, "the waiting item");
      const before = src.claims;
      for (let i = 0; i < 5; i++) {
        src.items.push(`r${i}`);
        await queue.dispatch([ring()]);
        await waitFor(() => src.handled.length === i + 2, 5_000, `item ${i}`);
      }
      await sleep(100);
      expect(src.handled.map((h) => h.id)).toEqual(["early", "r0", "r1", "r2", "r3", "r4"]);
      // One claim per ring: no extra query to find out there is nothing more.
      expect(src.claims - before).toBe(5);
      expect(errors).toEqual([]);
    });

    it("dispatch of nothing rings nothing", async () => {
      const { queue, consume } = make();
      const src = source();
      await consume(src);
      await sleep(50);
      const before = src.claims;
      await queue.dispatch([]);
      await sleep(100);
      expect(src.claims).toBe(before);
    });

    it("a busy consumer remembers rings and claims when a slot frees", async () => {
      const { queue, consume } = make();
      const src = source();
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      await consume(src, { concurrency: 1, handler: (id) => (id === "slow" ? gate : Promise.resolve()) });
      src.items.push("slow");
      await queue.dispatch([ring()]);
      await waitFor(() => src.handled.length === 1, 5_000, "slow start");
      src.items.push("a", "b");
      await queue.dispatch([ring(), ring()]);
      await sleep(100);
      expect(src.handled.map((h) => h.id)).toEqual(["slow"]); // the only slot is busy
      release();
      await waitFor(() => src.handled.length === 3, 5_000, "a and b");
      expect(src.handled.map((h) => h.id)).toEqual(["slow", "a", "b"]);
    });

    it("a finished run costs no claim when no ring came in meanwhile", async () => {
      const { queue, consume } = make();
      const src = source();
      await consume(src, { concurrency: 1 });
      await sleep(50);
      src.items.push("x");
      const before = src.claims;
      await queue.dispatch([ring()]);
      await waitFor(() => src.handled.length === 1, 5_000, "x");
      await sleep(150);
      expect(src.claims - before).toBe(1);
    });

    it("drains a backlog larger than its slots at start-up, without waiting for a poll", async () => {
      const { consume } = make();
      const src = source();
      for (let i = 0; i < 60; i++) src.items.push(`b${i}`);
      await consume(src, { concurrency: 2, handler: async () => void (await sleep(2)) });
      await waitFor(() => src.handled.length === 60, 5_000, "the whole backlog");
    });

    it("remembers every ring of a burst while busy (no cap), and claims them all as slots free", async () => {
      const { queue, consume } = make();
      const src = source();
      await consume(src, { concurrency: 1, handler: async () => void (await sleep(2)) });
      await sleep(50);
      for (let i = 0; i < 80; i++) src.items.push(`r${i}`);
      for (let i = 0; i < 80; i++) await queue.dispatch([ring()]);
      await waitFor(() => src.handled.length === 80, 5_000, "every rung item");
    });

    it("a ring that arrives while a claim is finding nothing is not lost", async () => {
      const { queue, consume } = make();
      const src = source();
      const claim = src.claim;
      let hold: (() => void) | null = null;
      let first = true;
      // The first claim after start-up "took its snapshot" before the item was inserted.
      src.claim = async () => {
        if (first) {
          first = false;
          await new Promise<void>((r) => (hold = r));
          return null;
        }
        return claim();
      };
      await consume(src, { concurrency: 1 });
      await waitFor(() => hold !== null, 5_000, "the slow claim");
      src.items.push("late");
      await queue.dispatch([ring()]);
      hold!();
      await waitFor(() => src.handled.length === 1, 3_000, "the item rung during the empty claim");
    });

    it("holds a delayed ring until it falls due", async () => {
      const { queue, consume } = make();
      const src = source();
      await consume(src);
      await sleep(50);
      const sent = Date.now();
      src.items.push("later");
      await queue.dispatch([ring(uuidv7(), 600)]);
      await sleep(300);
      expect(src.handled).toEqual([]);
      await waitFor(() => src.handled.length === 1, 5_000, "the delayed item");
      expect(src.handled[0]!.at - sent).toBeGreaterThanOrEqual(600);
    });

    it("polls: work whose ring was lost is claimed within pollMs", async () => {
      const { consume } = make();
      const src = source();
      await consume(src, { pollMs: 200 });
      await sleep(50);
      src.items.push("unrung");
      await waitFor(() => src.handled.length === 1, 3_000, "the unrung item");
    });

    it("a failing claim (database down) is retried, and a handler error does not stop the consumer", async () => {
      const { queue, consume, errors } = make();
      const src = source();
      let fail = true;
      const claim = src.claim;
      src.claim = async () => {
        if (fail) {
          fail = false;
          throw new Error("connection refused");
        }
        return claim();
      };
      src.items.push("bad", "good");
      await consume(src, { concurrency: 1, handler: async (id) => {
        if (id === "bad") throw new Error("handler failed");
      } });
      await queue.dispatch([ring(), ring()]);
      await waitFor(() => src.handled.length === 2, 5_000, "both items after the retry");
      expect((errors as Error[]).map((e) => e.message)).toEqual(["connection refused", "handler failed"]);
    });

    it("close waits for active handlers; a forced close does not; queue.close resolves", async () => {
      const { queue, consume } = make();
      const src = source();
      let finished = false;
      const consumer = await consume(src, {
        concurrency: 1,
        handler: async () => {
          await sleep(300);
          finished = true;
        },
      });
      src.items.push("job");
      await queue.dispatch([ring()]);
      await waitFor(() => src.handled.length === 1, 5_000, "job start");
      await consumer.close();
      expect(finished).toBe(true);
      await expect(consumer.close()).resolves.toBeUndefined();
      // Closed: rings are ignored.
      src.items.push("after");
      await queue.dispatch([ring()]);
      await sleep(100);
      expect(src.handled.length).toBe(1);
      await expect(queue.close()).resolves.toBeUndefined();
    });
  });
}

queueContract("in-process", createLocalBell);

describe.skipIf(!hasRedis())(`redis${hasRedis() ? "" : ` (skipped: ${redisSkipReason()})`}`, () => {
  let connection: Redis;
  beforeAll(() => {
    connection = new Redis(redisUri(), { maxRetriesPerRequest: null });
    connection.on("error", () => {});
  });
  afterAll(async () => {
    await connection?.quit().catch(() => connection.disconnect());
  });
  queueContract("redis", () => createRedisBell(connection, `${uniquePrefix("bell")}:runs:bell`, () => {}));

  it("rings every other process once, and its own consumer directly (not twice)", async () => {
    const channel = `${uniquePrefix("bell")}:runs:bell`;
    const api = createRunQueue(createRedisBell(connection, channel, () => {}), () => {});
    const workerA = createRunQueue(createRedisBell(connection, channel, () => {}), () => {});
    const workerB = createRunQueue(createRedisBell(connection, channel, () => {}), () => {});
    const claims = { api: 0, a: 0, b: 0 };
    try {
      const consumers = [
        await api.consume({ concurrency: 1, pollMs: 60_000, claim: async () => (claims.api++, null), handler: async () => {} }),
        await workerA.consume({ concurrency: 1, pollMs: 60_000, claim: async () => (claims.a++, null), handler: async () => {} }),
        await workerB.consume({ concurrency: 1, pollMs: 60_000, claim: async () => (claims.b++, null), handler: async () => {} }),
      ];
      await waitFor(() => claims.api === 1 && claims.a === 1 && claims.b === 1, 5_000, "start-up claims");
      await api.dispatch([ring()]);
      await waitFor(() => claims.a === 2 && claims.b === 2, 5_000, "the other processes' claims");
      await sleep(200);
      expect(claims).toEqual({ api: 2, a: 2, b: 2 });
      await Promise.all(consumers.map((c) => c.close(true)));
    } finally {
      await Promise.all([api.close(), workerA.close(), workerB.close()]);
    }
  });

  it("rings for runs claimable now go together while a PUBLISH is on its way, their counts summed; a delayed ring goes alone", async () => {
    const channel = `${uniquePrefix("bell")}:runs:bell`;
    const ringer = createRedisBell(connection, channel, () => {});
    const listener = createRedisBell(connection, channel, () => {});
    const heard: Array<[number, number]> = [];
    try {
      await listener.listen((count, delayMs) => heard.push([count, delayMs]));
      // One turn: one message. Then 20 rings while it is on its way: together in the next one.
      const first = [ringer.ring(1, 0), ringer.ring(2, 0)];
      await Promise.resolve();
      const later = Array.from({ length: 20 }, () => ringer.ring(1, 0));
      await Promise.all([...first, ...later, ringer.ring(1, 60_000)]);
      await waitFor(() => heard.reduce((n, [c]) => n + c, 0) === 24, 5_000, "every ring heard");
      await sleep(100);
      expect(heard.filter(([, delay]) => delay === 0)).toEqual([[3, 0], [20, 0]]);
      expect(heard.filter(([, delay]) => delay > 0)).toEqual([[1, 60_000]]);
    } finally {
      await Promise.all([ringer.close(), listener.close()]);
    }
  });
});

describe("reserve: a free slot for a run claimed at insert", () => {
  const claimed = (id: string) => ({ run_id: id }) as ClaimedRun;
  const open: RunQueue[] = [];
  afterAll(async () => {
    for (const q of open) await q.close();
  });
  async function setup(opts: { concurrency: number; local?: boolean; claim?: () => Promise<string | null> }) {
    const queue = createRunQueue(createLocalBell(), () => {});
    open.push(queue);
    const src = source();
    const gates = new Map<string, () => void>();
    const consumer = await queue.consume({
      concurrency: opts.concurrency,
      pollMs: 60_000,
      claim: opts.claim ?? src.claim,
      handler: async (id: string) => {
        src.handled.push({ id, at: Date.now() });
        await new Promise<void>((r) => gates.set(id, r));
      },
      local: opts.local === false ? undefined : { owner: "me", leaseSecs: 30, item: (run) => run.run_id },
    });
    await sleep(50); // the start-up look-around has found nothing
    return { queue, src, consumer, finish: (id: string) => gates.get(id)?.() };
  }

  it("is null without a consumer here, or one that takes no local runs", async () => {
    const queue = createRunQueue(createLocalBell(), () => {});
    open.push(queue);
    expect(queue.reserve()).toBeNull();
    const { queue: q2 } = await setup({ concurrency: 2, local: false });
    expect(q2.reserve()).toBeNull();
  });

  it("holds a slot: the taken run goes to the handler, and a full consumer gives no more", async () => {
    const { queue, src, finish } = await setup({ concurrency: 1 });
    const slot = queue.reserve();
    expect(slot).toMatchObject({ owner: "me", leaseSecs: 30 });
    expect(queue.reserve()).toBeNull(); // the only slot is held
    slot!.take(claimed("local-1"), performance.now());
    await waitFor(() => src.handled.length === 1, 5_000, "the taken run");
    expect(src.handled[0]!.id).toBe("local-1");
    expect(queue.reserve()).toBeNull(); // and now busy
    expect(() => slot!.release()).toThrow(/already/);
    finish("local-1");
    await waitFor(() => queue.reserve() !== null, 5_000, "the slot freed");
  });

  it("a released slot is free again, and claims a ring heard while it was held", async () => {
    const { queue, src } = await setup({ concurrency: 1 });
    const slot = queue.reserve()!;
    const claimsBefore = src.claims;
    src.items.push("rung");
    await queue.dispatch([ring()]);
    await sleep(50);
    expect(src.claims).toBe(claimsBefore); // no free slot to claim with
    slot.release();
    await waitFor(() => src.handled.length === 1, 5_000, "the rung run");
    expect(src.handled[0]!.id).toBe("rung");
  });

  it("close waits for a held slot: a run taken meanwhile still reaches the handler (which hands it back)", async () => {
    const { src, consumer, finish } = await setup({ concurrency: 1 });
    const q = open.at(-1)!;
    const slot = q.reserve()!;
    let closed = false;
    const closing = consumer.close(false).then(() => (closed = true));
    expect(q.reserve()).toBeNull(); // no new slot once closing
    await sleep(50);
    expect(closed).toBe(false);
    slot.take(claimed("late"), performance.now());
    expect(src.handled.map((h) => h.id)).toEqual(["late"]);
    await sleep(50);
    expect(closed).toBe(false); // its handler has not finished
    finish("late");
    await closing;
  });

  it("gives a slot beyond those the announced runs need, even while they are being claimed", async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const items: string[] = [];
    const { queue, src, finish } = await setup({
      concurrency: 2,
      claim: async () => {
        if (items.length > 0) await gate;
        return items.shift() ?? null;
      },
    });
    items.push("rung");
    await queue.dispatch([ring()]);
    // The rung run's claim is in flight: one slot is its, the other is free.
    const slot = queue.reserve();
    expect(slot).not.toBeNull();
    expect(queue.reserve()).toBeNull();
    slot!.take(claimed("local"), performance.now());
    open();
    await waitFor(() => src.handled.length === 2, 5_000, "the local and the rung run");
    expect(src.handled.map((h) => h.id).sort()).toEqual(["local", "rung"]);
    finish("local");
    finish("rung");
  });

  it("is null while runs may be waiting: a claim in flight, or rings not yet claimed", async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let first = true;
    const { queue } = await setup({
      concurrency: 2,
      claim: async () => {
        if (first) {
          first = false;
          await gate;
        }
        return null;
      },
    });
    expect(queue.reserve()).toBeNull(); // the start-up claim has not answered
    open();
    await waitFor(() => queue.reserve() !== null, 5_000, "a slot once the claim found nothing");
  });
});

describe("a handler claims the next run as it ends (runs.finish with claim) and hands its slot over", () => {
  it("a hand-over that spends the credit of a claim in flight leaves no slot to reserve: that claim still needs one", async () => {
    const queue = createRunQueue(createLocalBell(), () => {});
    const items: string[] = [];
    const handled: string[] = [];
    let openClaim!: () => void;
    const claimGate = new Promise<void>((r) => (openClaim = r));
    const gates = new Map<string, () => void>();
    const consumer = await queue.consume({
      concurrency: 2,
      pollMs: 60_000,
      claim: async () => {
        const id = items.shift() ?? null;
        if (id === "Y") await claimGate;
        return id;
      },
      handler: async (id: string, slot) => {
        handled.push(id);
        await new Promise<void>((r) => gates.set(id, r));
        if (id === "A" && slot.wantsMore()) slot.handOver("X");
      },
      local: { owner: "me", leaseSecs: 30, item: (run) => run.run_id },
    });
    await sleep(50);
    items.push("A");
    await queue.dispatch([ring()]);
    await waitFor(() => handled.length === 1, 5_000, "A running");
    items.push("Y");
    await queue.dispatch([ring()]); // the pump's claim of Y is now in flight
    await sleep(20);
    gates.get("A")!(); // A's finish claims X instead and hands its slot over
    await waitFor(() => handled.includes("X"), 5_000, "X handed over");
    expect(queue.reserve()).toBeNull(); // one slot is X's, the other is Y's claim's
    openClaim();
    await waitFor(() => handled.includes("Y"), 5_000, "Y claimed");
    expect(queue.reserve()).toBeNull(); // both slots busy, none beyond
    gates.get("X")!();
    gates.get("Y")!();
    await consumer.close();
    await queue.close();
  });

  it("is told when announced runs wait; the run it hands over starts at once in its slot, with no claim of its own; close waits for both", async () => {
    const queue = createRunQueue(createLocalBell(), () => {});
    const src = source();
    const told: boolean[] = [];
    const gates = new Map<string, () => void>();
    const tails = new Map<string, () => void>();
    const consumer = await queue.consume({
      concurrency: 1,
      pollMs: 60_000,
      claim: src.claim,
      handler: async (id: string, slot) => {
        src.handled.push({ id, at: Date.now() });
        await new Promise<void>((r) => gates.set(id, r));
        told.push(slot.wantsMore());
        // Plays runs.finish with a claim: takes the next waiting run itself.
        const next = slot.wantsMore() ? src.items.shift() : undefined;
        if (!next) return;
        slot.handOver(next);
        expect(() => slot.handOver("again")).toThrow(/already/);
        // Follow-up work (ending the stream...) after the hand-over.
        await new Promise<void>((r) => tails.set(id, r));
      },
    });
    await sleep(50); // the start-up look-around found nothing
    src.items.push("first");
    await queue.dispatch([ring()]);
    await waitFor(() => src.handled.length === 1, 5_000, "the first run");
    const claimsBefore = src.claims;
    src.items.push("second");
    await queue.dispatch([ring()]); // announced while the only slot is busy
    await sleep(20);
    gates.get("first")!();
    // The second starts while the first handler is still in its follow-up work.
    await waitFor(() => src.handled.length === 2, 5_000, "the second run, handed over");
    expect(src.handled[1]!.id).toBe("second");
    expect(told).toEqual([true]);
    expect(src.claims).toBe(claimsBefore); // no claim query: the handler's finish took it
    expect(queue.reserve()).toBeNull(); // the slot is the second run's
    let closed = false;
    const closing = consumer.close().then(() => (closed = true));
    tails.get("first")!();
    await sleep(50);
    expect(closed).toBe(false); // the handed-over run is still running
    gates.get("second")!();
    await closing;
    expect(told).toEqual([true, false]); // nothing announced any more (and closing)
    await queue.close();
  });
});
