import type { Assistant } from "../domain/assistant.js";
import { systemAssistantId } from "../domain/assistant.js";
import { conflict, notFound } from "../domain/errors.js";
import { boundedSet } from "../lib/bounded-map.js";
import { isUuid } from "../lib/uuid.js";
import type { Sql } from "./db.js";
import type { JsonCondition } from "./json-conditions.js";
import { jsonConditions } from "./json-conditions.js";

const COLUMNS = ["assistant_id", "graph_id", "config", "context", "metadata", "name", "description", "version", "created_at", "updated_at"] as const;
const VERSION_COLUMNS = ["assistant_id", "graph_id", "config", "context", "metadata", "name", "description", "version", "created_at"] as const;

/** Fields a search may `select`. */
export const ASSISTANT_FIELDS = COLUMNS;
export type AssistantField = (typeof ASSISTANT_FIELDS)[number];
export const ASSISTANT_SORT_FIELDS = ["assistant_id", "graph_id", "name", "created_at", "updated_at"] as const;

export type AssistantVersion = Omit<Assistant, "updated_at">;

export interface AssistantFilter {
  metadata?: Record<string, unknown>;
  graph_id?: string;
  /** Case-insensitive substring of the name. */
  name?: string;
  /** Authorization filters on metadata (api.md §6.3). */
  auth?: readonly JsonCondition[];
}

export interface AssistantSearch extends AssistantFilter {
  limit: number;
  offset: number;
  sort_by?: (typeof ASSISTANT_SORT_FIELDS)[number];
  sort_order?: "asc" | "desc";
  select?: readonly AssistantField[];
}

export interface AssistantCreate
  extends Pick<Assistant, "assistant_id" | "graph_id" | "config" | "context" | "metadata" | "name" | "description"> {
  if_exists: "raise" | "do_nothing";
}

export interface AssistantPatch {
  graph_id?: string;
  config?: Record<string, unknown>;
  context?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  name?: string;
  description?: string | null;
}

const assistantNotFound = (idOrGraph: string) =>
  notFound(`No assistant found for "${idOrGraph}". Make sure the assistant ID is for a valid assistant or a valid graph ID.`);

/** A graph id names the graph's system assistant; anything else is an assistant id. */
const assistantIdFor = (idOrGraph: string, graphIds: ReadonlySet<string>) =>
  graphIds.has(idOrGraph) ? systemAssistantId(idOrGraph) : idOrGraph;

/** How many assistants run creation keeps read (a deployment has a few; the bound is for many). */
const RUN_CACHE_SIZE = 1_000;

/** Escapes LIKE wildcards so user text matches literally (ESCAPE '\'). */
const likeLiteral = (s: string) => s.replace(/[\\%_]/g, (ch) => `\\${ch}`);

