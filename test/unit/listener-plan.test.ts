/**
 * plan(desired, actual) as tables: each row gives a desired state and what the
 * driver, gateway and state store report, and the actions expected (by type
 * and target, in order where order matters).
 */
import { describe, expect, it } from "vitest";
import { managedDatabaseName } from "../../src/listener/database-name.js";
import { IMAGE_NOT_SUPPORTED, plan } from "../../src/listener/plan.js";
import type { Action, ActualState, DesiredDeployment, RouteSpec, WorkloadStatus } from "../../src/listener/types.js";

const dep = (over: Partial<DesiredDeployment> = {}): DesiredDeployment => ({
  id: "d1",
  name: "agent",
  revisionId: "r2",
  source: { kind: "directory", path: "/srv/agent", configFile: "langgraph.json" },
  env: { OPENAI_API_KEY: "sk-secret" },
  secretNames: ["OPENAI_API_KEY"],
  hosts: [],
  root: false,
  inheritEnv: false,
  ...over,
});

const w = (revisionId: string, state: WorkloadStatus["state"], over: Partial<WorkloadStatus> = {}): WorkloadStatus => ({
  deploymentId: "d1",
  revisionId,
  state,
  url: state === "healthy" ? `http://127.0.0.1:${revisionId === "r1" ? 5001 : 5002}` : null,
  pid: 100,
  restarts: 0,
  message: null,
  ...over,
});

const route = (revisionId: string | null, upstream: string | null, over: Partial<RouteSpec> = {}): RouteSpec => ({
  deploymentId: "d1",
  name: "agent",
  hosts: [],
  root: false,
  revisionId,
  upstream,
  unavailable: null,
  ...over,
});

const DB = { d1: { name: managedDatabaseName("d1") } };

const actual = (over: Partial<ActualState> = {}): ActualState => ({
  now: 1_000_000,
  workloads: [],
  routes: [],
  databases: DB,
  drops: [],
  failed: {},
  reported: {},
  active: {},
  ...over,
});

const opts = { retentionMs: 60_000, exclusive: new Set<string>() };
const exclusive = { retentionMs: 60_000, exclusive: new Set(["d1"]) };

/** Compact view of an action for the tables. */
function show(a: Action): string {
  switch (a.type) {
    case "start":
      return `start ${a.deployment.revisionId}`;
    case "stop":
      return `stop ${a.revisionId}`;
    case "set-route":
      return `route ${a.route.revisionId ?? (a.route.unavailable ? "unavailable" : "hold")}`;
    case "report-revision":
      return `rev ${a.revisionId} ${a.status}`;
    case "report-deployment":
      return `dep ${a.status}${a.activeRevisionId ? ` ${a.activeRevisionId}` : ""}`;
    case "mark-failed":
      return `failed ${a.revisionId}`;
    case "ensure-database":
      return `db ${a.database === managedDatabaseName(a.deploymentId) ? "managed" : a.database}`;
    case "remember-active":
      return `active ${a.deployment.revisionId}`;
    case "schedule-drop":
      return `schedule-drop +${a.drop.dropAt - 1_000_000}`;
    case "drop-database":
      return "drop-database";
    case "remove-route":
      return "unroute";
    case "cancel-drop":
      return "cancel-drop";
    case "forget-active":
      return "forget-active";
  }
}

