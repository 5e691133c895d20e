/**
 * Start-up checks of the user's stores, turned into one clear line each: which
 * variable, which host, what went wrong. Never includes the URI's password.
 */

/** BullMQ's PostgreSQL backend needs 13+; we document and require 14+. */
export const MIN_POSTGRES_MAJOR = 14;

/** A store problem worth one line on stderr (no stack trace). */
export class StoreStartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StoreStartupError";
  }
}

/** The first of `names` whose environment value is `uri` (the variable the URI came from). */
/** `host:port` of a URI, without user or password. */
export function endpointOf(uri: string, defaultPort: number): string {
  try {
    const u = new URL(uri);
    const host = u.hostname || "localhost";
    return `${host}:${u.port || defaultPort}`;
  } catch {
    return "(unparseable URI)";
  }
}

/** A short reason for a connection error; never echoes the error's own text (it may hold the URI). */
export function connectReason(err: unknown): string {
  const e = err as { code?: unknown; errno?: unknown; message?: unknown } | null;
  const code = String(e?.code ?? "");
  const message = String(e?.message ?? "");
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host not found";
    case "ETIMEDOUT":
    case "CONNECT_TIMEOUT":
      return "connection timed out";
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return "host unreachable";
    case "ECONNRESET":
      return "connection reset";
    case "28P01":
    case "28000":
      return "authentication failed (check the user and password)";
    case "3D000":
      return "the database does not exist (create it first: openplane never creates it)";
    case "57P03":
      return "the server is starting up or shutting down";
    case "53300":
      return "too many connections";
  }
  if (/ECONNREFUSED/.test(message)) return "connection refused";
  if (/ENOTFOUND|EAI_AGAIN/.test(message)) return "host not found";
  if (/timed? ?out/i.test(message)) return "connection timed out";
  if (/SSL|TLS|certificate/i.test(message)) return "TLS/SSL negotiation failed";
  return code ? `connection failed (${code})` : "connection failed";
}

/**
 * Connects (through `versionNum`, which runs `SHOW server_version_num`) and checks
 * the server is PostgreSQL `minMajor`+. Throws a {@link StoreStartupError} otherwise.
 */
export async function checkPostgresServer(
  versionNum: () => Promise<number>,
  opts: { uri: string; variable: string; minMajor?: number },
): Promise<number> {
  const where = `${endpointOf(opts.uri, 5432)} (${opts.variable})`;
  let num: number;
  try {
    num = await versionNum();
  } catch (err) {
    throw new StoreStartupError(`cannot reach PostgreSQL at ${where}: ${connectReason(err)}`);
  }
  const min = opts.minMajor ?? MIN_POSTGRES_MAJOR;
  if (!Number.isFinite(num) || num < min * 10_000) {
    const major = Math.floor(num / 10_000);
    throw new StoreStartupError(
      `PostgreSQL at ${where} is version ${Number.isFinite(num) ? major : "unknown"}; openplane needs PostgreSQL ${min} or newer`,
    );
  }
  return num;
}

/** Awaits `connect()` for at most `timeoutMs`; a failure becomes a {@link StoreStartupError}. */
export async function checkRedisConnect(
  connect: () => Promise<unknown>,
  opts: { uri: string; variable: string; timeoutMs: number },
): Promise<void> {
  const where = `${endpointOf(opts.uri, 6379)} (${opts.variable})`;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })), opts.timeoutMs);
  });
  try {
    await Promise.race([connect(), timeout]);
  } catch (err) {
    const reason = (err as { code?: unknown }).code === "ETIMEDOUT" ? `no answer within ${opts.timeoutMs >= 1000 ? `${Math.round(opts.timeoutMs / 1000)} s` : `${opts.timeoutMs} ms`}` : connectReason(err);
    throw new StoreStartupError(`cannot reach Redis at ${where}: ${reason}`);
  } finally {
    clearTimeout(timer);
  }
}
