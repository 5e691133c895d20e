import type { Redis } from "ioredis";
import { uuidv7 } from "../lib/uuid.js";
import type { Bell } from "./bell.js";

/**
 * The doorbell over Redis pub/sub. The ringing process's own listeners are
 * called directly (no round trip through Redis) and it ignores its own message
 * when it comes back. One PUBLISH is on its way at a time: rings for runs
 * claimable now that come meanwhile go together in the next one, their counts
 * summed (under load, one message per many runs created).
 */
export function createRedisBell(client: Redis, channel: string, onError: (err: unknown) => void): Bell {
  const self = uuidv7();
  const local = new Set<(count: number, delayMs: number) => void>();
  let subscriber: Redis | null = null;
  let closed = false;
  /** Runs announced for now and not sent yet, and who waits for that message. */
  let owed = 0;
  let waiting: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];
  let sending = false;

  const send = () => {
    sending = true;
    const [count, told] = [owed, waiting];
    owed = 0;
    waiting = [];
    // Never throws synchronously: a stuck `sending` would hold every later ring (and run creation).
    Promise.resolve()
      .then(() => client.publish(channel, `${self} ${count} 0`))
      .then(
        () => told.forEach((w) => w.resolve()),
        (err: unknown) => told.forEach((w) => w.reject(err)),
      )
      .finally(() => {
        sending = false;
        if (waiting.length > 0) send();
      });
  };

  return {
    async ring(count, delayMs) {
      for (const l of local) l(count, delayMs);
      if (delayMs > 0) return void (await client.publish(channel, `${self} ${count} ${delayMs}`));
      owed += count;
      await new Promise<void>((resolve, reject) => {
        waiting.push({ resolve, reject });
        // Rings of the same turn go together.
        if (!sending && waiting.length === 1) queueMicrotask(() => !sending && waiting.length > 0 && send());
      });
    },
    async listen(onRing) {
      local.add(onRing);
      if (subscriber || closed) return;
      const sub = client.duplicate({ lazyConnect: true });
      subscriber = sub;
      sub.on("error", onError);
      sub.on("message", (_channel: string, message: string) => {
        const [from, count, delay] = message.split(" ");
        if (from === self) return;
        const n = Number(count);
        const d = Number(delay);
        if (!Number.isFinite(n) || !Number.isFinite(d)) return;
        for (const l of local) l(n, d);
      });
      await sub.connect();
      // ioredis subscribes again by itself after a reconnect.
      await sub.subscribe(channel);
    },
    async close() {
      closed = true;
      local.clear();
      const sub = subscriber;
      subscriber = null;
      if (sub) await sub.quit().catch(() => sub.disconnect());
    },
  };
}
