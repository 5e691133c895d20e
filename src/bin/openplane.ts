import { readFileSync } from "node:fs";
import { serve } from "@hono/node-server";
import type { ServerType } from "@hono/node-server";
import { UsageError, helpText, parseCliArgs } from "../cli/args.js";
import type { CliArgs } from "../cli/args.js";
import { ConfigError, loadConfig } from "../config/index.js";
import type { Config } from "../config/index.js";
import type { RunWorker } from "../executor/worker.js";
import { ConfigFileError, readLanggraphConfig } from "../graphs/config-file.js";
import { createTracing } from "../executor/tracing.js";
import { loadStoreIndex, StoreIndexError } from "../graphs/embeddings.js";
import { createGraphRegistry } from "../graphs/registry.js";
import { createApp } from "../http/app.js";
import { createWorkerApp } from "../http/worker-app.js";
import { installShutdown } from "../lifecycle/shutdown.js";
import { createLogOutput, createProcessLogger } from "../lib/logger.js";
import type { Logger } from "../lib/logger.js";
import { Releasers } from "../lib/releasers.js";
import { buildServices } from "../services.js";
import { migrate } from "../storage/migrate.js";
import { StoreStartupError } from "../storage/server-version.js";
import { holdSingleProcessLock } from "../storage/single-process.js";
import { cronQueueFor, loadExtensions } from "./extensions.js";
import { openStores } from "./stores.js";
import { runUp } from "./up.js";

const VERSION = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

/** Writes the logger's buffered lines (set once the logger exists). */
let flushLogs = () => {};

function fail(message: string, code: number): never {
  // After the log lines that led here.
  flushLogs();
  process.stderr.write(`openplane: ${message}\n`);
  process.exit(code);
}

async function main(argv: string[]): Promise<void> {
  let args: CliArgs;
  try {
    args = parseCliArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) fail(`${err.message} (see openplane --help)`, 2);
    throw err;
  }
  if (args.help) return void process.stdout.write(`${helpText(argv.some((a) => !a.startsWith("-")) ? args.command : undefined)}\n`);
  if (args.version) return void process.stdout.write(`${VERSION}\n`);

  // langgraph.json comes first: its `env` may carry settings (never overriding the real environment).
  // `up` with a control plane or a manifest does not need one: its error waits for the config.
  let graphsFileError: ConfigFileError | null = null;
  const graphsFile =
    args.command === "migrate"
      ? null
      : await readLanggraphConfig(args.config).catch((err) => {
          if (err instanceof ConfigFileError && args.command === "up") {
            graphsFileError = err;
            return null;
          }
          if (err instanceof ConfigFileError) fail(err.message, 2);
          throw err;
        });
  for (const [k, v] of Object.entries(graphsFile?.env ?? {})) process.env[k] ??= v;

  let config: Readonly<Config>;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message, 2);
    throw err;
  }
  const output = createLogOutput();
  const logger = createProcessLogger({ level: config.logLevel, json: config.logJson }, config.logJson ? output.stdout : output.stderr);
  flushLogs = output.flushSync;
  // Every way out (process.exit, the loop running dry, an uncaught exception) passes here.
  process.on("exit", output.flushSync);
  const servesLanggraphJson = args.command !== "up" || config.listener.source.kind === "langgraph-json";
  if (graphsFileError && servesLanggraphJson) fail((graphsFileError as ConfigFileError).message, 2);
  const needsRedis = args.command === "worker" || (config.nJobsPerWorker === 0 && servesLanggraphJson);
  if (needsRedis && !config.redisUri) {
    fail(
      args.command === "worker"
        ? "openplane worker needs REDIS_URI (or REDIS_URI_CUSTOM): without Redis, streams and cancel signals stay inside one process. Use `openplane up` instead."
        : "N_JOBS_PER_WORKER=0 (API only) needs REDIS_URI (or REDIS_URI_CUSTOM) so separate workers can reach this API's streams.",
      2,
    );
  }

  // `up` is the listener: it runs this langgraph.json (or a control plane's or a manifest's
  // deployments) as `openplane serve` children behind its gateway (src/bin/up.ts).
  if (args.command === "up") return runUp({ args, config, logger, output, version: VERSION, parentEnv: process.env });
  // A server managed by `openplane up` has an IPC channel to it: if the listener dies, drain and exit.
  if (process.channel) {
    process.channel.unref();
    process.once("disconnect", () => process.kill(process.pid, "SIGTERM"));
  }

  const releasers = new Releasers();
  const shutdown = new AbortController();
  let server: ServerType | null = null;
  let worker: RunWorker | null = null;
  // Order: stop accepting connections; let in-flight runs finish (their streams
  // end with them) or hand them back; end the remaining streams; close stores.
  // A worker's health server closes only after the drain: meanwhile /ok answers 503
  // and /metrics can still be scraped.
  const stop = async () => {
    const closeFirst = args.command !== "worker";
    const closed = server && closeFirst ? closeServer(server, config.shutdownGraceSecs * 1000 + 5_000) : Promise.resolve();
    await worker?.close(config.shutdownGraceSecs * 1000);
    shutdown.abort();
    await closed;
    if (server && !closeFirst) await closeServer(server, 5_000);
    await releasers.release((name, err) => logger.warn({ err, resource: name }, "cleanup failed"));
  };
  installShutdown({
    run: stop,
    deadlineMs: (config.shutdownGraceSecs + 15) * 1000,
    log: (msg, extra) => logger.info(extra ?? {}, msg),
  });

  try {
    await run(args, config, logger, releasers, graphsFile, shutdown.signal, (s) => (server = s), (w) => (worker = w));
  } catch (err) {
    if (err instanceof StoreStartupError) {
      // An unreachable or unsupported store is the operator's to fix: one line, no stack trace.
      await stop().catch(() => {});
      fail(err.message, 1);
    }
    if (err instanceof StoreIndexError) {
      // A configuration problem (langgraph.json store.index), reported like the other config errors.
      await stop().catch(() => {});
      fail(err.message, 2);
    }
    logger.error({ err: err instanceof Error ? err : new Error(String(err)) }, "start-up failed");
    await stop().catch(() => {});
    process.exit(1);
  }
  if (args.command === "migrate") {
    await stop();
    process.exit(0);
  }
}

