import { isDeepStrictEqual } from "node:util";
import type { AuthFilter } from "./types.js";

export class InvalidFilterError extends Error {}

/**
 * Checks and flattens what a handler returned as filters (api.md §6.3):
 * `{key: v}` and `{key: {$eq: v}}` are equality, `{key: {$contains: v | [v...]}}`
 * means metadata[key] is an array holding every value. An unknown operator
 * is a handler bug, reported as such rather than ignored (ignoring it would
 * widen access).
 */
export function parseFilters(result: object): AuthFilter[] {
  const out: AuthFilter[] = [];
  for (const [key, v] of Object.entries(result)) {
    if (v === undefined) continue;
    const isOps = v !== null && typeof v === "object" && !Array.isArray(v) && Object.keys(v).some((k) => k.startsWith("$"));
    if (!isOps) {
      out.push({ key, op: "eq", value: v });
      continue;
    }
    for (const [op, operand] of Object.entries(v as Record<string, unknown>)) {
      if (op === "$eq") out.push({ key, op: "eq", value: operand });
      else if (op === "$contains") out.push({ key, op: "contains", value: Array.isArray(operand) ? operand : [operand] });
      else throw new InvalidFilterError(`auth filter on "${key}": unsupported operator "${op}" (use $eq or $contains)`);
    }
  }
  return out;
}

/**
 * The same test the SQL filters make (storage/json-conditions.ts), on a
 * document in memory: JSON equality, or array containment.
 */
export function matchesFilters(doc: Record<string, unknown> | null | undefined, filters: readonly AuthFilter[] | null): boolean {
  if (!filters?.length) return true;
  for (const f of filters) {
    const actual = doc?.[f.key];
    if (f.op === "eq") {
      if (actual === undefined || !isDeepStrictEqual(normalise(actual), normalise(f.value))) return false;
    } else {
      if (!Array.isArray(actual)) return false;
      const wanted = f.value as unknown[];
      if (!wanted.every((w) => actual.some((a) => contains(a, w)))) return false;
    }
  }
  return true;
}

/** JSON round trip: what Postgres compares (no undefined, no class instances). */
const normalise = (v: unknown): unknown => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));

/** jsonb containment of one array element: objects partially, arrays as sets, scalars equal. */
function contains(a: unknown, w: unknown): boolean {
  if (Array.isArray(w)) return Array.isArray(a) && w.every((x) => a.some((y) => contains(y, x)));
  if (w !== null && typeof w === "object") {
    if (a === null || typeof a !== "object" || Array.isArray(a)) return false;
    return Object.entries(w).every(([k, x]) => k in (a as object) && contains((a as Record<string, unknown>)[k], x));
  }
  return isDeepStrictEqual(a, w);
}
