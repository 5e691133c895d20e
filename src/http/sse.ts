import type { Context } from "hono";
import { stream } from "hono/streaming";
import type { StreamEvent, Subscription } from "../stream/bus.js";

/** CR or LF would break SSE framing; event names and ids never contain them. */
const clean = (s: string) => s.replace(/[\r\n]/g, "");

export function frame(ev: { id?: string; event: string; data: string }): string {
  // data is one-line JSON (JSON.stringify never emits raw newlines).
  return `${ev.id !== undefined ? `id: ${clean(ev.id)}\n` : ""}event: ${clean(ev.event)}\ndata: ${ev.data}\n\n`;
}

export interface SseOptions {
  headers: Record<string, string>;
  heartbeatMs: number;
  /** Called when the client goes away before the stream ended. */
  onDisconnect?: () => void;
  /** Ends every open stream on shutdown. */
  shutdown: AbortSignal;
}

/**
 * Streams a run's events as SSE: ids on every event, a `: heartbeat` comment
 * after each quiet interval, clean close when the run ends, the client
 * leaves, or the server shuts down.
 */
export function sseResponse(c: Context, events: Subscription, opts: SseOptions, first?: StreamEvent[]): Response {
  c.header("Content-Type", "text/event-stream");
  c.header("Cache-Control", "no-store");
  c.header("X-Accel-Buffering", "no");
  for (const [k, v] of Object.entries(opts.headers)) c.header(k, v);
  return stream(c, async (s) => {
    let finished = false;
    const onShutdown = () => void events.close();
    opts.shutdown.addEventListener("abort", onShutdown, { once: true });
    s.onAbort(() => {
      if (!finished) opts.onDisconnect?.();
      void events.close();
    });
    const heartbeat = setInterval(() => {
      void s.write(": heartbeat\n\n").catch(() => events.close());
    }, opts.heartbeatMs);
    try {
      for (const ev of first ?? []) await s.write(frame(ev));
      for await (const ev of events) {
        await s.write(frame(ev));
      }
      finished = true;
    } finally {
      clearInterval(heartbeat);
      opts.shutdown.removeEventListener("abort", onShutdown);
      await events.close();
    }
  });
}
