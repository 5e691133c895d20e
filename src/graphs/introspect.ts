import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

/**
 * What `/assistants/{id}/graph`, `/schemas` and `/subgraphs` read from a
 * compiled graph. Duck-typed, like the rest of the registry: the graph may
 * come from another project's copy of @langchain/langgraph.
 */
interface IntrospectableGraph {
  getGraph?: (config?: Record<string, unknown>) => { toJSON(): unknown };
  getGraphAsync?: (config?: Record<string, unknown>) => Promise<{ toJSON(): unknown }>;
  getSubgraphs?: (namespace?: string, recurse?: boolean) => Iterable<[string, unknown]>;
  getSubgraphsAsync?: (namespace?: string, recurse?: boolean) => AsyncIterable<[string, unknown]>;
  builder?: Record<string, unknown>;
}

type JsonSchema = Record<string, unknown>;

export interface GraphSchemas {
  input_schema: JsonSchema | null;
  output_schema: JsonSchema | null;
  state_schema: JsonSchema | null;
  config_schema: JsonSchema | null;
  context_schema: JsonSchema | null;
}

/** LangGraph's own schema helpers (`@langchain/langgraph/zod/schema`, present since 0.2.x). */
interface SchemaHelpers {
  getStateTypeSchema(graph: unknown): JsonSchema | undefined;
  getInputTypeSchema(graph: unknown): JsonSchema | undefined;
  getOutputTypeSchema(graph: unknown): JsonSchema | undefined;
  getConfigTypeSchema(graph: unknown): JsonSchema | undefined;
}

/** `{nodes:[{id,type,data,metadata?}], edges:[{source,target,data?,conditional?}]}` from the graph's own drawing. */
export async function drawableGraph(graph: unknown, xray: boolean | number): Promise<unknown> {
  const g = graph as IntrospectableGraph;
  const config = xray ? { xray } : {};
  const drawn = g.getGraphAsync ? await g.getGraphAsync(config) : g.getGraph ? g.getGraph(config) : null;
  if (!drawn) return { nodes: [], edges: [] };
  // toJSON() holds plain data apart from possible undefined fields: a JSON round trip drops those.
  return JSON.parse(JSON.stringify(drawn.toJSON())) as unknown;
}

/** `[namespace, subgraph]` pairs; nested namespaces are joined with "|". */
export async function subgraphsOf(graph: unknown, namespace: string | undefined, recurse: boolean): Promise<Array<[string, unknown]>> {
  const g = graph as IntrospectableGraph;
  const out: Array<[string, unknown]> = [];
  if (g.getSubgraphsAsync) {
    for await (const pair of g.getSubgraphsAsync(namespace, recurse)) out.push(pair);
  } else if (g.getSubgraphs) {
    for (const pair of g.getSubgraphs(namespace, recurse)) out.push(pair);
  }
  return out;
}

/**
 * JSON schemas of a graph. Zod and StateSchema states go through LangGraph's
 * own helpers (from the graph's copy of the package, whose schema registry
 * holds the graph's metadata). Annotation states carry no types at run time,
 * so for them we describe the channels: each key, typed from its default
 * value where it has one. The context schema (`new StateGraph(s, {context})`)
 * is reported as both config_schema and context_schema, as the JS server does.
 */
export async function graphSchemas(graph: unknown, graphFile: string | null): Promise<GraphSchemas> {
  const helpers = await schemaHelpers(graphFile);
  const builder = (graph as IntrospectableGraph).builder;
  const attempt = (fn: () => JsonSchema | undefined): JsonSchema | null => {
    try {
      return fn() ?? null;
    } catch {
      return null;
    }
  };
  const state = attempt(() => helpers?.getStateTypeSchema(graph)) ?? channelsSchema(builder?._schemaDefinition, "State");
  const input = attempt(() => helpers?.getInputTypeSchema(graph)) ?? channelsSchema(builder?._inputDefinition, "Input");
  const output = attempt(() => helpers?.getOutputTypeSchema(graph)) ?? channelsSchema(builder?._outputDefinition, "Output");
  const context = attempt(() => helpers?.getConfigTypeSchema(graph));
  return { input_schema: input, output_schema: output, state_schema: state, config_schema: context, context_schema: context };
}

/** Describes an Annotation (channel map) as an object schema; null when there is none. */
function channelsSchema(def: unknown, title: string): JsonSchema | null {
  if (!def || typeof def !== "object") return null;
  const properties: Record<string, JsonSchema> = {};
  for (const [key, channel] of Object.entries(def as Record<string, unknown>)) {
    if (key.startsWith("__")) continue;
    properties[key] = channelSchema(channel);
  }
  return { type: "object", title, properties };
}

function channelSchema(channel: unknown): JsonSchema {
  const factory = (channel as { initialValueFactory?: unknown } | null)?.initialValueFactory;
  if (typeof factory !== "function") return {};
  let value: unknown;
  try {
    value = (factory as () => unknown)();
  } catch {
    return {};
  }
  const type = Array.isArray(value) ? "array" : value === null ? "null" : typeof value;
  if (!["array", "null", "string", "number", "boolean", "object"].includes(type)) return {};
  const plain = value === null || ["string", "number", "boolean"].includes(typeof value) || (Array.isArray(value) && value.length === 0);
  return plain ? { type, default: value } : { type };
}

const helperCache = new Map<string, Promise<SchemaHelpers | null>>();

/** The schema helpers from the graph's own @langchain/langgraph, else ours. */
function schemaHelpers(graphFile: string | null): Promise<SchemaHelpers | null> {
  const entry = (graphFile && resolveSubpath(graphFile, "@langchain/langgraph", "./zod/schema")) ?? "@langchain/langgraph/zod/schema";
  let p = helperCache.get(entry);
  if (!p) {
    p = import(entry).then((m) => m as SchemaHelpers, () => null);
    helperCache.set(entry, p);
  }
  return p;
}

function resolveSubpath(file: string, pkg: string, subpath: string): string | null {
  let pkgJsonPath: string;
  try {
    pkgJsonPath = createRequire(file).resolve(`${pkg}/package.json`);
  } catch {
    return null;
  }
  try {
    const json = JSON.parse(readFileSync(pkgJsonPath, "utf8")) as { exports?: Record<string, unknown> };
    const pick = (e: unknown): string | undefined => {
      if (typeof e === "string") return e;
      if (e && typeof e === "object") {
        const o = e as Record<string, unknown>;
        return pick(o.import) ?? pick(o.node) ?? pick(o.default);
      }
      return undefined;
    };
    const rel = pick(json.exports?.[subpath]);
    return rel ? pathToFileURL(join(dirname(pkgJsonPath), rel)).href : null;
  } catch {
    return null;
  }
}
