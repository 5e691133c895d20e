/**
 * Without Redis, streams and cancel signals stay inside one process. Two such
 * processes on one database would run each other's runs out of their
 * clients' sight, so the second one must refuse to start, clearly.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, killAll, runCli, startCli } from "../helpers/cli.js";
import type { CliProcess } from "../helpers/cli.js";
import { createTestDatabase } from "../helpers/services.js";
import type { TestDatabase } from "../helpers/services.js";
import { freePort } from "../helpers/ports.js";

const CONFIG = join(REPO_ROOT, "langgraph.json");

describe("two Redis-less servers on one database", () => {
  let db: TestDatabase;
  let first: CliProcess;

  beforeAll(async () => {
    db = await createTestDatabase("e2e_guard");
    first = await startCli({ command: "serve", config: CONFIG, env: { POSTGRES_URI: db.uri } });
  });

  afterAll(async () => {
    await killAll();
    await db?.drop();
  });

  it("the second refuses to start and names the fix; the first keeps serving", async () => {
    const port = await freePort();
    const second = await runCli(["serve", "--config", CONFIG, "--port", String(port)], {
      env: { POSTGRES_URI: db.uri },
      timeoutMs: 60_000,
    });
    expect(second.code).not.toBe(0);
    expect(second.stdout + second.stderr).toMatch(/another openplane without Redis is already serving this database/);
    expect(second.stdout + second.stderr).toMatch(/REDIS_URI/);
    const ok = await fetch(`${first.url}/ok`);
    expect(ok.status).toBe(200);
  });

  it("once the first stops, a new one starts (the lock goes with the process)", async () => {
    const exit = await first.stop();
    expect(exit.code).toBe(0);
    const next = await startCli({ command: "serve", config: CONFIG, env: { POSTGRES_URI: db.uri } });
    expect((await fetch(`${next.url}/ok`)).status).toBe(200);
    await next.stop();
  });
});
