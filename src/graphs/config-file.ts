import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { parseEnv } from "node:util";
import { z } from "zod";

const graphSpec = z.union([
  z.string().regex(/^.+:[A-Za-z_$][\w$]*$/, 'must look like "./path/to/file.ts:exportName"'),
  z.object({ path: z.string().regex(/^.+:[A-Za-z_$][\w$]*$/), description: z.string().optional() }),
]);

/** The subset of langgraph.json openplane reads today; other keys are kept and ignored. */
const fileSchema = z
  .object({
    graphs: z.record(z.string().regex(/^[\w.-]+$/, "graph ids may only contain letters, digits, _ . -"), graphSpec)
      .refine((g) => Object.keys(g).length > 0, "must name at least one graph"),
    env: z.union([z.record(z.string(), z.string()), z.string(), z.array(z.string())]).optional(),
    dependencies: z.array(z.string()).optional(),
    node_version: z.string().optional(),
  })
  .passthrough();

export interface GraphEntry {
  graphId: string;
  /** Absolute path of the module. */
  file: string;
  exportName: string;
  description?: string;
}

export interface LanggraphConfig {
  path: string;
  dir: string;
  graphs: GraphEntry[];
  env: Record<string, string>;
}

export class ConfigFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigFileError";
  }
}

/** Reads and validates langgraph.json; relative paths resolve against its directory. */
export async function readLanggraphConfig(path: string): Promise<LanggraphConfig> {
  const abs = resolve(path);
  let text: string;
  try {
    text = await readFile(abs, "utf8");
  } catch {
    throw new ConfigFileError(`config file not found: ${abs}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigFileError(`${abs} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new ConfigFileError(`${abs}: ${issues.join("; ")}`);
  }
  const dir = dirname(abs);
  const graphs = Object.entries(parsed.data.graphs).map(([graphId, spec]) => {
    const s = typeof spec === "string" ? spec : spec.path;
    const i = s.lastIndexOf(":");
    return {
      graphId,
      file: resolve(dir, s.slice(0, i)),
      exportName: s.slice(i + 1),
      description: typeof spec === "string" ? undefined : spec.description,
    };
  });
  return { path: abs, dir, graphs, env: await readEnv(parsed.data.env, dir) };
}

async function readEnv(env: string | string[] | Record<string, string> | undefined, dir: string) {
  if (env === undefined) return {};
  if (typeof env === "object" && !Array.isArray(env)) return env;
  // A path to a .env file (the JS CLI also accepts a list of variable names to pass through).
  if (typeof env === "string") {
    try {
      return parseEnv(await readFile(resolve(dir, env), "utf8")) as Record<string, string>;
    } catch {
      throw new ConfigFileError(`env file not found: ${resolve(dir, env)}`);
    }
  }
  return {};
}
