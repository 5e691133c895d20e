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
  /** Runs announced for now and not sent yet; the message that will carry them; the one on its way. */
  let owed = 0;
  let next: Promise<void> | null = null;
  let onItsWay: Promise<unknown> = Promise.resolve();

  return {
    async ring(count, delayMs) {
      for (const l of local) l(count, delayMs);
      if (delayMs > 0) return void (await client.publish(channel, `${self} ${count} ${delayMs}`));
      owed += count;
      // Sent once the message before it is answered, with every ring that came meanwhile
      // (those of the same turn included).
      next ??= onItsWay.then(async () => {
        next = null;
        const n = owed;
        owed = 0;
        await client.publish(channel, `${self} ${n} 0`);
      });
      onItsWay = next.catch(() => {});
      await next;
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
