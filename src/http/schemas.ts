import { z } from "zod";
import { isTimezone, scheduleProblem } from "../crons/schedule.js";
import { MULTITASK_STRATEGIES, STREAM_MODES } from "../domain/run.js";
import { ASSISTANT_FIELDS, ASSISTANT_SORT_FIELDS } from "../storage/assistants.js";
import { CRON_FIELDS, CRON_SORT_FIELDS } from "../storage/crons.js";
import { FILTER_OPERATORS } from "../storage/store.js";
import { THREAD_FIELDS, THREAD_SORT_FIELDS, TTL_STRATEGIES } from "../storage/threads.js";

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
  name: z.string().optional(),
  limit: limit(10),
  offset,
  sort_by: z.enum(ASSISTANT_SORT_FIELDS).optional(),
  sort_order: z.enum(["asc", "desc"]).optional(),
  select: z.array(z.enum(ASSISTANT_FIELDS)).optional(),
});

/** `{ttl: minutes, strategy}`; a bare number means strategy delete (the SDKs send both forms). */
export const threadTtlSchema = z.union([
  z.number().positive("must be a positive number of minutes").transform((ttl) => ({ ttl, strategy: "delete" as const })),
  z.object({
    ttl: z.number().positive("must be a positive number of minutes"),
    strategy: z.enum(TTL_STRATEGIES).default("delete"),
  }),
]);

