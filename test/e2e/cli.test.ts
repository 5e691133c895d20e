/**
 * Promise 3 of the foundation: CLI conventions. Help exits 0 with usage; a
 * usage error (unknown flag, bad --port, unknown command, missing --config
 * file) prints ONE line on stderr and exits 2; an invalid environment
 * variable exits 2 and names the variable. None of these starts a server.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT, killAll, runCli } from "../helpers/cli.js";

const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version;

const oneLine = (text: string) => text.split("\n").filter((l) => l.trim() !== "");

afterAll(() => killAll());

describe("openplane CLI conventions", () => {
  // Each CLI start loads TypeScript through tsx (~1 s): run the cases concurrently.
  it.concurrent.each([
    { args: ["--help"], usage: /^Usage: openplane \[command\]/, mentions: ["up", "serve", "worker", "migrate", "--config", "--port", "--host"] },
    { args: ["up", "--help"], usage: /^Usage: openplane up/, mentions: ["--config", "--port", "OPENPLANE_DATA_DIR"] },
    { args: ["serve", "--help"], usage: /^Usage: openplane serve/, mentions: ["N_JOBS_PER_WORKER"] },
    { args: ["worker", "--help"], usage: /^Usage: openplane worker/, mentions: ["REDIS_URI", "--port", "/ok", "/metrics"] },
    { args: ["migrate", "--help"], usage: /^Usage: openplane migrate/, mentions: ["migrations"] },
  ])("`openplane $args` prints usage and exits 0", async ({ args, usage, mentions }) => {
    const r = await runCli(args);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(usage);
    for (const m of mentions) expect(r.stdout).toContain(m);
    expect(r.stderr).toBe("");
  });

  it("`openplane --version` prints the package version", async () => {
    const r = await runCli(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(VERSION);
  });

  it.concurrent.each([
    { name: "an unknown flag", args: ["up", "--frobnicate"], says: /--frobnicate/ },
    { name: "a non-numeric --port", args: ["up", "--port", "abc"], says: /--port.*abc/ },
    { name: "an out-of-range --port", args: ["serve", "--port", "70000"], says: /--port.*70000/ },
    { name: "an unknown command", args: ["launch"], says: /unknown command "launch"/ },
    { name: "an extra argument", args: ["up", "now"], says: /now/ },
    { name: "a missing --config file", args: ["up", "--config", "/nonexistent/openplane-e2e/langgraph.json"], says: /config file not found: \/nonexistent\/openplane-e2e\/langgraph\.json/ },
  ])("$name prints one line on stderr and exits 2", async ({ args, says }) => {
    const r = await runCli(args);
    expect(r.code, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(2);
    const lines = oneLine(r.stderr);
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^openplane: /);
    expect(lines[0]).toMatch(says);
    expect(r.stdout).toBe("");
  });

  it("an invalid N_JOBS_PER_WORKER=abc exits 2 and names the variable", async () => {
    const r = await runCli(["up", "--port", "0"], { env: { N_JOBS_PER_WORKER: "abc" } });
    expect(r.code, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(2);
    expect(r.stderr).toMatch(/N_JOBS_PER_WORKER/);
    expect(r.stderr).not.toMatch(/^\s+at /m); // a message, not a stack trace
    // It stopped before starting anything: no database, no server.
    expect(r.stdout).not.toMatch(/embedded PostgreSQL|openplane is serving/);
  });

  it("reports every invalid variable at once, each by name", async () => {
    const bad = {
      BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS: "-1",
      REDIS_URI: "http://not-redis",
      LOG_LEVEL: "loud",
      OPENPLANE_RUN_LEASE_SECS: "0",
    };
    const r = await runCli(["up", "--port", "0"], { env: bad });
    expect(r.code, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(2);
    for (const name of Object.keys(bad)) expect(r.stderr).toContain(name);
    expect(r.stdout).not.toMatch(/embedded PostgreSQL|openplane is serving/);
  });

  it("refuses an API-only process (N_JOBS_PER_WORKER=0) without Redis, with exit 2", async () => {
    const r = await runCli(["serve", "--port", "0"], { env: { N_JOBS_PER_WORKER: "0" } });
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/N_JOBS_PER_WORKER=0.*REDIS_URI/);
  });

  it("refuses `openplane worker` without Redis, with exit 2", async () => {
    const r = await runCli(["worker"]);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/REDIS_URI/);
  });
});
