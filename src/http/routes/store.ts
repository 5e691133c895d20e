import { Hono } from "hono";
import { invalid } from "../../domain/errors.js";
import { filterConditions } from "../../storage/store.js";
import { storeDeleteSchema, storeGetQuerySchema, storeNamespacesSchema, storePutSchema, storeSearchSchema } from "../schemas.js";
import { body, query } from "../validate.js";

/** Long-term memory (`/store/...`): items in namespaces, with TTLs and filtered listing. */
export function storeRoutes(): Hono {
  const app = new Hono();

  app.put("/store/items", async (c) => {
    const b = await body(c, storePutSchema);
    await c.var.deps.store.put(b.namespace, b.key, b.value, b.ttl ?? null);
    return c.body(null, 204);
  });

  // A missing item is `null` with 200: the SDKs return it as "not found" (a 404 would throw).
  app.get("/store/items", async (c) => {
    const q = query(c, storeGetQuerySchema);
    return c.json(await c.var.deps.store.get(q.namespace, q.key, q.refresh_ttl ?? true));
  });

  app.delete("/store/items", async (c) => {
    const b = await body(c, storeDeleteSchema);
    await c.var.deps.store.delete(b.namespace, b.key);
    return c.body(null, 204);
  });

  app.post("/store/items/search", async (c) => {
    const b = await body(c, storeSearchSchema);
    if (b.query) throw invalid("query: semantic search needs store.index in langgraph.json, which this deployment does not configure");
    const items = await c.var.deps.store.search({
      namespacePrefix: b.namespace_prefix ?? [],
      filter: filterConditions(b.filter ?? {}),
      limit: b.limit,
      offset: b.offset,
      refreshTtl: b.refresh_ttl ?? true,
    });
    return c.json({ items });
  });

  app.post("/store/namespaces", async (c) => {
    const b = await body(c, storeNamespacesSchema);
    const namespaces = await c.var.deps.store.listNamespaces({
      prefix: b.prefix ?? undefined,
      suffix: b.suffix ?? undefined,
      maxDepth: b.max_depth ?? undefined,
      limit: b.limit,
      offset: b.offset,
    });
    return c.json({ namespaces });
  });

  return app;
}
