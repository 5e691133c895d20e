import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const run = promisify(execFile);

// Under vitest our sources are loaded by vite, not by Node: module identity can only be
// checked in a plain Node process, started here as `openplane` starts (tsx's ESM loader).
describe("importUserModule", () => {
  let dir: string;

  beforeAll(async () => {
    // Inside the repository, so the projects resolve @langchain/langgraph from our node_modules.
    await mkdir(join(REPO_ROOT, ".openplane"), { recursive: true });
    dir = await mkdtemp(join(REPO_ROOT, ".openplane", "test-import-module-"));
    const graph = `import { StateGraph } from "@langchain/langgraph";\nconst typed: string = "ts";\nexport { StateGraph, typed };\n`;
    for (const [name, type] of [["esm", "module"], ["cjs", "commonjs"]] as const) {
      await mkdir(join(dir, name));
      await writeFile(join(dir, name, "package.json"), JSON.stringify({ name, private: true, type }));
      await writeFile(join(dir, name, "graph.ts"), graph);
    }
    await writeFile(
      join(dir, "check.mjs"),
      [
        `import { importUserModule } from ${JSON.stringify(pathToFileURL(join(REPO_ROOT, "src/lib/import-module.ts")).href)};`,
        `import { StateGraph } from "@langchain/langgraph";`,
        `const out = {};`,
        `for (const name of ["esm", "cjs"]) {`,
        `  const a = await importUserModule(${JSON.stringify(dir)} + "/" + name + "/graph.ts");`,
        `  const b = await importUserModule(${JSON.stringify(dir)} + "/" + name + "/graph.ts");`,
        `  out[name] = { typed: a.typed, shared: a.StateGraph === StateGraph, cached: a === b };`,
        `}`,
        `console.log(JSON.stringify(out));`,
      ].join("\n"),
    );
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("loads TypeScript in ESM and CommonJS projects once; an ES module project shares openplane's module instances", async () => {
    const { stdout } = await run(process.execPath, ["--import", "tsx/esm", join(dir, "check.mjs")], { cwd: REPO_ROOT, timeout: 60_000 });
    const result = JSON.parse(stdout.trim().split("\n").at(-1)!) as Record<string, { typed: string; shared: boolean; cached: boolean }>;
    expect(result).toEqual({
      esm: { typed: "ts", shared: true, cached: true },
      // A CommonJS project gets the package's CommonJS build (Node's dual-package rule).
      cjs: { typed: "ts", shared: false, cached: true },
    });
    // A child Node loading LangGraph twice: seconds on a busy 2-core machine.
  }, 60_000);
});
