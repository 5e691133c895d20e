import type { Context } from "hono";
import { Hono } from "hono";
import { systemAssistantId } from "../../domain/assistant.js";
import { invalid, notFound } from "../../domain/errors.js";
import { isUuid } from "../../lib/uuid.js";
import type { Cron } from "../../storage/crons.js";
import { authorize, ensureVisible } from "../authorize.js";
import type { CronCreateBody, CronPatchBody } from "../schemas.js";
import { cronCountSchema, cronCreateSchema, cronPatchSchema, cronSearchSchema } from "../schemas.js";
import { body, setPagination, uuidParam } from "../validate.js";

/** Fields of a create/patch body that are not part of the run payload. */
const CRON_ONLY = new Set(["schedule", "timezone", "end_time", "on_run_completed", "enabled"]);

/** Crons (api.md §2.5): scheduled runs on a thread, or stateless (a new thread per fire). */
export function cronRoutes(): Hono {
  const app = new Hono();

  app.post("/runs/crons", async (c) => c.json(await createCron(c, null, await body(c, cronCreateSchema))));

  app.post("/threads/:thread_id/runs/crons", async (c) => {
    const threadId = uuidParam(c, "thread_id");
    return c.json(await createCron(c, threadId, await body(c, cronCreateSchema)));
  });

  app.post("/runs/crons/search", async (c) => {
    const b = await body(c, cronSearchSchema);
    const filters = await authorize(c, "crons", "search", {
      assistant_id: b.assistant_id ?? null,
      thread_id: b.thread_id ?? null,
      enabled: b.enabled ?? null,
      metadata: b.metadata ?? {},
      limit: b.limit,
      offset: b.offset,
    });
    const { items, total } = await c.var.deps.crons.repo.search({
      ...b,
      assistant_id: b.assistant_id ? assistantIdOf(c, b.assistant_id) : undefined,
      thread_id: b.thread_id?.toLowerCase(),
      auth: filters ?? undefined,
    });
    setPagination(c, b.offset, items.length, total);
    return c.json(items);
  });

  app.post("/runs/crons/count", async (c) => {
    const b = await body(c, cronCountSchema);
    const filters = await authorize(c, "crons", "search", {
      assistant_id: b.assistant_id ?? null,
      thread_id: b.thread_id ?? null,
      enabled: b.enabled ?? null,
      metadata: b.metadata ?? {},
    });
    return c.json(
      await c.var.deps.crons.repo.count({
        ...b,
        assistant_id: b.assistant_id ? assistantIdOf(c, b.assistant_id) : undefined,
        thread_id: b.thread_id?.toLowerCase(),
        auth: filters ?? undefined,
      }),
    );
  });

  app.get("/runs/crons/:cron_id", async (c) => c.json(await getCron(c, "read", {})));

  app.patch("/runs/crons/:cron_id", async (c) => {
    const b = await body(c, cronPatchSchema);
    const value: Record<string, unknown> = { ...b };
    const current = await getCron(c, "update", value);
    const patched = await c.var.deps.crons.patch(current, patchOf(current, b, value));
    if (!patched) throw notFound(`Cron ${current.cron_id} not found`);
    return c.json(patched);
  });

  app.delete("/runs/crons/:cron_id", async (c) => {
    const current = await getCron(c, "delete", {});
    if (!(await c.var.deps.crons.delete(current.cron_id))) throw notFound(`Cron ${current.cron_id} not found`);
    return c.body(null, 204);
  });

  return app;
}

/** Reads a cron, authorized as `crons:<action>`; one the filters exclude is "not found". */
async function getCron(c: Context, action: "read" | "update" | "delete", value: Record<string, unknown>): Promise<Cron> {
  const cronId = uuidParam(c, "cron_id");
  const filters = await authorize(c, "crons", action, { ...value, cron_id: cronId });
  const cron = await c.var.deps.crons.repo.get(cronId);
  if (!cron) throw notFound(`Cron ${cronId} not found`);
  ensureVisible(filters, cron.metadata, `Cron ${cronId} not found`);
  return cron;
}

