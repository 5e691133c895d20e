import type { Redis } from "ioredis";
import { uuidv7 } from "../lib/uuid.js";
import type { Bell } from "./bell.js";

/**
 * The doorbell over Redis pub/sub: one PUBLISH per dispatch. The ringing
 * process's own listeners are called directly (no round trip through Redis)
 * and it ignores its own message when it comes back.
 */
export function createRedisBell(client: Redis, channel: string, onError: (err: unknown) => void): Bell {
  const self = uuidv7();
  const local = new Set<(count: number, delayMs: number) => void>();
  let subscriber: Redis | null = null;
  let closed = false;

  return {
    async ring(count, delayMs) {
      for (const l of local) l(count, delayMs);
      await client.publish(channel, `${self} ${count} ${delayMs}`);
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
