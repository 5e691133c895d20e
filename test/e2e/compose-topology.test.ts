/**
 * The compose topology, run natively: CI validates compose/*.yaml with
 * `docker compose config`; this test proves the wiring by reading the same files
 * and starting each openplane service as compose would, in its depends_on order,
 * with the same arguments and the same environment (env_file from .env.example,
 * `${VAR:-default}` interpolation, `environment:`), on real PostgreSQL and Redis.
 *
 * Test overrides, and nothing else: the bundled stores' URIs (container host names)
 * point at the test servers, the API's port is a free one and its host is loopback,
 * and OPENPLANE_CONFIG (a compose variable) names the repository's langgraph.json
 * instead of the image's /deps/app.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import pg from "pg";
import { parse } from "yaml";
import { BIN, REPO_ROOT, childEnv, runCli } from "../helpers/cli.js";
import { freePort } from "../helpers/ports.js";
import { createTestDatabase, hasRedis, redisSkipReason, redisUri, uniquePrefix } from "../helpers/services.js";
import type { TestDatabase } from "../helpers/services.js";
import { collect, expectAgentStream, lastMessageText, sdk, userInput } from "./support.js";

const COMPOSE_DIR = join(REPO_ROOT, "compose");
const CONFIG = join(REPO_ROOT, "langgraph.json");

type Vars = Record<string, string | undefined>;

interface ComposeService {
  image?: string;
  command?: string[] | string;
  entrypoint?: string[] | string;
  environment?: Record<string, string | number | boolean | null> | string[];
  env_file?: string[] | string;
  restart?: string;
  healthcheck?: { test?: string[] | string; disable?: boolean };
  depends_on?: Record<string, { condition?: string }> | string[];
}

/** KEY=VALUE lines of an env file (comments and blank lines skipped). */
function readEnvFile(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!.trim().replace(/^(["'])(.*)\1$/, "$2");
  }
  return out;
}

/** Compose interpolation: $$, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}. */
function interpolate(text: string, vars: Vars): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g, (whole, name?: string, op?: string, arg?: string) => {
    if (whole === "$$") return "$";
    const value = vars[name!];
    const empty = value === undefined || (op?.startsWith(":") === true && value === "");
    if (op === ":-" || op === "-") return empty ? interpolate(arg ?? "", vars) : value!;
    if (op === ":?" || op === "?") {
      if (empty) throw new Error(`compose would refuse to start: ${name}: ${arg}`);
      return value!;
    }
    return value ?? "";
  });
}

function deepInterpolate<T>(value: T, vars: Vars): T {
  if (typeof value === "string") return interpolate(value, vars) as T;
  if (Array.isArray(value)) return value.map((v) => deepInterpolate(v, vars)) as T;
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, deepInterpolate(v, vars)])) as T;
  }
  return value;
}

const asArgs = (v: string[] | string | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : v.split(/\s+/).filter(Boolean));

function environmentOf(s: ComposeService): Record<string, string> {
  const env = s.environment ?? {};
  if (Array.isArray(env)) return Object.fromEntries(env.map((e) => [e.split("=")[0]!, e.slice(e.indexOf("=") + 1)]));
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? "" : String(v)]));
}

const dependsOn = (s: ComposeService): Record<string, string> =>
  Array.isArray(s.depends_on)
    ? Object.fromEntries(s.depends_on.map((d) => [d, "service_started"]))
    : Object.fromEntries(Object.entries(s.depends_on ?? {}).map(([d, c]) => [d, c.condition ?? "service_started"]));

/** Services grouped by depends_on depth: every service comes after the ones it depends on. */
function startOrder(services: Record<string, ComposeService>): string[][] {
  const depth = new Map<string, number>();
  const visit = (name: string, seen: Set<string>): number => {
    if (depth.has(name)) return depth.get(name)!;
    if (seen.has(name)) throw new Error(`depends_on cycle at ${name}`);
    seen.add(name);
    const deps = Object.keys(dependsOn(services[name]!));
    for (const d of deps) expect(services, `${name} depends on unknown service ${d}`).toHaveProperty(d);
    const d = deps.length ? 1 + Math.max(...deps.map((x) => visit(x, seen))) : 0;
    depth.set(name, d);
    return d;
  };
  for (const name of Object.keys(services)) visit(name, new Set());
  const levels: string[][] = [];
  for (const [name, d] of depth) (levels[d] ??= []).push(name);
  return levels.filter(Boolean);
}

