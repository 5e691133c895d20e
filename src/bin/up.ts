/**
 * `openplane up`: the composition root of the listener, the gateway and the
 * servers they manage (one process group). Opens the listener's PostgreSQL
 * (embedded unless POSTGRES_URI is set), builds the source of desired state,
 * the process driver and the gateway, starts the reconcile loop, and wires
 * shutdown: stop reconciling → stop accepting connections → drain every
 * server (SIGTERM, in parallel) → close the gateway → close the stores.
 */
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { CliArgs } from "../cli/args.js";
import type { Config } from "../config/index.js";
import { createGateway } from "../gateway/proxy.js";
import type { Gateway } from "../gateway/proxy.js";
import { installShutdown } from "../lifecycle/shutdown.js";
import type { LogOutput, Logger } from "../lib/logger.js";
import { Releasers } from "../lib/releasers.js";
import { buildChildEnv } from "../listener/child-env.js";
import { createDatabaseAdmin } from "../listener/databases.js";
import { createProcessDriver } from "../listener/drivers/process.js";
import type { WorkloadDriver, WorkloadSpec } from "../listener/drivers/types.js";
import { createListener } from "../listener/reconciler.js";
import type { Listener } from "../listener/reconciler.js";
import { createRedactor, secretValues } from "../listener/redact.js";
import { DEFAULT_RESTART_POLICY } from "../listener/restart-policy.js";
import { prepareSource } from "../listener/revision-source.js";
import { controlPlaneSource, createControlPlaneClient } from "../listener/sources/control-plane.js";
import { defaultDeployment, langgraphJsonSource } from "../listener/sources/langgraph-json.js";
import { manifestSource } from "../listener/sources/manifest.js";
import type { DesiredStateSource } from "../listener/sources/types.js";
import { openStateStore } from "../listener/state-store.js";
import { controlPlaneReporter, logReporter } from "../listener/status-reporter.js";
import type { StatusReporter } from "../listener/status-reporter.js";
import type { DesiredDeployment } from "../listener/types.js";
import { startEmbeddedPostgres } from "../storage/embedded.js";

const BIN = fileURLToPath(new URL("../../bin/openplane.mjs", import.meta.url));

export interface UpOptions {
  args: CliArgs;
  config: Readonly<Config>;
  logger: Logger;
  /** The process's outputs: the servers' lines are forwarded through them. */
  output: LogOutput;
  version: string;
  /** The listener's own environment: the default deployment's server inherits it (minus listener secrets). */
  parentEnv: Record<string, string | undefined>;
}

