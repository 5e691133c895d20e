/**
 * The statements our checkpointer runs on the library's tables (layout owned by
 * `@langchain/langgraph-checkpoint-postgres`'s migrations; we never change it).
 *
 * Each is a single statement, so it is atomic and durable on its own in
 * autocommit: no BEGIN/COMMIT round trips. Each has a fixed text and a name,
 * so `pg` prepares it once per connection and PostgreSQL does not re-plan it.
 * Variable-length inputs (blobs, writes) travel as arrays and are expanded by
 * `unnest`, which keeps the text fixed whatever the number of rows. The blobs
 * themselves travel as one binary parameter cut by offset and length (see
 * packBlobs): a bytea[] parameter would go as hex text, twice the bytes.
 */
import { createHash } from "node:crypto";
import type { Checkpoint } from "@langchain/langgraph-checkpoint";

export interface Statement {
  name: string;
  text: string;
}

export interface CheckpointStatements {
  /**
   * A batch of saver writes (see CheckpointWrite) as one statement: channel blobs
   * (insert-if-absent), checkpoint rows (upsert) and pending writes. One text per
   * combination of kinds present, so a batch of one costs what a statement of its
   * own would.
   */
  write: (batch: readonly CheckpointWrite[]) => { stmt: Statement; values: unknown[] };
  /**
   * The same writes as the CTEs of another statement (`WITH ${ctes}, ... SELECT ...`): they
   * commit with it or not at all, and only where `guard` (SQL) holds. Their parameters are
   * $1..$n (n = values.length); the statement's own follow.
   */
  writeWith: (batch: readonly CheckpointWrite[], guard: string) => { ctes: string; values: unknown[] };
  /** One checkpoint by id, with its channel values and pending writes. */
  selectById: Statement;
  /** The newest checkpoint of a thread and namespace, same columns. */
  selectLatest: Statement;
  /** A thread's checkpoints, blobs and writes, in one statement. */
  deleteThread: Statement;
  /** LATEST_CHECKPOINT_FUNCTION in the schema, as SQL (a quoted, qualified name). */
  latestFunction: string;
  /**
   * Creates (or replaces) LATEST_CHECKPOINT_FUNCTION in the schema: selectLatest for a
   * thread's root namespace, columns prefixed `ck_`, so a run's claim can read the
   * checkpoint the run starts from in the claim's own round trip (runs.ts). VOLATILE, so
   * its query takes a snapshot of its own, after the claim before it in the statement.
   */
  createLatestFunction: string;
}

/**
 * A checkpoint row with its channel values and pending writes, as our statements return
 * it. Also read by a run's claim (runs.ts, through LATEST_CHECKPOINT_FUNCTION) and primed
 * in the saver for the run's first read (RunAwarePostgresSaver.prime).
 */
export interface CheckpointRow {
  checkpoint_id: string;
  parent_checkpoint_id: string | null;
  checkpoint: Omit<Checkpoint, "channel_values"> & { v: number };
  metadata: string;
  cv_channels: string[] | null;
  cv_types: string[] | null;
  cv_blobs: (Buffer | null)[] | null;
  pw_tasks: string[] | null;
  pw_channels: string[] | null;
  pw_types: string[] | null;
  pw_blobs: Buffer[] | null;
}

/** The function createLatestFunction creates: selectLatest's columns, prefixed `ck_` (one row, or none). */
export const LATEST_CHECKPOINT_FUNCTION = "openplane_latest_checkpoint";

/** LATEST_CHECKPOINT_FUNCTION's columns, as a claim joins them (runs.ts). */
export type CheckpointColumns = { [K in keyof CheckpointRow as `ck_${K}`]?: CheckpointRow[K] | null };

/**
 * Moves the ck_* columns of a row into `checkpoint`: the checkpoint, null when the thread
 * has none (all null), absent when the row has no such columns. postgres.js reads a NULL
 * element of a bytea[] as an empty buffer: only "empty" channels have one, and getTuple
 * never loads those.
 */
export function takeCheckpoint<T extends object>(row: T & CheckpointColumns): T & { checkpoint?: CheckpointRow | null } {
  if (!("ck_checkpoint_id" in row)) return row;
  const out: Record<string, unknown> = {};
  const ck: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    if (k.startsWith("ck_")) ck[k.slice(3)] = v;
    else out[k] = v;
  }
  const checkpoint = ck.checkpoint_id == null ? null : (ck as unknown as CheckpointRow);
  return { ...(out as T), checkpoint };
}

