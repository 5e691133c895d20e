import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { LOG_FLUSH_MS, createProcessLogger } from "../../src/lib/logger.js";

describe("process logger", () => {
  const dir = mkdtempSync(join(tmpdir(), "openplane-logger-"));
  let fd: number | null = null;
  afterEach(() => {
    if (fd !== null) closeSync(fd);
    fd = null;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const open = (name: string) => {
    const path = join(dir, name);
    fd = openSync(path, "w");
    return { path, read: () => readFileSync(path, "utf8") };
  };

  it("writes lines in batches: none at once, all within LOG_FLUSH_MS, in order", async () => {
    const file = open("batch.log");
    const { logger } = createProcessLogger({ level: "info", json: true, fd: fd! });
    for (let i = 0; i < 3; i++) logger.info({ i }, "run finished");
    expect(file.read()).toBe("");
    await new Promise((r) => setTimeout(r, LOG_FLUSH_MS * 3));
    const lines = file.read().trim().split("\n").map((l) => JSON.parse(l) as { i: number; msg: string; level: string });
    expect(lines.map((l) => l.i)).toEqual([0, 1, 2]);
    expect(lines[0]).toMatchObject({ level: "info", msg: "run finished" });
  });

  it("flushSync writes what is buffered at once (the exit handler)", () => {
    const file = open("exit.log");
    const { logger, flushSync } = createProcessLogger({ level: "info", json: false, fd: fd! });
    logger.warn({ reason: "shutdown" }, "run handed back");
    flushSync();
    expect(file.read()).toMatch(/^\d\d:\d\d:\d\d WARN  run handed back reason=shutdown\n$/);
  });

  it("writes a burst past its buffer size without waiting", () => {
    const file = open("burst.log");
    const { logger } = createProcessLogger({ level: "info", json: true, fd: fd! });
    for (let i = 0; i < 100; i++) logger.info({ i, pad: "x".repeat(100) }, "line");
    expect(file.read().length).toBeGreaterThan(4096);
  });
});
