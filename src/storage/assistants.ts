import type { Assistant } from "../domain/assistant.js";
import { systemAssistantId } from "../domain/assistant.js";
import { notFound } from "../domain/errors.js";
import { isUuid } from "../lib/uuid.js";
import type { Sql } from "./db.js";

const COLUMNS = ["assistant_id", "graph_id", "config", "context", "metadata", "name", "description", "version", "created_at", "updated_at"] as const;

export interface AssistantSearch {
  metadata?: Record<string, unknown>;
  graph_id?: string;
  limit: number;
  offset: number;
}

export function createAssistantsRepo(sql: Sql) {
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
      const id = graphIds.has(idOrGraph) ? systemAssistantId(idOrGraph) : idOrGraph;
      const found = await this.get(id);
      if (!found) {
        throw notFound(
          `No assistant found for "${idOrGraph}". Make sure the assistant ID is for a valid assistant or a valid graph ID.`,
        );
      }
      return found;
    },

    async search(q: AssistantSearch): Promise<{ items: Assistant[]; total: number }> {
      const where = sql`
        WHERE true
        ${q.metadata ? sql`AND metadata @> ${sql.json(q.metadata as never)}` : sql``}
        ${q.graph_id ? sql`AND graph_id = ${q.graph_id}` : sql``}`;
      const [items, [count]] = await Promise.all([
        sql<Assistant[]>`SELECT ${sql(COLUMNS)} FROM assistant ${where}
          ORDER BY created_at DESC, assistant_id LIMIT ${q.limit} OFFSET ${q.offset}`,
        sql<{ n: number }[]>`SELECT count(*)::int AS n FROM assistant ${where}`,
      ]);
      return { items: [...items], total: count?.n ?? 0 };
    },
  };
}

export type AssistantsRepo = ReturnType<typeof createAssistantsRepo>;