interface Running {
  name: string;
  child: ChildProcess;
  env: Record<string, string>;
  logs: () => string;
  exited: Promise<number | null>;
}

const running: Running[] = [];

function spawnService(name: string, args: string[], env: Record<string, string>): Running {
  let out = "";
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: REPO_ROOT,
    env: childEnv(env),
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  child.stdout!.setEncoding("utf8").on("data", (c: string) => (out = (out + c).slice(-200_000)));
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (out = (out + c).slice(-200_000)));
  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  const r: Running = { name, child, env, logs: () => out, exited };
  running.push(r);
  return r;
}

/** SIGTERM, then SIGKILL of the group after 15 s. Default: every process still running. */
async function stopAll(list: Running[] = running): Promise<void> {
  const all = [...list];
  for (const r of all) {
    const i = running.indexOf(r);
    if (i >= 0) running.splice(i, 1);
  }
  for (const r of all) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill("SIGTERM");
  await Promise.all(
    all.map(async (r) => {
      const timer = setTimeout(() => r.child.pid !== undefined && killGroup(r.child.pid), 15_000);
      await r.exited;
      clearTimeout(timer);
      if (r.child.pid !== undefined) killGroup(r.child.pid);
    }),
  );
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // gone
  }
}

async function waitFor(what: string, r: Running, ready: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (r.child.exitCode !== null) throw new Error(`${r.name} exited (code ${r.child.exitCode}) before ${what}\n${r.logs()}`);
    if (await ready().catch(() => false)) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`${r.name}: no ${what} within ${timeoutMs} ms\n${r.logs()}`);
}

interface Topology {
  services: Record<string, ComposeService>;
  /** The API service's URL on this machine (its mount prefix included). */
  apiUrl: string;
  /** The API service's healthcheck, adapted to the host port, run natively: its exit code. */
  healthcheck: () => Promise<number | null>;
  /** Every service that listens (API, worker): its URL and its healthcheck, as above. */
  http: Record<string, { url: string; healthcheck: () => Promise<number | null> }>;
  started: Running[];
  oneShots: string[];
}

/**
 * Reads `file` (merge keys resolved), interpolates it with `vars` (the .env), and runs its
 * openplane services natively in depends_on order. `containerEnv` adjusts what each
 * container would see (the test's store URIs).
 */
