import { compareIds, isFromStart } from "./bus.js";
import type { RunStreamBus, StreamEvent, Subscription } from "./bus.js";
import { EventQueue } from "./event-queue.js";
import { toJson } from "./serialize.js";

/**
 * A thread's stream (`GET /threads/{id}/stream`). The worker (and a direct state update)
 * writes only a few events per run to a per-thread log on the run bus, keyed
 * `thread:<thread_id>` (never a run id: those are UUIDs), rolling: it expires
 * RESUMABLE_STREAM_TTL_SECONDS after its latest event:
 * - `lifecycle` `{run_id, status}`: `running` when an attempt starts, the terminal status when
 *   the run ends (`pending` when it is handed back at shutdown);
 * - `state_update` `{values, run_id?}` when the thread's state changed.
 * Run events are not copied there (that would double the hot path's writes): a reader in
 * `run_modes` follows each run's own log from its `running` marker to its end marker.
 *
 * Ids: thread-log events carry the log's id `T`; a run event carries `T/<run event id>` where
 * `T` is the `running` marker it follows. Ordered as pairs (`T`, then the run event id), they
 * increase along the stream, and a Last-Event-ID of either shape resumes exactly after it.
 */
export const THREAD_STREAM_MODES = ["run_modes", "lifecycle", "state_update"] as const;
export type ThreadStreamMode = (typeof THREAD_STREAM_MODES)[number];

export const threadLogKey = (threadId: string) => `thread:${threadId}`;

export function publishThreadEvent(bus: RunStreamBus, threadId: string, event: "lifecycle" | "state_update", data: unknown): Promise<string> {
  return bus.publish(threadLogKey(threadId), event, toJson(data), { rolling: true });
}

const ID_RE = /^\d+-\d+$/;

/** Parses a thread stream Last-Event-ID: null when malformed. */
export function parseThreadEventId(id: string): { thread: string; run: string | null } | null {
  const [thread = "", run, ...rest] = id.split("/");
  if (rest.length > 0 || !ID_RE.test(thread) || (run !== undefined && !ID_RE.test(run))) return null;
  return { thread, run: run ?? null };
}

/** The id just before `id` (the bus subscribes strictly after an id). */
function before(id: string): string {
  const [ms = 0, seq = 0] = id.split("-").map(Number);
  return seq > 0 ? `${ms}-${seq - 1}` : `${ms - 1}-${Number.MAX_SAFE_INTEGER}`;
}

interface Following {
  runId: string;
  marker: string;
  sub: Subscription;
  done: Promise<void>;
}

/**
 * Opens a thread's stream as one Subscription (for sseResponse). `after`: as for the bus
 * (undefined = from now, "-1"/"0"/"-" = from the start of the thread log), or a Last-Event-ID
 * this stream sent. Never ends by itself: the caller closes it.
 */
export async function openThreadStream(
  bus: RunStreamBus,
  threadId: string,
  opts: { modes: ReadonlySet<ThreadStreamMode>; after?: string },
): Promise<Subscription> {
  const runModes = opts.modes.has("run_modes");
  const showLifecycle = runModes || opts.modes.has("lifecycle");
  const showState = opts.modes.has("state_update");
  const resume = opts.after === undefined || isFromStart(opts.after) ? null : parseThreadEventId(opts.after);
  if (opts.after !== undefined && !isFromStart(opts.after) && !resume) throw new Error("malformed Last-Event-ID");

  // The marker itself is read again (not re-sent) so a reader resuming inside a run knows which run it is.
  const threadSub = await bus.subscribe(threadLogKey(threadId), { after: resume ? before(resume.thread) : opts.after });
  const out = new EventQueue();
  /** Last run event forwarded per run, so a run followed again (a later attempt) continues after it. */
  const lastRunEvent = new Map<string, string>();
  let following: Following | null = null;
  /** Thread events that arrived while a run was followed: sent after its events (ids stay ordered). */
  let held: StreamEvent[] = [];
  let closed = false;
  const flush = () => {
    for (const h of held) out.push(h);
    held = [];
  };

  const follow = async (runId: string, marker: string, after: string) => {
    const sub = await bus.subscribe(runId, { after });
    const f: Following = { runId, marker, sub, done: Promise.resolve() };
    f.done = (async () => {
      for await (const ev of sub) {
        lastRunEvent.set(runId, ev.id);
        out.push({ id: `${f.marker}/${ev.id}`, event: ev.event, data: ev.data });
      }
      // The run's log ended (its end marker) before the thread log said so.
      if (following === f) {
        following = null;
        flush();
        await sub.close();
      }
    })();
    following = f;
  };
  const stopFollowing = async () => {
    const f = following;
    if (!f) return;
    following = null;
    f.sub.drainAndStop();
    await f.done;
    await f.sub.close();
  };

  const pump = (async () => {
    for await (const ev of threadSub) {
      const seen = resume !== null && compareIds(ev.id, resume.thread) <= 0;
      if (ev.event === "lifecycle") {
        const { run_id: runId, status } = JSON.parse(ev.data) as { run_id: string; status: string };
        if (status === "running") {
          const current = following as Following | null; // (set by the callbacks too)
          if (current?.runId !== runId) {
            await stopFollowing();
            flush();
          } else current.marker = ev.id; // a later attempt (lease lost): its events follow this marker
          if (!seen && showLifecycle) out.push(ev);
          if (runModes && (following as Following | null) === null) {
            const after = seen && resume?.run ? resume.run : (lastRunEvent.get(runId) ?? "-1");
            await follow(runId, ev.id, after);
          }
          continue;
        }
        const current = following as Following | null;
        if (current && current.runId !== runId) {
          // A run's end logged after the next run's start (they come from different
          // processes): runs of a thread execute one at a time, so it is the earlier run's.
          // Keep following the current one; this is said after its events.
          if (!seen && showLifecycle) held.push(ev);
          continue;
        }
        await stopFollowing();
        flush();
        if (!seen && showLifecycle) out.push(ev);
        continue;
      }
      if (seen || (ev.event === "state_update" && !showState)) continue;
      if (following) held.push(ev);
      else out.push(ev);
    }
  })().catch(() => out.end()); // the client reconnects with its Last-Event-ID

  const close = async () => {
    if (closed) return;
    closed = true;
    out.end();
    await threadSub.close();
    const f = following;
    following = null;
    await f?.sub.close();
  };
  return {
    [Symbol.asyncIterator]: () => out[Symbol.asyncIterator](),
    drainAndStop: () => void close(),
    close,
  };
}
