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

/** How long a buffered line waits at most before it is written (createLogOutput). */
export const LOG_FLUSH_MS = 100;
/** Buffered bytes that are written at once. */
const LOG_BUFFER_BYTES = 4096;
/** Buffered bytes past which lines are dropped (a reader that stopped reading) rather than kept. */
const LOG_MAX_BUFFERED_BYTES = 16 * 1024 * 1024;
/** pino's level number for warn: lines at or above it are written at once. */
const WARN = 40;

/** Text written to a file descriptor in batches (createLineWriter). */
export interface LineWriter {
  write(text: string): void;
  /** Starts writing what is buffered now. */
  flush(): void;
  /** Writes what is buffered now, synchronously (exit handlers). */
  flushSync(): void;
  /** Writes what is buffered, then closes the file descriptor. */
  close(): Promise<void>;
}

/**
 * Writes to `fd` every LOG_FLUSH_MS or 4 KiB, asynchronously (libuv's thread pool), never
 * blocking the event loop: a reader that stops reading costs memory up to 16 MiB, then lines.
 * pino's default destination wrote each line on its own, one thread-pool write per line:
 * under load a thread hand-off and a completion callback per run, and a wake-up of the
 * process reading the pipe (a container runtime, a supervisor).
 */
export function createLineWriter(fd: number, flushMs = LOG_FLUSH_MS): LineWriter {
  const dest = pino.destination({
    dest: fd,
    sync: false,
    minLength: LOG_BUFFER_BYTES,
    maxLength: LOG_MAX_BUFFERED_BYTES,
    periodicFlush: flushMs,
  });
  return {
    // Looked up on every call: pino replaces it with a no-op once the reader is gone (EPIPE).
    write: (text) => void dest.write(text),
    flush: () => dest.flush(),
    flushSync: () => {
      try {
        dest.flushSync();
      } catch {
        // Destroyed, or the fd is gone: nothing more can be written.
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        dest.once("close", () => resolve());
        dest.end();
      }),
  };
}

/** A process's two outputs, each written in batches; what `up` forwards from its servers goes through the same ones. */
export interface LogOutput {
  stdout: LineWriter;
  stderr: LineWriter;
  /** Writes what both hold (on exit). */
  flushSync(): void;
}

export function createLogOutput(): LogOutput {
  const stdout = createLineWriter(1);
  const stderr = createLineWriter(2);
  return {
    stdout,
    stderr,
    flushSync: () => {
      stdout.flushSync();
      stderr.flushSync();
    },
  };
}

/**
 * The logger of an openplane process (src/bin): as createLogger, JSON lines or readable ones,
 * to `out` (stdout for JSON, stderr otherwise), written in batches (createLineWriter). A
 * warning or an error is written at once, with what was buffered before it. A process killed
 * outright (SIGKILL, OOM) loses the rest: the lines of its last LOG_FLUSH_MS, or more if its
 * event loop was blocked meanwhile.
 */
export function createProcessLogger(opts: LoggerOptions, out: LineWriter): Logger {
  const stream = {
    // pino then sets lastLevel before each write.
    [Symbol.for("pino.metadata")]: true,
    lastLevel: 0,
    write(line: string) {
      out.write(opts.json ? line : humanLine(line));
      if (this.lastLevel >= WARN) out.flush();
    },
  };
  return pino(pinoOptions(opts), stream);
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
