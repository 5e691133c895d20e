/**
 * Shared by the api-*.test.ts suites: a stack serving the API fixture graphs
 * and a small JSON client over app.request().
 */
import { expect } from "vitest";
import type { TestStack } from "../helpers/app.js";
import { createTestStack } from "../helpers/app.js";
import { createTestDatabase } from "../helpers/services.js";
import type { TestDatabase } from "../helpers/services.js";

export type Json = Record<string, unknown>;

export const API_GRAPHS = "test/fixtures/api-graphs/langgraph.json";

export async function apiStack(name: string, opts: { worker?: boolean } = {}): Promise<{ db: TestDatabase; stack: TestStack; api: ApiClient }> {
  const db = await createTestDatabase(name);
  try {
    const stack = await createTestStack({ postgresUri: db.uri, configPath: API_GRAPHS, worker: opts.worker ?? false, workerConcurrency: 2 });
    return { db, stack, api: apiClient(stack) };
  } catch (err) {
    await db.drop();
    throw err;
  }
}

export type ApiClient = ReturnType<typeof apiClient>;

export function apiClient(stack: Pick<TestStack, "app">) {
  const request = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    stack.app.request(path, {
      method,
      headers: { "Content-Type": "application/json", ...headers },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
  return {
    request,
    /** Sends a request and asserts the status; returns the parsed body (null for an empty one). */
    async json<T = Json>(method: string, path: string, body?: unknown, expected = 200, headers: Record<string, string> = {}): Promise<T> {
      const res = await request(method, path, body, headers);
      const text = await res.text();
      expect(res.status, `${method} ${path} → ${text}`).toBe(expected);
      return (text ? JSON.parse(text) : null) as T;
    },
    /** Asserts an error status and that the body is `{detail}` (matching `detail` when given). */
    async fails(method: string, path: string, body: unknown, status: number, detail?: RegExp): Promise<string> {
      const res = await request(method, path, body);
      const text = await res.text();
      expect(res.status, `${method} ${path} → ${text}`).toBe(status);
      const parsed = JSON.parse(text) as { detail?: unknown };
      expect(typeof parsed.detail).toBe("string");
      if (detail) expect(parsed.detail).toMatch(detail);
      return parsed.detail as string;
    },
  };
}