async function run(
  args: CliArgs,
  config: Readonly<Config>,
  logger: Logger,
  releasers: Releasers,
  graphsFile: Awaited<ReturnType<typeof readLanggraphConfig>> | null,
  shutdown: AbortSignal,
  setServer: (s: ServerType) => void,
  setWorker: (w: RunWorker) => void,
): Promise<void> {
  const stores = await openStores(config, releasers, logger);
  // Every role migrates at start: it is idempotent and serialised by an advisory lock.
  const { applied } = await migrate(stores.sql, { before: () => stores.checkpointer.setup() });
  if (applied.length) logger.info({ applied }, "migrations applied");
  if (args.command === "migrate" || !graphsFile) return;
  if (!stores.redis) releasers.add("single-process lock", await holdSingleProcessLock(stores.sql));

  const graphs = createGraphRegistry(graphsFile.graphs, stores.checkpointer);
  await graphs.loadAll();
  const extensions = await loadExtensions(graphsFile, config, logger);
  const cronQueue = cronQueueFor(stores, config, (err) => logger.warn({ err }, "cron queue error"));
  releasers.add("cron queue", () => cronQueue.close());
  const storeIndex = graphsFile.store?.index ? await loadStoreIndex(graphsFile.store.index) : null;
  if (storeIndex) logger.info({ embed: storeIndex.source, dims: storeIndex.dims, fields: storeIndex.fields }, "store semantic index on");
  const services = buildServices({ ...stores, graphs, logger, cronQueue, auth: extensions.auth, storeIndex });
  let selfUrl: string | null = null;
  await services.registerGraphs();
  // Thread and store TTLs; safe on every replica (rows are claimed with SKIP LOCKED).
  const ttlSweeper = services.ttlSweeper({ intervalMs: 60_000 });
  ttlSweeper.start();
  releasers.add("ttl sweeper", () => ttlSweeper.stop());

  if (args.command === "worker" || config.nJobsPerWorker > 0) {
    const worker = services.worker({
      concurrency: Math.max(1, config.nJobsPerWorker),
      leaseSecs: config.runLeaseSecs,
      maxAttempts: config.runMaxAttempts,
      runTimeoutSecs: config.runTimeoutSecs,
      sweepIntervalSecs: config.sweepIntervalSecs,
      selfUrl: () => config.apiUrl ?? selfUrl,
      tracing: config.tracing ? createTracing(config.tracing) : null,
    });
    setWorker(worker);
    let url: string | undefined;
    if (args.command === "worker" && args.portGiven) {
      // The worker's own /ok and /metrics, bound before it claims a run: a taken port fails
      // start-up with nothing in flight. /ok is 503 until the worker is active. Only with
      // --port: workers beside an API on one host must not fight over the default port.
      const redis = stores.redis;
      const app = createWorkerApp({
        state: () => worker.state,
        stores: [{ name: "PostgreSQL", check: services.checkDb }, ...(redis ? [{ name: "Redis", check: () => redis.ping() }] : [])],
        poolStats: services.poolStats,
        logger,
        mountPrefix: config.http.mountPrefix,
      });
      const server = await listen(app.fetch, args.host, args.port);
      setServer(server);
      url = `http://${args.host}:${boundPort(server, args.port)}`;
    }
    await worker.start();
    // Crons fire where runs execute: schedulers rebuilt from PostgreSQL, then consumed.
    const cronScheduler = services.cronScheduler();
    await cronScheduler.start();
    releasers.add("cron scheduler", () => cronScheduler.stop());
    logger.info({ concurrency: config.nJobsPerWorker, owner: worker.owner, url }, "worker started");
  }
  if (args.command === "worker") return;

  const app = createApp(
    services.appDeps({
      version: VERSION,
      tracingEnabled: config.tracing !== null,
      sseHeartbeatMs: config.sseHeartbeatSecs * 1000,
      maxBodyBytes: config.maxBodyBytes,
      shutdown,
      http: extensions.http,
    }),
  );
  const server = await listen(app.fetch, args.host, args.port);
  setServer(server);
  const port = boundPort(server, args.port);
  selfUrl = `http://${args.host === "0.0.0.0" || args.host === "::" ? "127.0.0.1" : args.host}:${port}`;
  logger.info(
    { url: `http://${args.host}:${port}`, graphs: [...graphs.ids], postgres: stores.embedded ? "embedded" : "external", redis: stores.redis ? "external" : "none" },
    "openplane is serving",
  );
}