/** SQL for one blob of a packed parameter: NULL where the length is -1. */
function cut(param: string, row: string): string {
  return `CASE WHEN ${row}.len < 0 THEN NULL ELSE substring(${param}::bytea FROM ${row}.off + 1 FOR ${row}.len) END`;
}

/** Blobs as one buffer plus offsets and lengths (-1 for none), for the statements above. */
export function packBlobs(blobs: readonly (Uint8Array | null | undefined)[]): {
  data: Buffer;
  offsets: number[];
  lengths: number[];
} {
  const offsets: number[] = [];
  const lengths: number[] = [];
  const parts: Uint8Array[] = [];
  let at = 0;
  for (const b of blobs) {
    offsets.push(at);
    if (b == null) {
      lengths.push(-1);
      continue;
    }
    lengths.push(b.byteLength);
    parts.push(b);
    at += b.byteLength;
  }
  return { data: Buffer.concat(parts, at), offsets, lengths };
}

export function checkpointStatements(schema: string): CheckpointStatements {
  const q = `"${schema.replace(/"/g, '""')}"`;
  const cp = `${q}.checkpoints`;
  const blobs = `${q}.checkpoint_blobs`;
  const writes = `${q}.checkpoint_writes`;

  // Values and writes come back as parallel arrays (one aggregation pass, so
  // the same row order in each): cheaper to decode than nested bytea arrays.
  // Each channel's blob is one primary-key lookup: the LIMIT keeps the planner from
  // turning the lookups into a hash join over every blob of the thread, which it did
  // (jsonb_each_text is estimated at 100 rows), making a read grow with the thread's history.
  const select = (where: string) => `SELECT c.checkpoint_id, c.parent_checkpoint_id, c.checkpoint, c.metadata::text AS metadata,
  v.channels AS cv_channels, v.types AS cv_types, v.blobs AS cv_blobs,
  w.tasks AS pw_tasks, w.channels AS pw_channels, w.types AS pw_types, w.blobs AS pw_blobs
FROM (SELECT * FROM ${cp} WHERE ${where}) c
LEFT JOIN LATERAL (
  SELECT array_agg(b.channel) AS channels, array_agg(b.type) AS types, array_agg(b.blob) AS blobs
  FROM jsonb_each_text(c.checkpoint -> 'channel_versions') AS cv(channel, version)
  CROSS JOIN LATERAL (
    SELECT b.channel, b.type, b.blob FROM ${blobs} b
    WHERE b.thread_id = c.thread_id AND b.checkpoint_ns = c.checkpoint_ns AND b.channel = cv.channel AND b.version = cv.version
    LIMIT 1) b
) v ON true
LEFT JOIN LATERAL (
  SELECT array_agg(x.task_id ORDER BY x.task_id, x.idx) AS tasks,
    array_agg(x.channel ORDER BY x.task_id, x.idx) AS channels,
    array_agg(x.type ORDER BY x.task_id, x.idx) AS types,
    array_agg(x.blob ORDER BY x.task_id, x.idx) AS blobs
  FROM ${writes} x
  WHERE x.thread_id = c.thread_id AND x.checkpoint_ns = c.checkpoint_ns AND x.checkpoint_id = c.checkpoint_id
) w ON true`;
  // The row is chosen before the joins, so only its values and writes are read.
  const byThread = "thread_id = $1 AND checkpoint_ns = $2";

  const texts = {
    selectById: select(`${byThread} AND checkpoint_id = $3`),
    selectLatest: select(`${byThread} ORDER BY checkpoint_id DESC LIMIT 1`),
    deleteThread: `WITH gone_blobs AS (DELETE FROM ${blobs} WHERE thread_id = $1),
  gone_writes AS (DELETE FROM ${writes} WHERE thread_id = $1)
DELETE FROM ${cp} WHERE thread_id = $1`,
  };

  // A prepared statement's name is per connection: derive it from the text so
  // two savers on one pool (other schema, other version) never clash.
  const named = (key: string, text: string): Statement => {
    const hash = createHash("sha1").update(text).digest("hex").slice(0, 12);
    return { name: `openplane_cp_${key}_${hash}`, text };
  };
  const out = {} as Omit<CheckpointStatements, "write" | "writeWith" | "latestFunction" | "createLatestFunction">;
  for (const [key, text] of Object.entries(texts) as [keyof typeof texts, string][]) out[key] = named(key, text);
  const latestFunction = `${q}.${LATEST_CHECKPOINT_FUNCTION}`;
  const createLatestFunction = `CREATE OR REPLACE FUNCTION ${latestFunction}(p_thread_id text)
RETURNS TABLE (ck_checkpoint_id text, ck_parent_checkpoint_id text, ck_checkpoint jsonb, ck_metadata text,
  ck_cv_channels text[], ck_cv_types text[], ck_cv_blobs bytea[],
  ck_pw_tasks text[], ck_pw_channels text[], ck_pw_types text[], ck_pw_blobs bytea[])
LANGUAGE plpgsql VOLATILE
AS $fn$
BEGIN
  RETURN QUERY ${select("thread_id = p_thread_id AND checkpoint_ns = '' ORDER BY checkpoint_id DESC LIMIT 1")};
END
$fn$`;

  const variants = new Map<string, Statement>();
  const write = (batch: readonly CheckpointWrite[]) => {
    const parts = writeParts(batch);
    const key = `write_${parts.puts ? "p" : ""}${parts.keep ? "k" : ""}${parts.last ? "l" : ""}`;
    let stmt = variants.get(key);
    if (!stmt) {
      stmt = named(key, writeText(parts, { cp, blobs, writes }));
      variants.set(key, stmt);
    }
    return { stmt, values: parts.values };
  };
  const writeWith = (batch: readonly CheckpointWrite[], guard: string) => {
    const parts = writeParts(batch);
    return { ctes: writeCtes(parts, { cp, blobs, writes }, guard), values: parts.values };
  };
  return { ...out, write, writeWith, latestFunction, createLatestFunction };
}

