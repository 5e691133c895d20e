import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { AppError } from "../domain/errors.js";
import type { AppDeps } from "./deps.js";
import { errorHandler } from "./errors.js";
import { assistantRoutes } from "./routes/assistants.js";
import { metaRoutes } from "./routes/meta.js";
import { runRoutes } from "./routes/runs.js";
import { threadRoutes } from "./routes/threads.js";

/** Builds the LangGraph Server API. Starts nothing: the caller serves it. */
export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  app.use("*", async (c, next) => {
    c.set("deps", deps);
    await next();
  });
  app.use(
    "*",
    bodyLimit({
      maxSize: deps.maxBodyBytes,
      onError: () => {
        throw new AppError("PAYLOAD_TOO_LARGE", `Request body exceeds ${deps.maxBodyBytes} bytes`);
      },
    }),
  );
  app.use("*", async (c, next) => {
    const started = performance.now();
    await next();
    deps.logger.debug({ method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(performance.now() - started) }, "request");
  });
  app.route("/", metaRoutes());
  app.route("/", assistantRoutes());
  app.route("/", threadRoutes());
  app.route("/", runRoutes());
  app.notFound((c) => c.json({ detail: "Not Found" }, 404));
  app.onError(errorHandler(deps.logger));
  return app;
}
