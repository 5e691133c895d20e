import type { Context } from "hono";
import type { z } from "zod";
import { AppError, invalid } from "../domain/errors.js";
import { nulPath } from "../lib/nul.js";

/** Formats zod issues as "field: reason; field: reason". */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => {
      const path = i.path.map(String).join(".");
      return path ? `${path}: ${i.message}` : i.message;
    })
    .join("; ");
}

export function parseWith<S extends z.ZodType>(schema: S, value: unknown, what = "body"): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalid(`Invalid ${what}: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/**
 * Reads a JSON body. Browsers and Studio send JSON as text/plain to avoid CORS
 * preflights, so any content type is parsed as JSON. An empty body is `{}`.
 */
export async function readJson(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new AppError("VALIDATION", `Invalid JSON body: ${(err as Error).message}`);
  }
  // JSON text can only carry a NUL as the escape \u0000, so bodies without one skip the walk.
  if (text.includes("\\u0000")) {
    const at = nulPath(value);
    if (at) throw invalid(`Invalid body: ${at.join(".") || "(root)"}: ${NUL_REASON}`);
  }
  return value;
}

const NUL_REASON = "text must not contain the NUL character (\\u0000), which PostgreSQL cannot store";

export async function body<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  return parseWith(schema, await readJson(c));
}

export function query<S extends z.ZodType>(c: Context, schema: S): z.output<S> {
  const q = c.req.query();
  const at = nulPath(q);
  if (at) throw invalid(`Invalid query: ${at.join(".")}: ${NUL_REASON}`);
  return parseWith(schema, q, "query");
}

export function uuidParam(c: Context, name: string): string {
  const v = c.req.param(name) ?? "";
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v)) {
    throw invalid(`Invalid ${name}: must be a UUID`);
  }
  return v.toLowerCase();
}

/** Sets X-Pagination-Total, and X-Pagination-Next when more rows follow this page. */
export function setPagination(c: Context, offset: number, count: number, total: number): void {
  c.header("X-Pagination-Total", String(total));
  if (offset + count < total) c.header("X-Pagination-Next", String(offset + count));
}