export function createAssistantsRepo(sql: Sql) {
  const where = (q: AssistantFilter) => sql`
    WHERE true
    ${q.metadata ? sql`AND metadata @> ${sql.json(q.metadata as never)}` : sql``}
    ${q.graph_id ? sql`AND graph_id = ${q.graph_id}` : sql``}
    ${q.name ? sql`AND name ILIKE ${`%${likeLiteral(q.name)}%`} ESCAPE '\\'` : sql``}
    ${jsonConditions(sql, sql`metadata`, q.auth, true)}`;

  /** Assistants recently used by run creation, oldest first (see resolveForRun). */
  const runCache = new Map<string, { assistant: Assistant; token: string }>();

  return {
    /** One assistant per graph, id = UUIDv5(graph id); created once, never overwritten. */
    async upsertSystem(graphId: string): Promise<void> {
      const id = systemAssistantId(graphId);
      await sql.begin(async (tx) => {
        const inserted = await tx`
          INSERT INTO assistant (assistant_id, graph_id, name, metadata)
          VALUES (${id}, ${graphId}, ${graphId}, ${tx.json({ created_by: "system" })})
          ON CONFLICT (assistant_id) DO NOTHING
          RETURNING assistant_id`;
        if (inserted.length > 0) {
          await tx`
            INSERT INTO assistant_version (assistant_id, version, graph_id, name, metadata)
            VALUES (${id}, 1, ${graphId}, ${graphId}, ${tx.json({ created_by: "system" })})
            ON CONFLICT DO NOTHING`;
        }
      });
    },

    async get(id: string): Promise<Assistant | null> {
      if (!isUuid(id)) return null;
      const [row] = await sql<Assistant[]>`SELECT ${sql(COLUMNS)} FROM assistant WHERE assistant_id = ${id}`;
      return row ?? null;
    },

    /** Accepts an assistant id or a graph id (mapped to that graph's system assistant). */
    async resolve(idOrGraph: string, graphIds: ReadonlySet<string>): Promise<Assistant> {
      const id = assistantIdFor(idOrGraph, graphIds);
      const found = await this.get(id);
      if (!found) {
        throw assistantNotFound(idOrGraph);
      }
      return found;
    },

    /**
     * `resolve` for run creation, from a small per-process cache. `token` is the row's
     * xmin, which every change to the row moves (a delete and re-create too): the run's
     * insert checks it (runs.create) and the caller comes back with `fresh` when
     * it no longer matches.
     */
    async resolveForRun(idOrGraph: string, graphIds: ReadonlySet<string>, fresh = false): Promise<{ assistant: Assistant; token: string }> {
      const id = assistantIdFor(idOrGraph, graphIds);
      const cached = fresh ? undefined : runCache.get(id);
      if (cached) {
        boundedSet(runCache, id, cached, RUN_CACHE_SIZE); // most recently used last
        return cached;
      }
      const [row] = isUuid(id)
        ? await sql<Array<Assistant & { token: string }>>`
            SELECT ${sql(COLUMNS)}, xmin::text AS token FROM assistant WHERE assistant_id = ${id}`
        : [];
      if (!row) {
        runCache.delete(id);
        throw assistantNotFound(idOrGraph);
      }
      const { token, ...assistant } = row;
      const entry = { assistant: assistant as Assistant, token };
      boundedSet(runCache, id, entry, RUN_CACHE_SIZE);
      return entry;
    },

    /**
     * Creates an assistant and its version 1 in one transaction. An existing
     * id is a conflict (`raise`) or returned unchanged (`do_nothing`).
     */
    async create(input: AssistantCreate): Promise<Assistant> {
      const created = await sql.begin(async (tx) => {
        const [row] = await tx<Assistant[]>`
          INSERT INTO assistant (assistant_id, graph_id, config, context, metadata, name, description, version)
          VALUES (${input.assistant_id}, ${input.graph_id}, ${tx.json(input.config as never)}, ${tx.json(input.context as never)},
                  ${tx.json(input.metadata as never)}, ${input.name}, ${input.description}, 1)
          ON CONFLICT (assistant_id) DO NOTHING
          RETURNING ${tx(COLUMNS)}`;
        if (!row) return null;
        await tx`
          INSERT INTO assistant_version (assistant_id, version, graph_id, config, context, metadata, name, description, created_at)
          VALUES (${row.assistant_id}, 1, ${row.graph_id}, ${tx.json(row.config as never)}, ${tx.json(row.context as never)},
                  ${tx.json(row.metadata as never)}, ${row.name}, ${row.description}, ${row.created_at})`;
        return row;
      });
      if (created) return created;
      if (input.if_exists === "raise") throw conflict(`Assistant ${input.assistant_id} already exists`);
      const existing = await this.get(input.assistant_id);
      if (!existing) throw conflict(`Assistant ${input.assistant_id} was deleted concurrently`);
      return existing;
    },

    /**
     * Every patch (even an empty one) writes version max+1 from the current
     * assistant: metadata merged, config/context replaced when given, and
     * makes it the latest. The row lock orders concurrent patches.
     */
    async patch(id: string, p: AssistantPatch): Promise<Assistant | null> {
      runCache.delete(id); // saves run creation a refused insert (the token would catch it)
      return sql.begin(async (tx) => {
        const [cur] = await tx<Assistant[]>`SELECT ${tx(COLUMNS)} FROM assistant WHERE assistant_id = ${id} FOR UPDATE`;
        if (!cur) return null;
        const [max] = await tx<{ v: number }[]>`
          SELECT coalesce(max(version), 0) + 1 AS v FROM assistant_version WHERE assistant_id = ${id}`;
        const v = max!.v;
        const next = {
          graph_id: p.graph_id ?? cur.graph_id,
          config: p.config ?? cur.config,
          context: p.context ?? cur.context,
          metadata: { ...cur.metadata, ...(p.metadata ?? {}) },
          name: p.name ?? cur.name,
          description: p.description !== undefined ? p.description : cur.description,
        };
        const [version] = await tx<{ created_at: string }[]>`
          INSERT INTO assistant_version (assistant_id, version, graph_id, config, context, metadata, name, description)
          VALUES (${id}, ${v}, ${next.graph_id}, ${tx.json(next.config as never)}, ${tx.json(next.context as never)},
                  ${tx.json(next.metadata as never)}, ${next.name}, ${next.description})
          RETURNING created_at`;
        const [row] = await tx<Assistant[]>`
          UPDATE assistant SET
            graph_id = ${next.graph_id}, config = ${tx.json(next.config as never)}, context = ${tx.json(next.context as never)},
            metadata = ${tx.json(next.metadata as never)}, name = ${next.name}, description = ${next.description},
            version = ${v}, updated_at = ${version!.created_at}
          WHERE assistant_id = ${id}
          RETURNING ${tx(COLUMNS)}`;
        return row!;
      });
    },

    /** Deletes the assistant and all its versions. Returns false if it did not exist. */
    async delete(id: string): Promise<boolean> {
      runCache.delete(id); // saves run creation a refused insert (the token would catch it)
      if (!isUuid(id)) return false;
      const rows = await sql`DELETE FROM assistant WHERE assistant_id = ${id} RETURNING assistant_id`;
      return rows.length > 0;
    },

    async search(q: AssistantSearch): Promise<{ items: Partial<Assistant>[]; total: number }> {
      const w = where(q);
      // sort_by and select are checked against fixed lists by the caller; sql() quotes them as identifiers.
      const sortBy = q.sort_by ?? "created_at";
      const order = q.sort_order === "asc" ? sql`ASC` : sql`DESC`;
      const cols = q.select?.length ? q.select : COLUMNS;
      const [items, [count]] = await Promise.all([
        sql<Partial<Assistant>[]>`SELECT ${sql(cols as string[])} FROM assistant ${w}
          ORDER BY ${sql(sortBy)} ${order}, assistant_id ${order} LIMIT ${q.limit} OFFSET ${q.offset}`,
        sql<{ n: number }[]>`SELECT count(*)::int AS n FROM assistant ${w}`,
      ]);
      return { items: [...items], total: count?.n ?? 0 };
    },

    async count(q: AssistantFilter): Promise<number> {
      const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM assistant ${where(q)}`;
      return row?.n ?? 0;
    },

    /** Versions newest first, optionally filtered by metadata containment. */
    async versions(
      id: string,
      q: { metadata?: Record<string, unknown>; limit: number; offset: number; auth?: readonly JsonCondition[] },
    ): Promise<AssistantVersion[]> {
      const rows = await sql<AssistantVersion[]>`
        SELECT ${sql(VERSION_COLUMNS)} FROM assistant_version
        WHERE assistant_id = ${id}
        ${q.metadata ? sql`AND metadata @> ${sql.json(q.metadata as never)}` : sql``}
        ${jsonConditions(sql, sql`metadata`, q.auth)}
        ORDER BY version DESC LIMIT ${q.limit} OFFSET ${q.offset}`;
      return [...rows];
    },

    /**
     * Makes `version` the latest: copies that version's fields onto the
     * assistant. Returns null when the assistant or the version is missing.
     */
    async setLatest(id: string, version: number): Promise<Assistant | null> {
      runCache.delete(id); // saves run creation a refused insert (the token would catch it)
      const [row] = await sql<Assistant[]>`
        UPDATE assistant a SET
          graph_id = v.graph_id, config = v.config, context = v.context, metadata = v.metadata,
          name = v.name, description = v.description, version = v.version, updated_at = now()
        FROM assistant_version v
        WHERE a.assistant_id = ${id} AND v.assistant_id = a.assistant_id AND v.version = ${version}
        RETURNING ${sql(COLUMNS.map((c) => `a.${c}`))}`;
      return row ?? null;
    },
  };
}

export type AssistantsRepo = ReturnType<typeof createAssistantsRepo>;
