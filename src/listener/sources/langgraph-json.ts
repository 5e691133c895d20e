/**
 * The default source: with neither a control plane nor a manifest, one
 * deployment made from ./langgraph.json (or --config), which is what
 * `npm start` serves. It is served at the gateway's root path (so existing
 * clients keep working) and under /default/, inherits the listener's
 * environment, and uses the listener's PostgreSQL URI as given, as
 * `openplane up` always did.
 */
import { createHash } from "node:crypto";
import { basename, dirname, resolve } from "node:path";
import type { DesiredDeployment } from "../types.js";
import type { DesiredStateSource } from "./types.js";

export const DEFAULT_DEPLOYMENT_ID = "default";

export function defaultDeployment(configPath: string): DesiredDeployment {
  const abs = resolve(configPath);
  return {
    id: DEFAULT_DEPLOYMENT_ID,
    name: DEFAULT_DEPLOYMENT_ID,
    revisionId: `local-${createHash("sha1").update(abs).digest("hex").slice(0, 12)}`,
    source: { kind: "directory", path: dirname(abs), configFile: basename(abs) },
    env: {},
    secretNames: [],
    hosts: [],
    root: true,
    inheritEnv: true,
  };
}

export function langgraphJsonSource(configPath: string): DesiredStateSource {
  const deployment = defaultDeployment(configPath);
  return {
    kind: "langgraph-json",
    key: `langgraph-json:${resolve(configPath)}`,
    intervalMs: 3_600_000,
    maxBackoffMs: 3_600_000,
    fetch: async () => [deployment],
  };
}
