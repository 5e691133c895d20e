import { pino } from "pino";

export type Logger = pino.Logger;

/** JSON lines when `json`, otherwise one readable line per entry. Secrets are never passed in. */
export function createLogger(opts: { level: string; json: boolean; name?: string }): Logger {
  return pino({
    name: opts.name ?? "openplane",
    level: opts.level,
    base: undefined,
    timestamp: opts.json ? pino.stdTimeFunctions.isoTime : false,
    ...(opts.json
      ? {}
      : {
          formatters: { level: (label: string) => ({ level: label }) },
          transport: undefined,
        }),
    redact: {
      paths: ["*.password", "*.apiKey", "*.api_key", "*.authorization", "*.headers.authorization", "*.headers[\"x-api-key\"]"],
      censor: "[redacted]",
    },
  });
}
