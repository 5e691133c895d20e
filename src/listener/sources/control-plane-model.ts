/**
 * The subset of the control plane's v2 resources the listener reads, and the
 * pure mapping from a (deployment, revision) pair to a DesiredDeployment.
 * Unknown fields are ignored; missing optional ones are fine.
 */
import { dirname, basename, isAbsolute } from "node:path";
import { z } from "zod";
import { RESERVED_NAMES } from "../../gateway/routes.js";
import type { DesiredDeployment, RevisionSource } from "../types.js";

const revisionConfig = z
  .object({
    image_uri: z.string().nullish(),
    source_tarball_path: z.string().nullish(),
    langgraph_config_path: z.string().nullish(),
    repo_ref: z.string().nullish(),
  })
  .passthrough();

export const deploymentSchema = z
  .object({
    id: z.string().min(1),
    name: z.string().min(1),
    source: z.string().nullish(),
    source_config: z
      .object({ listener_id: z.string().nullish(), custom_url: z.string().nullish() })
      .passthrough()
      .nullish(),
    source_revision_config: revisionConfig.nullish(),
    secrets: z.array(z.object({ name: z.string().min(1), value: z.string() })).nullish(),
    latest_revision_id: z.string().nullish(),
    active_revision_id: z.string().nullish(),
    status: z.string().nullish(),
  })
  .passthrough();

export const revisionSchema = z
  .object({
    id: z.string().min(1),
    status: z.string().nullish(),
    source: z.string().nullish(),
    source_revision_config: revisionConfig.nullish(),
    created_at: z.string().nullish(),
  })
  .passthrough();

export const listenerSchema = z.object({ id: z.string().min(1) }).passthrough();

/** A page: `{resources: [...], offset}` as documented, or a bare array. */
export const pageOf = <T extends z.ZodType>(item: T) =>
  z.union([z.array(item), z.object({ resources: z.array(item) }).passthrough().transform((p) => p.resources)]);

export type CpDeployment = z.infer<typeof deploymentSchema>;
export type CpRevision = z.infer<typeof revisionSchema>;

/** A deployment name made usable as a path segment (lower-case, dashes); API path names get a suffix. */
export function routeName(name: string): string {
  const slug = name.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 60) || "deployment";
  return RESERVED_NAMES.has(slug) ? `${slug}-app` : slug;
}

/**
 * What the process driver should run for a revision:
 * - `image_uri` → an image (not supported here);
 * - `source_tarball_path` → a tarball (URL or absolute path), langgraph.json at
 *   `langgraph_config_path` inside it (default langgraph.json);
 * - an absolute `langgraph_config_path` alone → a local directory.
 */
export function revisionSource(config: z.infer<typeof revisionConfig> | null | undefined): RevisionSource {
  const c = config ?? {};
  if (c.image_uri) return { kind: "image", imageUri: c.image_uri };
  if (c.source_tarball_path) return { kind: "tarball", url: c.source_tarball_path, configFile: c.langgraph_config_path || "langgraph.json" };
  if (c.langgraph_config_path && isAbsolute(c.langgraph_config_path)) {
    return { kind: "directory", path: dirname(c.langgraph_config_path), configFile: basename(c.langgraph_config_path) };
  }
  return {
    kind: "unsupported",
    reason: "the revision names no source the process driver can run (set source_tarball_path, or an absolute langgraph_config_path on this machine)",
  };
}

/** The desired state for one deployment bound to us, at the revision it should run. */
export function toDesired(d: CpDeployment, revision: CpRevision): DesiredDeployment {
  const secrets = d.secrets ?? [];
  let hosts: string[] = [];
  if (d.source_config?.custom_url) {
    try {
      hosts = [new URL(d.source_config.custom_url).hostname];
    } catch {
      hosts = [];
    }
  }
  return {
    id: d.id,
    name: routeName(d.name),
    revisionId: revision.id,
    source: revisionSource(revision.source_revision_config ?? d.source_revision_config),
    env: Object.fromEntries(secrets.map((s) => [s.name, s.value])),
    secretNames: secrets.map((s) => s.name),
    hosts,
    root: false,
    inheritEnv: false,
  };
}

/** The revision a deployment should run: its latest, else the newest listed. */
export function pickRevision(d: CpDeployment, revisions: CpRevision[]): CpRevision | null {
  return revisions.find((r) => r.id === d.latest_revision_id) ?? revisions[0] ?? null;
}
