import { pino } from "pino";

export type Logger = pino.Logger;

/**
 * Structured logs. With `json` every entry is one JSON line (LOG_JSON=true);
 * otherwise the same entries are printed as one readable line each.
 */
export function createLogger(opts: LoggerOptions): Logger {
  return opts.json ? pino(pinoOptions(opts)) : pino(pinoOptions(opts), { write: (line: string) => void process.stderr.write(humanLine(line)) });
}

export interface LoggerOptions {
  level: string;
  json: boolean;
  name?: string;
}

/** How long a buffered line waits at most before it is written (createProcessLogger). */
export const LOG_FLUSH_MS = 100;
/** Buffered bytes that are written at once. */
const LOG_BUFFER_BYTES = 4096;

/**
 * The logger of an openplane process (src/bin): as createLogger, JSON lines to stdout or
 * readable ones to stderr, but written in batches, every LOG_FLUSH_MS or 4 KiB, instead of
 * one write(2) per line. Under load a run's log line cost a system call that also woke the
 * process reading the pipe (a container runtime, a supervisor). Writes stay synchronous, so
 * `flushSync()` (called on exit) leaves nothing behind; only a process killed outright
 * (SIGKILL, OOM) loses what it buffered, at most the last LOG_FLUSH_MS.
 */
export function createProcessLogger(opts: LoggerOptions & { fd?: number }): { logger: Logger; flushSync: () => void } {
  const out = createLineWriter(opts.fd ?? (opts.json ? 1 : 2));
  const logger = opts.json ? pino(pinoOptions(opts), out) : pino(pinoOptions(opts), { write: (line: string) => out.write(humanLine(line)) });
  return { logger, flushSync: out.flushSync };
}

/** Text written to a file descriptor in batches, as the process logger writes (createProcessLogger). */
export interface LineWriter {
  write(text: string): void;
  /** Writes what is buffered now. */
  flushSync(): void;
}

export function createLineWriter(fd: number): LineWriter {
  const dest = pino.destination({ dest: fd, sync: true, minLength: LOG_BUFFER_BYTES, periodicFlush: LOG_FLUSH_MS });
  return {
    write: (text) => void dest.write(text),
    flushSync: () => {
      try {
        dest.flushSync();
      } catch {
        // Destroyed, or the fd is gone: nothing more can be written.
      }
    },
  };
}

function pinoOptions(opts: LoggerOptions): pino.LoggerOptions {
  return {
    name: opts.name ?? "openplane",
    level: opts.level,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
}

const RESERVED = new Set(["level", "time", "name", "msg"]);

/** `14:02:13 INFO  openplane is serving url=http://127.0.0.1:2024 graphs=["agent"]` */
export function humanLine(jsonLine: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(jsonLine) as Record<string, unknown>;
  } catch {
    return jsonLine;
  }
  const time = typeof o.time === "string" ? o.time.slice(11, 19) : "";
  const level = String(o.level ?? "").toUpperCase().padEnd(5);
  const fields = Object.entries(o)
    .filter(([k, v]) => !RESERVED.has(k) && v !== undefined && k !== "err")
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
  const err = o.err as { message?: string; stack?: string } | undefined;
  const errText = err ? `\n    ${(err.stack ?? err.message ?? "").split("\n").join("\n    ")}` : "";
  return `${time} ${level} ${String(o.msg ?? "")}${fields.length ? ` ${fields.join(" ")}` : ""}${errText}\n`;
}
