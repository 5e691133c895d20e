/**
 * Cron routes (api.md §2.5) without firing: create (stateless and on a
 * thread), get, patch (end_time null clears, omitted leaves), delete,
 * search (filters, sort, select, pagination headers), count, and the 404 and
 * 422 answers, which write nothing.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemAssistantId } from "../../src/domain/assistant.js";
import type { TestStack } from "../helpers/app.js";
import type { TestDatabase } from "../helpers/services.js";
import type { ApiClient, Json } from "./api-support.js";
import { apiStack } from "./api-support.js";

let db: TestDatabase;
let stack: TestStack;
let api: ApiClient;

beforeAll(async () => {
  ({ db, stack, api } = await apiStack("crons_api"));
});
afterAll(async () => {
  await stack?.close();
  await db?.drop();
});

const cronCount = async () => (await stack.sql`SELECT count(*)::int AS n FROM cron`)[0]!.n as number;
const COUNTER = systemAssistantId("counter");

describe("POST /runs/crons and /threads/{id}/runs/crons", () => {
  it("creates a stateless cron with the official fields and a next run date", async () => {
    const tag = randomUUID();
    const cron = await api.json("POST", "/runs/crons", {
      assistant_id: "counter",
      schedule: "0 9 * * *",
      timezone: "Europe/Paris",
      input: { count: 1 },
      metadata: { tag },
    });
    expect(Object.keys(cron).sort()).toEqual(
      [
        "assistant_id", "created_at", "cron_id", "enabled", "end_time", "metadata", "next_run_date",
        "on_run_completed", "payload", "schedule", "thread_id", "timezone", "updated_at", "user_id",
      ].sort(),
    );
    expect(cron).toMatchObject({
      assistant_id: COUNTER,
      thread_id: null,
      on_run_completed: "delete",
      end_time: null,
      schedule: "0 9 * * *",
      timezone: "Europe/Paris",
      user_id: null,
      metadata: { tag },
      enabled: true,
      payload: { assistant_id: "counter", input: { count: 1 }, metadata: { tag } },
    });
    // 09:00 in Paris is 07:00 or 08:00 UTC, depending on the season.
    const next = new Date(cron.next_run_date as string);
    expect(next.getTime()).toBeGreaterThan(Date.now());
    expect([7, 8]).toContain(next.getUTCHours());
    expect(await api.json("GET", `/runs/crons/${cron.cron_id}`)).toEqual(cron);
  });

  it("a thread cron belongs to its thread, and goes when the thread is deleted", async () => {
    const thread = await api.json("POST", "/threads", {});
    const cron = await api.json("POST", `/threads/${thread.thread_id}/runs/crons`, {
      assistant_id: COUNTER,
      schedule: "*/5 * * * *",
      on_run_completed: "keep",
      enabled: false,
    });
    expect(cron).toMatchObject({ thread_id: thread.thread_id, on_run_completed: null, enabled: false, next_run_date: null });
    await api.json("DELETE", `/threads/${thread.thread_id}`, undefined, 204);
    await api.fails("GET", `/runs/crons/${cron.cron_id}`, undefined, 404, /not found/);
  });

  it("422 names the field (schedule, timezone, end_time, assistant_id); 404 for a missing thread or assistant; nothing written", async () => {
    const before = await cronCount();
    await api.fails("POST", "/runs/crons", { assistant_id: "counter" }, 422, /schedule/);
    await api.fails("POST", "/runs/crons", { assistant_id: "counter", schedule: "every day" }, 422, /schedule/);
    await api.fails("POST", "/runs/crons", { assistant_id: "counter", schedule: "61 * * * *" }, 422, /schedule/);
    await api.fails("POST", "/runs/crons", { assistant_id: "counter", schedule: "0 0 31 2 *" }, 422, /schedule/);
    await api.fails("POST", "/runs/crons", { assistant_id: "counter", schedule: "* * * * *", timezone: "Mars/Olympus" }, 422, /timezone/);
    await api.fails("POST", "/runs/crons", { assistant_id: "counter", schedule: "* * * * *", end_time: "tomorrow" }, 422, /end_time/);
    await api.fails("POST", "/runs/crons", { schedule: "* * * * *" }, 422, /assistant_id/);
    await api.fails("POST", "/runs/crons", { assistant_id: "counter", schedule: "* * * * *", on_run_completed: "archive" }, 422, /on_run_completed/);
    await api.fails("POST", "/runs/crons", { assistant_id: randomUUID(), schedule: "* * * * *" }, 404, /No assistant found/);
    await api.fails("POST", `/threads/${randomUUID()}/runs/crons`, { assistant_id: "counter", schedule: "* * * * *" }, 404, /Thread/);
    await api.fails("POST", "/threads/nope/runs/crons", { assistant_id: "counter", schedule: "* * * * *" }, 422, /thread_id/);
    expect(await cronCount()).toBe(before);
  });
});

