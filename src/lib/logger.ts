import { pino } from "pino";

export type Logger = pino.Logger;

/**
 * Structured logs. With `json` every entry is one JSON line (LOG_JSON=true);
 * otherwise the same entries are printed as one readable line each.
 */
export function createLogger(opts: { level: string; json: boolean; name?: string }): Logger {
  const options: pino.LoggerOptions = {
    name: opts.name ?? "openplane",
    level: opts.level,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return opts.json ? pino(options) : pino(options, { write: (line: string) => void process.stderr.write(humanLine(line)) });
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
