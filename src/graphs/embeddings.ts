import { existsSync } from "node:fs";
import { importUserExport } from "../lib/import-module.js";
import type { StoreIndexConfig } from "./config-file.js";

/** What the store index needs from an embedding model (LangChain's `Embeddings` shape). */
export interface Embedder {
  embedDocuments(texts: string[]): Promise<number[][]>;
  embedQuery(text: string): Promise<number[]>;
}

/** The loaded `store.index`: dims, default fields and the embedder. */
export interface StoreIndex {
  dims: number;
  fields: string[];
  embedder: Embedder;
  /** "openai:<model>" or "./file.ts:fn", for messages. */
  source: string;
}

export class StoreIndexError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StoreIndexError";
  }
}

/**
 * Loads `store.index` from langgraph.json. A user module export may be a
 * function `(texts: string[]) => Promise<number[][]>` or an object with
 * `embedDocuments`/`embedQuery` (a LangChain `Embeddings`). A user embedder
 * is probed once, so a `dims` mismatch stops the server at startup; the
 * OpenAI embedder is not probed (no network call at startup), but needs
 * OPENAI_API_KEY.
 */
export async function loadStoreIndex(config: StoreIndexConfig, env: NodeJS.ProcessEnv = process.env): Promise<StoreIndex> {
  if (config.embed.kind === "openai") {
    const apiKey = env.OPENAI_API_KEY;
    if (!apiKey) {
      throw new StoreIndexError(`store.index.embed is "openai:${config.embed.model}" but OPENAI_API_KEY is not set`);
    }
    const source = `openai:${config.embed.model}`;
    const embedder = openAiEmbedder({ model: config.embed.model, apiKey, dims: config.dims, baseUrl: env.OPENAI_BASE_URL });
    return { dims: config.dims, fields: config.fields, embedder: checked(embedder, config.dims, source), source };
  }
  const { file, exportName, spec } = config.embed;
  if (!existsSync(file)) throw new StoreIndexError(`store.index.embed: file not found: ${file}`);
  const value = await importUserExport(file, exportName);
  if (value === undefined) throw new StoreIndexError(`store.index.embed: ${file} has no export named "${exportName}"`);
  const embedder = asEmbedder(value, spec);
  let probe: number[][];
  try {
    probe = await embedder.embedDocuments(["openplane dims probe"]);
  } catch (err) {
    throw new StoreIndexError(`store.index.embed: ${spec} failed on a probe text: ${(err as Error).message}`);
  }
  const got = Array.isArray(probe) && Array.isArray(probe[0]) ? probe[0].length : null;
  if (got !== config.dims) {
    throw new StoreIndexError(
      got === null
        ? `store.index.embed: ${spec} must return one number[] per text (got ${JSON.stringify(probe)?.slice(0, 80)})`
        : `store.index.dims is ${config.dims} but ${spec} returns vectors of ${got} dimensions`,
    );
  }
  return { dims: config.dims, fields: config.fields, embedder: checked(embedder, config.dims, spec), source: spec };
}

function asEmbedder(value: unknown, spec: string): Embedder {
  if (typeof value === "function") {
    const fn = value as (texts: string[]) => Promise<number[][]>;
    return {
      embedDocuments: (texts) => Promise.resolve(fn(texts)),
      embedQuery: async (text) => (await fn([text]))[0]!,
    };
  }
  const obj = value as Partial<Embedder> | null;
  if (obj && typeof obj.embedDocuments === "function") {
    const docs = obj.embedDocuments.bind(obj);
    const query = typeof obj.embedQuery === "function" ? obj.embedQuery.bind(obj) : async (t: string) => (await docs([t]))[0]!;
    return { embedDocuments: docs, embedQuery: query };
  }
  throw new StoreIndexError(
    `store.index.embed: ${spec} must be a function (texts: string[]) => Promise<number[][]> or an object with embedDocuments/embedQuery`,
  );
}

/** Wraps an embedder so every vector it returns has `dims` finite numbers (a clear error otherwise). */
function checked(e: Embedder, dims: number, source: string): Embedder {
  const check = (v: unknown, what: string): number[] => {
    if (!Array.isArray(v) || v.length !== dims || !v.every((x) => typeof x === "number" && Number.isFinite(x))) {
      const got = Array.isArray(v) ? `${v.length} values` : typeof v;
      throw new StoreIndexError(`store index: ${source} returned ${got} for ${what}; store.index.dims is ${dims} (finite numbers expected)`);
    }
    return v as number[];
  };
  return {
    async embedDocuments(texts) {
      if (texts.length === 0) return [];
      const out = await e.embedDocuments(texts);
      if (!Array.isArray(out) || out.length !== texts.length) {
        throw new StoreIndexError(`store index: ${source} returned ${Array.isArray(out) ? out.length : "no"} vectors for ${texts.length} texts`);
      }
      return out.map((v, i) => check(v, `text ${i}`));
    },
    async embedQuery(text) {
      return check(await e.embedQuery(text), "the query");
    },
  };
}

/** OpenAI's embeddings HTTP API (`POST /v1/embeddings`), in batches. */
function openAiEmbedder(o: { model: string; apiKey: string; dims: number; baseUrl?: string }): Embedder {
  const url = `${(o.baseUrl ?? "https://api.openai.com/v1").replace(/\/+$/, "")}/embeddings`;
  // text-embedding-3-* can shorten its vectors to the configured dims; older models cannot.
  const dimensions = o.model.startsWith("text-embedding-3") ? o.dims : undefined;
  const BATCH = 512;
  const embed = async (texts: string[]): Promise<number[][]> => {
    const out: number[][] = [];
    for (let i = 0; i < texts.length; i += BATCH) {
      const res = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${o.apiKey}` },
        body: JSON.stringify({ model: o.model, input: texts.slice(i, i + BATCH), ...(dimensions ? { dimensions } : {}) }),
      });
      if (!res.ok) throw new StoreIndexError(`OpenAI embeddings (${o.model}) failed: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
      const body = (await res.json()) as { data: Array<{ index: number; embedding: number[] }> };
      out.push(...[...body.data].sort((a, b) => a.index - b.index).map((d) => d.embedding));
    }
    return out;
  };
  return { embedDocuments: embed, embedQuery: async (t) => (await embed([t]))[0]! };
}
