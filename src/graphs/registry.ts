import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import type { BaseCheckpointSaver } from "@langchain/langgraph";
import { importUserExport } from "../lib/import-module.js";
import type { GraphEntry } from "./config-file.js";

/** The part of a compiled LangGraph graph that openplane calls. Duck-typed on purpose: see below. */
export interface RunnableGraph {
  stream(input: unknown, options: Record<string, unknown>): Promise<AsyncIterable<unknown>>;
  getState(config: Record<string, unknown>, options?: Record<string, unknown>): Promise<StateSnapshotLike>;
  getStateHistory(config: Record<string, unknown>, options?: Record<string, unknown>): AsyncIterable<StateSnapshotLike>;
  updateState(config: Record<string, unknown>, values: unknown, asNode?: string): Promise<{ configurable?: Record<string, unknown> }>;
  checkpointer?: unknown;
  store?: unknown;
}

export interface StateSnapshotLike {
  values: unknown;
  next: string[];
  tasks: Array<{ id: string; name: string; path?: unknown[]; error?: unknown; interrupts?: unknown[]; state?: unknown; result?: unknown }>;
  config?: { configurable?: Record<string, unknown> };
  parentConfig?: { configurable?: Record<string, unknown> };
  metadata?: Record<string, unknown>;
  createdAt?: string;
}

/** The LangGraph runtime helpers a graph's own copy of @langchain/langgraph provides. */
export interface GraphRuntime {
  Command: new (args: Record<string, unknown>) => unknown;
}

export class GraphNotFoundError extends Error {}

/**
 * Loads the graphs named in langgraph.json.
 *
 * A graph imports @langchain/langgraph from its own project. Objects we hand
 * to the graph are built from that same copy: `Command` is resolved from the
 * graph's directory (falling back to ours), so two installed copies never mix
 * classes. The checkpointer is ours; LangGraph uses it through its method
 * contract only (no instanceof checks), which the tests cover for both layouts.
 */
export function createGraphRegistry(entries: GraphEntry[], checkpointer: BaseCheckpointSaver) {
  const byId = new Map(entries.map((e) => [e.graphId, e]));
  const loaded = new Map<string, Promise<{ value: unknown; runtime: GraphRuntime }>>();
  /** The long-term memory store graphs get as `config.store` (set by useStore). */
  let store: unknown;

  const load = (graphId: string) => {
    const entry = byId.get(graphId);
    if (!entry) throw new GraphNotFoundError(`Graph "${graphId}" not found`);
    let p = loaded.get(graphId);
    if (!p) {
      p = (async () => {
        if (!existsSync(entry.file)) throw new Error(`graph "${graphId}": file not found: ${entry.file}`);
        const value = await importUserExport(entry.file, entry.exportName);
        if (value === undefined) {
          throw new Error(`graph "${graphId}": ${entry.file} has no export named "${entry.exportName}"`);
        }
        return { value, runtime: await runtimeFor(entry.file) };
      })();
      loaded.set(graphId, p);
      p.catch(() => loaded.delete(graphId));
    }
    return p;
  };

  const prepare = async (value: unknown, config: Record<string, unknown>): Promise<RunnableGraph> => {
    let g = value;
    // A factory receives the run's config (the official server does the same).
    if (typeof g === "function" && !isGraph(g)) g = await (g as (c: unknown) => unknown)(config);
    if (isUncompiled(g)) g = (g as { compile(o: unknown): unknown }).compile({ checkpointer });
    if (!isGraph(g)) throw new Error("export is not a LangGraph graph (expected a compiled graph, a StateGraph or a factory)");
    const graph = g as RunnableGraph;
    graph.checkpointer = checkpointer;
    if (store !== undefined) graph.store = store;
    return graph;
  };

  return {
    ids: new Set(byId.keys()) as ReadonlySet<string>,
    /** Hands every graph this store (LangGraph's BaseStore contract, duck-typed like the checkpointer). */
    useStore(s: unknown): void {
      store = s;
    },
    entries,
    /** Imports every graph once so a broken one fails at start-up, not on the first run. */
    async loadAll(): Promise<void> {
      await Promise.all([...byId.keys()].map((id) => load(id)));
    },
    async get(graphId: string, config: Record<string, unknown> = {}) {
      const { value, runtime } = await load(graphId);
      return { graph: await prepare(value, config), runtime };
    },
  };
}

export type GraphRegistry = ReturnType<typeof createGraphRegistry>;

const isGraph = (g: unknown): boolean =>
  typeof g === "object" && g !== null && typeof (g as RunnableGraph).stream === "function" && typeof (g as RunnableGraph).getState === "function";
const isUncompiled = (g: unknown): boolean =>
  typeof g === "object" && g !== null && typeof (g as { compile?: unknown }).compile === "function" && !isGraph(g);

async function runtimeFor(file: string): Promise<GraphRuntime> {
  const lg = (await import(resolveEsmEntry(file, "@langchain/langgraph") ?? "@langchain/langgraph")) as {
    Command: GraphRuntime["Command"];
  };
  return { Command: lg.Command };
}

/** The ESM entry of `pkg` as seen from `file`'s directory, or null if it has no copy of its own. */
function resolveEsmEntry(file: string, pkg: string): string | null {
  let pkgJsonPath: string;
  try {
    pkgJsonPath = createRequire(file).resolve(`${pkg}/package.json`);
  } catch {
    return null;
  }
  const json = JSON.parse(readFileSync(pkgJsonPath, "utf8")) as { exports?: Record<string, unknown>; module?: string; main?: string };
  const dot = json.exports?.["."];
  const pick = (e: unknown): string | undefined => {
    if (typeof e === "string") return e;
    if (e && typeof e === "object") {
      const o = e as Record<string, unknown>;
      return pick(o.node) ?? pick(o.import) ?? pick(o.default);
    }
    return undefined;
  };
  const rel = pick(dot) ?? json.module ?? json.main;
  return rel ? pathToFileURL(join(dirname(pkgJsonPath), rel)).href : null;
}
