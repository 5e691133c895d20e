import type { Context } from "hono";
import type { StreamEvent, Subscription } from "../stream/bus.js";

const encoder = new TextEncoder();

/** What a streamed body's producer gets (the part of hono's StreamingApi openplane uses). */
export interface BodyWriter {
  /** Resolves once the chunk was taken by the server (backpressure); never rejects. */
  write(chunk: string): Promise<void>;
  /** Called once if the client goes away (the response body is cancelled) before the end. */
  onAbort(listener: () => void): void;
}

/**
 * A streamed response body, like hono's `stream()` (same headers and status from `c`, the
 * body ends when `produce` returns, `onAbort` when the client leaves) on one ReadableStream:
 * hono's builds a TransformStream plus a second ReadableStream for each response, and pushes
 * every chunk through all three, a large share of a /wait request's CPU on Node 20.
 */
export function streamBody(c: Context, produce: (w: BodyWriter) => Promise<void>): Response {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let done = false;
  let aborted = false;
  const abortListeners: Array<() => void> = [];
  let waiters: Array<() => void> = [];
  const wake = () => {
    const w = waiters;
    waiters = [];
    for (const r of w) r();
  };
  const abort = () => {
    if (aborted) return;
    aborted = true;
    for (const l of abortListeners) {
      try {
        l();
      } catch {
        // a listener's failure must not stop the others
      }
    }
    wake();
  };
  const body = new ReadableStream<Uint8Array>({
    start: (ctl) => {
      controller = ctl;
    },
    pull: wake,
    cancel: () => {
      if (!done) abort();
      wake();
    },
  });
  const writer: BodyWriter = {
    async write(chunk) {
      if (done || aborted) return;
      try {
        controller.enqueue(encoder.encode(chunk));
      } catch {
        return; // cancelled meanwhile
      }
      if ((controller.desiredSize ?? 1) <= 0) await new Promise<void>((r) => waiters.push(r));
    },
    onAbort: (l) => void abortListeners.push(l),
  };
  void (async () => {
    try {
      await produce(writer);
    } catch (err) {
      console.error(err);
    } finally {
      done = true;
      try {
        controller.close();
      } catch {
        // already cancelled
      }
      wake();
    }
  })();
  return c.newResponse(body);
}

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
  return streamBody(c, async (s) => {
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
      // Not awaited: the response ends now, the unsubscribe round trip follows.
      events.close().catch(() => {});
    }
  });
}
