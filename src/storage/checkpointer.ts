import type { RunnableConfig } from "@langchain/core/runnables";
import type { Checkpoint, CheckpointMetadata, ChannelVersions } from "@langchain/langgraph-checkpoint";
import { PostgresSaver } from "@langchain/langgraph-checkpoint-postgres";
import pg from "pg";

/** Configurable keys that identify the checkpoint itself, not the run. */
const NOT_METADATA = new Set(["checkpoint_ns", "checkpoint_id", "checkpoint_map", "thread_id", "run_id"]);

/**
 * Stamps every checkpoint's metadata with the run's metadata (run_id,
 * graph_id, assistant_id, user metadata) and its plain configurable values,
 * as the official server does. This is what lets history be filtered by run
 * metadata, a retried run recognise its own checkpoints, and a rollback find
 * the checkpoints a run wrote.
 */
export class RunAwarePostgresSaver extends PostgresSaver {
  constructor(private readonly ownPool: pg.Pool) {
    super(ownPool);
  }

  override async put(
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    newVersions: ChannelVersions,
  ): Promise<RunnableConfig> {
    return super.put(config, checkpoint, { ...runMetadata(config), ...metadata }, newVersions);
  }

  /** The pool's size for /metrics. */
  poolStats(): { max: number; total: number; idle: number; waiting: number } {
    const p = this.ownPool;
    return { max: p.options.max ?? 10, total: p.totalCount, idle: p.idleCount, waiting: p.waitingCount };
  }

  /** The library's own migrations, plus an index to find the checkpoints a run wrote. */
  override async setup(): Promise<void> {
    await super.setup();
    await this.ownPool.query(
      "CREATE INDEX IF NOT EXISTS checkpoints_run_id ON checkpoints (thread_id, (metadata->>'run_id'))",
    );
  }
}

export function runMetadata(config: RunnableConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config.configurable ?? {})) {
    if (NOT_METADATA.has(k) || k.startsWith("__") || !isPlain(v)) continue;
    out[k] = v;
  }
  for (const [k, v] of Object.entries(config.metadata ?? {})) {
    if (k.startsWith("__") || !isPlain(v)) continue;
    out[k] = v;
  }
  return out;
}

/** JSON-safe scalars and plain containers only: callbacks, stores and class instances stay out. */
function isPlain(v: unknown): boolean {
  if (v === null || ["string", "number", "boolean"].includes(typeof v)) return true;
  if (Array.isArray(v)) return v.every(isPlain);
  if (typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) return Object.values(v as object).every(isPlain);
  return false;
}

/**
 * The checkpointer brings its own `pg` pool (the library requires it). The
 * caller sizes it together with our postgres.js pool and closes both.
 */
export function createCheckpointer(
  uri: string,
  max: number,
  onError: (err: Error) => void,
): { saver: RunAwarePostgresSaver; pool: pg.Pool } {
  const pool = new pg.Pool({ connectionString: uri, max, idleTimeoutMillis: 30_000 });
  // An idle client losing its connection must not crash the process.
  pool.on("error", onError);
  return { saver: new RunAwarePostgresSaver(pool), pool };
}
