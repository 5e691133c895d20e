import { createApiKeyAuth } from "../auth/api-key.js";
import { loadCustomAuth } from "../auth/load.js";
import type { AuthProvider } from "../auth/types.js";
import type { Config } from "../config/index.js";
import type { LanggraphConfig } from "../graphs/config-file.js";
import { loadCustomApp } from "../http/custom-app.js";
import type { HttpOptions } from "../http/deps.js";
import type { Logger } from "../lib/logger.js";
import { createCronQueue } from "../queue/cron-queue.js";
import type { CronQueue } from "../queue/cron-queue.js";
import type { Stores } from "./stores.js";

/**
 * What langgraph.json adds to the HTTP server: custom auth (`auth.path`, which
 * replaces LANGGRAPH_AUTH_TYPE), or the built-in API key check; custom routes
 * (`http.app`), switched-off route groups and CORS (`http.*`).
 */
export async function loadExtensions(
  file: LanggraphConfig,
  config: Readonly<Config>,
  logger: Logger,
): Promise<{ auth: AuthProvider | null; http: Partial<HttpOptions> }> {
  let auth: AuthProvider | null = null;
  if (file.auth?.module) {
    auth = await loadCustomAuth(file.auth.module.file, file.auth.module.exportName);
    if (config.auth.type !== "noop") logger.warn({ ignored: config.auth.type }, "langgraph.json has custom auth: LANGGRAPH_AUTH_TYPE is ignored");
    logger.info({ module: `${file.auth.module.file}:${file.auth.module.exportName}` }, "custom auth loaded");
  } else if (config.auth.type === "api_key") {
    auth = createApiKeyAuth(config.auth.apiKeyDigests);
    logger.info({ keys: config.auth.apiKeyDigests.length }, "API key authentication on");
  }
  const http: Partial<HttpOptions> = { ...config.http };
  if (file.http) {
    http.disable = file.http.disable;
    http.cors = file.http.cors;
    if (file.http.app) {
      http.custom = {
        app: await loadCustomApp(file.http.app.file, file.http.app.exportName),
        enableCustomRouteAuth: file.http.enableCustomRouteAuth,
        middlewareOrder: file.http.middlewareOrder,
      };
      logger.info({ module: `${file.http.app.file}:${file.http.app.exportName}` }, "custom routes loaded");
    }
  }
  return { auth, http };
}

/** The cron job schedulers: BullMQ on Redis, or on BullMQ's PostgreSQL backend. */
export function cronQueueFor(stores: Stores, config: Readonly<Config>, onError: (err: unknown) => void): CronQueue {
  return createCronQueue(
    stores.redis
      ? { kind: "redis", connection: stores.redis, prefix: `${config.redisKeyPrefix}bull` }
      : { kind: "postgres", uri: stores.postgresUri, schema: "openplane_queue", poolMax: 2 },
    onError,
  );
}