function listen(fetch: (req: Request) => Response | Promise<Response>, host: string, port: number): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, hostname: host, port }, () => resolve(server));
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(err.code === "EADDRINUSE" ? new Error(`port ${port} on ${host} is already in use (choose another with --port)`) : err),
    );
  });
}

/** The port actually bound (differs from `asked` for --port 0). */
function boundPort(server: ServerType, asked: number): number {
  const addr = server.address();
  return typeof addr === "object" && addr ? addr.port : asked;
}

/** Stops accepting connections; open streams end via the shutdown signal; stragglers are cut at the deadline. */
function closeServer(server: ServerType, deadlineMs: number): Promise<void> {
  const s = server as unknown as { closeAllConnections?: () => void; closeIdleConnections?: () => void };
  return new Promise((resolve) => {
    // A keep-alive connection whose last response (an SSE stream, a /wait) ends during the
    // drain only becomes idle then: close it too, or close() waits out the keep-alive timeout.
    const sweep = setInterval(() => s.closeIdleConnections?.(), 200);
    sweep.unref();
    const timer = setTimeout(() => {
      clearInterval(sweep);
      s.closeAllConnections?.();
      resolve();
    }, deadlineMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      clearInterval(sweep);
      resolve();
    });
    s.closeIdleConnections?.();
  });
}

await main(process.argv.slice(2));
