import type { AuthContext } from "../auth/types.js";
import type { Assistant } from "../domain/assistant.js";
import { badRequest, invalid } from "../domain/errors.js";
import type { Run, RunKwargs, StreamMode } from "../domain/run.js";
import type { CreatedRun } from "../storage/runs.js";
import { uuidv7 } from "../lib/uuid.js";
import type { AppDeps } from "./deps.js";
import { cancelRuns } from "./run-cancel.js";
import type { RunCreateStateful, RunCreateStateless } from "./schemas.js";

type RunCreate = RunCreateStateful & { on_completion?: "delete" | "keep" };

export interface PreparedRun {
  run_id: string;
  thread_id: string;
  stateless: boolean;
  /** Awaited just before the insert (a caller's subscription to the run, made meanwhile). */
  ready?: Promise<unknown>;
}

/** Ids are minted before the insert so a streaming caller can subscribe first. */
export function prepareRun(threadId: string | null): PreparedRun {
  return { run_id: uuidv7(), thread_id: threadId ?? uuidv7(), stateless: threadId === null };
}

const isNonEmpty = (o: Record<string, unknown> | null | undefined) => !!o && Object.keys(o).length > 0;

/** What run creation uses (the API, and the cron scheduler through the same path). */
export type RunCreateDeps = Pick<AppDeps, "assistants" | "graphs" | "runs" | "queue" | "bus" | "logger">;

/** Keys only the server sets: the authenticated user (api.md §6.3 "Run context"). */
const AUTH_KEYS = ["langgraph_auth_user", "langgraph_auth_user_id", "langgraph_auth_permissions"];

/**
 * Validates and inserts a run, then rings the queue. `startHere`: a worker of this
 * process may take it at insert (only where the response does not show the run's status,
 * which then is `running` rather than the official server's `pending`). Merge rules follow the
 * official server (api.md §2.9): assistant config ⊕ request config, with the
 * server's own keys stamped into `configurable`, including the authenticated
 * user (`auth`), which a request can never set itself.
 */
export async function createRun(
  deps: RunCreateDeps,
  prepared: PreparedRun,
  body: RunCreate | RunCreateStateless,
  auth: AuthContext | null = null,
  opts: { startHere?: boolean } = {},
): Promise<Run> {
  const b = body as RunCreate;
  if (isNonEmpty(b.config?.configurable) && isNonEmpty(b.context)) {
    throw badRequest("Cannot specify both configurable and context. Prefer setting context alone.");
  }
  if (prepared.stateless && b.command?.resume !== undefined) {
    throw badRequest("You must provide a thread_id when resuming.");
  }
  // The assistant comes from a cache the insert checks: changed meanwhile, read it again.
  for (let attempt = 0; ; attempt++) {
    const { assistant, token } = await deps.assistants.resolveForRun(b.assistant_id, deps.graphs.ids, attempt > 0);
    // A graph not served here may be an old copy's: read it again before refusing.
    if (attempt === 0 && !deps.graphs.ids.has(assistant.graph_id)) continue;
    const created = await insertRun(deps, prepared, b, auth, assistant, attempt < MAX_STALE_RETRIES ? token : null, opts.startHere ?? false);
    if (created) return created;
  }
}

/** Re-reads of an assistant changed under run creation before it inserts without the check. */
const MAX_STALE_RETRIES = 3;

