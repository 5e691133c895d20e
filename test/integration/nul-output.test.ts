/**
 * A graph whose output holds a NUL character (PostgreSQL text and jsonb cannot store one):
 * the run still ends, its checkpoint keeps the exact value, and the thread's cached copy
 * (jsonb) drops the NUL instead of failing the run's end over and over.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestStack, type TestStack } from "../helpers/app.js";
import { createTestDatabase, type TestDatabase } from "../helpers/services.js";
import { apiClient, type ApiClient, type Json } from "./api-support.js";

let db: TestDatabase;
let stack: TestStack;
let api: ApiClient;

beforeAll(async () => {
  db = await createTestDatabase("nul_output");
  stack = await createTestStack({ postgresUri: db.uri, configPath: "test/fixtures/nul-output/langgraph.json", worker: true, workerConcurrency: 2 });
  api = apiClient(stack);
}, 60_000);

afterAll(async () => {
  await stack?.close();
  await db?.drop();
});

describe("graph output with a NUL character", () => {
  it("a value: the run succeeds, the state keeps it exactly, the thread's cached values drop it", async () => {
    const thread = await api.json("POST", "/threads", {});
    const out = await api.json("POST", `/threads/${thread.thread_id}/runs/wait`, { assistant_id: "nul_value", input: {} });
    expect(out).toEqual({ out: "a\u0000b" });
    const [run] = await api.json<Json[]>("GET", `/threads/${thread.thread_id}/runs`);
    expect(run!.status).toBe("success");
    const state = await api.json("GET", `/threads/${thread.thread_id}/state`);
    expect(state.values).toEqual({ out: "a\u0000b" });
    const after = await api.json("GET", `/threads/${thread.thread_id}`);
    expect(after).toMatchObject({ status: "idle", values: { out: "ab" } });
  });

  it("an error message: the run ends as error, recorded without the NUL", async () => {
    const thread = await api.json("POST", "/threads", {});
    const out = await api.json("POST", `/threads/${thread.thread_id}/runs/wait`, { assistant_id: "nul_error", input: {} });
    expect(out.__error__).toMatchObject({ message: "bad\u0000thing" });
    const [run] = await api.json<Json[]>("GET", `/threads/${thread.thread_id}/runs`);
    expect(run!.status).toBe("error");
    const after = await api.json("GET", `/threads/${thread.thread_id}`);
    expect(after).toMatchObject({ status: "error", error: { message: "badthing" } });
  });
});
