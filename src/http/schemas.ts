import { z } from "zod";
import { MULTITASK_STRATEGIES, STREAM_MODES } from "../domain/run.js";
import { THREAD_SORT_FIELDS } from "../storage/threads.js";

const record = z.record(z.string(), z.unknown());
const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, "must be a UUID");

const streamMode = z.string().refine((m) => (STREAM_MODES as readonly string[]).includes(m), {
  message: `must be one of ${STREAM_MODES.join(", ")}`,
});

const nodeList = z.union([z.literal("*"), z.array(z.string())]);

export const runConfigSchema = z
  .object({
    tags: z.array(z.string()).optional(),
    recursion_limit: z.number().int().positive().optional(),
    configurable: record.optional(),
  })
  .passthrough();

const runCreateBase = z.object({
  assistant_id: z.string().min(1, "is required"),
  input: z.unknown().optional(),
  command: z
    .object({ resume: z.unknown().optional(), update: z.unknown().optional(), goto: z.unknown().optional() })
    .nullable()
    .optional(),
  metadata: record.nullable().optional(),
  config: runConfigSchema.nullable().optional(),
  context: record.nullable().optional(),
  checkpoint_id: uuid.nullable().optional(),
  checkpoint: z
    .object({ checkpoint_id: uuid.optional(), checkpoint_ns: z.string().optional(), checkpoint_map: record.nullable().optional() })
    .passthrough()
    .nullable()
    .optional(),
  webhook: z.string().max(65536).nullable().optional(),
  interrupt_before: nodeList.nullable().optional(),
  interrupt_after: nodeList.nullable().optional(),
  stream_mode: z.union([streamMode, z.array(streamMode)]).optional(),
  stream_subgraphs: z.boolean().optional(),
  stream_resumable: z.boolean().optional(),
  feedback_keys: z.array(z.string()).nullable().optional(),
  multitask_strategy: z.enum(MULTITASK_STRATEGIES).optional(),
  after_seconds: z.number().min(0).max(365 * 24 * 3600).optional(),
  on_disconnect: z.enum(["cancel", "continue"]).optional(),
  durability: z.enum(["sync", "async", "exit"]).optional(),
  checkpoint_during: z.boolean().optional(),
  langsmith_tracer: record.nullable().optional(),
});

export const runCreateStatefulSchema = runCreateBase.extend({
  if_not_exists: z.enum(["create", "reject"]).optional(),
});

export const runCreateStatelessSchema = runCreateBase.extend({
  on_completion: z.enum(["delete", "keep"]).optional(),
  if_not_exists: z.enum(["create", "reject"]).optional(),
});

export type RunCreateStateful = z.output<typeof runCreateStatefulSchema>;
export type RunCreateStateless = z.output<typeof runCreateStatelessSchema>;

const limit = (def: number) => z.number().int().min(1).max(1000).default(def);
const offset = z.number().int().min(0).default(0);

export const assistantSearchSchema = z.object({
  metadata: record.optional(),
  graph_id: z.string().optional(),
  limit: limit(10),
  offset,
});

export const threadCreateSchema = z.object({
  thread_id: uuid.optional(),
  metadata: record.nullable().optional(),
  if_exists: z.enum(["raise", "do_nothing"]).optional(),
});

export const threadSearchSchema = z.object({
  metadata: record.optional(),
  values: record.optional(),
  status: z.enum(["idle", "busy", "interrupted", "error"]).optional(),
  ids: z.array(uuid).max(1000).optional(),
  limit: limit(10),
  offset,
  sort_by: z.enum(THREAD_SORT_FIELDS).default("created_at"),
  sort_order: z.enum(["asc", "desc"]).default("desc"),
});

const boolish = z
  .enum(["true", "false", "1", "0", "True", "False"])
  .transform((v) => v.toLowerCase() === "true" || v === "1");

export const joinQuerySchema = z.object({
  cancel_on_disconnect: boolish.optional(),
  stream_mode: z.string().optional(),
});

export const stateQuerySchema = z.object({ subgraphs: boolish.optional() });

export const cancelQuerySchema = z.object({
  wait: boolish.optional(),
  action: z.enum(["interrupt", "rollback"]).default("interrupt"),
});

export const bulkCancelQuerySchema = z.object({ action: z.enum(["interrupt", "rollback"]).default("interrupt") });

export const bulkCancelSchema = z.union([
  z.object({ status: z.enum(["pending", "running", "all"]) }).strict(),
  z.object({ thread_id: uuid, run_ids: z.array(uuid).min(1).max(1000) }).strict(),
], { error: "must be either {status} or {thread_id, run_ids}, not both or neither" });

export const runBatchSchema = z.array(runCreateStatelessSchema).min(1, "must contain at least one run").max(100);

const checkpointSchema = z
  .object({
    checkpoint_id: uuid.nullable().optional(),
    checkpoint_ns: z.string().nullable().optional(),
    checkpoint_map: record.nullable().optional(),
    thread_id: z.string().optional(),
  })
  .passthrough();

export const updateStateSchema = z.object({
  values: z.union([record, z.array(z.unknown()), z.null()]).optional(),
  as_node: z.string().min(1).optional(),
  checkpoint_id: uuid.optional(),
  checkpoint: checkpointSchema.optional(),
});

export const historySchema = z.object({
  limit: z.number().int().min(1).max(1000).default(10),
  /** A checkpoint id, a CheckpointConfig, or a RunnableConfig ({configurable: {checkpoint_id}}). */
  before: z.union([uuid, checkpointSchema, z.object({ configurable: checkpointSchema }).passthrough()]).nullable().optional(),
  metadata: record.nullable().optional(),
  checkpoint: checkpointSchema.nullable().optional(),
});

export const stateAtCheckpointSchema = z.object({
  checkpoint: checkpointSchema,
  subgraphs: z.boolean().optional(),
});
