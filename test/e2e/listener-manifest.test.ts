/**
 * `openplane up` with a declarative manifest (OPENPLANE_MANIFEST) and no
 * Redis: edits are picked up without a restart; a revision change drains the
 * old server first (one server per database without Redis) while the gateway
 * holds requests, so none fails; a tarball source is fetched, unpacked,
 * `npm ci`-ed and cached; Host header routing; an invalid manifest changes
 * nothing; removing an entry stops it. One listener for the file.
 */
import { execFileSync } from "node:child_process";
import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { createServer, request } from "node:http";
import type { Server } from "node:http";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { managedDatabaseName } from "../../src/listener/database-name.js";
import { REPO_ROOT, killAll, printLogsOnFailure, startCli } from "../helpers/cli.js";
import type { CliProcess } from "../helpers/cli.js";
import { postgresUri } from "../helpers/services.js";
import { dropDatabases, healthyWorkload, listenerStatus, processAlive, steadyLoad, waitFor } from "../support/control-plane/harness.js";
import { sdk } from "./support.js";

const ENV_GRAPH_DIR = join(REPO_ROOT, "test", "fixtures", "env-graph");

describe("openplane up with a manifest file (no Redis)", () => {
  let dir: string;
  let manifest: string;
  let listener: CliProcess | undefined;
  let files: Server | undefined;
  let filesUrl = "";
  let tarballRequests = 0;

  const writeManifest = (text: string) => writeFile(manifest, text);
  const alpha = (secret: string, extra = "") => `
deployments:
  - name: alpha
    source: { directory: ${ENV_GRAPH_DIR} }
    secrets: { OPENPLANE_FIXTURE_OVERRIDDEN: ${secret} }
    hosts: [alpha.test]
${extra}`;
  const readEnv = async (name: string) =>
    ((await sdk(`${listener!.url}/${name}`).runs.wait(null, "env_reader", { input: { input: "x" } })) as { overridden: string }).overridden;

  beforeAll(async () => {
    // Under the repository, so unpacked tarballs resolve @langchain/langgraph from its node_modules.
    await mkdir(join(REPO_ROOT, ".openplane"), { recursive: true });
    dir = await mkdtemp(join(REPO_ROOT, ".openplane", "test-listener-manifest-"));
    manifest = join(dir, "deployments.yaml");
    await writeManifest(alpha("manifest-secret-1"));

    // A project tarball with a lockfile (no dependencies: `npm ci` runs offline).
    const project = join(dir, "project", "beta");
    await mkdir(project, { recursive: true });
    await cp(join(ENV_GRAPH_DIR, "graph.ts"), join(project, "graph.ts"));
    await writeFile(join(project, "langgraph.json"), JSON.stringify({ graphs: { env_reader: "./graph.ts:graph" } }));
    await writeFile(join(project, "package.json"), JSON.stringify({ name: "beta", version: "1.0.0", private: true }));
    await writeFile(
      join(project, "package-lock.json"),
      JSON.stringify({ name: "beta", version: "1.0.0", lockfileVersion: 3, requires: true, packages: { "": { name: "beta", version: "1.0.0" } } }),
    );
    execFileSync("tar", ["-czf", join(dir, "beta.tgz"), "-C", join(dir, "project"), "beta"]);
    files = createServer((req, res) => {
      tarballRequests++;
      if (!req.url?.startsWith("/beta.tgz")) return void res.writeHead(404).end();
      res.writeHead(200, { "content-type": "application/gzip" }).end(readFileSync(join(dir, "beta.tgz")));
    });
    await new Promise<void>((r) => files!.listen(0, "127.0.0.1", () => r()));
    const addr = files.address();
    filesUrl = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;

    listener = await startCli({
      command: "up",
      env: {
        OPENPLANE_DATA_DIR: join(dir, "data"),
        POSTGRES_URI: postgresUri(),
        OPENPLANE_MANIFEST: manifest,
        OPENPLANE_MANIFEST_POLL_SECS: "2",
        BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS: "10",
      },
    });
  });

  afterAll(async () => {
    if (listener?.alive()) await listener.stop().catch(() => {});
    await killAll();
    await new Promise<void>((r) => (files ? files.close(() => r()) : r()));
    await dropDatabases(postgresUri(), [managedDatabaseName("alpha"), managedDatabaseName("beta")]).catch(() => {});
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  printLogsOnFailure(() => [listener]);

  it("serves the manifest's deployment under /<name>/ and by its Host header", async () => {
    await waitFor("alpha", async () => (await fetch(`${listener!.url}/alpha/ok`)).status === 200);
    expect(await readEnv("alpha")).toBe("manifest-secret-1");
    const byHost = await new Promise<number>((resolve, reject) => {
      const req = request(`${listener!.url}/ok`, { headers: { host: "alpha.test" } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.end();
    });
    expect(byHost).toBe(200);
    expect((await fetch(`${listener!.url}/nope/ok`)).status).toBe(404);
  });

  it("an edit is picked up without a restart; the old server drains first and no request fails", async () => {
    const old = (await healthyWorkload(listener!.url, "alpha"))!;
    const load = steadyLoad(() => readEnv("alpha"), 3);
    await new Promise((r) => setTimeout(r, 300));
    await writeManifest(alpha("manifest-secret-2"));
    await waitFor("the new revision", () => load.result.seen.includes("manifest-secret-2"), 60_000, 20);
    await new Promise((r) => setTimeout(r, 300));
    const result = await load.stop();
    expect(result.failures, result.failures.slice(0, 5).join("\n")).toEqual([]);
    expect(result.seen).toEqual(["manifest-secret-1", "manifest-secret-2"]);
    expect(processAlive(old.pid!)).toBe(false);
    expect(await listener!.settledLogs()).not.toContain("manifest-secret-2");
  });

  it("a tarball source is fetched once, unpacked, `npm ci`-ed, cached by revision, and served", async () => {
    await writeManifest(alpha("manifest-secret-2", `  - name: beta\n    source: { tarball: "${filesUrl}/beta.tgz?token=tarball-token" }\n    env: { OPENPLANE_FIXTURE_OVERRIDDEN: from-tarball }\n`));
    await waitFor("beta", async () => (await fetch(`${listener!.url}/beta/ok`)).status === 200, 90_000);
    expect(await readEnv("beta")).toBe("from-tarball");
    expect(tarballRequests).toBe(1);
    const cached = await readdir(join(dir, "data", "sources"));
    expect(cached).toHaveLength(1);
    expect(existsSync(join(dir, "data", "sources", cached[0]!, "app", "beta", "langgraph.json"))).toBe(true);
    expect(existsSync(join(dir, "data", "sources", cached[0]!, ".openplane-ready"))).toBe(true);
    await listener!.waitForLog(/npm ci in \S+\/app\/beta/);
    expect(await listener!.settledLogs()).not.toContain("tarball-token");
  });

  it("an invalid manifest changes nothing", async () => {
    const before = (await listenerStatus(listener!.url)).workloads.map((w) => w.pid).sort();
    await writeManifest("deployments: [ {name: Bad Name");
    await waitFor("the parse error", async () => (await listenerStatus(listener!.url)).source.error?.includes("manifest"), 15_000);
    expect((await listenerStatus(listener!.url)).workloads.map((w) => w.pid).sort()).toEqual(before);
    expect(await readEnv("alpha")).toBe("manifest-secret-2");
    expect(await readEnv("beta")).toBe("from-tarball");
  });

  it("removing an entry stops its server; the rest keeps serving", async () => {
    const beta = (await healthyWorkload(listener!.url, "beta"))!;
    await writeManifest(alpha("manifest-secret-2"));
    await waitFor("beta to go", async () => (await fetch(`${listener!.url}/beta/ok`)).status === 404, 30_000);
    await waitFor("beta's server to exit", () => !processAlive(beta.pid!), 30_000);
    expect(await readEnv("alpha")).toBe("manifest-secret-2");
    await listener!.waitForLog(/database kept until the retention ends/);
  });

  it("SIGTERM drains every server and exits 0", async () => {
    const pids = (await listenerStatus(listener!.url)).workloads.map((w) => w.pid!);
    const exit = await listener!.stop();
    expect(exit.code, listener!.logs()).toBe(0);
    expect(exit.leftovers).toBe(false);
    for (const pid of pids) expect(processAlive(pid)).toBe(false);
  });
});
