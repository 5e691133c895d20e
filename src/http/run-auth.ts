import { isDeepStrictEqual } from "node:util";
import { matchesFilters } from "../auth/filters.js";
import type { AuthContext } from "../auth/types.js";
import { notFound } from "../domain/errors.js";
import type { Run } from "../domain/run.js";
import type { AppDeps } from "./deps.js";
import type { PreparedRun, RunCreateDeps } from "./run-create.js";
import { createRun } from "./run-create.js";
import type { RunCreateStateful, RunCreateStateless } from "./schemas.js";

type RunBody = (RunCreateStateful | RunCreateStateless) & { on_completion?: "delete" | "keep" };
export type AuthorizedRunDeps = RunCreateDeps & Pick<AppDeps, "auth" | "threads">;

/** Body fields a `threads:create_run` handler sees in `kwargs`, by body key → kwargs key. */
const KWARGS: Array<[keyof RunBody, string]> = [
  ["input", "input"],
  ["command", "command"],
  ["config", "config"],
  ["context", "context"],
  ["stream_mode", "stream_mode"],
  ["interrupt_before", "interrupt_before"],
  ["interrupt_after", "interrupt_after"],
  ["webhook", "webhook"],
  ["feedback_keys", "feedback_keys"],
  ["stream_subgraphs", "subgraphs"],
  ["stream_resumable", "resumable"],
  ["checkpoint_id", "checkpoint_id"],
  ["checkpoint", "checkpoint"],
  ["durability", "durability"],
];

/**
 * Creates a run on behalf of `ctx` (api.md §6.3): the `threads:create_run`
 * handler sees the run first and may change it (its metadata, kwargs,
 * strategy); an existing thread its filters exclude is reported missing
 * (404); a thread the run creates carries the handler's metadata (e.g. the
 * owner it stamped), so its creator can see it afterwards. The user is
 * stamped into the run's config. Used by the run routes and by cron fires.
 */
export async function createRunAuthorized(
  deps: AuthorizedRunDeps,
  ctx: AuthContext | null,
  prepared: PreparedRun,
  body: RunBody,
  opts: { startHere?: boolean } = {},
): Promise<Run> {
  if (!deps.auth || !ctx) return createRun(deps, prepared, body, ctx, opts);
  const ifNotExists = prepared.stateless ? "create" : (body.if_not_exists ?? "reject");
  const metadata = { ...(body.metadata ?? {}) };
  const kwargs: Record<string, unknown> = Object.fromEntries(KWARGS.map(([b, k]) => [k, body[b] ?? null]));
  const original = { ...kwargs };
  const value: Record<string, unknown> = {
    thread_id: prepared.stateless ? null : prepared.thread_id,
    assistant_id: body.assistant_id,
    run_id: prepared.run_id,
    status: "pending",
    metadata,
    prevent_insert_if_inflight: (body.multitask_strategy ?? "enqueue") === "reject",
    multitask_strategy: body.multitask_strategy ?? "enqueue",
    if_not_exists: ifNotExists,
    after_seconds: body.after_seconds ?? 0,
    kwargs,
  };
  const filters = await deps.auth.authorize(ctx, "threads", "create_run", value);

  const next: RunBody = { ...body, metadata: (value.metadata as Record<string, unknown> | null) ?? {} };
  if (value.multitask_strategy !== (body.multitask_strategy ?? "enqueue")) next.multitask_strategy = value.multitask_strategy as RunBody["multitask_strategy"];
  if (typeof value.after_seconds === "number") next.after_seconds = value.after_seconds;
  const kw = (value.kwargs ?? {}) as Record<string, unknown>;
  for (const [b, k] of KWARGS) if (kw[k] !== original[k]) (next as Record<string, unknown>)[b] = kw[k] ?? undefined;

  let created = false;
  const stamped = !isDeepStrictEqual(next.metadata, body.metadata ?? {});
  // Without filters or a stamp, there is nothing to check or carry: skip the lookup.
  const thread = filters || stamped ? await deps.threads.get(prepared.thread_id) : null;
  if (thread) {
    if (!matchesFilters(thread.metadata, filters)) throw notFound(`Thread with ID ${prepared.thread_id} not found`);
  } else if (ifNotExists === "create" && stamped) {
    await deps.threads.create({ thread_id: prepared.thread_id, metadata: next.metadata ?? {}, if_exists: "do_nothing" });
    created = true;
  }
  try {
    return await createRun(deps, prepared, next, ctx, opts);
  } catch (err) {
    // Nothing stays behind from a rejected request.
    if (created) await deps.threads.delete(prepared.thread_id).catch(() => {});
    throw err;
  }
}
