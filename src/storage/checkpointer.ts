import type { RunnableConfig } from "@langchain/core/runnables";
import {
  WRITES_IDX_MAP,
  type ChannelVersions,
  type Checkpoint,
  type CheckpointMetadata,
  type CheckpointTuple,
  type PendingWrite,
} from "@langchain/langgraph-checkpoint";
import { PostgresSaver } from "@langchain/langgraph-checkpoint-postgres";
import pg from "pg";
import { boundedSet } from "../lib/bounded-map.js";
import {
  checkpointStatements,
  type CheckpointRow,
  writeBytes,
  writeKeys,
  type CheckpointStatements,
  type CheckpointWrite,
  type Statement,
} from "./checkpoint-sql.js";
import { createWriteBatcher, type WriteBatcher } from "./write-batcher.js";
import { createWritePipeline, type WritePipeline } from "./write-pipeline.js";

/** A run's pipelined writes (RunAwarePostgresSaver.writeBehind). */
export interface RunWrites {
  /** Resolves once every write so far is committed; rejects with the first failure. */
  settle(): Promise<void>;
  /** Drops what is not sent yet; resolves when what is on its way is done. */
  abandon(): Promise<void>;
  /**
   * Ends the pipeline: resolves, once all before them are committed, with the writes not
   * sent yet (at most one group), which the caller commits with the run's outcome
   * (runs.finish); rejects with the first failure.
   */
  take(): Promise<CheckpointWrite[]>;
}

/** Configurable keys that identify the checkpoint itself, not the run. */
const NOT_METADATA = new Set(["checkpoint_ns", "checkpoint_id", "checkpoint_map", "thread_id", "run_id"]);

export interface RunAwarePostgresSaverOptions {
  /** Schema of the checkpoint tables; "public" like the library's default. */
  schema?: string;
  /** Write batches in flight at once (connections writes may hold); default 2. */
  maxWriteBatches?: number;
}

/** How many ended runs' guards keep refusing their writes (RunAwarePostgresSaver.guard). */
const RETIRED_GUARDS = 10_000;

/** Bounds of one write batch (see write-batcher.ts). */
const MAX_BATCH_WRITES = 64;
const MAX_BATCH_BYTES = 4 * 1024 * 1024;


/**
 * The library's PostgresSaver on the library's tables, with a cheaper write
 * path: getTuple and deleteThread are each one prepared statement and one round
 * trip (the library runs BEGIN, one INSERT per blob or write, COMMIT), and puts
 * and putWrites are group-committed: one statement for the writes that come
 * together, from any runs (write-batcher.ts). A statement is atomic, so a
 * checkpoint row is never visible without its blobs, and in autocommit it is
 * durably committed before the promise resolves; a run that writes behind
 * (writeBehind) gets that promise from settle() instead. list() and setup()
 * are the library's.
 *
 * It also stamps every checkpoint's metadata with the run's metadata (run_id,
 * graph_id, assistant_id, user metadata) and its plain configurable values,
 * as the official server does. This is what lets history be filtered by run
 * metadata, a retried run recognise its own checkpoints, and a rollback find
 * the checkpoints a run wrote.
 */
export class RunAwarePostgresSaver extends PostgresSaver {
  /** Our statements on the checkpoint tables (also used by the runs repository, runs.ts). */
  readonly statements: CheckpointStatements;
  private readonly schema: string;
  /** Units of commit: one write, or a run's pipelined group (write-pipeline.ts). */
  private readonly batcher: WriteBatcher<CheckpointWrite[]>;
  /** Pipelines of the runs in progress (writeBehind), by run id. */
  private readonly pipelines = new Map<string, WritePipeline<CheckpointWrite>>();
  /** Whether statements are sent prepared by name (see run). */
  private prepared = true;
  /** Per run: its thread's newest checkpoint, read when it was claimed (prime). */
  private readonly primed = new Map<string, { threadId: string; row: CheckpointRow | null }>();
  /** Per run: the attempt in progress here and what its writes check just before they are sent (guard). */
  private readonly guards = new Map<string, { attempt: number; check: () => void }>();
  /** Runs whose attempt here ended (most recent RETIRED_GUARDS): a straggling write of theirs is refused. */
  private readonly retired = new Map<string, true>();

