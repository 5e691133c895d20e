import { Hono } from "hono";
import { notFound } from "../../domain/errors.js";
import { assistantSearchSchema } from "../schemas.js";
import { body } from "../validate.js";

export function assistantRoutes(): Hono {
  const app = new Hono();

  app.post("/assistants/search", async (c) => {
    const b = await body(c, assistantSearchSchema);
    const { items, total } = await c.var.deps.assistants.search(b);
    c.header("X-Pagination-Total", String(total));
    if (b.offset + items.length < total) c.header("X-Pagination-Next", String(b.offset + items.length));
    return c.json(items);
  });

  app.get("/assistants/:assistant_id", async (c) => {
    const deps = c.var.deps;
    const id = c.req.param("assistant_id");
    const assistant = await deps.assistants.resolve(id, deps.graphs.ids).catch(() => null);
    if (!assistant) throw notFound("Assistant not found");
    return c.json(assistant);
  });

  return app;
}
