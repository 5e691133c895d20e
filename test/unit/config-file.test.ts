import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigFileError, readLanggraphConfig } from "../../src/graphs/config-file.js";

let root: string;
let n = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "openplane-config-file-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Writes files into a fresh directory; returns its path. */
async function project(files: Record<string, string | object>): Promise<string> {
  const dir = join(root, `p${n++}`);
  await mkdir(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(dir, name, ".."), { recursive: true });
    await writeFile(join(dir, name), typeof content === "string" ? content : JSON.stringify(content));
  }
  return dir;
}

async function configError(path: string): Promise<ConfigFileError> {
  const err = await readLanggraphConfig(path).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigFileError);
  return err as ConfigFileError;
}

describe("readLanggraphConfig", () => {
  it("reads graphs, resolving paths against the file's directory", async () => {
    const dir = await project({
      "langgraph.json": {
        node_version: "20",
        dependencies: ["."],
        graphs: {
          agent: "./src/agent.ts:graph",
          "other.v2": { path: "lib/other.mts:make_graph", description: "the other one" },
        },
        env: { A: "1" },
        http: { cors: {} }, // unknown keys are kept and ignored
      },
    });
    const cfg = await readLanggraphConfig(join(dir, "langgraph.json"));
    expect(cfg.path).toBe(join(dir, "langgraph.json"));
    expect(cfg.dir).toBe(dir);
    expect(cfg.graphs).toEqual([
      { graphId: "agent", file: join(dir, "src/agent.ts"), exportName: "graph", description: undefined },
      { graphId: "other.v2", file: join(dir, "lib/other.mts"), exportName: "make_graph", description: "the other one" },
    ]);
    expect(cfg.env).toEqual({ A: "1" });
  });

  it("splits on the last colon (Windows-style paths keep theirs)", async () => {
    const dir = await project({ "langgraph.json": { graphs: { g: "./a:b/c.ts:g" } } });
    const [g] = (await readLanggraphConfig(join(dir, "langgraph.json"))).graphs;
    expect(g).toMatchObject({ file: join(dir, "a:b/c.ts"), exportName: "g" });
  });

  it("reads the repository's own langgraph.json", async () => {
    const cfg = await readLanggraphConfig("langgraph.json");
    expect(cfg.graphs.map((g) => g.graphId)).toEqual(["agent", "counter"]);
    expect(cfg.graphs[0]!.file).toMatch(/examples\/agent\/graph\.ts$/);
  });

  it("reports a missing file with its absolute path", async () => {
    const missing = join(root, "nowhere", "langgraph.json");
    const err = await configError(missing);
    expect(err.message).toBe(`config file not found: ${missing}`);
  });

  it("reports invalid JSON", async () => {
    const dir = await project({ "langgraph.json": '{"graphs": {"a": "./a.ts:g",}' });
    const err = await configError(join(dir, "langgraph.json"));
    expect(err.message).toContain("is not valid JSON");
    expect(err.message).toContain(join(dir, "langgraph.json"));
  });

  it.each([
    [{ graphs: { agent: "./agent.ts" } }, /graphs\.agent/],
    [{ graphs: { agent: "./agent.ts:1bad" } }, /graphs\.agent/],
    [{ graphs: { agent: { path: "no-export" } } }, /graphs\.agent/],
    [{ graphs: { agent: 42 } }, /graphs\.agent/],
    [{ graphs: { "bad id!": "./a.ts:g" } }, /graphs/],
    [{ graphs: {} }, /at least one graph/],
    [{}, /graphs/],
    [[], /\(root\)/],
    [{ graphs: { a: "./a.ts:g" }, env: 5 }, /env/],
  ])("rejects a bad config %j, naming the field", async (content, pattern) => {
    const dir = await project({ "langgraph.json": content });
    const err = await configError(join(dir, "langgraph.json"));
    expect(err.message).toMatch(pattern);
  });

  it("reads env from a .env file relative to the config", async () => {
    const dir = await project({
      "langgraph.json": { graphs: { a: "./a.ts:g" }, env: "./conf/.env" },
      "conf/.env": '# comment\nFOO=bar\nQUOTED="hello world"\nEMPTY=\n',
    });
    const cfg = await readLanggraphConfig(join(dir, "langgraph.json"));
    expect(cfg.env).toEqual({ FOO: "bar", QUOTED: "hello world", EMPTY: "" });
  });

  it("reports a missing .env file", async () => {
    const dir = await project({ "langgraph.json": { graphs: { a: "./a.ts:g" }, env: ".env.missing" } });
    const err = await configError(join(dir, "langgraph.json"));
    expect(err.message).toBe(`env file not found: ${join(dir, ".env.missing")}`);
  });

  it("treats env as a list of names as no values, and no env as empty", async () => {
    const dir = await project({
      "list.json": { graphs: { a: "./a.ts:g" }, env: ["OPENAI_API_KEY"] },
      "none.json": { graphs: { a: "./a.ts:g" } },
    });
    expect((await readLanggraphConfig(join(dir, "list.json"))).env).toEqual({});
    expect((await readLanggraphConfig(join(dir, "none.json"))).env).toEqual({});
  });
});
