import type { Context } from "hono";
import { Hono } from "hono";
import { invalid, notFound } from "../../domain/errors.js";
import { isFromStart } from "../../stream/bus.js";
import { openThreadStream, parseThreadEventId } from "../../stream/thread-stream.js";
import type { ThreadStreamMode } from "../../stream/thread-stream.js";
import { authorize, ensureVisible } from "../authorize.js";
import { threadStreamQuerySchema } from "../schemas.js";
import { sseResponse } from "../sse.js";
import { parseWith, uuidParam } from "../validate.js";

/**
 * `GET /threads/:thread_id/stream`: everything that happens on a thread, across its runs,
 * until the client leaves or the server shuts down (see src/stream/thread-stream.ts).
 */
export function threadStreamRoutes(): Hono {
  const app = new Hono();

  app.get("/threads/:thread_id/stream", async (c) => {
    const threadId = uuidParam(c, "thread_id");
    const q = parseWith(threadStreamQuerySchema, { stream_mode: names(c, "stream_mode"), stream_modes: names(c, "stream_modes") }, "query");
    const modes = new Set<ThreadStreamMode>([...(q.stream_mode ?? []), ...(q.stream_modes ?? [])]);
    if (modes.size === 0) modes.add("run_modes");
    const lastEventId = c.req.header("Last-Event-ID")?.trim() || undefined;
    if (lastEventId !== undefined && !isFromStart(lastEventId) && !parseThreadEventId(lastEventId)) {
      throw invalid("Invalid Last-Event-ID: not an id this stream sent");
    }
    const deps = c.var.deps;
    const filters = await authorize(c, "threads", "read", { thread_id: threadId });
    const thread = await deps.threads.get(threadId);
    if (!thread) throw notFound(`Thread with ID ${threadId} not found`);
    ensureVisible(filters, thread.metadata, `Thread with ID ${threadId} not found`);
    const sub = await openThreadStream(deps.bus, threadId, { modes, after: lastEventId });
    const path = `/threads/${threadId}/stream`;
    return sseResponse(c, sub, {
      headers: { "Content-Location": path, Location: path },
      heartbeatMs: deps.sseHeartbeatMs,
      shutdown: deps.shutdown,
    });
  });

  return app;
}

/** A query parameter's values: repeated, a JSON list (the JS SDK) or comma-separated. */
function names(c: Context, name: string): string[] | undefined {
  const raw = c.req.queries(name);
  if (!raw) return undefined;
  return raw.flatMap((v): unknown[] => {
    const t = v.trim();
    if (t.startsWith("[")) {
      try {
        const list = JSON.parse(t) as unknown;
        return Array.isArray(list) ? list : [t];
      } catch {
        return [t];
      }
    }
    return t.split(",").map((s) => s.trim()).filter(Boolean);
  }) as string[];
}