describe("plan: one deployment, one revision", () => {
  const cases: Array<{ name: string; desired: DesiredDeployment[]; actual: ActualState; o?: typeof opts; expected: string[] }> = [
    {
      name: "a new deployment gets its database first, and requests are held",
      desired: [dep()],
      actual: actual({ databases: {} }),
      expected: ["db managed", "dep AWAITING_DATABASE", "route hold"],
    },
    {
      name: "with POSTGRES_URI_CUSTOM no database is created: it starts at once",
      desired: [dep({ env: { POSTGRES_URI_CUSTOM: "postgres://u:p@db/app" } })],
      actual: actual({ databases: {} }),
      expected: ["start r2", "rev r2 DEPLOYING", "route hold"],
    },
    {
      name: "the default deployment (inherits env) uses the listener's database: no database action",
      desired: [dep({ inheritEnv: true, root: true })],
      actual: actual({ databases: {} }),
      expected: ["start r2", "rev r2 DEPLOYING", "route hold"],
    },
    {
      name: "database exists, nothing runs: start the target",
      desired: [dep()],
      actual: actual(),
      expected: ["start r2", "rev r2 DEPLOYING", "route hold"],
    },
    {
      name: "starting: nothing to do but say so (once)",
      desired: [dep()],
      actual: actual({ workloads: [w("r2", "starting")], routes: [route(null, null)], reported: { "rev:r2": "DEPLOYING|" } }),
      expected: [],
    },
    {
      name: "healthy: route to it, report DEPLOYED and READY, remember it as the good revision",
      desired: [dep()],
      actual: actual({ workloads: [w("r2", "healthy")], routes: [route(null, null)] }),
      expected: ["rev r2 DEPLOYED", "active r2", "route r2", "dep READY r2"],
    },
    {
      name: "steady state: no actions at all",
      desired: [dep()],
      actual: actual({
        workloads: [w("r2", "healthy")],
        routes: [route("r2", "http://127.0.0.1:5002")],
        reported: { "rev:r2": "DEPLOYED|", "dep:d1": "READY|r2" },
        active: { d1: dep() },
      }),
      expected: [],
    },
    {
      name: "the served server crashed and is restarting: hold requests (no failure while it comes back)",
      desired: [dep()],
      actual: actual({
        workloads: [w("r2", "restarting", { message: "exited with code 1; restart 1 in 1000 ms" })],
        routes: [route("r2", "http://127.0.0.1:5002")],
        reported: { "rev:r2": "DEPLOYED|", "dep:d1": "READY|r2" },
        active: { d1: dep() },
      }),
      expected: ["rev r2 DEPLOYING", "route hold"],
    },
    {
      name: "an image revision fails at once with a clear message",
      desired: [dep({ source: { kind: "image", imageUri: "ghcr.io/acme/agent:1" } })],
      actual: actual(),
      expected: ["failed r2", "rev r2 DEPLOY_FAILED", "route unavailable", "dep UNKNOWN"],
    },
  ];
  for (const c of cases) {
    it(c.name, () => expect(plan(c.desired, c.actual, c.o ?? opts).map(show)).toEqual(c.expected));
  }

  it("the image failure names the reason", () => {
    const actions = plan([dep({ source: { kind: "image", imageUri: "x" } })], actual(), opts);
    expect(actions.find((a) => a.type === "report-revision")).toMatchObject({ status: "DEPLOY_FAILED", message: IMAGE_NOT_SUPPORTED });
  });
});

describe("plan: a revision change", () => {
  const serving1 = {
    workloads: [w("r1", "healthy")],
    routes: [route("r1", "http://127.0.0.1:5001")],
    active: { d1: dep({ revisionId: "r1" }) },
    reported: { "rev:r1": "DEPLOYED|", "dep:d1": "READY|r1" },
  };
  const cases: Array<{ name: string; actual: ActualState; o?: typeof opts; expected: string[] }> = [
    {
      name: "new revision: start it beside the old one; the old keeps serving",
      actual: actual(serving1),
      expected: ["start r2", "rev r2 DEPLOYING"],
    },
    {
      name: "new one healthy: switch the gateway first, then drain the old one",
      actual: actual({ ...serving1, workloads: [w("r1", "healthy"), w("r2", "healthy")] }),
      expected: ["rev r2 DEPLOYED", "active r2", "route r2", "stop r1", "dep READY r2"],
    },
    {
      name: "old one draining: nothing more to do",
      actual: actual({
        workloads: [w("r1", "stopping"), w("r2", "healthy")],
        routes: [route("r2", "http://127.0.0.1:5002")],
        reported: { "rev:r2": "DEPLOYED|", "dep:d1": "READY|r2" },
        active: { d1: dep() },
      }),
      expected: [],
    },
    {
      name: "new one failed: mark it, report DEPLOY_FAILED, remove it; the old keeps serving",
      actual: actual({ ...serving1, workloads: [w("r1", "healthy"), w("r2", "failed", { message: "exited with code 1" })], reported: { "dep:d1": "READY|r1" } }),
      expected: ["failed r2", "rev r2 DEPLOY_FAILED", "stop r2"],
    },
    {
      name: "a revision known to have failed is not started again (e.g. after a listener restart)",
      actual: actual({ ...serving1, failed: { r2: "exited with code 1" }, reported: { "rev:r2": "DEPLOY_FAILED|exited with code 1", "dep:d1": "READY|r1" } }),
      expected: [],
    },
    {
      name: "without Redis: drain the old one first and hold requests (two servers cannot share the database)",
      actual: actual(serving1),
      o: exclusive,
      expected: ["rev r2 DEPLOYING", "route hold", "stop r1"],
    },
    {
      name: "without Redis, old one still draining: wait",
      actual: actual({ ...serving1, workloads: [w("r1", "stopping")], routes: [route(null, null)], reported: { "rev:r2": "DEPLOYING|" } }),
      o: exclusive,
      expected: [],
    },
    {
      name: "without Redis, old one gone: start the new one",
      actual: actual({ ...serving1, workloads: [], routes: [route(null, null)], reported: { "rev:r2": "DEPLOYING|" } }),
      o: exclusive,
      expected: ["start r2"],
    },
    {
      name: "without Redis, the new one failed after the old was drained: the last good revision is started again",
      actual: actual({ ...serving1, workloads: [], routes: [route(null, null)], failed: { r2: "boom" }, reported: { "rev:r2": "DEPLOY_FAILED|boom" } }),
      o: exclusive,
      expected: ["start r1", "route unavailable", "dep UNKNOWN"],
    },
    {
      name: "the target failed and the serving revision crashed: hold requests while it restarts (not 503)",
      actual: actual({
        ...serving1,
        workloads: [w("r1", "restarting")],
        failed: { r2: "boom" },
        reported: { "rev:r2": "DEPLOY_FAILED|boom", "dep:d1": "READY|r1" },
      }),
      expected: ["route hold"],
    },
    {
      name: "the fallback revision healthy again: it serves while the target stays failed",
      actual: actual({ ...serving1, routes: [route(null, null)], failed: { r2: "boom" }, reported: { "rev:r2": "DEPLOY_FAILED|boom", "dep:d1": "UNKNOWN|" } }),
      o: exclusive,
      expected: ["route r1", "dep READY r1"],
    },
  ];
  for (const c of cases) {
    it(c.name, () => expect(plan([dep()], c.actual, c.o ?? opts).map(show)).toEqual(c.expected));
  }
});