async function insertRun(
  deps: RunCreateDeps,
  prepared: PreparedRun,
  b: RunCreate,
  auth: AuthContext | null,
  assistant: Assistant,
  assistantToken: string | null,
  startHere: boolean,
): Promise<Run | null> {
  if (!deps.graphs.ids.has(assistant.graph_id)) {
    throw invalid(`Invalid body: assistant_id: graph "${assistant.graph_id}" of assistant ${assistant.assistant_id} is not served here`);
  }
  const streamMode = (b.stream_mode === undefined ? ["values"] : Array.isArray(b.stream_mode) ? b.stream_mode : [b.stream_mode]) as StreamMode[];
  const aConfig = assistant.config as { configurable?: Record<string, unknown> } & Record<string, unknown>;
  const config = {
    ...aConfig,
    ...(b.config ?? {}),
    configurable: {
      ...(aConfig.configurable ?? {}),
      ...(b.config?.configurable ?? {}),
      run_id: prepared.run_id,
      thread_id: prepared.thread_id,
      graph_id: assistant.graph_id,
      assistant_id: assistant.assistant_id,
    } as Record<string, unknown>,
  };
  for (const k of AUTH_KEYS) delete config.configurable[k];
  if (auth) {
    config.configurable.user_id ??= auth.user.identity;
    config.configurable.langgraph_auth_user = auth.user;
    config.configurable.langgraph_auth_user_id = auth.user.identity;
    config.configurable.langgraph_auth_permissions = auth.permissions;
  }
  const temporary = prepared.stateless && (b.on_completion ?? "delete") === "delete";
  const kwargs: RunKwargs = {
    input: b.input ?? null,
    command: b.command ?? null,
    config,
    context: { ...assistant.context, ...(b.context ?? {}) },
    stream_mode: streamMode,
    interrupt_before: b.interrupt_before ?? null,
    interrupt_after: b.interrupt_after ?? null,
    webhook: b.webhook ?? null,
    feedback_keys: b.feedback_keys ?? null,
    temporary,
    subgraphs: b.stream_subgraphs ?? false,
    resumable: b.stream_resumable ?? false,
    checkpoint_id: b.checkpoint_id ?? null,
    checkpoint: b.checkpoint ?? null,
    durability: b.durability ?? (b.checkpoint_during === false ? "exit" : null),
  };
  await prepared.ready;
  // A worker of this process with a free slot takes the run at insert when it can start now.
  const slot = startHere ? deps.queue.reserve() : null;
  const claimStarted = performance.now();
  let created: CreatedRun;
  try {
    created = await deps.runs.create({
      run_id: prepared.run_id,
      thread_id: prepared.thread_id,
      if_not_exists: prepared.stateless ? "create" : (b.if_not_exists ?? "reject"),
      assistant_id: assistant.assistant_id,
      graph_id: assistant.graph_id,
      metadata: b.metadata ?? {},
      kwargs,
      multitask_strategy: b.multitask_strategy ?? "enqueue",
      after_seconds: b.after_seconds ?? 0,
      assistant_token: assistantToken,
      claim: slot && { owner: slot.owner, leaseSecs: slot.leaseSecs },
    });
  } catch (err) {
    if (slot) {
      slot.release();
      // The insert may have committed with the claim before its reply was lost: hand the run
      // back now rather than when the lease lapses (nothing here executes it).
      const back = await deps.runs.release(prepared.run_id, slot.owner).catch(() => null);
      if (back) await deps.queue.dispatch([back]).catch(() => {});
    }
    throw err;
  }
  if (created.outcome === "stale") {
    slot?.release();
    return null;
  }
  const { run, inflight, claimed } = created;
  if (claimed && slot) slot.take(claimed, claimStarted);
  else slot?.release();
  // With a run already in flight, the worker that finishes it dispatches this one.
  // interrupt / rollback: stop what is in flight; the new run starts once the thread is free.
  const strategy = run.multitask_strategy;
  if (inflight.length > 0 && (strategy === "interrupt" || strategy === "rollback")) {
    await cancelRuns(deps, inflight, strategy);
  }
  // If the doorbell fails the run is still safe in Postgres: workers also poll for runs.
  if (inflight.length === 0 && !claimed) {
    await deps.queue
      .dispatch([{ run_id: run.run_id, thread_id: run.thread_id, delay_ms: (b.after_seconds ?? 0) * 1000 }])
      .catch((err) => deps.logger.warn({ err, run_id: run.run_id }, "dispatch failed; the sweeper will retry"));
  }
  deps.logger.info({ run_id: run.run_id, thread_id: run.thread_id, assistant_id: run.assistant_id }, "run created");
  return run;
}

/** The run's URL as the SDKs parse it from Content-Location. */
export const runPath = (p: { run_id: string; thread_id: string }, stateless: boolean) =>
  stateless ? `/runs/${p.run_id}` : `/threads/${p.thread_id}/runs/${p.run_id}`;
