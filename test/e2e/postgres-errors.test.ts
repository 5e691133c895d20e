/**
 * Unreachable or unsupported stores stop start-up with one line that names the
 * variable, the host and the reason: no stack trace, exit code 1, no password.
 * The "too old" check is exercised at unit level (checkPostgresServer with a fake
 * version number): every test server is new enough, and the minimum is not configurable.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  MIN_POSTGRES_MAJOR,
  StoreStartupError,
  checkPostgresServer,
  checkRedisConnect,
  endpointOf,
} from "../../src/storage/server-version.js";
import { REPO_ROOT, runCli } from "../helpers/cli.js";
import { freePort } from "../helpers/ports.js";
import { createTestDatabase, postgresUri } from "../helpers/services.js";

const CONFIG = join(REPO_ROOT, "langgraph.json");
const SECRET = "secretpw";

/** A port nothing listens on (free a moment ago). */
const closedPort = () => freePort();

function expectOneClearLine(res: { code: number | null; stdout: string; stderr: string }, pattern: RegExp) {
  expect(res.code).toBe(1);
  const lines = res.stderr.trim().split("\n");
  expect(lines, res.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(res.stderr).not.toMatch(/\bat .+:\d+:\d+|Error:/);
  expect(res.stdout + res.stderr).not.toContain(SECRET);
}

describe.concurrent("unreachable PostgreSQL", () => {
  it("POSTGRES_URI_CUSTOM on a closed port: one line, exit 1, no password", async () => {
    const port = await closedPort();
    const res = await runCli(["serve", "--config", CONFIG], {
      env: { POSTGRES_URI_CUSTOM: `postgres://u:${SECRET}@127.0.0.1:${port}/db` },
    });
    expectOneClearLine(
      res,
      new RegExp(`^openplane: cannot reach PostgreSQL at 127\\.0\\.0\\.1:${port} \\(POSTGRES_URI_CUSTOM\\): connection refused$`),
    );
  });

  it("POSTGRES_URI (migrate) on a closed port names POSTGRES_URI", async () => {
    const port = await closedPort();
    const res = await runCli(["migrate"], { env: { POSTGRES_URI: `postgresql://u:${SECRET}@127.0.0.1:${port}/db` } });
    expectOneClearLine(res, /^openplane: cannot reach PostgreSQL at 127\.0\.0\.1:\d+ \(POSTGRES_URI\): connection refused$/);
  });

  it("a wrong password: authentication failed, the password not echoed", async () => {
    const url = new URL(postgresUri());
    url.username = "openplane_no_such_user";
    url.password = SECRET;
    const res = await runCli(["migrate"], { env: { POSTGRES_URI_CUSTOM: url.toString() } });
    expectOneClearLine(res, /^openplane: cannot reach PostgreSQL at .+ \(POSTGRES_URI_CUSTOM\): authentication failed/);
  });

  it("a database that does not exist is not created", async () => {
    const url = new URL(postgresUri());
    url.pathname = "/openplane_no_such_database";
    const res = await runCli(["migrate"], { env: { POSTGRES_URI_CUSTOM: url.toString() } });
    expectOneClearLine(res, /\(POSTGRES_URI_CUSTOM\): the database does not exist/);
  });
});

describe.concurrent("unreachable Redis", () => {
  it("REDIS_URI_CUSTOM on a closed port: one line, exit 1, bounded, no password", async () => {
    const db = await createTestDatabase("e2e_redis_errors");
    try {
      const port = await closedPort();
      const started = Date.now();
      const res = await runCli(["serve", "--config", CONFIG], {
        env: { POSTGRES_URI: db.uri, REDIS_URI_CUSTOM: `redis://:${SECRET}@127.0.0.1:${port}/0`, N_JOBS_PER_WORKER: "0" },
        timeoutMs: 30_000,
      });
      expectOneClearLine(
        res,
        new RegExp(`^openplane: cannot reach Redis at 127\\.0\\.0\\.1:${port} \\(REDIS_URI_CUSTOM\\): connection refused$`),
      );
      expect(Date.now() - started).toBeLessThan(25_000);
    } finally {
      await db.drop();
    }
  });

  it("REDIS_URI (worker) names REDIS_URI", async () => {
    const db = await createTestDatabase("e2e_redis_errors");
    try {
      const port = await closedPort();
      const res = await runCli(["worker", "--config", CONFIG], {
        env: { POSTGRES_URI: db.uri, REDIS_URI: `redis://127.0.0.1:${port}` },
      });
      expectOneClearLine(res, /^openplane: cannot reach Redis at 127\.0\.0\.1:\d+ \(REDIS_URI\): connection refused$/);
    } finally {
      await db.drop();
    }
  });
});

describe("checks (unit level)", () => {
  const uri = `postgres://u:${SECRET}@db.internal:6543/app`;

  it("refuses a PostgreSQL older than 14, naming the version and the variable", async () => {
    expect(MIN_POSTGRES_MAJOR).toBe(14);
    const err = await checkPostgresServer(async () => 130_011, { uri, variable: "POSTGRES_URI_CUSTOM" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreStartupError);
    expect((err as Error).message).toBe(
      "PostgreSQL at db.internal:6543 (POSTGRES_URI_CUSTOM) is version 13; openplane needs PostgreSQL 14 or newer",
    );
    expect((err as Error).message).not.toContain(SECRET);
  });

  it("accepts 14 and newer", async () => {
    await expect(checkPostgresServer(async () => 140_000, { uri, variable: "POSTGRES_URI" })).resolves.toBe(140_000);
    await expect(checkPostgresServer(async () => 180_001, { uri, variable: "POSTGRES_URI" })).resolves.toBe(180_001);
  });

  it("reports a connection error by its code, never by its (URI-bearing) message", async () => {
    const err = await checkPostgresServer(
      async () => {
        throw Object.assign(new Error(`connect ECONNREFUSED ${uri}`), { code: "ECONNREFUSED" });
      },
      { uri, variable: "DATABASE_URI" },
    ).catch((e: unknown) => e);
    expect((err as Error).message).toBe("cannot reach PostgreSQL at db.internal:6543 (DATABASE_URI): connection refused");
  });

  it("bounds the Redis connect", async () => {
    const started = Date.now();
    const err = await checkRedisConnect(() => new Promise(() => {}), {
      uri: `rediss://:${SECRET}@cache:6380`,
      variable: "REDIS_URI_CUSTOM",
      timeoutMs: 200,
    }).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect((err as Error).message).toBe("cannot reach Redis at cache:6380 (REDIS_URI_CUSTOM): no answer within 200 ms");
  });

  it("endpointOf drops the credentials", () => {
    expect(endpointOf(`postgres://u:${SECRET}@h/db`, 5432)).toBe("h:5432");
  });
});
