/**
 * `openplane up` against the control-plane emulator (test/support/control-plane),
 * one listener for the whole file, driven by the official SDK through the
 * gateway. The tests run in order and build on each other:
 * create → served; new revision under load with zero failed requests; bad
 * revision → DEPLOY_FAILED while the old one serves; image revision →
 * DEPLOY_FAILED; a killed server is restarted; a control-plane outage changes
 * nothing; the desired state survives a listener restart with the control
 * plane down; delete → stopped, and its database dropped after the retention.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { managedDatabaseName } from "../../src/listener/database-name.js";
import { REPO_ROOT, killAll, printLogsOnFailure, startCli } from "../helpers/cli.js";
import type { CliProcess } from "../helpers/cli.js";
import { hasRedis, postgresUri, redisUri, uniquePrefix } from "../helpers/services.js";
import {
  commandLine,
  databaseExists,
  dropDatabases,
  healthyWorkload,
  listenerStatus,
  processAlive,
  steadyLoad,
  waitFor,
} from "../support/control-plane/harness.js";
import { startEmulator } from "../support/control-plane/server.js";
import type { Emulator } from "../support/control-plane/server.js";
import type { Deployment } from "../support/control-plane/store.js";
import { collect, sdk } from "./support.js";

const ENV_GRAPH = join(REPO_ROOT, "test", "fixtures", "env-graph", "langgraph.json");
const SECRET_1 = `s3cret-one-${Math.random().toString(36).slice(2)}`;
const SECRET_2 = `s3cret-two-${Math.random().toString(36).slice(2)}`;
const NAME = "agent";

describe("openplane up with a control plane", () => {
  let em: Emulator;
  let listenerId: string;
  let dataDir: string;
  let brokenDir: string;
  let listener: CliProcess | undefined;
  let deployment: Deployment;
  const timings: Record<string, number> = {};

  const start = async () => {
    listener = await startCli({
      command: "up",
      env: {
        OPENPLANE_DATA_DIR: dataDir,
        POSTGRES_URI: postgresUri(),
        ...(hasRedis() ? { REDIS_URI: redisUri(), REDIS_KEY_PREFIX: `${uniquePrefix("listener")}:` } : {}),
        OPENPLANE_CONTROL_PLANE_URL: em.url,
        OPENPLANE_CONTROL_PLANE_API_KEY: em.apiKey,
        OPENPLANE_TENANT_ID: em.tenantId,
        OPENPLANE_LISTENER_ID: listenerId,
        OPENPLANE_CONTROL_PLANE_POLL_SECS: "1",
        OPENPLANE_RESTART_BACKOFF_MS: "200",
        OPENPLANE_RESTART_MAX_FAILURES: "3",
        OPENPLANE_DATA_RETENTION_SECS: "3",
        BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS: "10",
        LOG_LEVEL: "info",
      },
    });
  };
  const base = () => `${listener!.url}/${NAME}`;
  const client = () => sdk(base());
  const readEnv = async () => ((await client().runs.wait(null, "env_reader", { input: { input: "x" } })) as { overridden: string }).overridden;
  const revisionStatus = (rid: string) => em.store.revision(deployment.id, rid)?.status;

  beforeAll(async () => {
    em = await startEmulator();
    listenerId = em.store.addListener().id;
    dataDir = await mkdtemp(join(tmpdir(), "openplane-e2e-listener-cp-"));
    brokenDir = await mkdtemp(join(tmpdir(), "openplane-e2e-broken-"));
    await writeFile(join(brokenDir, "langgraph.json"), JSON.stringify({ graphs: { broken: "./missing.ts:graph" } }));
    await start();
  });

  afterAll(async () => {
    await killAll();
    await em?.stop();
    if (deployment) await dropDatabases(postgresUri(), [managedDatabaseName(deployment.id)]).catch(() => {});
    for (const d of [dataDir, brokenDir]) if (d) await rm(d, { recursive: true, force: true });
    if (Object.keys(timings).length) console.info(`[listener e2e] revision created → serving (ms): ${JSON.stringify(timings)}`);
  });

  printLogsOnFailure(() => [listener]);

  it("reports its version on the listener record, and serves nothing until a deployment exists", async () => {
    await waitFor("the listener version", () => em.store.listeners.get(listenerId)!.version);
    expect(em.store.listeners.get(listenerId)!.version).toMatch(/^openplane \d+\.\d+\.\d+/);
    expect((await fetch(`${listener!.url}/ok`)).status).toBe(200);
    expect((await fetch(`${base()}/info`)).status).toBe(404);
  });

  it("a new deployment is created on the control plane: DEPLOYING → DEPLOYED, READY, served through the gateway to the SDK", async () => {
    // Another listener's deployment must be left alone.
    em.store.createDeployment({ name: "not-ours", source_config: { listener_id: "someone-else" }, source_revision_config: { langgraph_config_path: ENV_GRAPH } });
    deployment = em.store.createDeployment({
      name: NAME,
      source_config: { listener_id: listenerId },
      source_revision_config: { langgraph_config_path: ENV_GRAPH },
      secrets: [{ name: "OPENPLANE_FIXTURE_OVERRIDDEN", value: SECRET_1 }],
    });
    const r1 = deployment.latest_revision_id!;
    const created = em.store.revisionCreatedAt.get(r1)!;
    await waitFor("the first answer through the gateway", async () => (await fetch(`${base()}/ok`)).status === 200);
    timings.first_deploy_ok = Date.now() - created;
    expect(await readEnv()).toBe(SECRET_1); // the secret reached the server through its environment
    await waitFor("DEPLOYED", () => revisionStatus(r1) === "DEPLOYED");
    timings.first_deploy_reported = Date.now() - created;

    const reports = em.store.reports.filter((r) => r.deployment_id === deployment.id);
    expect(reports.map((r) => `${r.kind}:${r.status}`)).toEqual(
      expect.arrayContaining(["deployment:AWAITING_DATABASE", "revision:DEPLOYING", "revision:DEPLOYED", "deployment:READY"]),
    );
    expect(reports.every((r) => r.listener_id === listenerId && !Number.isNaN(Date.parse(r.observed_at)))).toBe(true);
    expect(em.store.deployments.get(deployment.id)).toMatchObject({ status: "READY", active_revision_id: r1 });
    expect(await databaseExists(postgresUri(), managedDatabaseName(deployment.id))).toBe(true);
    expect(em.store.reports.some((r) => r.deployment_id !== deployment.id)).toBe(false);

    // SSE through the gateway: metadata first, then the graph's values.
    const thread = await client().threads.create();
    const chunks = await collect(client().runs.stream(thread.thread_id, "env_reader", { input: { input: "s" }, streamMode: ["values"] }));
    expect(chunks[0]!.event).toBe("metadata");
    expect(chunks.at(-1)).toMatchObject({ event: "values", data: { overridden: SECRET_1 } });
  });

  it("secrets are in the server's environment only: not on its command line, not in the listener's logs", async () => {
    const w = (await healthyWorkload(listener!.url, deployment.id))!;
    const cmd = await commandLine(w.pid!);
    expect(cmd).toMatch(/openplane\.mjs serve --config \S+langgraph\.json --port \d+ --host 127\.0\.0\.1/);
    expect(cmd).not.toContain(SECRET_1);
    const logs = await listener!.settledLogs();
    expect(logs).not.toContain(SECRET_1);
    expect(logs).not.toContain(em.apiKey);
    expect(JSON.stringify(await listenerStatus(listener!.url))).not.toContain(SECRET_1);
  });

  it("a new revision under steady load: started, switched to, the old one drained — zero failed requests", async () => {
    const old = (await healthyWorkload(listener!.url, deployment.id))!;
    const load = steadyLoad(readEnv, 4);
    await new Promise((r) => setTimeout(r, 500));
    em.store.patchDeployment(deployment.id, { secrets: [{ name: "OPENPLANE_FIXTURE_OVERRIDDEN", value: SECRET_2 }] });
    const r2 = em.store.deployments.get(deployment.id)!.latest_revision_id!;
    const created = em.store.revisionCreatedAt.get(r2)!;
    await waitFor("the new revision to serve", () => load.result.seen.includes(SECRET_2), 60_000, 20);
    timings.revision_change_serving = Date.now() - created;
    await waitFor("DEPLOYED", () => revisionStatus(r2) === "DEPLOYED");
    await waitFor("the old server to exit", () => !processAlive(old.pid!), 30_000);
    await new Promise((r) => setTimeout(r, 500));
    const result = await load.stop();
    expect(result.failures, result.failures.slice(0, 5).join("\n")).toEqual([]);
    expect(result.ok).toBeGreaterThan(20);
    expect(result.seen).toEqual([SECRET_1, SECRET_2]);
    expect(em.store.deployments.get(deployment.id)!.active_revision_id).toBe(r2);
    const status = await listenerStatus(listener!.url);
    expect(status.workloads.filter((w) => w.deploymentId === deployment.id).map((w) => [w.revisionId, w.state])).toEqual([[r2, "healthy"]]);
  });

  it("a bad revision ends DEPLOY_FAILED with the reason, and the previous revision keeps serving", async () => {
    const good = em.store.deployments.get(deployment.id)!.latest_revision_id!;
    em.store.patchDeployment(deployment.id, { source_revision_config: { langgraph_config_path: join(brokenDir, "langgraph.json") } });
    const bad = em.store.deployments.get(deployment.id)!.latest_revision_id!;
    const load = steadyLoad(readEnv, 2);
    await waitFor("DEPLOY_FAILED", () => revisionStatus(bad) === "DEPLOY_FAILED", 60_000);
    const result = await load.stop();
    expect(result.failures).toEqual([]);
    expect(result.seen).toEqual([SECRET_2]);
    const message = em.store.revision(deployment.id, bad)!.status_message!;
    expect(message).toMatch(/exited with code 1 before it was healthy: .*start-up failed/);
    expect(message).toMatch(/missing\.ts/);
    expect(message).toMatch(/gave up after 3 consecutive failures/);
    expect(message).not.toContain(SECRET_2);
    expect(em.store.deployments.get(deployment.id)).toMatchObject({ status: "READY", active_revision_id: good });
    expect(await readEnv()).toBe(SECRET_2);
  });

  it("an image revision is reported as not supported by the process driver; the previous revision keeps serving", async () => {
    em.store.patchDeployment(deployment.id, { source_revision_config: { image_uri: "docker.io/acme/agent:2" } });
    const image = em.store.deployments.get(deployment.id)!.latest_revision_id!;
    await waitFor("DEPLOY_FAILED", () => revisionStatus(image) === "DEPLOY_FAILED");
    expect(em.store.revision(deployment.id, image)!.status_message).toMatch(/not supported by the process driver/);
    expect(await readEnv()).toBe(SECRET_2);
  });

  it("a managed server killed with SIGKILL is restarted, and requests during the restart wait instead of failing", async () => {
    const before = (await healthyWorkload(listener!.url, deployment.id))!;
    process.kill(-before.pid!, "SIGKILL");
    // Sent while the server is down: held by the gateway, then served.
    const during = readEnv().then((v) => ({ v }), (err: unknown) => ({ err: String(err) }));
    const after = await waitFor("a restarted server", async () => {
      const w = await healthyWorkload(listener!.url, deployment.id);
      return w && w.pid !== before.pid ? w : null;
    });
    expect(after.revisionId).toBe(before.revisionId);
    expect(after.restarts).toBe(before.restarts + 1);
    expect(await during).toEqual({ v: SECRET_2 });
    expect(await readEnv()).toBe(SECRET_2);
  });

  it("while the control plane is unreachable, then erroring, nothing changes and everything keeps serving", async () => {
    const before = (await healthyWorkload(listener!.url, deployment.id))!;
    const load = steadyLoad(readEnv, 2);
    await em.stop();
    await waitFor("the outage to be noticed", async () => (await listenerStatus(listener!.url)).source.error?.includes("unreachable"), 10_000);
    await listener!.waitForLog(/desired-state source failed; keeping everything as it is/);
    await new Promise((r) => setTimeout(r, 2_500));
    await em.start();
    em.outage = true;
    await waitFor("the 503s to be noticed", async () => (await listenerStatus(listener!.url)).source.error?.includes("503"), 15_000);
    em.outage = false;
    await waitFor("the control plane to be reachable again", async () => (await listenerStatus(listener!.url)).source.error === null, 60_000);
    const result = await load.stop();
    expect(result.failures).toEqual([]);
    const now = (await healthyWorkload(listener!.url, deployment.id))!;
    expect(now.pid).toBe(before.pid);
    expect((await listenerStatus(listener!.url)).desired.map((d) => d.name)).toEqual([NAME]);
  });

  it("the last desired state survives a listener restart while the control plane is down", async () => {
    await em.stop();
    const exit = await listener!.stop();
    expect(exit.code, listener!.logs()).toBe(0);
    await start();
    await waitFor("the deployment to be served again without the control plane", async () => (await fetch(`${base()}/ok`)).status === 200, 60_000);
    expect(await readEnv()).toBe(SECRET_2);
    await listener!.waitForLog(/resuming the last desired state/);
    await em.start();
  });

  it("deleting the deployment stops its server and unroutes it; its database is dropped after the retention", async () => {
    const w = (await healthyWorkload(listener!.url, deployment.id))!;
    em.store.deleteDeployment(deployment.id);
    await waitFor("the route to go", async () => (await fetch(`${base()}/ok`)).status === 404, 30_000);
    await waitFor("the server to exit", () => !processAlive(w.pid!), 30_000);
    expect((await listenerStatus(listener!.url)).workloads).toEqual([]);
    await waitFor("the database to be dropped", async () => !(await databaseExists(postgresUri(), managedDatabaseName(deployment.id))), 30_000);
    await listener!.waitForLog(/database dropped \(retention ended\)/);
    const exit = await listener!.stop();
    expect(exit.code).toBe(0);
  });
});
