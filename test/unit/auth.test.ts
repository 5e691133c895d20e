/**
 * Pure parts of auth: the filter forms handlers return (api.md §6.3, the
 * table of the JS server's "auth filter matching" suite), the custom `Auth`
 * adapter (handler precedence, results, errors, value mutation), the API key
 * check, and LANGGRAPH_AUTH_TYPE / OPENPLANE_API_KEYS parsing.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Auth, HTTPException } from "@langchain/langgraph-sdk/auth";
import { describe, expect, it } from "vitest";
import { apiKeyDigest, createApiKeyAuth } from "../../src/auth/api-key.js";
import { createCustomAuth, isAuthInstance } from "../../src/auth/custom.js";
import { AuthRejection } from "../../src/auth/errors.js";
import { matchesFilters, parseFilters } from "../../src/auth/filters.js";
import { ConfigError, loadConfig } from "../../src/config/index.js";
import { readLanggraphConfig } from "../../src/graphs/config-file.js";

describe("auth filters", () => {
  const doc = { owner: "alice", tags: ["a", "b", "c"], n: 1, nested: { x: 1 } };
  it.each([
    ["no filters", null, true],
    ["empty filters", {}, true],
    ["exact string", { owner: "alice" }, true],
    ["exact string, other value", { owner: "bob" }, false],
    ["$eq", { owner: { $eq: "alice" } }, true],
    ["$eq, other value", { owner: { $eq: "bob" } }, false],
    ["missing key", { team: "red" }, false],
    ["$contains a string", { tags: { $contains: "b" } }, true],
    ["$contains a missing string", { tags: { $contains: "z" } }, false],
    ["$contains a list", { tags: { $contains: ["a", "c"] } }, true],
    ["$contains a list, one missing", { tags: { $contains: ["a", "z"] } }, false],
    ["$contains on a non-array", { owner: { $contains: "alice" } }, false],
    ["equality is not containment", { tags: "a" }, false],
    ["deep equality", { nested: { x: 1 } }, true],
    ["several keys: all must hold", { owner: "alice", n: 2 }, false],
  ] as const)("%s", (_name, filters, expected) => {
    expect(matchesFilters(doc, filters === null ? null : parseFilters(filters))).toBe(expected);
  });

  it("rejects unknown operators instead of ignoring them", () => {
    expect(() => parseFilters({ owner: { $ne: "bob" } })).toThrow(/unsupported operator "\$ne"/);
  });
});

describe("custom Auth adapter", () => {
  const user = { identity: "u1", permissions: ["p"], display_name: "U", is_authenticated: true };
  const ctx = { user, permissions: ["p"] };

  it("recognises an Auth instance by its handler cache", () => {
    expect(isAuthInstance(new Auth())).toBe(true);
    expect(isAuthInstance({ authenticate() {} })).toBe(false);
  });

  it("normalises what authenticate returns; HTTPException keeps its status, message and headers", async () => {
    const strAuth = createCustomAuth(new Auth().authenticate(() => "someone") as never);
    expect(await strAuth.authenticate(new Request("http://x/"))).toEqual({
      user: { identity: "someone", display_name: "someone", permissions: [], is_authenticated: true },
      permissions: [],
    });
    const objAuth = createCustomAuth(new Auth().authenticate(() => ({ identity: "o", permissions: ["a"], org: "acme" })) as never);
    expect(await objAuth.authenticate(new Request("http://x/"))).toEqual({
      user: { identity: "o", display_name: "o", permissions: ["a"], is_authenticated: true, org: "acme" },
      permissions: ["a"],
    });
    const refusing = createCustomAuth(
      new Auth().authenticate(() => {
        throw new HTTPException(403, { message: "nope", headers: { "x-a": "1" } });
      }) as never,
    );
    await expect(refusing.authenticate(new Request("http://x/"))).rejects.toMatchObject({ status: 403, message: "nope", headers: { "x-a": "1" } });
    const defaultMessage = createCustomAuth(
      new Auth().authenticate(() => {
        throw new HTTPException(401);
      }) as never,
    );
    await expect(defaultMessage.authenticate(new Request("http://x/"))).rejects.toMatchObject({ status: 401, message: "Unauthorized" });
    const bad = createCustomAuth(new Auth().authenticate(() => ({ name: "no identity" }) as never) as never);
    await expect(bad.authenticate(new Request("http://x/"))).rejects.toThrow(/identity/);
  });

  it("picks the most specific handler: resource:action, resource, *:action, *", async () => {
    const calls: string[] = [];
    const a = new Auth()
      .on("*", () => void calls.push("*"))
      .on("*:read", () => void calls.push("*:read"))
      .on("threads", () => void calls.push("threads"))
      .on("threads:read", () => void calls.push("threads:read"));
    const p = createCustomAuth(a as never);
    await p.authorize(ctx, "threads", "read", {});
    await p.authorize(ctx, "threads", "update", {});
    await p.authorize(ctx, "assistants", "read", {});
    await p.authorize(ctx, "store", "put", {});
    expect(calls).toEqual(["threads:read", "threads", "*:read", "*"]);
    // No user (no authenticate step): handlers do not run.
    await p.authorize(null, "threads", "read", {});
    expect(calls).toHaveLength(4);
  });

  it("maps results: undefined/null/true allow, false is 403, an object is filters, anything else a server error; the value may be mutated", async () => {
    const result = { current: undefined as unknown };
    const a = new Auth().on("threads", ({ value }) => {
      (value as { metadata: Record<string, unknown> }).metadata.owner = "u1";
      return result.current as never;
    });
    const p = createCustomAuth(a as never);
    const value = { metadata: {} as Record<string, unknown> };
    for (const allow of [undefined, null, true]) {
      result.current = allow;
      expect(await p.authorize(ctx, "threads", "create", value)).toBeNull();
    }
    expect(value.metadata).toEqual({ owner: "u1" });
    result.current = false;
    await expect(p.authorize(ctx, "threads", "create", value)).rejects.toMatchObject({ status: 403 });
    result.current = { owner: "u1" };
    expect(await p.authorize(ctx, "threads", "create", value)).toEqual([{ key: "owner", op: "eq", value: "u1" }]);
    result.current = "yes";
    await expect(p.authorize(ctx, "threads", "create", value)).rejects.toThrow(/returned string/);
  });
});

describe("API key check", () => {
  const key = "a-long-enough-key-1234";
  const p = createApiKeyAuth([apiKeyDigest("another-long-key-0000"), apiKeyDigest(key)]);
  it("accepts x-api-key or Authorization: Bearer; names the user by the key's position", async () => {
    expect((await p.authenticate(new Request("http://x/", { headers: { "x-api-key": key } })))?.user.identity).toBe("api-key-2");
    expect((await p.authenticate(new Request("http://x/", { headers: { authorization: `Bearer ${key}` } })))?.user.identity).toBe("api-key-2");
  });
  it("refuses a missing or wrong key with 401", async () => {
    await expect(p.authenticate(new Request("http://x/"))).rejects.toBeInstanceOf(AuthRejection);
    await expect(p.authenticate(new Request("http://x/", { headers: { "x-api-key": `${key}x` } }))).rejects.toMatchObject({ status: 401 });
  });
});

describe("LANGGRAPH_AUTH_TYPE and OPENPLANE_API_KEYS", () => {
  const problems = (env: Record<string, string>) => {
    try {
      loadConfig(env);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).problems;
    }
    return [];
  };

  it("defaults to noop", () => {
    expect(loadConfig({}).auth).toEqual({ type: "noop", apiKeyDigests: [] });
  });

  it("api_key keeps digests of the keys from the list and the file, never the keys", () => {
    const dir = mkdtempSync(join(tmpdir(), "op-keys-"));
    const file = join(dir, "keys");
    writeFileSync(file, "# operators\nfile-key-0123456789abcdef\n\n");
    const cfg = loadConfig({ LANGGRAPH_AUTH_TYPE: "api_key", OPENPLANE_API_KEYS: "list-key-0123456789abc, list-key-0123456789abc", OPENPLANE_API_KEYS_FILE: file });
    expect(cfg.auth.type).toBe("api_key");
    expect(cfg.auth.apiKeyDigests).toEqual([apiKeyDigest("list-key-0123456789abc"), apiKeyDigest("file-key-0123456789abcdef")]);
    expect(JSON.stringify(cfg)).not.toContain("list-key");
  });

  it("reports misconfigurations by variable, without the key values", () => {
    expect(problems({ LANGGRAPH_AUTH_TYPE: "api_key" })).toEqual([expect.stringMatching(/^OPENPLANE_API_KEYS: .*at least one key/)]);
    expect(problems({ OPENPLANE_API_KEYS: "a-key-that-is-long-enough" })).toEqual([expect.stringMatching(/^LANGGRAPH_AUTH_TYPE: .*noop/)]);
    const short = problems({ LANGGRAPH_AUTH_TYPE: "api_key", OPENPLANE_API_KEYS: "secret1" });
    expect(short).toEqual([expect.stringMatching(/^OPENPLANE_API_KEYS: key #1 is shorter/)]);
    expect(short.join()).not.toContain("secret1");
    expect(problems({ LANGGRAPH_AUTH_TYPE: "langsmith" })).toEqual([expect.stringMatching(/^LANGGRAPH_AUTH_TYPE: langsmith/)]);
    expect(problems({ LANGGRAPH_AUTH_TYPE: "basic" })).toEqual(["LANGGRAPH_AUTH_TYPE: must be noop or api_key"]);
    expect(problems({ LANGGRAPH_AUTH_TYPE: "api_key", OPENPLANE_API_KEYS_FILE: "/no/such/file" })).toContain("OPENPLANE_API_KEYS_FILE: cannot read /no/such/file");
  });
});

describe("langgraph.json auth and http", () => {
  const write = (json: unknown) => {
    const dir = mkdtempSync(join(tmpdir(), "op-lgjson-"));
    writeFileSync(join(dir, "langgraph.json"), JSON.stringify(json));
    return { dir, path: join(dir, "langgraph.json") };
  };
  const graphs = { g: "./g.ts:graph" };

  it("resolves auth.path and http.app against the file's directory; defaults apply", async () => {
    const { dir, path } = write({
      graphs,
      auth: { path: "./auth.ts:auth" },
      http: { app: "./app.ts", disable_store: true, cors: { allow_origins: ["https://a.example"], allow_origin_regex: "https://.*\\.example" } },
    });
    const cfg = await readLanggraphConfig(path);
    expect(cfg.auth).toEqual({ module: { file: join(dir, "auth.ts"), exportName: "auth" }, disableStudioAuth: false, openapi: null });
    expect(cfg.http).toMatchObject({
      app: { file: join(dir, "app.ts"), exportName: "default" },
      disable: { store: true },
      enableCustomRouteAuth: false,
      middlewareOrder: "middleware_first",
      cors: { allow_origins: ["https://a.example"] },
    });
    expect((await readLanggraphConfig(write({ graphs }).path)).http).toBeNull();
  });

  it("names the field of a bad value", async () => {
    await expect(readLanggraphConfig(write({ graphs, http: { middleware_order: "random" } }).path)).rejects.toThrow(/http\.middleware_order/);
    await expect(readLanggraphConfig(write({ graphs, http: { cors: { allow_origin_regex: "(" } } }).path)).rejects.toThrow(/http\.cors\.allow_origin_regex: must be a valid regular expression/);
    await expect(readLanggraphConfig(write({ graphs, auth: { path: "./a.ts:not a name" } }).path)).rejects.toThrow(/auth\.path/);
  });
});