describe("plan: deletion and retention", () => {
  const gone = actual({
    workloads: [w("r2", "healthy")],
    routes: [route("r2", "http://127.0.0.1:5002")],
    active: { d1: dep() },
  });
  const cases: Array<{ name: string; desired: DesiredDeployment[]; actual: ActualState; expected: string[] }> = [
    {
      name: "a deleted deployment is stopped and unrouted; its database is kept for the retention period",
      desired: [],
      actual: gone,
      expected: ["stop r2", "unroute", "forget-active", "schedule-drop +60000"],
    },
    {
      name: "before the retention ends nothing is dropped",
      desired: [],
      actual: actual({ drops: [{ deploymentId: "d1", database: DB.d1.name, dropAt: 1_000_001 }] }),
      expected: [],
    },
    {
      name: "after the retention the database is dropped",
      desired: [],
      actual: actual({ drops: [{ deploymentId: "d1", database: DB.d1.name, dropAt: 999_999 }] }),
      expected: ["drop-database"],
    },
    {
      name: "not while a server of it is still draining",
      desired: [],
      actual: actual({ workloads: [w("r2", "stopping")], drops: [{ deploymentId: "d1", database: DB.d1.name, dropAt: 0 }] }),
      expected: [],
    },
    {
      name: "a deployment that comes back before the drop keeps its data",
      desired: [dep()],
      actual: actual({ drops: [{ deploymentId: "d1", database: DB.d1.name, dropAt: 999_999 }] }),
      expected: ["cancel-drop", "start r2", "rev r2 DEPLOYING", "route hold"],
    },
    {
      name: "a database we did not create (POSTGRES_URI_CUSTOM) is never scheduled for a drop",
      desired: [],
      actual: actual({ databases: {}, workloads: [w("r2", "healthy")] }),
      expected: ["stop r2"],
    },
  ];
  for (const c of cases) {
    it(c.name, () => expect(plan(c.desired, c.actual, opts).map(show)).toEqual(c.expected));
  }

  it("two deployments are planned independently", () => {
    const other = dep({ id: "d2", name: "other", revisionId: "x1" });
    const actions = plan([dep(), other], actual({ databases: { ...DB } }), opts).map(show);
    expect(actions).toEqual(["start r2", "rev r2 DEPLOYING", "route hold", "db managed", "dep AWAITING_DATABASE", "route hold"]);
  });

  it("secrets never appear in an action other than start (which carries the env to the driver)", () => {
    const all = [
      ...plan([dep()], actual({ databases: {} }), opts),
      ...plan([dep()], actual({ workloads: [w("r2", "healthy")] }), opts),
      ...plan([dep({ source: { kind: "image", imageUri: "i" } })], actual(), opts),
    ].filter((a) => a.type !== "start" && a.type !== "remember-active");
    expect(JSON.stringify(all)).not.toContain("sk-secret");
  });
});
