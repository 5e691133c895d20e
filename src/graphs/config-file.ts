import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { parseEnv } from "node:util";
import { z } from "zod";

const graphSpec = z.union([
  z.string().regex(/^.+:[A-Za-z_$][\w$]*$/, 'must look like "./path/to/file.ts:exportName"'),
  z.object({ path: z.string().regex(/^.+:[A-Za-z_$][\w$]*$/), description: z.string().optional() }),
]);

/** "./file.ts:exportName", or "./file.ts" for the default export. */
const modulePath = z.string().regex(/^[^:]+(:[A-Za-z_$][\w$]*)?$/, 'must look like "./path/to/file.ts:exportName"');

const regex = z.string().refine(
  (v) => {
    try {
      new RegExp(v);
      return true;
    } catch {
      return false;
    }
  },
  { message: "must be a valid regular expression" },
);

/** `auth` (api.md §5.1, §6): the custom Auth module. */
const authSchema = z
  .object({
    path: modulePath.optional(),
    disable_studio_auth: z.boolean().optional(),
    openapi: z.record(z.string(), z.unknown()).optional(),
  })
  .passthrough();

/** `http` (api.md §5.1): custom routes, built-in groups switched off, CORS. */
const httpSchema = z
  .object({
    app: modulePath.optional(),
    disable_assistants: z.boolean().optional(),
    disable_threads: z.boolean().optional(),
    disable_runs: z.boolean().optional(),
    disable_store: z.boolean().optional(),
    disable_meta: z.boolean().optional(),
    enable_custom_route_auth: z.boolean().optional(),
    middleware_order: z.enum(["middleware_first", "auth_first"]).optional(),
    cors: z
      .object({
        allow_origins: z.array(z.string()).optional(),
        allow_methods: z.array(z.string()).optional(),
        allow_headers: z.array(z.string()).optional(),
        allow_credentials: z.boolean().optional(),
        allow_origin_regex: regex.optional(),
        expose_headers: z.array(z.string()).optional(),
        max_age: z.number().int().min(0).optional(),
      })
      .optional(),
  })
  .passthrough();

/** `store` (api.md §5.1): the semantic index (`store.index`); `store.ttl` is kept and ignored here. */
const storeSchema = z
  .object({
    index: z
      .object({
        dims: z.number().int().min(1, "must be a positive integer").max(65_536),
        embed: z.union([
          z.string().regex(/^openai:[\w.-]+$/, 'must look like "openai:text-embedding-3-small"'),
          modulePath,
        ]),
        fields: z.array(z.string().min(1)).min(1).optional(),
      })
      .passthrough()
      .optional(),
  })
  .passthrough();

/** The subset of langgraph.json openplane reads today; other keys are kept and ignored. */
const fileSchema = z
  .object({
    graphs: z.record(z.string().regex(/^[\w.-]+$/, "graph ids may only contain letters, digits, _ . -"), graphSpec)
      .refine((g) => Object.keys(g).length > 0, "must name at least one graph"),
    env: z.union([z.record(z.string(), z.string()), z.string(), z.array(z.string())]).optional(),
    dependencies: z.array(z.string()).optional(),
    node_version: z.string().optional(),
    auth: authSchema.optional(),
    http: httpSchema.optional(),
    store: storeSchema.optional(),
  })
  .passthrough();

export interface GraphEntry {
  graphId: string;
  /** Absolute path of the module. */
  file: string;
  exportName: string;
  description?: string;
}

/** A module export named in langgraph.json, resolved against its directory. */
export interface ModuleRef {
  /** Absolute path of the module. */
  file: string;
  exportName: string;
}

export interface LanggraphConfig {
  path: string;
  dir: string;
  graphs: GraphEntry[];
  env: Record<string, string>;
  /** `auth`: the custom Auth instance to load, or null. */
  auth: { module: ModuleRef | null; disableStudioAuth: boolean; openapi: Record<string, unknown> | null } | null;
  /** `http`: custom app, switched-off route groups, CORS (null when absent). */
  http: {
    app: ModuleRef | null;
    disable: Partial<Record<"assistants" | "threads" | "runs" | "store" | "meta", boolean>>;
    enableCustomRouteAuth: boolean;
    middlewareOrder: "middleware_first" | "auth_first";
    cors: z.output<typeof httpSchema>["cors"] | null;
  } | null;
  /** `store`: the semantic search index (null without `store.index`). */
  store: { index: StoreIndexConfig | null } | null;
}

/** `store.index`: how items are embedded for semantic search. */
export interface StoreIndexConfig {
  dims: number;
  /** `openai:<model>`, or a user module export. */
  embed: { kind: "openai"; model: string } | ({ kind: "module"; spec: string } & ModuleRef);
  /** JSON paths of the text to embed (default ["$"], the whole value). */
  fields: string[];
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
  const { auth, http, store } = parsed.data;
  return {
    path: abs,
    dir,
    graphs,
    env: await readEnv(parsed.data.env, dir),
    auth: auth
      ? { module: auth.path ? moduleRef(dir, auth.path) : null, disableStudioAuth: auth.disable_studio_auth ?? false, openapi: auth.openapi ?? null }
      : null,
    http: http
      ? {
          app: http.app ? moduleRef(dir, http.app) : null,
          disable: {
            assistants: http.disable_assistants,
            threads: http.disable_threads,
            runs: http.disable_runs,
            store: http.disable_store,
            meta: http.disable_meta,
          },
          enableCustomRouteAuth: http.enable_custom_route_auth ?? false,
          middlewareOrder: http.middleware_order ?? "middleware_first",
          cors: http.cors ?? null,
        }
      : null,
    store: store ? { index: store.index ? storeIndexConfig(dir, store.index) : null } : null,
  };
}

function storeIndexConfig(dir: string, index: { dims: number; embed: string; fields?: string[] }): StoreIndexConfig {
  const embed: StoreIndexConfig["embed"] = index.embed.startsWith("openai:")
    ? { kind: "openai", model: index.embed.slice("openai:".length) }
    : { kind: "module", spec: index.embed, ...moduleRef(dir, index.embed) };
  return { dims: index.dims, embed, fields: index.fields ?? ["$"] };
}

/** "./auth.ts:auth" → {file: <abs>/auth.ts, exportName: "auth"}; without ":name", the default export. */
function moduleRef(dir: string, spec: string): ModuleRef {
  const i = spec.lastIndexOf(":");
  return i < 0 ? { file: resolve(dir, spec), exportName: "default" } : { file: resolve(dir, spec.slice(0, i)), exportName: spec.slice(i + 1) };
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