  constructor(
    private readonly ownPool: pg.Pool,
    options: RunAwarePostgresSaverOptions = {},
  ) {
    const schema = options.schema ?? "public";
    super(ownPool, undefined, { schema });
    this.schema = schema;
    this.statements = checkpointStatements(schema);
    this.batcher = createWriteBatcher<CheckpointWrite[]>(
      async (batch) => {
        const { stmt, values } = this.statements.write(batch.flat());
        await this.run(stmt, values);
      },
      { maxInFlight: options.maxWriteBatches ?? 2, maxWrites: MAX_BATCH_WRITES, maxBytes: MAX_BATCH_BYTES },
    );
  }

  /**
   * Commits a put or putWrites, with other runs' writes when they come together; for a run
   * writing behind, queues it in the run's pipeline and returns at once.
   */
  private write(config: RunnableConfig, w: CheckpointWrite): Promise<void> {
    const runId = config.metadata?.run_id;
    const pipeline = typeof runId === "string" ? this.pipelines.get(runId) : undefined;
    if (pipeline) {
      pipeline.add({ write: w, keys: writeKeys(w), bytes: writeBytes(w) });
      return Promise.resolve();
    }
    return this.batcher.submit([w], writeKeys(w), writeBytes(w), this.guardOf(runId, config.metadata?.run_attempt));
  }

  /**
   * The guard of a run's writes. An earlier attempt's (replaced by a later one here) and one
   * whose attempt here has ended always refuse.
   */
  private guardOf(runId: unknown, attempt: unknown): (() => void) | undefined {
    if (typeof runId !== "string") return undefined;
    const entry = this.guards.get(runId);
    if (entry && (typeof attempt !== "number" || entry.attempt === attempt)) return entry.check;
    if (!entry && !this.retired.has(runId)) return undefined;
    return () => {
      throw new Error(`run ${runId}: attempt ${String(attempt)} is over here, checkpoint write not sent`);
    };
  }

  /**
   * Until the disposer returned is called, every write of the run (pipelined or not) runs
   * `check` just before it is sent, and is not sent if it throws: the write fails with that
   * error. The worker checks that it still holds the run's lease: a write queued before a
   * pause of the process (a VM frozen, a long GC) may otherwise be sent after it, when
   * another worker may already run the run. Writes naming another attempt (`run_attempt` in
   * their metadata) are refused, and so are the run's writes once the disposer was called,
   * until an attempt of it is guarded here again.
   */
  guard(runId: string, attempt: number, check: () => void): () => void {
    const entry = { attempt, check };
    this.guards.set(runId, entry);
    this.retired.delete(runId);
    return () => {
      if (this.guards.get(runId) !== entry) return;
      this.guards.delete(runId);
      boundedSet(this.retired, runId, true, RETIRED_GUARDS);
    };
  }

  /**
   * From now until `settle()` (or `take()`), the run's checkpoint writes (those whose config
   * carries its `metadata.run_id`, its subgraphs' included) are pipelined: put and putWrites
   * return once the write is queued, and the writes commit in order, grouped
   * (write-pipeline.ts). Only
   * for durability "async" or "exit", where LangGraph does not wait for a checkpoint before
   * the next step. `settle()` resolves when all are committed and rejects with the first
   * failure; the run reports its outcome only after it. `take()` hands over what is not sent
   * yet, to commit with the outcome. `abandon()`, for a run that lost its lease, drops it.
   */
  writeBehind(runId: string): RunWrites {
    // Taken now (the worker guards the run before it executes): a later attempt in this
    // process replaces the map entry, never this attempt's guard.
    const guard = this.guards.get(runId)?.check;
    const pipeline = createWritePipeline<CheckpointWrite>(
      (group) =>
        this.batcher.submit(
          group.map((g) => g.write),
          group.flatMap((g) => g.keys),
          group.reduce((n, g) => n + g.bytes, 0),
          guard,
        ),
      { maxWrites: MAX_BATCH_WRITES, maxBytes: MAX_BATCH_BYTES },
    );
    this.pipelines.set(runId, pipeline);
    const end = async (how: Promise<void>) => {
      try {
        await how;
      } finally {
        // A second attempt of the run in this process may have opened its own meanwhile.
        if (this.pipelines.get(runId) === pipeline) this.pipelines.delete(runId);
      }
    };
    return {
      settle: () => end(pipeline.settle()),
      abandon: () => end(pipeline.abandon()),
      take: async () => {
        const tail = pipeline.take();
        await end(tail.then(() => {}));
        return tail;
      },
    };
  }

