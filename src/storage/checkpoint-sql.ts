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

export interface CheckpointStatements {
  /** Channel blobs (insert-if-absent) and the checkpoint row (upsert), together. */
  put: { name: string; text: string };
  /** Pending writes; ordinary ones are kept if already there (a retried task). */
  insertWrites: { name: string; text: string };
  /** Pending writes of special channels only (error, interrupt, ...): the last one wins. */
  upsertWrites: { name: string; text: string };
  /** One checkpoint by id, with its channel values and pending writes. */
  selectById: { name: string; text: string };
  /** The newest checkpoint of a thread and namespace, same columns. */
  selectLatest: { name: string; text: string };
  /** A thread's checkpoints, blobs and writes, in one statement. */
  deleteThread: { name: string; text: string };
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

  const writesInsert = `INSERT INTO ${writes} (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob)
SELECT $1::text, $2::text, $3::text, $4::text, w.idx, w.channel, w.type, ${cut("$10", "w")}
FROM unnest($5::int[], $6::text[], $7::text[], $8::int[], $9::int[]) AS w(idx, channel, type, off, len)
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)`;

  const texts = {
    put: `WITH new_blobs AS (
  INSERT INTO ${blobs} (thread_id, checkpoint_ns, channel, version, type, blob)
  SELECT $1::text, $2::text, b.channel, b.version, b.type, ${cut("$12", "b")}
  FROM unnest($7::text[], $8::text[], $9::text[], $10::int[], $11::int[]) AS b(channel, version, type, off, len)
  ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING
)
INSERT INTO ${cp} (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)
VALUES ($1::text, $2::text, $3::text, $4::text, $5::jsonb, $6::jsonb)
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id)
DO UPDATE SET checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata`,
    insertWrites: `${writesInsert} DO NOTHING`,
    upsertWrites: `${writesInsert}
DO UPDATE SET channel = EXCLUDED.channel, type = EXCLUDED.type, blob = EXCLUDED.blob`,
    selectById: select(`${byThread} AND checkpoint_id = $3`),
    selectLatest: select(`${byThread} ORDER BY checkpoint_id DESC LIMIT 1`),
    deleteThread: `WITH gone_blobs AS (DELETE FROM ${blobs} WHERE thread_id = $1),
  gone_writes AS (DELETE FROM ${writes} WHERE thread_id = $1)
DELETE FROM ${cp} WHERE thread_id = $1`,
  };

  // A prepared statement's name is per connection: derive it from the text so
  // two savers on one pool (other schema, other version) never clash.
  const out = {} as CheckpointStatements;
  for (const [key, text] of Object.entries(texts) as [keyof CheckpointStatements, string][]) {
    const hash = createHash("sha1").update(text).digest("hex").slice(0, 12);
    out[key] = { name: `openplane_cp_${key}_${hash}`, text };
  }
  return out;
}
