/**
 * An authentication or authorization refusal with the status, message and
 * headers the handler chose (the SDK's HTTPException carries the same three).
 */
export class AuthRejection extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;
  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = "AuthRejection";
    this.status = status;
    this.headers = headers;
  }
}

/** The reason phrase the SDK's HTTPException uses when a handler gave no message. */
const PHRASES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  409: "Conflict",
  422: "Unprocessable Entity",
  429: "Too Many Requests",
  500: "Internal Server Error",
};

/**
 * Converts what a handler threw into an AuthRejection when it is an HTTP
 * exception (duck-typed: the handler's copy of the SDK may not be ours);
 * anything else is rethrown as a server error.
 */
export function toRejection(err: unknown, fallbackStatus: number): AuthRejection {
  if (err instanceof AuthRejection) return err;
  if (typeof err === "object" && err !== null && "status" in err && typeof (err as { status: unknown }).status === "number") {
    const e = err as { status: number; message?: unknown; headers?: unknown };
    const status = e.status >= 400 && e.status <= 599 ? e.status : fallbackStatus;
    const message = typeof e.message === "string" && e.message ? e.message : (PHRASES[status] ?? "Unauthorized");
    return new AuthRejection(status, message, plainHeaders(e.headers));
  }
  throw err;
}

function plainHeaders(h: unknown): Record<string, string> {
  if (!h || typeof h !== "object") return {};
  const out: Record<string, string> = {};
  const entries = h instanceof Headers ? [...h.entries()] : Object.entries(h as Record<string, unknown>);
  for (const [k, v] of entries) if (typeof v === "string") out[k] = v;
  return out;
}