  /**
   * The newest root checkpoint of the run's thread (null: it has none), read in the same
   * round trip as the run's claim: the run's first read of it (LangGraph's, as the graph
   * starts) is answered from here instead of PostgreSQL. The claim saw the thread's previous
   * run ended, which it only does once its checkpoints are committed, so the row is what a
   * read would have returned at the run's start. Returns a disposer for a run that ends
   * without reading it.
   */
  prime(runId: string, threadId: string, row: CheckpointRow | null): () => void {
    const entry = { threadId, row };
    this.primed.set(runId, entry);
    return () => {
      if (this.primed.get(runId) === entry) this.primed.delete(runId);
    };
  }

  /**
   * The primed row for this read, or undefined. The run's first read of its thread's root
   * namespace takes the entry, whichever checkpoint it asks for: it is served only when that
   * is the newest, and a later read is never served what may be stale by then.
   */
  private takePrimed(config: RunnableConfig): CheckpointRow | null | undefined {
    const runId = config.metadata?.run_id;
    const c = config.configurable ?? {};
    if (typeof runId !== "string" || (c.checkpoint_ns ?? "") !== "") return undefined;
    const entry = this.primed.get(runId);
    if (entry === undefined || entry.threadId !== c.thread_id) return undefined;
    this.primed.delete(runId);
    return c.checkpoint_id ? undefined : entry.row;
  }

  override async put(
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    newVersions: ChannelVersions,
  ): Promise<RunnableConfig> {
    if (config.configurable === undefined) throw new Error(`Missing "configurable" field in "config" param`);
    const { thread_id, checkpoint_ns = "", checkpoint_id } = config.configurable;
    const { channel_values: values, ...stored } = checkpoint;

    // Sorted by channel: two writers of one thread take the blob rows' locks in one order.
    const channels = Object.keys(newVersions).sort();
    const dumped = await Promise.all(
      channels.map((k) => (k in values ? this.serde.dumpsTyped(values[k]) : undefined)),
    );
    const blobs = channels.map((channel, i) => {
      const d = dumped[i];
      return { channel, version: String(newVersions[channel]), type: d ? d[0] : "empty", blob: d ? d[1] : null };
    });
    const [, meta] = await this.serde.dumpsTyped({ ...runMetadata(config), ...metadata });
    await this.write(config, {
      kind: "put",
      thread_id,
      checkpoint_ns,
      checkpoint_id: checkpoint.id,
      parent_checkpoint_id: checkpoint_id ?? null,
      checkpoint: JSON.stringify(stored),
      // The library strips NULs from the metadata's JSON text the same way.
      metadata: new TextDecoder().decode(meta).replace(/\0/g, ""),
      blobs,
    });
    return { configurable: { thread_id, checkpoint_ns, checkpoint_id: checkpoint.id } };
  }

  override async putWrites(config: RunnableConfig, writes: PendingWrite[], taskId: string): Promise<void> {
    if (writes.length === 0) return;
    // As the library: writes that are all special channels replace what is
    // there (one fixed idx per channel); any other batch keeps existing rows.
    const upsert = writes.every(([channel]) => channel in WRITES_IDX_MAP);
    const dumped = await Promise.all(writes.map(([, value]) => this.serde.dumpsTyped(value)));
    let rows = writes.map(([channel], i) => ({
      idx: WRITES_IDX_MAP[channel] ?? i,
      channel,
      type: dumped[i]![0],
      blob: dumped[i]![1],
    }));
    if (upsert) {
      // One statement may not update a row twice: keep the last write per idx
      // (what sequential upserts would leave), in idx order (lock order).
      rows = [...new Map(rows.map((r) => [r.idx, r])).values()].sort((a, b) => a.idx - b.idx);
    }
    const c = config.configurable;
    await this.write(config, {
      kind: "writes",
      thread_id: c?.thread_id,
      checkpoint_ns: c?.checkpoint_ns,
      checkpoint_id: c?.checkpoint_id,
      task_id: taskId,
      upsert,
      rows,
    });
  }

