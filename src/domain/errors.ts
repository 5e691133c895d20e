/**
 * Every failure the API reports carries a stable code. Storage and domain code
 * throw these; `http/errors.ts` is the one place that maps a code to a status.
 */
export const ERROR_CODES = {
  VALIDATION: 422,
  BAD_REQUEST: 400,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class AppError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AppError";
    this.code = code;
  }
}

export const notFound = (message: string) => new AppError("NOT_FOUND", message);
export const conflict = (message: string) => new AppError("CONFLICT", message);
export const invalid = (message: string) => new AppError("VALIDATION", message);
export const badRequest = (message: string) => new AppError("BAD_REQUEST", message);

export const isAppError = (err: unknown): err is AppError => err instanceof AppError;
