/**
 * The control-plane source and the write-back reporter against the emulator,
 * in process, over real HTTP: auth headers, the /api-host base path,
 * pagination and the listener_id filter; every kind of failure throws (so
 * the listener changes nothing); write-back is idempotent and tolerates a
 * deleted deployment. Plus the per-deployment databases on real PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDatabaseAdmin } from "../../src/listener/databases.js";
import { controlPlaneSource, createControlPlaneClient } from "../../src/listener/sources/control-plane.js";
import type { ControlPlaneOptions } from "../../src/listener/sources/control-plane.js";
import { controlPlaneReporter } from "../../src/listener/status-reporter.js";
import { postgresUri } from "../helpers/services.js";
import { databaseExists } from "../support/control-plane/harness.js";
import { startEmulator } from "../support/control-plane/server.js";
import type { Emulator } from "../support/control-plane/server.js";

describe("control-plane source and write-back", () => {
  let em: Emulator;
  let listenerId: string;
  let options: ControlPlaneOptions;

  beforeAll(async () => {
    em = await startEmulator({ basePath: "/api-host" });
    listenerId = em.store.addListener().id;
    options = { baseUrl: em.url, apiKey: em.apiKey, tenantId: em.tenantId, listenerId, intervalMs: 1_000, maxBackoffMs: 5_000, timeoutMs: 2_000 };
  });
  afterAll(() => em.stop());

  it("reads only the deployments bound to its listener, across pages, at their latest revision", async () => {
    expect(em.url).toMatch(/\/api-host$/);
    for (let i = 0; i < 105; i++) {
      em.store.createDeployment({ name: `other-${i}`, source_config: { listener_id: "another-listener" }, source_revision_config: { langgraph_config_path: "/x/langgraph.json" } });
    }
    const mine = em.store.createDeployment({
      name: "Mine",
      source_config: { listener_id: listenerId },
      source_revision_config: { langgraph_config_path: "/srv/mine/langgraph.json" },
      secrets: [{ name: "API_KEY", value: "k1" }],
    });
    em.store.patchDeployment(mine.id, { secrets: [{ name: "API_KEY", value: "k2" }] });
    const desired = await controlPlaneSource(options).fetch(new AbortController().signal);
    expect(desired).toEqual([
      expect.objectContaining({
        id: mine.id,
        name: "mine",
        revisionId: em.store.deployments.get(mine.id)!.latest_revision_id,
        env: { API_KEY: "k2" },
        source: { kind: "directory", path: "/srv/mine", configFile: "langgraph.json" },
      }),
    ]);
  });

  it.each([
    ["a wrong API key", { apiKey: "nope" }, /answered 401/],
    ["no tenant id", { tenantId: null }, /answered 403/],
    ["an unknown listener id", { listenerId: "missing" }, /listeners\/missing answered 404/],
    ["a base URL without the /api-host prefix", { baseUrl: "" }, /answered 404/],
  ])("throws on %s (nothing changes)", async (_n, over: Partial<ControlPlaneOptions>, message) => {
    const o = { ...options, ...over, baseUrl: over.baseUrl === "" ? em.url.replace(/\/api-host$/, "") : (over.baseUrl ?? options.baseUrl) };
    await expect(controlPlaneSource(o).fetch(new AbortController().signal)).rejects.toThrow(message);
  });

  it("throws while the control plane answers 503 or is unreachable, and recovers after", async () => {
    const source = controlPlaneSource(options);
    em.outage = true;
    await expect(source.fetch(new AbortController().signal)).rejects.toThrow(/answered 503/);
    em.outage = false;
    await em.stop();
    await expect(source.fetch(new AbortController().signal)).rejects.toThrow(/control plane unreachable/);
    await em.start();
    await expect(source.fetch(new AbortController().signal)).resolves.toHaveLength(1);
  });

  it("write-back: statuses land on the revision and deployment, repeats are harmless, a deleted deployment is not an error", async () => {
    const d = em.store.createDeployment({ name: "wb", source_config: { listener_id: listenerId }, source_revision_config: { langgraph_config_path: "/srv/wb/langgraph.json" } });
    const rid = d.latest_revision_id!;
    let t = Date.parse("2026-01-01T00:00:00Z");
    const reporter = controlPlaneReporter(createControlPlaneClient(options), listenerId, () => new Date((t += 1_000)));
    await reporter.revision(d.id, rid, "DEPLOYING", "");
    await reporter.revision(d.id, rid, "DEPLOYED", "");
    await reporter.revision(d.id, rid, "DEPLOYED", "");
    await reporter.deployment(d.id, "READY", rid, "");
    expect(em.store.revision(d.id, rid)).toMatchObject({ status: "DEPLOYED", observed_at: "2026-01-01T00:00:03.000Z" });
    expect(em.store.deployments.get(d.id)).toMatchObject({ status: "READY", active_revision_id: rid });
    const sent = em.store.reports.filter((r) => r.deployment_id === d.id);
    expect(sent.map((r) => r.status)).toEqual(["DEPLOYING", "DEPLOYED", "DEPLOYED", "READY"]);
    expect(sent.every((r) => r.listener_id === listenerId)).toBe(true);
    em.store.deleteDeployment(d.id);
    await expect(reporter.revision(d.id, rid, "DEPLOYED", "")).resolves.toBeUndefined();
  });
});

describe("per-deployment databases", () => {
  const admin = () => createDatabaseAdmin(postgresUri());

  it("creates a managed database once, gives its URI, and drops it", async () => {
    const a = admin();
    const name = `op_it_${Date.now().toString(36)}`;
    try {
      expect(await a.ensure(name)).toBe(true);
      expect(await a.ensure(name)).toBe(false);
      expect(await databaseExists(postgresUri(), name)).toBe(true);
      expect(new URL(a.uriFor(name)).pathname).toBe(`/${name}`);
      await a.drop(name);
      expect(await databaseExists(postgresUri(), name)).toBe(false);
    } finally {
      await a.drop(name).catch(() => {});
      await a.close();
    }
  });

  it("refuses to create or drop a database whose name is not a managed one", async () => {
    const a = admin();
    try {
      await expect(a.drop("postgres")).rejects.toThrow(/not a managed name/);
      await expect(a.ensure("app; DROP")).rejects.toThrow(/not a managed name/);
    } finally {
      await a.close();
    }
  });
});
