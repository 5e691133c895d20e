import { mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { LOG_FLUSH_MS, createLineWriter, createProcessLogger } from "../../src/lib/logger.js";
import type { LineWriter } from "../../src/lib/logger.js";

describe("process logger", () => {
  const dir = mkdtempSync(join(tmpdir(), "openplane-logger-"));
  let writer: LineWriter | null = null;
  afterEach(async () => {
    // Ends the writer (and its flush timer) and closes its file.
    await writer?.close();
    writer = null;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const open = (name: string, flushMs = LOG_FLUSH_MS) => {
    const path = join(dir, name);
    writer = createLineWriter(openSync(path, "w"), flushMs);
    return { out: writer, read: () => readFileSync(path, "utf8") };
  };
  const until = async (cond: () => boolean, ms: number) => {
    const deadline = Date.now() + ms;
    while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  };

  it("writes info lines in batches: none at once, all after a flush interval, in order", async () => {
    const file = open("batch.log");
    const logger = createProcessLogger({ level: "info", json: true }, file.out);
    for (let i = 0; i < 3; i++) logger.info({ i }, "run finished");
    expect(file.read()).toBe("");
    await until(() => file.read().split("\n").length > 3, LOG_FLUSH_MS * 20);
    const lines = file.read().trim().split("\n").map((l) => JSON.parse(l) as { i: number; msg: string; level: string });
    expect(lines.map((l) => l.i)).toEqual([0, 1, 2]);
    expect(lines[0]).toMatchObject({ level: "info", msg: "run finished" });
  });

  it("a warning goes out at once, after the lines buffered before it", async () => {
    // A flush interval far longer than the wait below: only the warning can have flushed it.
    const file = open("warn.log", 60_000);
    const logger = createProcessLogger({ level: "info", json: false }, file.out);
    logger.info("before");
    logger.warn({ reason: "shutdown" }, "run handed back");
    await until(() => file.read().includes("handed back"), 5_000);
    expect(file.read()).toMatch(/^\d\d:\d\d:\d\d INFO  before\n\d\d:\d\d:\d\d WARN  run handed back reason=shutdown\n$/);
  });

  it("flushSync writes what is buffered (the exit handler)", () => {
    const file = open("exit.log");
    const logger = createProcessLogger({ level: "info", json: true }, file.out);
    logger.info({ last: true }, "shutting down");
    file.out.flushSync();
    expect(JSON.parse(file.read())).toMatchObject({ msg: "shutting down", last: true });
  });
});
