import { parseArgs } from "node:util";

export const COMMANDS = ["up", "serve", "worker", "migrate"] as const;
export type Command = (typeof COMMANDS)[number];

export interface CliArgs {
  command: Command;
  config: string;
  port: number;
  /** --port was given (a worker serves its health endpoint only then). */
  portGiven: boolean;
  host: string;
  help: boolean;
  version: boolean;
}

export class UsageError extends Error {}

const HELP: Record<Command | "main", string> = {
  main: `Usage: openplane [command] [options]

Commands:
  up        Run everything in one process group: the listener, its gateway and
            the servers it manages (langgraph.json by default, or a control
            plane's or a manifest's deployments), and the stores (embedded
            PostgreSQL when no POSTGRES_URI is set). Default.
  serve     Run the LangGraph API server (also runs N_JOBS_PER_WORKER workers).
  worker    Run queue workers only (needs REDIS_URI for streams and cancel);
            with --port, serves /ok and /metrics there.
  migrate   Apply database migrations and exit.

Options:
  --config <path>   langgraph.json to serve (default ./langgraph.json)
  --port <n>        port to listen on (default 2024)
  --host <addr>     address to bind (default 127.0.0.1)
  -h, --help        show help for a command
  -v, --version     print the version

Environment variables are listed in README.md.`,
  up: `Usage: openplane up [--config ./langgraph.json] [--port 2024] [--host 127.0.0.1]

Runs the listener, its gateway on --port, and the servers it manages. The
deployments come from a control plane (OPENPLANE_CONTROL_PLANE_URL), a manifest
file (OPENPLANE_MANIFEST), or by default the graphs in langgraph.json, served
at the root path. Without POSTGRES_URI it starts an embedded PostgreSQL under
OPENPLANE_DATA_DIR; without REDIS_URI the queue runs on PostgreSQL and streams
stay in process. See docs/listener.md.`,
  serve: `Usage: openplane serve [--config ./langgraph.json] [--port 2024] [--host 127.0.0.1]

Runs the LangGraph API server. Set N_JOBS_PER_WORKER=0 for an API-only process.`,
  worker: `Usage: openplane worker [--config ./langgraph.json] [--port <n>] [--host 127.0.0.1]

Consumes the run queue and executes runs (N_JOBS_PER_WORKER at a time).
Requires REDIS_URI so API processes can stream and cancel its runs.
With --port it serves health there: GET /ok (503 while draining; ?check_db=1
also checks PostgreSQL and Redis) and GET /metrics. Without, no port is bound.`,
  migrate: `Usage: openplane migrate

Applies pending database migrations (ours and the checkpointer's) and exits.`,
};

export const helpText = (command?: Command): string => HELP[command ?? "main"];

/** Parses argv (without node and script). Throws UsageError with one line on bad input. */
export function parseCliArgs(argv: string[]): CliArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: "string", short: "c" },
        port: { type: "string", short: "p" },
        host: { type: "string" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "v" },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message.split("\n")[0]!.replace(/\. To specify.*$/, ""));
  }
  const [cmd, ...extra] = parsed.positionals;
  const command = (cmd ?? "up") as Command;
  if (!COMMANDS.includes(command)) throw new UsageError(`unknown command "${cmd}" (expected one of ${COMMANDS.join(", ")})`);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const portText = parsed.values.port ?? "2024";
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 0 || port > 65535) throw new UsageError(`--port must be a number from 0 to 65535, got "${portText}"`);
  const host = parsed.values.host ?? "127.0.0.1";
  if (host.trim() === "") throw new UsageError("--host must not be empty");
  return {
    command,
    config: parsed.values.config ?? "./langgraph.json",
    port,
    portGiven: parsed.values.port !== undefined,
    host,
    help: parsed.values.help ?? false,
    version: parsed.values.version ?? false,
  };
}
