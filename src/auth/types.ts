/**
 * Authentication and authorization as the LangGraph server applies them
 * (api.md §6): a user per request, and per operation a handler's verdict.
 */

/** The authenticated user, normalised (api.md §6.1); extra fields a handler returned are kept. */
export interface AuthUser {
  identity: string;
  display_name: string;
  permissions: string[];
  is_authenticated: boolean;
  [key: string]: unknown;
}

/** What a request carries once authenticated. */
export interface AuthContext {
  user: AuthUser;
  permissions: string[];
}

export type AuthResource = "threads" | "assistants" | "crons" | "store";

/** Filters a handler returned, already checked: `{key: value}`, `{key: {$eq}}`, `{key: {$contains}}`. */
export type AuthFilter = { key: string; op: "eq" | "contains"; value: unknown };

/**
 * One way of authenticating requests and authorizing operations: a custom
 * `Auth` module from langgraph.json, or the built-in API key check.
 */
export interface AuthProvider {
  readonly kind: "custom" | "api_key";
  /**
   * The request's user, or null when the provider has no authenticate step.
   * Throws an AuthRejection (status, message, headers) when the request may not pass.
   */
  authenticate(request: Request): Promise<AuthContext | null>;
  /**
   * Runs the most specific handler for `resource:action`. May mutate `value`
   * (the caller then uses it). Returns the filters to apply, or null for none.
   * Throws an AuthRejection (403 for `false`) when the operation is denied.
   */
  authorize(ctx: AuthContext | null, resource: AuthResource, action: string, value: Record<string, unknown>): Promise<AuthFilter[] | null>;
}
