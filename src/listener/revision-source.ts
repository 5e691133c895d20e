/**
 * Makes a revision's code available on this machine.
 *
 * - directory: used in place (its langgraph.json must exist).
 * - tarball: fetched (http(s)://, file:// or an absolute path), unpacked with
 *   the system `tar` (members escaping the directory are refused by tar),
 *   `npm ci` when it carries a lockfile, and cached by revision id: a
 *   revision is immutable, so a cached copy is never fetched again.
 * - image: not runnable by the process driver.
 */
import { execFile } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import { copyFile, mkdir, readdir, rename, rm, writeFile } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { fileURLToPath } from "node:url";
import { IMAGE_NOT_SUPPORTED } from "./plan.js";
import { PermanentError } from "./drivers/types.js";
import type { RevisionSource } from "./types.js";

export interface PreparedSource {
  dir: string;
  configFile: string;
}

export interface PrepareOptions {
  /** Where unpacked tarballs are kept, one directory per revision. */
  cacheDir: string;
  revisionId: string;
  /** Environment for `npm ci` (the revision's own, so private registries work). */
  env: Record<string, string>;
  signal: AbortSignal;
  log: (msg: string) => void;
}

const READY_MARK = ".openplane-ready";

export async function prepareSource(source: RevisionSource, o: PrepareOptions): Promise<PreparedSource> {
  if (source.kind === "image") throw new PermanentError(IMAGE_NOT_SUPPORTED);
  if (source.kind === "unsupported") throw new PermanentError(source.reason);
  if (source.kind === "directory") {
    const dir = resolve(source.path);
    const configFile = resolve(dir, source.configFile);
    if (!existsSync(configFile)) throw new PermanentError(`${source.configFile} not found in ${dir}`);
    return { dir, configFile };
  }
  const target = join(o.cacheDir, o.revisionId.replace(/[^A-Za-z0-9._-]/g, "_"));
  if (!existsSync(join(target, READY_MARK))) await unpackTarball(source.url, target, o);
  const dir = await projectRoot(join(target, "app"), source.configFile);
  return { dir, configFile: join(dir, source.configFile) };
}

async function unpackTarball(url: string, target: string, o: PrepareOptions): Promise<void> {
  const work = `${target}.tmp-${process.pid}`;
  await rm(work, { recursive: true, force: true });
  await mkdir(join(work, "app"), { recursive: true, mode: 0o700 });
  try {
    const archive = join(work, "source.tar");
    o.log(`fetching ${redactUrl(url)}`);
    await download(url, archive, o.signal);
    await run("tar", ["-xf", archive, "--no-same-owner", "-C", join(work, "app")], { cwd: work, env: o.env, signal: o.signal }).catch((err: Error) => {
      throw new PermanentError(`cannot unpack ${redactUrl(url)}: ${err.message}`);
    });
    await rm(archive);
    const app = join(work, "app");
    for (const lock of ["package-lock.json", "npm-shrinkwrap.json"]) {
      const root = await projectRoot(app, "package.json").catch(() => null);
      if (root && existsSync(join(root, lock))) {
        o.log(`npm ci in ${root}`);
        await run("npm", ["ci", "--no-audit", "--no-fund"], { cwd: root, env: o.env, signal: o.signal, timeoutMs: 15 * 60_000 });
        break;
      }
    }
    await writeFile(join(work, READY_MARK), `${new Date().toISOString()}\n`);
    await rm(target, { recursive: true, force: true });
    await rename(work, target);
  } catch (err) {
    await rm(work, { recursive: true, force: true });
    throw err;
  }
}

async function download(url: string, dest: string, signal: AbortSignal): Promise<void> {
  if (isAbsolute(url) || url.startsWith("file:")) {
    const path = url.startsWith("file:") ? fileURLToPath(url) : url;
    if (!existsSync(path)) throw new PermanentError(`source tarball not found: ${path}`);
    return copyFile(path, dest);
  }
  if (!/^https?:\/\//.test(url)) throw new PermanentError(`unsupported source tarball location: ${redactUrl(url)}`);
  const res = await fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(10 * 60_000)]) });
  if (res.status === 404 || res.status === 403 || res.status === 401) {
    throw new PermanentError(`fetching ${redactUrl(url)} answered ${res.status}`);
  }
  if (!res.ok || !res.body) throw new Error(`fetching ${redactUrl(url)} answered ${res.status}`);
  await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), createWriteStream(dest, { mode: 0o600 }));
}

/** The directory holding `file`: the unpacked root, or its single top-level directory (GitHub-style archives). */
async function projectRoot(app: string, file: string): Promise<string> {
  if (existsSync(join(app, file))) return app;
  const entries = (await readdir(app, { withFileTypes: true })).filter((e) => !e.name.startsWith("."));
  if (entries.length === 1 && entries[0]!.isDirectory() && existsSync(join(app, entries[0]!.name, file))) {
    return join(app, entries[0]!.name);
  }
  throw new PermanentError(`${file} not found in the source tarball`);
}

function run(
  cmd: string,
  args: string[],
  o: { cwd: string; env: Record<string, string>; signal: AbortSignal; timeoutMs?: number },
): Promise<void> {
  return new Promise((ok, fail) => {
    execFile(cmd, args, { cwd: o.cwd, env: o.env, signal: o.signal, timeout: o.timeoutMs ?? 120_000, maxBuffer: 8 * 1024 * 1024 }, (err, _out, stderr) => {
      if (!err) return ok();
      const last = String(stderr).trim().split("\n").slice(-3).join(" | ");
      fail(new Error(`${cmd} ${args[0]} failed${last ? `: ${last}` : ""}`));
    });
  });
}

/** A tarball URL may carry a signed token: never log its query string or credentials. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.protocol === "file:") return u.pathname;
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? "?…" : ""}`;
  } catch {
    return url.split("?")[0] ?? url;
  }
}
