/**
 * LANGGRAPH_AUTH_TYPE=api_key: a key in `x-api-key` or `Authorization:
 * Bearer` opens every route; a missing or wrong key is 401 `{detail}`; the
 * open routes stay open; the run config names the key's user, never the key.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiKeyDigest, createApiKeyAuth } from "../../src/auth/api-key.js";
import { createApp } from "../../src/http/app.js";
import { createTestStack } from "../helpers/app.js";
import type { TestStack } from "../helpers/app.js";
import { createTestDatabase } from "../helpers/services.js";
import type { TestDatabase } from "../helpers/services.js";

const KEY_1 = `op-key-${randomBytes(16).toString("hex")}`;
const KEY_2 = `op-key-${randomBytes(16).toString("hex")}`;

let db: TestDatabase;
let stack: TestStack;
let app: ReturnType<typeof createApp>;

beforeAll(async () => {
  db = await createTestDatabase("auth_api_key");
  stack = await createTestStack({ postgresUri: db.uri, configPath: "test/fixtures/auth/langgraph.json", worker: true, workerConcurrency: 2 });
  app = createApp({ ...stack.deps, auth: createApiKeyAuth([apiKeyDigest(KEY_1), apiKeyDigest(KEY_2)]) });
});
afterAll(async () => {
  await stack?.close();
  await db?.drop();
});

const post = (path: string, headers: Record<string, string>, body: unknown = {}) =>
  app.request(path, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify(body) });

describe("built-in API key authentication", () => {
  it("missing or wrong key → 401 with {detail}", async () => {
    const missing = await post("/threads/search", {});
    expect(missing.status).toBe(401);
    expect(await missing.json()).toEqual({ detail: expect.stringMatching(/Missing API key/) });
    const wrong: Array<Record<string, string>> = [
      { "x-api-key": "wrong-key-0123456789" },
      { Authorization: "Bearer wrong-key-0123456789" },
      { "x-api-key": KEY_1.slice(0, -1) },
      { Authorization: KEY_1 },
    ];
    for (const headers of wrong) {
      const res = await post("/threads/search", headers);
      expect(res.status, JSON.stringify(headers)).toBe(401);
      expect(((await res.json()) as { detail: string }).detail).not.toContain(KEY_1.slice(0, 10));
    }
  });

  it("the right key in x-api-key or Authorization: Bearer → 200", async () => {
    expect((await post("/threads/search", { "x-api-key": KEY_1 })).status).toBe(200);
    expect((await post("/threads/search", { Authorization: `Bearer ${KEY_2}` })).status).toBe(200);
    expect((await post("/threads/search", { authorization: `bearer ${KEY_1}` })).status).toBe(200);
  });

  it("/ok, /info, /docs, /openapi.json stay open", async () => {
    for (const path of ["/ok", "/info", "/docs", "/openapi.json"]) expect((await app.request(path)).status, path).toBe(200);
  });

  it("runs carry the key's user (by position), never the key", async () => {
    const thread = (await (await post("/threads", { "x-api-key": KEY_2 })).json()) as { thread_id: string };
    const res = await post(`/threads/${thread.thread_id}/runs/wait`, { "x-api-key": KEY_2 }, { assistant_id: "whoami", input: { user_id: null } });
    expect(await res.json()).toMatchObject({ user_id: "api-key-2", permissions: [] });
    const rows = await stack.sql`SELECT kwargs::text AS k FROM run WHERE thread_id = ${thread.thread_id}`;
    expect(rows[0]!.k).not.toContain(KEY_2);
  });
});