const WRITE_COLUMNS = "thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob";

/**
 * The statement for the parts present: every insert is a data-modifying CTE (each
 * runs once, whether or not it is read). Parameter $1 is the packed payload.
 */
function writeText(parts: WriteParts, t: { cp: string; blobs: string; writes: string }): string {
  return `WITH ${writeCtes(parts, t)}\nSELECT 1`;
}

function writeCtes(parts: WriteParts, t: { cp: string; blobs: string; writes: string }, guard = "true"): string {
  let n = 2;
  const params = (count: number) => Array.from({ length: count }, () => `$${n++}`);
  const ctes: string[] = [];
  if (parts.puts) {
    const [thread, ns, channel, version, type, off, len] = params(7);
    ctes.push(`new_blobs AS (
  INSERT INTO ${t.blobs} (thread_id, checkpoint_ns, channel, version, type, blob)
  SELECT b.thread_id, b.checkpoint_ns, b.channel, b.version, b.type, ${cut("$1", "b")}
  FROM unnest(${thread}::text[], ${ns}::text[], ${channel}::text[], ${version}::text[], ${type}::text[], ${off}::int[], ${len}::int[])
    AS b(thread_id, checkpoint_ns, channel, version, type, off, len)
  WHERE ${guard}
  ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING)`);
    const [cThread, cNs, cId, cParent, cCheckpoint, cMeta] = params(6);
    ctes.push(`new_checkpoints AS (
  INSERT INTO ${t.cp} (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)
  SELECT c.thread_id, c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id, c.checkpoint::jsonb, c.metadata::jsonb
  FROM unnest(${cThread}::text[], ${cNs}::text[], ${cId}::text[], ${cParent}::text[], ${cCheckpoint}::text[], ${cMeta}::text[])
    AS c(thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)
  WHERE ${guard}
  ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id)
  DO UPDATE SET checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata)`);
  }
  const writesCte = (name: string, onConflict: string) => {
    const [thread, ns, id, task, idx, channel, type, off, len] = params(9);
    ctes.push(`${name} AS (
  INSERT INTO ${t.writes} (${WRITE_COLUMNS})
  SELECT w.thread_id, w.checkpoint_ns, w.checkpoint_id, w.task_id, w.idx, w.channel, w.type, ${cut("$1", "w")}
  FROM unnest(${thread}::text[], ${ns}::text[], ${id}::text[], ${task}::text[], ${idx}::int[], ${channel}::text[], ${type}::text[], ${off}::int[], ${len}::int[])
    AS w(thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, off, len)
  WHERE ${guard}
  ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) ${onConflict})`);
  };
  // Ordinary writes are kept if already there (a retried task).
  if (parts.keep) writesCte("kept_writes", "DO NOTHING");
  // Writes of special channels only (error, interrupt, ...): the last one wins.
  if (parts.last) writesCte("last_writes", "DO UPDATE SET channel = EXCLUDED.channel, type = EXCLUDED.type, blob = EXCLUDED.blob");
  return ctes.join(",\n");
}

