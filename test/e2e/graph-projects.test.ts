/**
 * Promise 4 of the foundation: graphs that live in other directories.
 *
 * (a) A project in a temp dir with its own node_modules holding separate
 *     on-disk copies of @langchain/langgraph (+ the @langchain packages it
 *     needs) and @langchain/core. openplane runs from the repository with
 *     `--config <tempdir>/langgraph.json`; the graph uses its own copy, and a
 *     run with `command: {resume}` resumes its interrupt() (the Command that
 *     openplane builds comes from the graph's copy).
 * (b) A langgraph.json whose graph has no node_modules next to it (it resolves
 *     @langchain/langgraph from openplane's), with `env` in langgraph.json
 *     applied to the process without overriding the real environment.
 */
import { cp, mkdir, mkdtemp, readdir, realpath, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import type { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, killAll, printLogsOnFailure, startCli } from "../helpers/cli.js";
import type { CliProcess } from "../helpers/cli.js";
import { createTestDatabase } from "../helpers/services.js";
import type { TestDatabase } from "../helpers/services.js";
import { collect, sdk } from "./support.js";

const FIXTURES = join(REPO_ROOT, "test", "fixtures");
const REPO_MODULES = join(REPO_ROOT, "node_modules");
/** Copied, not linked: together they make the project's own LangGraph module instance. */
const COPIED = ["@langchain/langgraph", "@langchain/langgraph-checkpoint", "@langchain/protocol", "@langchain/core"];

/**
 * Builds the fixture project in `dir`: its sources, plus a node_modules with
 * real copies of the @langchain packages and links to everything else they
 * import (zod, langsmith, ...), so no network install is needed.
 */
async function buildProject(dir: string): Promise<void> {
  await cp(join(FIXTURES, "own-langgraph"), dir, { recursive: true });
  const modules = join(dir, "node_modules");
  await mkdir(join(modules, "@langchain"), { recursive: true });
  await Promise.all(
    COPIED.map((pkg) => cp(join(REPO_MODULES, pkg), join(modules, pkg), { recursive: true, verbatimSymlinks: true })),
  );
  for (const entry of await readdir(REPO_MODULES)) {
    if (entry === "@langchain" || entry.startsWith(".")) continue;
    await symlink(join(REPO_MODULES, entry), join(modules, entry), "dir");
  }
}

const dbs: TestDatabase[] = [];
let projectDir: string | undefined;
let otherCwd: string | undefined;
let own: CliProcess | undefined;
let shared: CliProcess | undefined;

beforeAll(async () => {
  // One database per server: servers on one database share its run queue (as replicas of one deployment do).
  const [ownDb, sharedDb] = await Promise.all([createTestDatabase("e2e_own_lg"), createTestDatabase("e2e_env_graph")]);
  dbs.push(ownDb, sharedDb);
  projectDir = await realpath(await mkdtemp(join(tmpdir(), "openplane-e2e-project-")));
  otherCwd = await mkdtemp(join(tmpdir(), "openplane-e2e-cwd-"));
  await buildProject(projectDir);
  [own, shared] = await Promise.all([
    // (a) run from the repository, pointing at the project's langgraph.json.
    startCli({ command: "up", config: join(projectDir, "langgraph.json"), env: { POSTGRES_URI: ownDb.uri } }),
    // (b) run from an unrelated directory: the config's own location is what counts.
    startCli({
      command: "up",
      cwd: otherCwd,
      config: join(FIXTURES, "env-graph", "langgraph.json"),
      env: { POSTGRES_URI: sharedDb.uri, OPENPLANE_FIXTURE_OVERRIDDEN: "from the environment" },
    }),
  ]);
});

afterAll(async () => {
  await killAll();
  await Promise.all(dbs.map((d) => d.drop()));
  for (const dir of [projectDir, otherCwd]) if (dir) await rm(dir, { recursive: true, force: true });
});

printLogsOnFailure(() => [own, shared]);

describe("a graph project with its own node_modules/@langchain/langgraph", () => {
  let client: Client;
  beforeAll(() => {
    client = sdk(own!.url);
  });

  it("serves the project's graph with the project's own copy of @langchain/langgraph", async () => {
    const assistant = await client.assistants.get("asker");
    expect(assistant.graph_id).toBe("asker");

    const thread = await client.threads.create();
    await client.runs.wait(thread.thread_id, "asker", { input: { question: "which copy?" } });
    const state = await client.threads.getState<{ langgraph_entry: string }>(thread.thread_id);
    const entry = await realpath(state.values.langgraph_entry);
    expect(entry.startsWith(join(projectDir!, "node_modules", "@langchain", "langgraph") + sep)).toBe(true);
    expect(entry.startsWith(REPO_MODULES)).toBe(false);
  });

  it("shows the interrupt in getState, then resumes it with command: {resume}", async () => {
    const thread = await client.threads.create();
    const first = await collect(
      client.runs.stream(thread.thread_id, "asker", { input: { question: "favourite colour?" }, streamMode: ["values", "updates"] }),
    );
    expect(first[0]!.event).toBe("metadata");
    expect(first.some((c) => c.event === "error"), JSON.stringify(first)).toBe(false);

    const paused = await client.threads.getState<{ question: string; answer?: string }>(thread.thread_id);
    expect(paused.next).toEqual(["ask"]);
    expect(paused.values.question).toBe("favourite colour?");
    expect(paused.values.answer).toBeUndefined();
    expect(paused.tasks).toHaveLength(1);
    expect(paused.tasks[0]!.name).toBe("ask");
    expect(paused.tasks[0]!.interrupts).toEqual([expect.objectContaining({ value: { question: "favourite colour?" } })]);
    expect((await client.threads.get(thread.thread_id)).status).toBe("interrupted");

    const resumed = await collect(
      client.runs.stream(thread.thread_id, "asker", { command: { resume: "blue" }, streamMode: ["values"] }),
    );
    expect(resumed.some((c) => c.event === "error"), JSON.stringify(resumed)).toBe(false);
    const lastValues = resumed.filter((c) => c.event === "values").at(-1)!.data as { answer: string };
    expect(lastValues.answer).toBe("answered: blue");

    const done = await client.threads.getState<{ question: string; answer: string }>(thread.thread_id);
    expect(done.next).toEqual([]);
    expect(done.values).toMatchObject({ question: "favourite colour?", answer: "answered: blue" });
    expect((await client.threads.get(thread.thread_id)).status).toBe("idle");
  });

  it("resumes through runs.wait as well", async () => {
    const thread = await client.threads.create();
    await client.runs.wait(thread.thread_id, "asker", { input: { question: "tea or coffee?" } });
    expect((await client.threads.getState(thread.thread_id)).next).toEqual(["ask"]);
    const values = await client.runs.wait(thread.thread_id, "asker", { command: { resume: "tea" } });
    expect(values).toMatchObject({ answer: "answered: tea" });
  });
});

describe("a graph without node_modules of its own, with env in langgraph.json", () => {
  let client: Client;
  beforeAll(() => {
    client = sdk(shared!.url);
  });

  it("loads the graph (resolving @langchain/langgraph from openplane's) and applies langgraph.json env", async () => {
    const values = await client.runs.wait(null, "env_reader", { input: { input: "x" } });
    expect(values).toMatchObject({ greeting: "hello from langgraph.json" });
  });

  it("does not let langgraph.json env override a variable already set in the environment", async () => {
    const values = await client.runs.wait(null, "env_reader", { input: { input: "y" } });
    expect(values).toMatchObject({ overridden: "from the environment" });
  });
});
