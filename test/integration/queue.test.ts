import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uuidv7 } from "../../src/lib/uuid.js";
import { createBullmqQueue } from "../../src/queue/bullmq-queue.js";
import type { QueueBackend } from "../../src/queue/bullmq-queue.js";
import type { RunQueue, RunQueueConsumer } from "../../src/queue/run-queue.js";
import { createTestDatabase, hasRedis, redisSkipReason, redisUri, uniquePrefix } from "../helpers/services.js";
import type { TestDatabase } from "../helpers/services.js";

const dispatch = (run_id: string, delay_ms = 0) => ({ run_id, thread_id: uuidv7(), delay_ms });

async function waitFor(cond: () => boolean, ms = 10_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Records every handler call with its time. */
function recorder() {
  const calls: Array<{ runId: string; at: number }> = [];
  return {
    calls,
    ids: () => calls.map((c) => c.runId),
    countOf: (id: string) => calls.filter((c) => c.runId === id).length,
    handler: async (runId: string) => void calls.push({ runId, at: Date.now() }),
  };
}

function queueContract(name: string, backend: () => Promise<QueueBackend>) {
  describe(`${name} queue`, () => {
    // Each test gets its own queue (unique prefix / schema), so nothing leaks between them.
    const open: Array<{ queue: RunQueue; consumers: RunQueueConsumer[] }> = [];
    async function make() {
      const errors: unknown[] = [];
      const queue = createBullmqQueue(await backend(), (err) => errors.push(err));
      const entry = { queue, consumers: [] as RunQueueConsumer[] };
      open.push(entry);
      return {
        queue,
        errors,
        consume: async (concurrency: number, handler: (id: string) => Promise<void>) => {
          const c = await queue.consume(concurrency, handler);
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

    it("hands every dispatched run id to the handler", async () => {
      const { queue, consume, errors } = await make();
      const rec = recorder();
      await consume(2, rec.handler);
      const ids = Array.from({ length: 5 }, () => uuidv7());
      await queue.dispatch(ids.map((id) => dispatch(id)));
      await waitFor(() => rec.calls.length >= 5, 10_000, "5 handler calls");
      expect([...rec.ids()].sort()).toEqual([...ids].sort());
      expect(errors).toEqual([]);
    });

    it("dispatch of nothing is a no-op", async () => {
      const { queue } = await make();
      await expect(queue.dispatch([])).resolves.toBeUndefined();
    });

    it("deduplicates a run id dispatched again while it is still queued", async () => {
      const { queue, consume } = await make();
      const a = uuidv7();
      const b = uuidv7();
      // Queued before any consumer exists: the second and third dispatch of a find it waiting.
      await queue.dispatch([dispatch(a)]);
      await queue.dispatch([dispatch(a), dispatch(b)]);
      await queue.dispatch([dispatch(a)]);
      const rec = recorder();
      await consume(1, rec.handler);
      await waitFor(() => rec.calls.length >= 2, 10_000, "2 handler calls");
      await new Promise((r) => setTimeout(r, 300)); // would-be duplicates have time to arrive
      expect(rec.countOf(a)).toBe(1);
      expect(rec.countOf(b)).toBe(1);
    });

    it("runs a run id again when it is dispatched after its job completed (sweeper re-dispatch)", async () => {
      const { queue, consume } = await make();
      const rec = recorder();
      await consume(1, rec.handler);
      const a = uuidv7();
      await queue.dispatch([dispatch(a)]);
      await waitFor(() => rec.countOf(a) === 1, 10_000, "first call");
      // The job is removed on completion, so the same id is accepted again.
      await new Promise((r) => setTimeout(r, 100));
      await queue.dispatch([dispatch(a)]);
      await waitFor(() => rec.countOf(a) === 2, 10_000, "second call");
    });

    it("holds a delayed run until its delay has passed", async () => {
      const { queue, consume } = await make();
      const rec = recorder();
      await consume(2, rec.handler);
      const delayed = uuidv7();
      const now = uuidv7();
      const sent = Date.now();
      await queue.dispatch([dispatch(delayed, 800), dispatch(now)]);
      await waitFor(() => rec.countOf(delayed) === 1, 10_000, "delayed call");
      const call = rec.calls.find((c) => c.runId === delayed)!;
      expect(call.at - sent).toBeGreaterThanOrEqual(800);
      // The undelayed one was not held back by it.
      const first = rec.calls.find((c) => c.runId === now)!;
      expect(first.at).toBeLessThan(call.at);
    });

    it("a handler error does not stop the consumer", async () => {
      const { queue, consume } = await make();
      const seen: string[] = [];
      const bad = uuidv7();
      await consume(1, async (id) => {
        seen.push(id);
        if (id === bad) throw new Error("handler failed");
      });
      const good = uuidv7();
      await queue.dispatch([dispatch(bad)]);
      await queue.dispatch([dispatch(good)]);
      await waitFor(() => seen.includes(good), 10_000, "the run after a failing one");
      expect(seen).toContain(bad);
    });

    it("consumer.close waits for the active job; queue.close resolves", async () => {
      const { queue, consume } = await make();
      let finished = false;
      let started = false;
      const consumer = await consume(1, async () => {
        started = true;
        await new Promise((r) => setTimeout(r, 300));
        finished = true;
      });
      await queue.dispatch([dispatch(uuidv7())]);
      await waitFor(() => started, 10_000, "job start");
      await consumer.close();
      expect(finished).toBe(true);
      // A second close returns the same (settled) promise.
      await expect(consumer.close()).resolves.toBeUndefined();
      await expect(queue.close()).resolves.toBeUndefined();
    });
  });
}

// ------------------------------------------------------------------------------------------------

describe.skipIf(!hasRedis())(`redis backend${hasRedis() ? "" : ` (skipped: ${redisSkipReason()})`}`, () => {
  let connection: Redis;
  beforeAll(() => {
    connection = new Redis(redisUri(), { maxRetriesPerRequest: null });
    connection.on("error", () => {});
  });
  afterAll(async () => {
    await connection?.quit().catch(() => connection.disconnect());
  });
  queueContract("redis", async () => ({ kind: "redis", connection, prefix: uniquePrefix("bull") }));

  it("keeps jobs under its own prefix", async () => {
    const prefix = uniquePrefix("bullkeys");
    const queue = createBullmqQueue({ kind: "redis", connection, prefix }, () => {});
    try {
      await queue.dispatch([dispatch(uuidv7(), 60_000)]);
      const keys = await connection.keys(`${prefix}:*`);
      expect(keys.length).toBeGreaterThan(0);
      expect(keys.every((k) => k.startsWith(`${prefix}:runs:`))).toBe(true);
    } finally {
      await queue.close();
    }
  });
});

describe("postgres backend", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase("queue");
  });
  afterAll(async () => {
    await db?.drop();
  });
  queueContract("postgres", async () => ({
    kind: "postgres",
    uri: db.uri,
    schema: uniquePrefix("q").replace(/-/g, "_"),
    poolMax: 2,
  }));
});
