import { AppError, invalid } from "../domain/errors.js";
import type { StoreIndex } from "../graphs/embeddings.js";
import type { Sql } from "./db.js";
import type { JsonCondition } from "./json-conditions.js";
import { jsonConditions } from "./json-conditions.js";
import { normalize, textsToIndex } from "./store-vectors.js";

/** A store item as the API returns it. */
export interface StoreItem {
  namespace: string[];
  key: string;
  value: Record<string, unknown>;
  created_at: string;
  updated_at: string;
  /** Cosine similarity to the query (semantic search only). */
  score?: number;
}

/** Per-item `index` on PUT: false = not indexed, a list of JSON paths overrides `store.index.fields`, null/undefined = those fields. */
export type ItemIndex = false | string[] | null | undefined;

/**
 * At most this many indexed items (the most recently updated ones matching
 * the namespace prefix, filter and authorization) are ranked by a semantic
 * search; similarity is computed in SQL over float8[] vectors (no pgvector).
 */
export const DEFAULT_MAX_SEMANTIC_SCAN = 10_000;

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
  /** Natural-language query: ranks indexed items by similarity (needs a store index). */
  query?: string | null;
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
export function createStoreRepo(sql: Sql, opts: { index?: StoreIndex | null; maxSemanticScan?: number } = {}) {
  const index = opts.index ?? null;
  const maxScan = opts.maxSemanticScan ?? DEFAULT_MAX_SEMANTIC_SCAN;
  const embedding = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (err) {
      throw new AppError("UNAVAILABLE", `store index (${index?.source}): embedding ${what} failed: ${(err as Error).message}`, { cause: err });
    }
  };

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
    /** Whether `search` accepts a `query` (langgraph.json has `store.index`). */
    semantic: index !== null,

    /**
     * Inserts or replaces an item; `ttlMinutes` null means it never expires.
     * With a store index, the item's texts are embedded first (outside the
     * transaction) and its vectors replaced together with the item.
     */
    async put(namespace: string[], key: string, value: Record<string, unknown>, ttlMinutes: number | null, itemIndex?: ItemIndex): Promise<void> {
      const prefix = namespace.join(".");
      let vectors: Array<{ field: string; embedding: number[] }> = [];
      if (index && itemIndex !== false) {
        const texts = textsToIndex(value, itemIndex ?? index.fields);
        const embedded = await embedding("the item", () => index.embedder.embedDocuments(texts.map((t) => t.text)));
        vectors = texts.map((t, i) => ({ field: t.field, embedding: normalize(embedded[i]!) }));
      }
      await sql.begin(async (tx) => {
        await tx`
          INSERT INTO store_item (prefix, key, namespace, value, ttl_minutes, expires_at)
          VALUES (${prefix}, ${key}, ${namespace}, ${tx.json(value as never)}, ${ttlMinutes},
                  CASE WHEN ${ttlMinutes}::float8 IS NULL THEN NULL ELSE now() + ${ttlMinutes}::float8 * interval '1 minute' END)
          ON CONFLICT (prefix, key) DO UPDATE SET
            value = EXCLUDED.value, ttl_minutes = EXCLUDED.ttl_minutes, expires_at = EXCLUDED.expires_at, updated_at = now()`;
        await tx`DELETE FROM store_vector WHERE prefix = ${prefix} AND key = ${key}`;
        for (const v of vectors) {
          await tx`INSERT INTO store_vector (prefix, key, field, embedding) VALUES (${prefix}, ${key}, ${v.field}, ${v.embedding}::float8[])`;
        }
      });
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

    /**
     * Live items under a namespace prefix matching every filter condition,
     * newest write first; with `query`, indexed items ranked by cosine
     * similarity (each item scores its best-matching field), with `score`.
     */
    async search(q: StoreSearch): Promise<StoreItem[]> {
      let where = sql`${prefixMatch(q.namespacePrefix)} AND ${notExpired(sql)} ${jsonConditions(sql, authDocument(sql), q.auth)}`;
      for (const c of q.filter) where = sql`${where} AND ${condition(c)}`;
      let rows: (StoreItem & { prefix: string })[];
      if (q.query) {
        if (!index) throw invalid("query: semantic search needs store.index in langgraph.json, which this deployment does not configure");
        const query = q.query;
        const qv = normalize(await embedding("the query", () => index.embedder.embedQuery(query)));
        rows = await sql<(StoreItem & { prefix: string })[]>`
          WITH cand AS (
            SELECT prefix, key FROM store_item
            WHERE ${where} AND EXISTS (SELECT 1 FROM store_vector v WHERE v.prefix = store_item.prefix AND v.key = store_item.key)
            ORDER BY updated_at DESC LIMIT ${maxScan}
          ), scored AS (
            SELECT v.prefix, v.key, max((SELECT sum(a * b) FROM unnest(v.embedding, ${qv}::float8[]) AS t(a, b))) AS score
            FROM cand JOIN store_vector v ON v.prefix = cand.prefix AND v.key = cand.key
            WHERE cardinality(v.embedding) = ${index.dims}::int
            GROUP BY v.prefix, v.key
          )
          SELECT ${sql(COLUMNS.map((c) => `i.${c}`))}, i.prefix, s.score
          FROM scored s JOIN store_item i ON i.prefix = s.prefix AND i.key = s.key
          ORDER BY s.score DESC, i.updated_at DESC, i.prefix, i.key LIMIT ${q.limit} OFFSET ${q.offset}`;
      } else {
        rows = await sql<(StoreItem & { prefix: string })[]>`
          SELECT ${sql(COLUMNS)}, prefix FROM store_item WHERE ${where}
          ORDER BY updated_at DESC, prefix, key LIMIT ${q.limit} OFFSET ${q.offset}`;
      }
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