async function createCron(c: Context, threadId: string | null, b: CronCreateBody): Promise<Cron> {
  const deps = c.var.deps;
  const assistant = await deps.assistants.resolve(b.assistant_id, deps.graphs.ids);
  if (!deps.graphs.ids.has(assistant.graph_id)) {
    throw invalid(`Invalid body: assistant_id: graph "${assistant.graph_id}" of assistant ${assistant.assistant_id} is not served here`);
  }
  if (threadId) {
    // A cron creates runs on the thread: the caller must be able to see it.
    const filters = await authorize(c, "threads", "read", { thread_id: threadId });
    const thread = await deps.threads.get(threadId);
    if (!thread) throw notFound(`Thread with ID ${threadId} not found`);
    ensureVisible(filters, thread.metadata, `Thread with ID ${threadId} not found`);
  }
  const ctx = c.get("auth") ?? null;
  const payload = Object.fromEntries(Object.entries(b).filter(([k, v]) => !CRON_ONLY.has(k) && v !== undefined));
  const value: Record<string, unknown> = {
    cron_id: crypto.randomUUID(),
    thread_id: threadId,
    assistant_id: assistant.assistant_id,
    schedule: b.schedule,
    timezone: b.timezone ?? null,
    end_time: b.end_time ?? null,
    on_run_completed: threadId ? null : (b.on_run_completed ?? "delete"),
    enabled: b.enabled ?? true,
    user_id: ctx?.user.identity ?? null,
    metadata: { ...(b.metadata ?? {}) },
    payload,
  };
  await authorize(c, "crons", "create", value);
  // The handler may have changed the metadata (an owner stamp), the payload or the user.
  const metadata = (value.metadata as Record<string, unknown> | null) ?? {};
  return deps.crons.create({
    cron_id: value.cron_id as string,
    assistant_id: assistant.assistant_id,
    thread_id: threadId,
    on_run_completed: value.on_run_completed as Cron["on_run_completed"],
    end_time: b.end_time ? new Date(b.end_time).toISOString() : null,
    schedule: b.schedule,
    timezone: b.timezone ?? null,
    payload: { ...((value.payload as Record<string, unknown> | null) ?? payload), metadata },
    user_id: (value.user_id as string | null) ?? null,
    metadata,
    enabled: b.enabled ?? true,
    auth_user: ctx ? { user: ctx.user, permissions: ctx.permissions } : null,
  });
}

/** The patch to apply: cron fields as given, run fields merged into the payload (metadata merged). */
function patchOf(current: Cron, b: CronPatchBody, value: Record<string, unknown>) {
  const runFields = Object.fromEntries(Object.entries(value).filter(([k, v]) => !CRON_ONLY.has(k) && k !== "cron_id" && v !== undefined));
  const metadata = value.metadata !== undefined && value.metadata !== null ? { ...current.metadata, ...(value.metadata as Record<string, unknown>) } : undefined;
  const changesPayload = Object.keys(runFields).length > 0;
  return {
    schedule: b.schedule,
    timezone: b.timezone,
    end_time: b.end_time === undefined ? undefined : b.end_time === null ? null : new Date(b.end_time).toISOString(),
    on_run_completed: current.thread_id ? undefined : b.on_run_completed,
    enabled: b.enabled,
    metadata,
    payload: changesPayload ? { ...current.payload, ...runFields, ...(metadata ? { metadata } : {}) } : undefined,
  };
}

/** A graph id names its system assistant; anything else must be a UUID. */
function assistantIdOf(c: Context, raw: string): string {
  if (c.var.deps.graphs.ids.has(raw)) return systemAssistantId(raw);
  if (!isUuid(raw)) throw invalid(`Invalid body: assistant_id: "${raw}" is neither a UUID nor a graph ID`);
  return raw.toLowerCase();
}