async function runTopology(file: string, vars: Vars, containerEnv: (env: Record<string, string>) => Record<string, string>): Promise<Topology> {
  const doc = parse(readFileSync(join(COMPOSE_DIR, file), "utf8"), { merge: true }) as { services: Record<string, ComposeService> };
  const services = deepInterpolate(doc.services, vars);
  const isOpenplane = (s: ComposeService) => s.image === interpolate("${OPENPLANE_IMAGE:-openplane:local}", vars);
  const completedDeps = new Set(
    Object.values(services).flatMap((s) => Object.entries(dependsOn(s)).filter(([, c]) => c === "service_completed_successfully").map(([d]) => d)),
  );
  const started: Running[] = [];
  const oneShots: string[] = [];
  const http: Topology["http"] = {};

  for (const level of startOrder(services)) {
    await Promise.all(
      level.map(async (name) => {
        const s = services[name]!;
        if (!isOpenplane(s)) return; // postgres, redis: the test's own servers stand in for them
        // The image's ENTRYPOINT is `openplane` (bin/openplane.mjs); a service entrypoint would replace it.
        expect(s.entrypoint, `${name}: entrypoint`).toBeUndefined();
        const envFile = asArgs(s.env_file).reduce<Record<string, string>>(
          (acc, f) => ({ ...acc, ...readEnvFile(join(COMPOSE_DIR, f === ".env" ? ".env.example" : f)) }),
          {},
        );
        // env_file first, `environment:` wins (as in compose); then the test's store URIs.
        const env = containerEnv({ ...envFileValues(envFile, vars), ...environmentOf(s) });
        let args = asArgs(s.command);
        if (completedDeps.has(name)) {
          expect(s.restart, `${name} is a one-shot`).toBe("no");
          const res = await runCli(args, { env, timeoutMs: 60_000 });
          expect(res.code, `${name} must exit 0\n${res.stdout}${res.stderr}`).toBe(0);
          oneShots.push(name);
          return;
        }
        const portAt = args.indexOf("--port");
        if (portAt >= 0) {
          const containerPort = args[portAt + 1]!;
          const port = String(await freePort());
          args = args.map((a, i) => (i === portAt + 1 ? port : i > 0 && args[i - 1] === "--host" ? "127.0.0.1" : a));
          const prefix = (env.MOUNT_PREFIX ?? "").replace(/^\/+|\/+$/g, "");
          const url = `http://127.0.0.1:${port}${prefix ? `/${prefix}` : ""}`;
          const r = spawnService(name, args, env);
          started.push(r);
          await waitFor("/ok", r, async () => (await fetch(`${url}/ok`)).status === 200);
          const test = asArgs(s.healthcheck?.test);
          expect(test.slice(0, 2), `${name}: healthcheck`).toEqual(["CMD", "node"]);
          const healthcheck = () => runHealthcheck(test.slice(2).map((a) => a.replaceAll(`127.0.0.1:${containerPort}`, `127.0.0.1:${port}`)), env);
          http[name] = { url, healthcheck };
        } else {
          const r = spawnService(name, args, env);
          started.push(r);
          await waitFor("worker start", r, async () => /worker started/.test(r.logs()));
        }
      }),
    );
  }
  const api = http["openplane-api"];
  if (!api) throw new Error("no openplane-api service listening");
  return { services, apiUrl: api.url, healthcheck: api.healthcheck, http, started, oneShots };
}

/** What a container sees from env_file: compose does not interpolate values taken from the file. */
function envFileValues(envFile: Record<string, string>, vars: Vars): Record<string, string> {
  // .env.example leaves every setting commented out; the test's .env additions are in `vars`.
  const out = { ...envFile };
  for (const [k, v] of Object.entries(vars)) if (v !== undefined) out[k] = v;
  return out;
}

function runHealthcheck(nodeArgs: string[], env: Record<string, string>): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, nodeArgs, { env: childEnv(env), stdio: "ignore" });
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

async function exerciseSdk(apiUrl: string, worker: Running): Promise<void> {
  const client = sdk(apiUrl);
  const thread = await client.threads.create();
  const chunks = await collect(
    client.runs.stream(thread.thread_id, "agent", { input: userInput("via compose"), streamMode: ["values", "messages-tuple"] }),
  );
  const runId = expectAgentStream(chunks, "You said: via compose");
  expect((await client.runs.get(thread.thread_id, runId)).status).toBe("success");
  const values = await client.runs.wait(thread.thread_id, "agent", { input: userInput("wait") });
  expect(lastMessageText(values)).toBe("You said: wait");
  // The API runs with N_JOBS_PER_WORKER=0: the worker process executed the run.
  await waitFor("the worker's log of the run", worker, async () => worker.logs().includes(runId), 5_000);
}

const baseVars = (): Vars => ({
  ...readEnvFile(join(COMPOSE_DIR, ".env.example")),
  // Required by compose.yaml (`:?`): an .env made from .env.example sets it.
  POSTGRES_PASSWORD: "composetestpw",
  OPENPLANE_CONFIG: CONFIG,
  LOG_LEVEL: "info",
});

const title = "compose topology, run natively";

