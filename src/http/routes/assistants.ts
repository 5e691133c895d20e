import { Hono } from "hono";
import { isAppError, notFound } from "../../domain/errors.js";
import { assistantSearchSchema } from "../schemas.js";
import { body, setPagination } from "../validate.js";

export function assistantRoutes(): Hono {
  const app = new Hono();

  app.post("/assistants/search", async (c) => {
    const b = await body(c, assistantSearchSchema);
    const { items, total } = await c.var.deps.assistants.search(b);
    setPagination(c, b.offset, items.length, total);
    return c.json(items);
  });

  app.get("/assistants/:assistant_id", async (c) => {
    const deps = c.var.deps;
    const id = c.req.param("assistant_id");
    const assistant = await deps.assistants.resolve(id, deps.graphs.ids).catch((err: unknown) => {
      if (isAppError(err) && err.code === "NOT_FOUND") throw notFound("Assistant not found");
      throw err;
    });
    return c.json(assistant);
  });

  return app;
}
