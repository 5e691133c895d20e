import { invalid } from "../domain/errors.js";
import type { Sql } from "./db.js";
import type { JsonCondition } from "./json-conditions.js";
import { jsonConditions } from "./json-conditions.js";

/** A store item as the API returns it. */
export interface StoreItem {
  namespace: string[];
  key: string;
  value: Record<string, unknown>;
  created_at: string;
  updated_at: string;
}

/** Comparison operators a search filter may use on a top-level value key. */
export const FILTER_OPERATORS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"] as const;
export type FilterOperator = (typeof FILTER_OPERATORS)[number];

/** One filter condition: `value->key <op> operand` (jsonb comparison). */
export interface FilterCondition {
  key: string;
  op: FilterOperator;
  operand: unknown;
}

export interface StoreSearch {
  namespacePrefix: string[];
  filter: FilterCondition[];
  limit: number;
  offset: number;
  refreshTtl: boolean;
  /** Authorization filters on `{...value, namespace, key}` (api.md §6.3). */
  auth?: readonly JsonCondition[];
}

export interface NamespaceQuery {
  /** Labels the namespace must start with; "*" matches any one label. */
  prefix?: string[];
  /** Labels the namespace must end with; "*" matches any one label. */
  suffix?: string[];
  maxDepth?: number;
  limit: number;
  offset: number;
  /** Only namespaces holding an item these authorization filters let through. */
  auth?: readonly JsonCondition[];
}

/**
 * `{"k": v}` is equality; `{"k": {"$gt": 1, "$lte": 5}}` applies each
 * operator. Throws a VALIDATION error for an operator outside FILTER_OPERATORS
 * (the HTTP schema rejects those earlier, with the field path).
 */
export function filterConditions(filter: Record<string, unknown>): FilterCondition[] {
  const out: FilterCondition[] = [];
  for (const [key, v] of Object.entries(filter)) {
    const isOps = v !== null && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length > 0 && Object.keys(v).every((k) => k.startsWith("$"));
    if (!isOps) {
      out.push({ key, op: "$eq", operand: v });
      continue;
    }
    for (const [op, operand] of Object.entries(v as Record<string, unknown>)) {
      if (!(FILTER_OPERATORS as readonly string[]).includes(op)) throw invalid(`filter.${key}: unknown operator ${op}`);
      out.push({ key, op: op as FilterOperator, operand });
    }
  }
  return out;
}

const COLUMNS = ["namespace", "key", "value", "created_at", "updated_at"] as const;
const notExpired = (sql: Sql) => sql`(expires_at IS NULL OR expires_at > now())`;
/** The document authorization filters see: the value, with `namespace` and `key` winning over value keys of those names. */
const authDocument = (sql: Sql) => sql`(value || jsonb_build_object('namespace', to_jsonb(namespace), 'key', to_jsonb(key)))`;
const likeLiteral = (s: string) => s.replace(/[\\%_]/g, (ch) => `\\${ch}`);

/**
 * The long-term memory store (`store_item`). Namespaces are arrays of labels
 * without "."; `prefix` holds them joined with ".", so a namespace prefix is a
 * string prefix. Items with a TTL expire `ttl_minutes` after their last write
 * (or read, when reads refresh the TTL); expired items are invisible at once
 * and deleted by the sweeper.
 */
