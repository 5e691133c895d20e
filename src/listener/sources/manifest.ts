/**
 * A declarative YAML manifest (GitOps, air-gapped sites):
 *
 *   deployments:
 *     - name: agent                 # /agent/ on the gateway
 *       source:
 *         directory: ./agent        # or tarball: https://.../agent.tgz, or image: ... (not runnable here)
 *         config: langgraph.json    # optional, relative to the source
 *       revision: "7"               # optional; default: a hash of source, env and secrets
 *       env: { LOG_LEVEL: debug }
 *       secrets: { OPENAI_API_KEY: sk-... }   # like env, but redacted everywhere
 *       hosts: [agent.example.com]  # optional Host header routes
 *
 * Changes are picked up without a restart (file watch plus a periodic
 * re-read). A manifest that cannot be read or parsed changes nothing.
 */
import { createHash } from "node:crypto";
import { watch } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname, isAbsolute, resolve } from "node:path";
import { parse } from "yaml";
import { z } from "zod";
import { validDeploymentName } from "../../gateway/routes.js";
import type { DesiredDeployment, RevisionSource } from "../types.js";
import type { DesiredStateSource } from "./types.js";

const envMap = z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name"), z.union([z.string(), z.number(), z.boolean()]).transform(String));

const deploymentSchema = z
  .object({
    name: z.string().refine(validDeploymentName, "must be lower-case letters, digits and dashes (not an API path such as threads)"),
    revision: z.union([z.string().min(1), z.number()]).transform(String).optional(),
    source: z
      .object({
        directory: z.string().min(1).optional(),
        tarball: z.string().min(1).optional(),
        image: z.string().min(1).optional(),
        config: z.string().min(1).default("langgraph.json"),
      })
      .refine((s) => [s.directory, s.tarball, s.image].filter(Boolean).length === 1, "give exactly one of directory, tarball or image"),
    env: envMap.default({}),
    secrets: envMap.default({}),
    hosts: z.array(z.string().min(1)).default([]),
  })
  .strict();

// `deployments` is required: an empty file (say, caught half-written) must not mean "delete everything".
const manifestSchema = z
  .object({ deployments: z.array(deploymentSchema) })
  .strict()
  .refine((m) => new Set(m.deployments.map((d) => d.name)).size === m.deployments.length, "deployment names must be unique");

/** Parses manifest text into the desired state. Relative paths resolve against `baseDir`. Throws with every problem. */
export function parseManifest(text: string, baseDir: string): DesiredDeployment[] {
  if (text.trim() === "") throw new Error("invalid manifest: the file is empty (write `deployments: []` to remove every deployment)");
  let raw: unknown;
  try {
    raw = parse(text) ?? {};
  } catch (err) {
    throw new Error(`invalid manifest: ${(err as Error).message.split("\n")[0]}`);
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    throw new Error(`invalid manifest: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}`);
  }
  return parsed.data.deployments.map((d) => {
    const s = d.source;
    const source: RevisionSource = s.image
      ? { kind: "image", imageUri: s.image }
      : s.tarball
        ? { kind: "tarball", url: /^[a-z]+:\/\//i.test(s.tarball) || isAbsolute(s.tarball) ? s.tarball : resolve(baseDir, s.tarball), configFile: s.config }
        : { kind: "directory", path: resolve(baseDir, s.directory!), configFile: s.config };
    const env = { ...d.env, ...d.secrets };
    const fingerprint = createHash("sha256").update(JSON.stringify([source, d.env, d.secrets, d.hosts])).digest("hex").slice(0, 12);
    return {
      id: d.name,
      name: d.name,
      revisionId: `${d.name}@${d.revision ?? fingerprint}`,
      source,
      env,
      secretNames: Object.keys(d.secrets),
      hosts: d.hosts,
      root: false,
      inheritEnv: false,
    };
  });
}

export function manifestSource(path: string, intervalMs: number): DesiredStateSource {
  const abs = resolve(path);
  return {
    kind: "manifest",
    key: `manifest:${abs}`,
    intervalMs,
    maxBackoffMs: Math.max(intervalMs, 60_000),
    async fetch() {
      const text = await readFile(abs, "utf8").catch((err: NodeJS.ErrnoException) => {
        throw new Error(`cannot read manifest ${abs}: ${err.code ?? err.message}`);
      });
      return parseManifest(text, dirname(abs));
    },
    watch(wake) {
      // Watch the directory: editors and GitOps tools replace the file (rename), which ends a file watch.
      // Debounced: one save is often several events (truncate, write, rename).
      let timer: NodeJS.Timeout | undefined;
      try {
        const w = watch(dirname(abs), (_event, file) => {
          if (file && file !== basename(abs)) return;
          clearTimeout(timer);
          timer = setTimeout(wake, 250);
        });
        w.on("error", () => {});
        return () => {
          clearTimeout(timer);
          w.close();
        };
      } catch {
        return () => {};
      }
    },
  };
}