export const threadCreateSchema = z.object({
  thread_id: uuid.optional(),
  metadata: record.nullable().optional(),
  if_exists: z.enum(["raise", "do_nothing"]).optional(),
  ttl: threadTtlSchema.nullable().optional(),
  supersteps: z
    .array(
      z.object({
        updates: z.array(
          z.object({
            values: z.unknown().optional(),
            command: z
              .object({ resume: z.unknown().optional(), update: z.unknown().optional(), goto: z.unknown().optional() })
              .nullable()
              .optional(),
            as_node: z.string().min(1, "is required"),
          }),
        ),
      }),
    )
    .nullable()
    .optional(),
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
  select: z.array(z.enum(THREAD_FIELDS)).optional(),
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

// ---- assistants ---------------------------------------------------------------------------

export const assistantCreateSchema = z.object({
  graph_id: z.string().min(1, "is required"),
  assistant_id: uuid.optional(),
  config: runConfigSchema.nullable().optional(),
  context: record.nullable().optional(),
  metadata: record.nullable().optional(),
  if_exists: z.enum(["raise", "do_nothing"]).optional(),
  name: z.string().max(1000).nullable().optional(),
  description: z.string().max(100_000).nullable().optional(),
});

export const assistantPatchSchema = z.object({
  graph_id: z.string().min(1, "must not be empty").optional(),
  config: runConfigSchema.nullable().optional(),
  context: record.nullable().optional(),
  metadata: record.nullable().optional(),
  name: z.string().max(1000).nullable().optional(),
  description: z.string().max(100_000).nullable().optional(),
});

export const assistantCountSchema = z.object({
  metadata: record.optional(),
  graph_id: z.string().optional(),
  name: z.string().optional(),
});

export const assistantVersionsSchema = z.object({
  metadata: record.optional(),
  limit: limit(10),
  offset,
});

export const assistantLatestSchema = z.object({ version: z.number().int().min(1, "must be a version number (1 or more)") });

export const assistantDeleteQuerySchema = z.object({ delete_threads: boolish.optional() });

/** `xray`: true/false, or a depth (integer ≥ 1). */
export const graphQuerySchema = z.object({
  xray: z
    .string()
    .regex(/^(true|false|True|False|\d+)$/, "must be true, false or a non-negative integer")
    .transform((v) => (/^\d+$/.test(v) ? Number(v) : v.toLowerCase() === "true"))
    .optional(),
});

export const subgraphsQuerySchema = z.object({ recurse: boolish.optional() });

// ---- threads -----------------------------------------------------------------------------

export const threadPatchSchema = z.object({
  metadata: record.nullable().optional(),
  ttl: threadTtlSchema.nullable().optional(),
});

export const threadCountSchema = z.object({
  metadata: record.optional(),
  values: record.optional(),
  status: z.enum(["idle", "busy", "interrupted", "error"]).optional(),
});

export const threadPruneSchema = z.object({
  thread_ids: z.array(uuid).min(1, "must list at least one thread").max(1000),
  strategy: z.enum(["delete", "keep_latest"]).default("delete"),
});

export const threadGetQuerySchema = z.object({
  include: z
    .string()
    .transform((v) => v.split(",").map((s) => s.trim()).filter(Boolean))
    .pipe(z.array(z.enum(["ttl"], { error: "may only list: ttl" })))
    .optional(),
});

// ---- store -------------------------------------------------------------------------------

const namespaceLabel = z
  .string()
  .min(1, "namespace labels must not be empty")
  .refine((s) => !s.includes("."), { message: "namespace labels must not contain '.'" });
const namespace = z.array(namespaceLabel);
const storeKey = z.string().min(1, "is required").max(1024);

export const storePutSchema = z.object({
  namespace: namespace.min(1, "must have at least one label"),
  key: storeKey,
  value: record,
  index: z.union([z.literal(false), z.array(z.string()), z.null()]).optional(),
  ttl: z.number().positive("must be a positive number of minutes").nullable().optional(),
});

export const storeGetQuerySchema = z.object({
  namespace: z
    .string()
    .min(1, "is required (labels joined with '.')")
    .transform((v) => v.split("."))
    .pipe(z.array(z.string().min(1, "namespace labels must not be empty"))),
  key: storeKey,
  refresh_ttl: boolish.optional(),
});

export const storeDeleteSchema = z.object({
  namespace: namespace.min(1, "must have at least one label"),
  key: storeKey,
});

/** A filter key names a top-level key of the item's value. */
const filterKey = z.string().min(1).max(256).refine((k) => !k.startsWith("$"), { message: "must not start with '$'" });
const operatorObject = z
  .record(z.string(), z.unknown())
  .refine((o) => Object.keys(o).length > 0 && Object.keys(o).every((k) => k.startsWith("$")), { message: "not an operator object" });

export const storeSearchSchema = z.object({
  namespace_prefix: z.array(namespaceLabel).nullable().optional(),
  filter: z
    .record(filterKey, z.unknown())
    .superRefine((f, ctx) => {
      for (const [k, v] of Object.entries(f)) {
        if (!operatorObject.safeParse(v).success) {
          if (v !== null && typeof v === "object" && !Array.isArray(v) && Object.keys(v).some((x) => x.startsWith("$"))) {
            ctx.addIssue({ code: "custom", path: [k], message: "mixes operators ($...) and plain keys" });
          }
          continue;
        }
        for (const op of Object.keys(v as object)) {
          if (!(FILTER_OPERATORS as readonly string[]).includes(op)) {
            ctx.addIssue({ code: "custom", path: [k, op], message: `unknown operator; use one of ${FILTER_OPERATORS.join(", ")}` });
          }
        }
      }
    })
    .nullable()
    .optional(),
  limit: limit(10),
  offset,
  query: z.string().nullable().optional(),
  refresh_ttl: z.boolean().nullable().optional(),
});

export const storeNamespacesSchema = z.object({
  prefix: z.array(namespaceLabel).nullable().optional(),
  suffix: z.array(namespaceLabel).nullable().optional(),
  max_depth: z.number().int().min(1).nullable().optional(),
  limit: z.number().int().min(1).max(1000).default(100),
  offset,
});

// ---- system ------------------------------------------------------------------------------

export const truncateSchema = z.object({
  runs: z.boolean().optional(),
  threads: z.boolean().optional(),
  assistants: z.boolean().optional(),
  checkpointer: z.boolean().optional(),
  /** The peer's test helper sends `checkpoint`; both are accepted. */
  checkpoint: z.boolean().optional(),
  store: z.boolean().optional(),
});

// ---- crons -------------------------------------------------------------------------------

const cronSchedule = z
  .string()
  .min(1, "is required")
  .superRefine((v, ctx) => {
    const problem = scheduleProblem(v);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });
const cronTimezone = z.string().refine(isTimezone, { message: "must be an IANA time zone name such as UTC or Europe/Paris" });
const instant = z.string().refine((v) => !Number.isNaN(Date.parse(v)), { message: "must be an ISO 8601 date-time" });

/** What a cron stores as its payload: the run-create fields (api.md §2.5 CronCreate). */
const cronRunFields = runCreateBase.omit({ assistant_id: true, command: true, checkpoint_id: true, checkpoint: true, after_seconds: true, on_disconnect: true });

export const cronCreateSchema = cronRunFields.extend({
  assistant_id: z.string().min(1, "is required"),
  schedule: cronSchedule,
  timezone: cronTimezone.nullable().optional(),
  end_time: instant.nullable().optional(),
  on_run_completed: z.enum(["delete", "keep"]).optional(),
  enabled: z.boolean().optional(),
  if_not_exists: z.enum(["create", "reject"]).optional(),
});

/** Omitted fields stay as they are; `end_time: null` (and `timezone: null`) clear. */
export const cronPatchSchema = cronRunFields.partial().extend({
  schedule: cronSchedule.optional(),
  timezone: cronTimezone.nullable().optional(),
  end_time: instant.nullable().optional(),
  on_run_completed: z.enum(["delete", "keep"]).optional(),
  enabled: z.boolean().optional(),
});

export const cronSearchSchema = z.object({
  assistant_id: z.string().min(1).optional(),
  thread_id: uuid.optional(),
  enabled: z.boolean().optional(),
  metadata: record.optional(),
  limit: limit(10),
  offset,
  sort_by: z.enum(CRON_SORT_FIELDS).default("created_at"),
  sort_order: z.enum(["asc", "desc"]).default("desc"),
  select: z.array(z.enum(CRON_FIELDS)).optional(),
});

export const cronCountSchema = z.object({
  assistant_id: z.string().min(1).optional(),
  thread_id: uuid.optional(),
  enabled: z.boolean().optional(),
  metadata: record.optional(),
});

export type CronCreateBody = z.output<typeof cronCreateSchema>;
export type CronPatchBody = z.output<typeof cronPatchSchema>;

// ---- thread stream -----------------------------------------------------------------------

const threadStreamMode = z.enum(["run_modes", "lifecycle", "state_update"], { error: "must be one of: run_modes, lifecycle, state_update" });

/** GET /threads/{id}/stream: `stream_mode` (SDKs) or `stream_modes` (spec), each already split into names. */
export const threadStreamQuerySchema = z.object({
  stream_mode: z.array(threadStreamMode).optional(),
  stream_modes: z.array(threadStreamMode).optional(),
});