  override async getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    const { thread_id, checkpoint_ns = "", checkpoint_id } = config.configurable ?? {};
    let row = this.takePrimed(config);
    if (row === undefined) {
      const res = checkpoint_id
        ? await this.run<CheckpointRow>(this.statements.selectById, [thread_id, checkpoint_ns, checkpoint_id])
        : await this.run<CheckpointRow>(this.statements.selectLatest, [thread_id, checkpoint_ns]);
      row = res.rows[0];
    }
    if (!row) return undefined;
    // Checkpoints older than format v4 keep their sends in the parent's
    // writes: the library knows how to migrate them on read.
    if (row.checkpoint.v < 4 && row.parent_checkpoint_id != null) return super.getTuple(config);

    const channelValues: Record<string, unknown> = {};
    const cvChannels = row.cv_channels ?? [];
    const loaded = await Promise.all(
      cvChannels.map((_, i) =>
        row.cv_types![i] === "empty" ? undefined : this.serde.loadsTyped(row.cv_types![i]!, row.cv_blobs![i]!),
      ),
    );
    cvChannels.forEach((ch, i) => {
      if (row.cv_types![i] !== "empty") channelValues[ch] = loaded[i];
    });
    const tasks = row.pw_tasks ?? [];
    const writeValues = await Promise.all(
      tasks.map((_, i) => this.serde.loadsTyped(row.pw_types![i]!, row.pw_blobs![i]!)),
    );

    return {
      config: { configurable: { thread_id, checkpoint_ns, checkpoint_id: row.checkpoint_id } },
      checkpoint: {
        ...row.checkpoint,
        channel_versions: row.checkpoint.channel_versions ?? {},
        versions_seen: row.checkpoint.versions_seen ?? {},
        channel_values: channelValues,
      },
      metadata: await this.serde.loadsTyped("json", row.metadata),
      parentConfig: row.parent_checkpoint_id
        ? { configurable: { thread_id, checkpoint_ns, checkpoint_id: row.parent_checkpoint_id } }
        : undefined,
      pendingWrites: tasks.map((t, i) => [t, row.pw_channels![i]!, writeValues[i]]),
    };
  }

  override async deleteThread(threadId: string): Promise<void> {
    await this.run(this.statements.deleteThread, [threadId]);
  }

  /**
   * Runs one of our statements, prepared by name. A pooler in transaction mode
   * that does not keep prepared statements (PgBouncer before 1.21) fails with
   * "does not exist" / "already exists" before anything ran: from then on this
   * saver sends its statements unnamed, and retries that one.
   */
  private async run<R extends pg.QueryResultRow = pg.QueryResultRow>(
    stmt: Statement,
    values: readonly unknown[],
  ): Promise<pg.QueryResult<R>> {
    if (!this.prepared) return this.ownPool.query<R>(stmt.text, values as unknown[]);
    try {
      return await this.ownPool.query<R>({ name: stmt.name, text: stmt.text, values: values as unknown[] });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code !== "26000" && code !== "42P05") throw err;
      this.prepared = false;
      return this.ownPool.query<R>(stmt.text, values as unknown[]);
    }
  }

  /** The pool's size for /metrics. */
  poolStats(): { max: number; total: number; idle: number; waiting: number } {
    const p = this.ownPool;
    return { max: p.options.max ?? 10, total: p.totalCount, idle: p.idleCount, waiting: p.waitingCount };
  }

  /**
   * The library's own migrations, plus an index to find the checkpoints a run wrote and the
   * function a claim reads a run's first checkpoint with (checkpoint-sql.ts createLatestFunction).
   */
  override async setup(): Promise<void> {
    await super.setup();
    await this.ownPool.query(
      `CREATE INDEX IF NOT EXISTS checkpoints_run_id ON "${this.schema}".checkpoints (thread_id, (metadata->>'run_id'))`,
    );
    await this.ownPool.query(this.statements.createLatestFunction);
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
