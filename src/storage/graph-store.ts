import type { ItemIndex, StoreItem, StoreRepo } from "./store.js";
import { filterConditions } from "./store.js";

/** LangGraph's store item (camelCase dates), as graphs see it through `config.store`. */
interface GraphItem {
  namespace: string[];
  key: string;
  value: Record<string, unknown>;
  createdAt: Date;
  updatedAt: Date;
  /** Similarity to the query (semantic search only). */
  score?: number;
}

type Op =
  | { namespace: string[]; key: string; refreshTtl?: boolean }
  | { namespacePrefix: string[]; filter?: Record<string, unknown>; limit?: number; offset?: number; query?: string; refreshTtl?: boolean }
  | { namespace: string[]; key: string; value: Record<string, unknown> | null; index?: unknown; ttl?: number }
  | { matchConditions?: Array<{ matchType: "prefix" | "suffix"; path: string[] }>; maxDepth?: number; limit: number; offset: number };

const toGraphItem = (i: StoreItem): GraphItem => ({
  namespace: i.namespace,
  key: i.key,
  value: i.value,
  createdAt: new Date(i.created_at),
  updatedAt: new Date(i.updated_at),
  ...(i.score !== undefined ? { score: i.score } : {}),
});

/**
 * The same store the `/store` routes serve, shaped as LangGraph's BaseStore
 * (`batch` plus the convenience methods), so graph nodes can read and write
 * long-term memory through `config.store` / `getStore()`. Duck-typed: LangGraph
 * wraps it in its AsyncBatchedStore, which only calls `batch`. Semantic
 * `query` works when the repository has a store index (langgraph.json `store.index`).
 */
export function createGraphStore(repo: StoreRepo) {
  async function run(op: Op): Promise<unknown> {
    if ("namespacePrefix" in op) {
      if (op.query && !repo.semantic) throw new Error("semantic search needs store.index in langgraph.json, which this deployment does not configure");
      const items = await repo.search({
        namespacePrefix: op.namespacePrefix,
        filter: filterConditions(op.filter ?? {}),
        limit: op.limit ?? 10,
        offset: op.offset ?? 0,
        refreshTtl: op.refreshTtl ?? true,
        query: op.query ?? null,
      });
      return items.map(toGraphItem);
    }
    if ("value" in op) {
      if (op.value === null) await repo.delete(op.namespace, op.key);
      else await repo.put(op.namespace, op.key, op.value, op.ttl ?? null, op.index as ItemIndex);
      return undefined;
    }
    if ("key" in op) {
      const item = await repo.get(op.namespace, op.key, op.refreshTtl ?? true);
      return item ? toGraphItem(item) : null;
    }
    const prefix = op.matchConditions?.find((m) => m.matchType === "prefix")?.path;
    const suffix = op.matchConditions?.find((m) => m.matchType === "suffix")?.path;
    return repo.listNamespaces({ prefix, suffix, maxDepth: op.maxDepth, limit: op.limit, offset: op.offset });
  }

  const store = {
    /** Runs operations in order (a put followed by a get in one batch sees the put). */
    async batch(ops: Op[]): Promise<unknown[]> {
      const results: unknown[] = [];
      for (const op of ops) results.push(await run(op));
      return results;
    },
    get: (namespace: string[], key: string) => run({ namespace, key }) as Promise<GraphItem | null>,
    put: async (namespace: string[], key: string, value: Record<string, unknown>, index?: false | string[]) =>
      void (await run({ namespace, key, value, index })),
    delete: async (namespace: string[], key: string) => void (await run({ namespace, key, value: null })),
    search: (namespacePrefix: string[], options: { filter?: Record<string, unknown>; limit?: number; offset?: number; query?: string } = {}) =>
      run({ namespacePrefix, ...options }) as Promise<GraphItem[]>,
    listNamespaces: (options: { prefix?: string[]; suffix?: string[]; maxDepth?: number; limit?: number; offset?: number } = {}) =>
      run({
        matchConditions: [
          ...(options.prefix ? [{ matchType: "prefix" as const, path: options.prefix }] : []),
          ...(options.suffix ? [{ matchType: "suffix" as const, path: options.suffix }] : []),
        ],
        maxDepth: options.maxDepth,
        limit: options.limit ?? 100,
        offset: options.offset ?? 0,
      }) as Promise<string[][]>,
    start: () => {},
    stop: () => {},
  };
  return store;
}

export type GraphStore = ReturnType<typeof createGraphStore>;