export async function runUp(o: UpOptions): Promise<void> {
  const { args, config, logger } = o;
  const l = config.listener;
  const releasers = new Releasers();
  const graceMs = config.shutdownGraceSecs * 1000;
  let listener: Listener | null = null;
  let gateway: Gateway | null = null;
  let driver: WorkloadDriver | null = null;

  const stop = async () => {
    await listener?.stop();
    gateway?.stopAccepting();
    await driver?.close(graceMs);
    await gateway?.close(5_000);
    await releasers.release((name, err) => logger.warn({ err, resource: name }, "cleanup failed"));
  };
  installShutdown({
    run: stop,
    // Servers drain for up to the grace period; then their groups are killed (drainMs below).
    deadlineMs: (config.shutdownGraceSecs + 30) * 1000,
    log: (msg, extra) => logger.info(extra ?? {}, msg),
  });

  try {
    const dataDir = resolve(config.dataDir);
    // ./langgraph.json is always there to read again: only the other sources need a state file.
    const store = await openStateStore(l.source.kind === "langgraph-json" ? null : join(dataDir, "listener-state.json"));
    const drv = createProcessDriver({
      bin: BIN,
      node: process.execPath,
      logger,
      policy: { ...DEFAULT_RESTART_POLICY, baseMs: l.restartBackoffMs, maxFailures: l.restartMaxFailures },
      healthTimeoutMs: l.healthTimeoutSecs * 1000,
      drainMs: graceMs + 15_000,
      output: forwardOutput(config.logJson, o.output),
    });
    driver = drv;
    const gw = createGateway({ logger, holdMs: l.gatewayHoldSecs * 1000, status: () => listener?.status() ?? { state: "created" } });
    gateway = gw;
    // The default deployment is served at the root: hold its requests (rather than answer /ok
    // ourselves) until its server is up, so "GET /ok → 200" still means the API is ready.
    if (l.source.kind === "langgraph-json") {
      const d = defaultDeployment(args.config);
      gw.setRoute({ deploymentId: d.id, name: d.name, hosts: [], root: true, revisionId: null, upstream: null, unavailable: null });
    }
    const port = await gw.listen(args.host, args.port);

    let serverUri = config.postgresUri;
    if (serverUri === null) {
      const pg = await startEmbeddedPostgres(config.dataDir, (m) => logger.info(m));
      releasers.add("embedded postgres", () => pg.stop());
      serverUri = pg.uri;
      logger.info({ port: pg.port, data_dir: config.dataDir }, "embedded PostgreSQL started");
    }
    const databases = createDatabaseAdmin(serverUri);
    releasers.add("database admin pool", () => databases.close());

    const { source, reporter } = sourceAndReporter(config, args, logger, o.version);
    const buildSpec = (d: DesiredDeployment, databaseUri: string | null): WorkloadSpec => {
      const env = buildChildEnv(o.parentEnv, d, {
        postgresUri: databaseUri,
        redisUri: config.redisUri,
        redisKeyPrefix: d.inheritEnv ? config.redisKeyPrefix : `${config.redisKeyPrefix}${d.name}:`,
        logLevel: config.logLevel,
        logJson: config.logJson,
        shutdownGraceSecs: config.shutdownGraceSecs,
      });
      const mount = (env.MOUNT_PREFIX ?? "").trim().replace(/\/+$/, "");
      return {
        deploymentId: d.id,
        revisionId: d.revisionId,
        name: d.name,
        env,
        // The default deployment runs where `openplane up` was started, as it always did.
        cwd: d.inheritEnv ? process.cwd() : undefined,
        healthPath: `${mount && !mount.startsWith("/") ? "/" : ""}${mount}/ok`,
        redact: createRedactor(secretValues(env, d.secretNames)),
        prepare: (signal) =>
          prepareSource(d.source, {
            cacheDir: join(dataDir, "sources"),
            revisionId: d.revisionId,
            env,
            signal,
            log: (m) => logger.info({ deployment: d.name, revision: d.revisionId }, m),
          }),
      };
    };
    listener = createListener({
      source,
      driver: drv,
      gateway: gw,
      databases,
      store,
      reporter,
      logger,
      retentionMs: l.retentionSecs * 1000,
      tickMs: 1_000,
      quiesceMs: Math.min(graceMs, 30_000),
      buildSpec,
      exclusive: (d) => !config.redisUri && !d.env.REDIS_URI_CUSTOM,
      listenerDatabaseUri: serverUri,
    });
    listener.start();
    logger.info(
      {
        url: `http://${args.host}:${port}`,
        source: l.source.kind,
        postgres: config.postgresUri === null ? "embedded" : "external",
        redis: config.redisUri ? "external" : "none",
      },
      "openplane is serving",
    );
  } catch (err) {
    logger.error({ err: err instanceof Error ? err : new Error(String(err)) }, "start-up failed");
    await stop().catch(() => {});
    process.exit(1);
  }
}

function sourceAndReporter(config: Readonly<Config>, args: CliArgs, logger: Logger, version: string): { source: DesiredStateSource; reporter: StatusReporter } {
  const s = config.listener.source;
  if (s.kind === "control-plane") {
    const options = {
      baseUrl: s.url,
      apiKey: s.apiKey,
      tenantId: s.tenantId,
      listenerId: s.listenerId,
      intervalMs: s.pollSecs * 1000,
      maxBackoffMs: Math.max(s.pollSecs * 1000, 300_000),
    };
    const client = createControlPlaneClient(options);
    // Best effort: the listener record carries the version of the listener serving it.
    void client.call("PATCH", `/v2/listeners/${encodeURIComponent(s.listenerId)}`, { version: `openplane ${version}` }).catch((err: unknown) =>
      logger.debug({ error: String(err) }, "could not report the listener version"),
    );
    return { source: controlPlaneSource(options, client), reporter: controlPlaneReporter(client, s.listenerId) };
  }
  if (s.kind === "manifest") return { source: manifestSource(s.path, s.pollSecs * 1000), reporter: logReporter(logger) };
  return { source: langgraphJsonSource(args.config), reporter: logReporter(logger) };
}

/**
 * Server output: JSON lines get the deployment added; readable lines get a [name] prefix.
 * Through our own outputs, in batches, in order with our own lines.
 */
function forwardOutput(json: boolean, { stdout: out, stderr: err }: LogOutput) {
  return (spec: WorkloadSpec, line: string) => {
    if (json) {
      try {
        const o = JSON.parse(line) as Record<string, unknown>;
        out.write(`${JSON.stringify({ ...o, deployment: spec.name, revision: spec.revisionId })}\n`);
        return;
      } catch {
        // not JSON: fall through
      }
    }
    err.write(`[${spec.name}] ${line}\n`);
  };
}
