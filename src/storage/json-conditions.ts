import type { PendingQuery, Row } from "postgres";
import type { Sql } from "./db.js";

/**
 * One condition on a JSON document's top-level key, as authorization filters
 * produce them (api.md §6.3): `eq` is JSON equality of `doc->key` with `value`;
 * `contains` means `doc->key` is an array holding every element of `value`.
 */
export interface JsonCondition {
  key: string;
  op: "eq" | "contains";
  value: unknown;
}

type Fragment = PendingQuery<Row[]>;

/**
 * Renders conditions as `AND ...` clauses on `doc` (a column or expression
 * fragment). Keys and values are bound parameters, never spliced into SQL.
 * `indexed` adds a containment clause (`doc @> {key: value}`) that a GIN
 * index on the column can use; the exact comparison stays beside it.
 */
export function jsonConditions(sql: Sql, doc: Fragment, conditions: readonly JsonCondition[] | undefined, indexed = false): Fragment {
  let out = sql``;
  for (const c of conditions ?? []) {
    const lhs = sql`(${doc} -> ${c.key}::text)`;
    if (c.op === "eq") {
      const hint = indexed ? sql`${doc} @> ${sql.json({ [c.key]: c.value } as never)}::jsonb AND ` : sql``;
      out = sql`${out} AND (${hint}${lhs} = ${sql.json(c.value as never)}::jsonb)`;
    } else {
      const items = Array.isArray(c.value) ? c.value : [c.value];
      // Array containment; with an array on the left this is exact (and GIN-indexable).
      out = sql`${out} AND (jsonb_typeof(${lhs}) = 'array' AND ${doc} @> ${sql.json({ [c.key]: items } as never)}::jsonb)`;
    }
  }
  return out;
}
