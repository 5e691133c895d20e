import { Hono } from "hono";
import { AuthRejection } from "../../auth/errors.js";
import type { AuthFilter } from "../../auth/types.js";
import { invalid } from "../../domain/errors.js";
import { filterConditions } from "../../storage/store.js";
import type { StoreItem } from "../../storage/store.js";
import { authorize, matchesFilters } from "../authorize.js";
import { storeDeleteSchema, storeGetQuerySchema, storeNamespacesSchema, storePutSchema, storeSearchSchema } from "../schemas.js";
import { body, query } from "../validate.js";

/** Long-term memory (`/store/...`): items in namespaces, with TTLs, filtered listing and (with store.index) semantic search. */
export function storeRoutes(): Hono {
  const app = new Hono();

  app.put("/store/items", async (c) => {
    const b = await body(c, storePutSchema);
    // The handler may rewrite the value (e.g. prefix the namespace with the user): its result is stored.
    const value: Record<string, unknown> = { namespace: [...b.namespace], key: b.key, value: { ...b.value }, index: b.index ?? null, ttl: b.ttl ?? null };
    const filters = await authorize(c, "store", "put", value);
    const item = { namespace: value.namespace as string[], key: value.key as string, value: (value.value as Record<string, unknown>) ?? {} };
    if (filters) {
      // Neither the item written nor one it would replace may fall outside the filters.
      const existing = await c.var.deps.store.get(item.namespace, item.key, false);
      if (!visible(item, filters) || (existing && !visible(existing, filters))) throw forbidden();
    }
    const itemIndex = value.index as false | string[] | null | undefined;
    await c.var.deps.store.put(item.namespace, item.key, item.value, b.ttl ?? null, itemIndex);
    return c.body(null, 204);
  });

  // A missing item is `null` with 200: the SDKs return it as "not found" (a 404 would throw).
  // An item the filters exclude looks missing too.
  app.get("/store/items", async (c) => {
    const q = query(c, storeGetQuerySchema);
    const value: Record<string, unknown> = { namespace: [...q.namespace], key: q.key };
    const filters = await authorize(c, "store", "get", value);
    const item = await c.var.deps.store.get(value.namespace as string[], value.key as string, q.refresh_ttl ?? true);
    return c.json(item && visible(item, filters) ? item : null);
  });

  app.delete("/store/items", async (c) => {
    const b = await body(c, storeDeleteSchema);
    const value: Record<string, unknown> = { namespace: [...b.namespace], key: b.key };
    const filters = await authorize(c, "store", "delete", value);
    const namespace = value.namespace as string[];
    const key = value.key as string;
    if (filters) {
      const existing = await c.var.deps.store.get(namespace, key, false);
      if (existing && !visible(existing, filters)) throw forbidden();
    }
    await c.var.deps.store.delete(namespace, key);
    return c.body(null, 204);
  });

  app.post("/store/items/search", async (c) => {
    const b = await body(c, storeSearchSchema);
    if (b.query && !c.var.deps.store.semantic) {
      throw invalid("query: semantic search needs store.index in langgraph.json, which this deployment does not configure");
    }
    const value: Record<string, unknown> = {
      namespace: [...(b.namespace_prefix ?? [])],
      filter: b.filter ?? null,
      limit: b.limit,
      offset: b.offset,
      query: b.query ?? null,
    };
    const filters = await authorize(c, "store", "search", value);
    const items = await c.var.deps.store.search({
      namespacePrefix: (value.namespace as string[] | null) ?? [],
      filter: filterConditions(b.filter ?? {}),
      limit: b.limit,
      offset: b.offset,
      refreshTtl: b.refresh_ttl ?? true,
      auth: filters ?? undefined,
      query: (value.query as string | null) ?? null,
    });
    return c.json({ items });
  });

  app.post("/store/namespaces", async (c) => {
    const b = await body(c, storeNamespacesSchema);
    const value: Record<string, unknown> = {
      namespace: b.prefix ?? null,
      suffix: b.suffix ?? null,
      max_depth: b.max_depth ?? null,
      limit: b.limit,
      offset: b.offset,
    };
    const filters = await authorize(c, "store", "list_namespaces", value);
    const namespaces = await c.var.deps.store.listNamespaces({
      prefix: (value.namespace as string[] | null) ?? undefined,
      suffix: (value.suffix as string[] | null) ?? undefined,
      maxDepth: b.max_depth ?? undefined,
      limit: b.limit,
      offset: b.offset,
      auth: filters ?? undefined,
    });
    return c.json({ namespaces });
  });

  return app;
}

/** Store filters see `{...value, namespace, key}` (namespace and key win over value keys of those names). */
const visible = (item: Pick<StoreItem, "namespace" | "key" | "value">, filters: readonly AuthFilter[] | null) =>
  matchesFilters({ ...item.value, namespace: item.namespace, key: item.key }, filters);

const forbidden = () => new AuthRejection(403, "Forbidden: the item is outside what you may write");