/** A checkpoint row and the blobs of the channels it changed (the saver's put). */
export interface CheckpointPut {
  kind: "put";
  thread_id: string;
  checkpoint_ns: string;
  checkpoint_id: string;
  parent_checkpoint_id: string | null;
  /** JSON text of the checkpoint without its channel values. */
  checkpoint: string;
  /** JSON text of the metadata. */
  metadata: string;
  /** Sorted by channel. A null blob is an empty channel. */
  blobs: { channel: string; version: string; type: string; blob: Uint8Array | null }[];
}

/** A task's pending writes (the saver's putWrites). */
export interface CheckpointWrites {
  kind: "writes";
  thread_id: string;
  checkpoint_ns: string;
  checkpoint_id: string;
  task_id: string;
  /** Special channels only, each once: replace what is there. Otherwise keep it. */
  upsert: boolean;
  rows: { idx: number; channel: string; type: string; blob: Uint8Array }[];
}

export type CheckpointWrite = CheckpointPut | CheckpointWrites;

/** The rows a write touches, for the batcher: two writes with a common key never share a batch. */
export function writeKeys(w: CheckpointWrite): string[] {
  const at = `${w.thread_id}\0${w.checkpoint_ns}`;
  if (w.kind === "writes") return w.rows.map((r) => `w\0${at}\0${w.checkpoint_id}\0${w.task_id}\0${r.idx}`);
  return [`c\0${at}\0${w.checkpoint_id}`, ...w.blobs.map((b) => `b\0${at}\0${b.channel}\0${b.version}`)];
}

/** Payload bytes of a write, for the batcher's size bound. */
export function writeBytes(w: CheckpointWrite): number {
  if (w.kind === "writes") return w.rows.reduce((n, r) => n + r.blob.byteLength, 0);
  return w.checkpoint.length + w.metadata.length + w.blobs.reduce((n, b) => n + (b.blob?.byteLength ?? 0), 0);
}

interface WriteParts {
  puts: boolean;
  keep: boolean;
  last: boolean;
  /** In writeText's order: payload, blobs, checkpoints, kept writes, last writes. */
  values: unknown[];
}

/** The parts of a batch and their parameters. */
function writeParts(batch: readonly CheckpointWrite[]): WriteParts {
  const blobs: unknown[][] = [[], [], [], [], []];
  const cps: unknown[][] = [[], [], [], [], [], []];
  const keep: unknown[][] = [[], [], [], [], [], [], []];
  const last: unknown[][] = [[], [], [], [], [], [], []];
  const payload: { blobs: (Uint8Array | null)[]; keep: Uint8Array[]; last: Uint8Array[] } = { blobs: [], keep: [], last: [] };
  const push = (cols: unknown[][], row: unknown[]) => row.forEach((v, i) => cols[i]!.push(v));
  // By thread: batches of two processes writing one thread take row locks in one order.
  const sorted = [...batch].sort((a, b) => (a.thread_id < b.thread_id ? -1 : a.thread_id > b.thread_id ? 1 : 0));
  for (const w of sorted) {
    if (w.kind === "put") {
      push(cps, [w.thread_id, w.checkpoint_ns, w.checkpoint_id, w.parent_checkpoint_id, w.checkpoint, w.metadata]);
      for (const b of w.blobs) {
        push(blobs, [w.thread_id, w.checkpoint_ns, b.channel, b.version, b.type]);
        payload.blobs.push(b.blob);
      }
    } else {
      for (const r of w.rows) {
        push(w.upsert ? last : keep, [w.thread_id, w.checkpoint_ns, w.checkpoint_id, w.task_id, r.idx, r.channel, r.type]);
        (w.upsert ? payload.last : payload.keep).push(r.blob);
      }
    }
  }
  // One packed payload for all: blobs, then kept writes, then last writes.
  const packed = packBlobs([...payload.blobs, ...payload.keep, ...payload.last]);
  let at = 0;
  const cutAt = (count: number) => {
    const part = [packed.offsets.slice(at, at + count), packed.lengths.slice(at, at + count)];
    at += count;
    return part;
  };
  const parts = { puts: cps[0]!.length > 0, keep: keep[0]!.length > 0, last: last[0]!.length > 0 };
  const values: unknown[] = [packed.data];
  const blobCuts = cutAt(payload.blobs.length);
  if (parts.puts) values.push(...blobs, ...blobCuts, ...cps);
  const keepCuts = cutAt(payload.keep.length);
  if (parts.keep) values.push(...keep, ...keepCuts);
  const lastCuts = cutAt(payload.last.length);
  if (parts.last) values.push(...last, ...lastCuts);
  return { ...parts, values };
}