describe("GET, PATCH and DELETE /runs/crons/{cron_id}", () => {
  it("PATCH: end_time null clears it, omitted leaves it; run fields go to the payload; metadata merges", async () => {
    const end = new Date(Date.now() + 86_400_000).toISOString();
    const cron = await api.json("POST", "/runs/crons", {
      assistant_id: "counter",
      schedule: "0 * * * *",
      end_time: end,
      input: { count: 1 },
      metadata: { a: 1 },
    });
    expect(cron.end_time).toBe(end);
    const p1 = await api.json("PATCH", `/runs/crons/${cron.cron_id}`, { schedule: "30 * * * *", input: { count: 2 }, metadata: { b: 2 } });
    expect(p1).toMatchObject({ schedule: "30 * * * *", end_time: end, metadata: { a: 1, b: 2 }, payload: { input: { count: 2 }, metadata: { a: 1, b: 2 } } });
    expect(new Date(p1.next_run_date as string).getUTCMinutes()).toBe(30);
    expect(Date.parse(p1.updated_at as string)).toBeGreaterThanOrEqual(Date.parse(cron.updated_at as string));
    const p2 = await api.json("PATCH", `/runs/crons/${cron.cron_id}`, { end_time: null });
    expect(p2).toMatchObject({ end_time: null, schedule: "30 * * * *" });
    const p3 = await api.json("PATCH", `/runs/crons/${cron.cron_id}`, { enabled: false });
    expect(p3).toMatchObject({ enabled: false, next_run_date: null });
    const p4 = await api.json("PATCH", `/runs/crons/${cron.cron_id}`, { enabled: true, end_time: new Date(Date.now() - 1000).toISOString() });
    expect(p4).toMatchObject({ enabled: true, next_run_date: null });
    await api.fails("PATCH", `/runs/crons/${cron.cron_id}`, { schedule: "nope" }, 422, /schedule/);
    await api.fails("PATCH", `/runs/crons/${cron.cron_id}`, { timezone: "Nowhere/Land" }, 422, /timezone/);
    expect(await api.json("GET", `/runs/crons/${cron.cron_id}`)).toEqual(p4);
  });

  it("DELETE → 204, then 404; unknown or malformed ids", async () => {
    const cron = await api.json("POST", "/runs/crons", { assistant_id: "counter", schedule: "0 * * * *" });
    await api.json("DELETE", `/runs/crons/${cron.cron_id}`, undefined, 204);
    await api.fails("GET", `/runs/crons/${cron.cron_id}`, undefined, 404, /not found/);
    await api.fails("DELETE", `/runs/crons/${cron.cron_id}`, undefined, 404, /not found/);
    await api.fails("PATCH", `/runs/crons/${randomUUID()}`, { enabled: false }, 404, /not found/);
    await api.fails("GET", "/runs/crons/not-a-uuid", undefined, 422, /cron_id/);
  });
});