describe.skipIf(!hasRedis())(hasRedis() ? title : `${title} (skipped: ${redisSkipReason() ?? "no Redis"})`, () => {
  const dbs: TestDatabase[] = [];
  const topologies: Topology[] = [];

  afterEach((ctx) => {
    if (ctx.task.result?.state !== "fail") return;
    for (const r of topologies.flatMap((t) => t.started)) console.error(`----- ${r.name} -----\n${r.logs().slice(-8_000)}`);
  });
  afterAll(async () => {
    await stopAll();
    for (const db of dbs) await db.drop();
  });

  it.concurrent("compose.yaml: migrate, then API (N_JOBS_PER_WORKER=0) and worker; the SDK streams and waits", async () => {
    const db = await createTestDatabase("e2e_compose");
    dbs.push(db);
    const vars = { ...baseVars(), REDIS_KEY_PREFIX: `${uniquePrefix("compose")}:` };
    const seen: Array<Record<string, string>> = [];
    const current = await runTopology("compose.yaml", vars, (env) => {
      seen.push(env);
      // The bundled stores, as compose wires them; the test servers stand in for them.
      expect(env.POSTGRES_URI).toBe("postgres://openplane:composetestpw@postgres:5432/openplane?sslmode=disable");
      expect(env.REDIS_URI).toBe("redis://redis:6379/0");
      expect(env.POSTGRES_URI_CUSTOM).toBe("");
      expect(env.REDIS_URI_CUSTOM).toBe("");
      return { ...env, POSTGRES_URI: db.uri, REDIS_URI: redisUri() };
    });
    topologies.push(current);
    expect(current.oneShots).toEqual(["openplane-migrate"]);
    expect(current.started.map((r) => r.name).sort()).toEqual(["openplane-api", "openplane-worker"]);
    const api = current.started.find((r) => r.name === "openplane-api")!;
    const worker = current.started.find((r) => r.name === "openplane-worker")!;
    expect(api.env.N_JOBS_PER_WORKER).toBe("0");
    expect(api.logs()).not.toMatch(/worker started/);
    expect(seen.every((e) => e.LANGGRAPH_API_URL === "http://openplane-api:8000")).toBe(true);

    expect(await current.healthcheck()).toBe(0);
    expect(await current.http["openplane-worker"]!.healthcheck()).toBe(0);
    expect((await fetch(`${current.apiUrl}/ok`)).status).toBe(200);
    await exerciseSdk(current.apiUrl, worker);
    await stopAll(current.started);
  }, 120_000);

  it.concurrent("compose.external-postgres.yaml: POSTGRES_URI_CUSTOM and REDIS_URI_CUSTOM from .env, under MOUNT_PREFIX", async () => {
    const db = await createTestDatabase("e2e_compose_ext");
    dbs.push(db);
    const vars: Vars = {
      ...baseVars(),
      POSTGRES_PASSWORD: undefined,
      // As a user's .env would set them: they reach the containers through env_file.
      POSTGRES_URI_CUSTOM: db.uri,
      REDIS_URI_CUSTOM: redisUri(),
      REDIS_KEY_PREFIX: `${uniquePrefix("compose-ext")}:`,
      MOUNT_PREFIX: "/langgraph",
    };
    const current = await runTopology("compose.external-postgres.yaml", vars, (env) => {
      // Used as given; the bundled redis://redis... fallback is not reachable here, so
      // reaching Redis at all proves REDIS_URI_CUSTOM wins.
      expect(env.POSTGRES_URI_CUSTOM).toBe(db.uri);
      expect(env.REDIS_URI).toBe("redis://redis:6379/0");
      return env;
    });
    topologies.push(current);
    expect(current.oneShots).toEqual(["openplane-migrate"]);
    expect(current.apiUrl).toMatch(/\/langgraph$/);
    const worker = current.started.find((r) => r.name === "openplane-worker")!;

    expect(await current.healthcheck()).toBe(0);
    expect(await current.http["openplane-worker"]!.healthcheck()).toBe(0);
    expect((await fetch(`${current.apiUrl}/ok`)).status).toBe(200);
    await exerciseSdk(current.apiUrl, worker);
    await stopAll(current.started);
    // Never dropped by openplane: the database is still there, with the runs in it.
    const client = new pg.Client({ connectionString: db.uri });
    await client.connect();
    try {
      const { rows } = await client.query<{ n: string }>("SELECT count(*) AS n FROM run");
      expect(Number(rows[0]!.n)).toBe(2);
    } finally {
      await client.end();
    }
  }, 120_000);

  it("rejects what compose rejects: compose.yaml without POSTGRES_PASSWORD", () => {
    expect(() => interpolate(readFileSync(join(COMPOSE_DIR, "compose.yaml"), "utf8"), { ...baseVars(), POSTGRES_PASSWORD: "" })).toThrow(
      /POSTGRES_PASSWORD/,
    );
  });
});
