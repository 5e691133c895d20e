import { createHash } from "node:crypto";
import type { DatabaseChoice, DesiredDeployment } from "./types.js";

/**
 * The database a managed deployment gets on the listener's PostgreSQL:
 * `op_<slug>_<hash>`, at most 63 bytes, stable for a deployment id.
 */
export function managedDatabaseName(deploymentId: string): string {
  const slug = deploymentId.toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "").slice(0, 40);
  const hash = createHash("sha1").update(deploymentId).digest("hex").slice(0, 8);
  return `op_${slug || "d"}_${hash}`;
}

/** Which database a deployment uses (see {@link DatabaseChoice}). */
export function databaseFor(d: Pick<DesiredDeployment, "id" | "env" | "inheritEnv">): DatabaseChoice {
  if (d.env.POSTGRES_URI_CUSTOM) return { kind: "custom" };
  if (d.inheritEnv) return { kind: "listener" };
  return { kind: "managed", name: managedDatabaseName(d.id) };
}