describe("POST /runs/crons/search and /count", () => {
  it("filters by assistant (graph id or UUID), thread, enabled and metadata; sorts; selects; paginates", async () => {
    const tag = randomUUID();
    const thread = await api.json("POST", "/threads", {});
    const a = await api.json("POST", "/runs/crons", { assistant_id: "counter", schedule: "0 1 * * *", metadata: { tag, n: 1 } });
    const b = await api.json("POST", "/runs/crons", { assistant_id: "agent", schedule: "0 2 * * *", metadata: { tag, n: 2 } });
    const c = await api.json("POST", `/threads/${thread.thread_id}/runs/crons`, {
      assistant_id: "counter",
      schedule: "0 3 * * *",
      metadata: { tag, n: 3 },
      enabled: false,
    });
    const ids = (rows: Json[]) => rows.map((r) => r.cron_id);
    expect(ids(await api.json<Json[]>("POST", "/runs/crons/search", { metadata: { tag } }))).toEqual([c.cron_id, b.cron_id, a.cron_id]);
    // Which of a (01:00) and b (02:00) comes next depends on the time of day: the order
    // expected is the one of the dates the API reports; the disabled cron (no date) is last.
    const [a1, b1] = [a, b].map((x) => ({ id: x.cron_id, next: Date.parse(x.next_run_date as string) }));
    const byDate = [a1!, b1!].sort((x, y) => x.next - y.next).map((x) => x.id);
    expect(ids(await api.json<Json[]>("POST", "/runs/crons/search", { metadata: { tag }, sort_by: "next_run_date", sort_order: "asc" }))).toEqual([
      ...byDate,
      c.cron_id,
    ]);
    expect(ids(await api.json<Json[]>("POST", "/runs/crons/search", { metadata: { tag }, assistant_id: "counter" }))).toEqual([c.cron_id, a.cron_id]);
    expect(ids(await api.json<Json[]>("POST", "/runs/crons/search", { metadata: { tag }, assistant_id: COUNTER, enabled: true }))).toEqual([a.cron_id]);
    expect(ids(await api.json<Json[]>("POST", "/runs/crons/search", { thread_id: thread.thread_id }))).toEqual([c.cron_id]);
    const picked = await api.json<Json[]>("POST", "/runs/crons/search", { metadata: { tag }, select: ["cron_id", "schedule"], limit: 1 });
    expect(picked).toEqual([{ cron_id: c.cron_id, schedule: "0 3 * * *" }]);

    const res = await api.request("POST", "/runs/crons/search", { metadata: { tag }, limit: 2, offset: 0 });
    expect(res.headers.get("X-Pagination-Total")).toBe("3");
    expect(res.headers.get("X-Pagination-Next")).toBe("2");
    const last = await api.request("POST", "/runs/crons/search", { metadata: { tag }, limit: 2, offset: 2 });
    expect(last.headers.get("X-Pagination-Next")).toBeNull();

    expect(await api.json("POST", "/runs/crons/count", { metadata: { tag } })).toBe(3);
    expect(await api.json("POST", "/runs/crons/count", { metadata: { tag }, assistant_id: "agent" })).toBe(1);
    expect(await api.json("POST", "/runs/crons/count", { thread_id: thread.thread_id })).toBe(1);
  });

  it("bad search fields → 422 naming them", async () => {
    await api.fails("POST", "/runs/crons/search", { sort_by: "schedule" }, 422, /sort_by/);
    await api.fails("POST", "/runs/crons/search", { select: ["auth_user"] }, 422, /select/);
    await api.fails("POST", "/runs/crons/search", { assistant_id: "no-such-graph" }, 422, /assistant_id/);
    await api.fails("POST", "/runs/crons/count", { thread_id: "x" }, 422, /thread_id/);
  });

  it("/info advertises crons", async () => {
    expect(await api.json("GET", "/info")).toMatchObject({ flags: { crons: true } });
  });
});