export function createStoreRepo(sql: Sql) {
  const prefixMatch = (labels: string[]) => {
    if (labels.length === 0) return sql`true`;
    const p = labels.join(".");
    return sql`(prefix = ${p} OR prefix LIKE ${`${likeLiteral(p)}.%`} ESCAPE '\\')`;
  };

  /** Element-wise label match from the start (`from: "start"`) or the end of the namespace. */
  const labelMatch = (labels: string[], from: "start" | "end") => {
    let cond = sql`cardinality(namespace) >= ${labels.length}::int`;
    labels.forEach((label, i) => {
      if (label === "*") return;
      const at = from === "start" ? sql`${i + 1}::int` : sql`cardinality(namespace) - ${labels.length - 1 - i}::int`;
      cond = sql`${cond} AND namespace[${at}] = ${label}::text`;
    });
    return cond;
  };

  const condition = (c: FilterCondition) => {
    // The key and operand are bound parameters; the operator comes from a fixed list.
    const lhs = sql`value -> ${c.key}::text`;
    const rhs = sql`${sql.json(c.operand as never)}::jsonb`;
    switch (c.op) {
      case "$eq":
        return sql`${lhs} = ${rhs}`;
      case "$ne":
        return sql`${lhs} IS DISTINCT FROM ${rhs}`;
      case "$gt":
        return sql`${lhs} > ${rhs}`;
      case "$gte":
        return sql`${lhs} >= ${rhs}`;
      case "$lt":
        return sql`${lhs} < ${rhs}`;
      case "$lte":
        return sql`${lhs} <= ${rhs}`;
    }
  };

  return {
    /** Inserts or replaces an item; `ttlMinutes` null means it never expires. */
    async put(namespace: string[], key: string, value: Record<string, unknown>, ttlMinutes: number | null): Promise<void> {
      await sql`
        INSERT INTO store_item (prefix, key, namespace, value, ttl_minutes, expires_at)
        VALUES (${namespace.join(".")}, ${key}, ${namespace}, ${sql.json(value as never)}, ${ttlMinutes},
                CASE WHEN ${ttlMinutes}::float8 IS NULL THEN NULL ELSE now() + ${ttlMinutes}::float8 * interval '1 minute' END)
        ON CONFLICT (prefix, key) DO UPDATE SET
          value = EXCLUDED.value, ttl_minutes = EXCLUDED.ttl_minutes, expires_at = EXCLUDED.expires_at, updated_at = now()`;
    },

    /** The live item, or null. With `refreshTtl`, reading pushes its expiry forward. */
    async get(namespace: string[], key: string, refreshTtl: boolean): Promise<StoreItem | null> {
      const prefix = namespace.join(".");
      const [row] = refreshTtl
        ? await sql<StoreItem[]>`
            UPDATE store_item SET expires_at = CASE WHEN ttl_minutes IS NULL THEN NULL
                                                    ELSE now() + ttl_minutes * interval '1 minute' END
            WHERE prefix = ${prefix} AND key = ${key} AND ${notExpired(sql)}
            RETURNING ${sql(COLUMNS)}`
        : await sql<StoreItem[]>`
            SELECT ${sql(COLUMNS)} FROM store_item WHERE prefix = ${prefix} AND key = ${key} AND ${notExpired(sql)}`;
      return row ?? null;
    },

    /** Deletes an item; deleting a missing item is not an error. */
    async delete(namespace: string[], key: string): Promise<void> {
      await sql`DELETE FROM store_item WHERE prefix = ${namespace.join(".")} AND key = ${key}`;
    },

    /** Live items under a namespace prefix matching every filter condition, newest write first. */
    async search(q: StoreSearch): Promise<StoreItem[]> {
      let where = sql`${prefixMatch(q.namespacePrefix)} AND ${notExpired(sql)} ${jsonConditions(sql, authDocument(sql), q.auth)}`;
      for (const c of q.filter) where = sql`${where} AND ${condition(c)}`;
      const rows = await sql<(StoreItem & { prefix: string })[]>`
        SELECT ${sql(COLUMNS)}, prefix FROM store_item WHERE ${where}
        ORDER BY updated_at DESC, prefix, key LIMIT ${q.limit} OFFSET ${q.offset}`;
      if (q.refreshTtl && rows.length > 0) {
        await sql`
          UPDATE store_item s SET expires_at = now() + s.ttl_minutes * interval '1 minute'
          FROM unnest(${rows.map((r) => r.prefix)}::text[], ${rows.map((r) => r.key)}::text[]) AS t(prefix, key)
          WHERE s.prefix = t.prefix AND s.key = t.key AND s.ttl_minutes IS NOT NULL`;
      }
      return rows.map(({ prefix: _p, ...item }) => item);
    },

    /** Distinct namespaces (truncated to maxDepth), sorted. */
    async listNamespaces(q: NamespaceQuery): Promise<string[][]> {
      let where = sql`${notExpired(sql)} ${jsonConditions(sql, authDocument(sql), q.auth)}`;
      if (q.prefix?.length) where = sql`${where} AND ${labelMatch(q.prefix, "start")}`;
      if (q.suffix?.length) where = sql`${where} AND ${labelMatch(q.suffix, "end")}`;
      const ns = q.maxDepth ? sql`namespace[1:${q.maxDepth}::int]` : sql`namespace`;
      const rows = await sql<{ ns: string[] }[]>`
        SELECT DISTINCT ${ns} AS ns FROM store_item WHERE ${where}
        ORDER BY ns LIMIT ${q.limit} OFFSET ${q.offset}`;
      return rows.map((r) => r.ns);
    },

    /** Deletes up to `limit` expired items. Returns how many. */
    async deleteExpired(limit: number): Promise<number> {
      const rows = await sql`
        DELETE FROM store_item WHERE (prefix, key) IN (
          SELECT prefix, key FROM store_item WHERE expires_at <= now() LIMIT ${limit} FOR UPDATE SKIP LOCKED)
        RETURNING 1`;
      return rows.length;
    },
  };
}

export type StoreRepo = ReturnType<typeof createStoreRepo>;
