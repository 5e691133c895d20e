import { createHash } from "node:crypto";
import { Redis } from "ioredis";
import type { CancelAction } from "../domain/run.js";
import { END_EVENT, IdClock, compareIds, isFromStart } from "./bus.js";
import type { RunStreamBus, StreamEvent, Subscription } from "./bus.js";
import { EventQueue } from "./event-queue.js";

/**
 * Appends one event and publishes it with the id of the log entry before it.
 * KEYS: log, channel. ARGV: maxlen, id, event, data, ttl (0: the log persists until
 * finish(); otherwise it expires ttl seconds after this event). An XADD error (id not
 * above the log's last one) aborts the script before anything is published.
 */
const APPEND_SCRIPT = `
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local prev = '0-0'
if last[1] then prev = last[1][1] end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], ARGV[2], 'e', ARGV[3], 'd', ARGV[4])
if tonumber(ARGV[5]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[5]) else redis.call('PERSIST', KEYS[1]) end
redis.call('PUBLISH', KEYS[2], id .. '\\n' .. prev .. '\\n' .. ARGV[3] .. '\\n' .. ARGV[4])
return id`;
const APPEND_SHA = createHash("sha1").update(APPEND_SCRIPT).digest("hex");

/**
 * Redis bus. Per run:
 * - `<prefix>run:<id>:log`, a Redis Stream holding every event (bounded, and
 *   expiring `ttl` seconds after the run ends) for replay and gap filling;
 * - `<prefix>run:<id>:ev`, a pub/sub channel carrying each event together with
 *   the id of the event before it in the log, so a subscriber that sees a jump
 *   reads the missing range from the log instead of losing events;
 * - `<prefix>run:<id>:ctl`, the cancel channel.
 * XADD and PUBLISH run in one script: one round trip per event. The script
 * reads the previous id from the log itself (several processes may write one
 * run's log: a previous lease holder and the current one), and publishes only
 * if the XADD succeeded (a MULTI would still publish an event whose XADD was
 * refused, handing subscribers an event that is not in the log).
 */
export function createRedisBus(opts: {
  client: Redis;
  prefix: string;
  ttlSecs: number;
  maxEvents?: number;
  onError?: (err: unknown) => void;
}): RunStreamBus {
  const { client, prefix } = opts;
  const maxEvents = opts.maxEvents ?? 10_000;
  const logKey = (runId: string) => `${prefix}run:${runId}:log`;
  const evChannel = (runId: string) => `${prefix}run:${runId}:ev`;
  const ctlChannel = (runId: string) => `${prefix}run:${runId}:ctl`;
  const clock = new IdClock();
  /** Runs this process has written to (its clock is past the log's last id). */
  const started = new Set<string>();

  // One subscriber connection per process, shared by every local listener.
  let subscriber: Redis | null = null;
  const listeners = new Map<string, Set<(message: string) => void>>();
  /** Open subscriptions, to catch up from their logs after the subscriber reconnected. */
  const catchUps = new Set<() => void>();
  const getSubscriber = (): Redis => {
    if (!subscriber) {
      const s = client.duplicate();
      subscriber = s;
      s.on("error", (err) => opts.onError?.(err));
      s.on("message", (channel: string, message: string) => {
        const set = listeners.get(channel);
        if (set) for (const l of set) l(message);
      });
      // After a reconnect (Redis restarted, network blip) ioredis has re-sent SUBSCRIBE by the
      // time "ready" fires; once a PING behind it answers, the channels are live again. Events
      // published while the connection was down never arrive by pub/sub, and the last of them
      // may be the end of the run: read them from each open subscription's log.
      s.on("ready", () => {
        if (catchUps.size === 0) return;
        s.ping().then(
          () => {
            for (const catchUp of catchUps) catchUp();
          },
          (err: unknown) => opts.onError?.(err),
        );
      });
    }
    return subscriber;
  };
  const listen = async (channel: string, fn: (message: string) => void) => {
    let set = listeners.get(channel);
    if (!set) {
      set = new Set();
      listeners.set(channel, set);
      set.add(fn);
      await getSubscriber().subscribe(channel);
    } else set.add(fn);
    return async () => {
      const s = listeners.get(channel);
      if (!s) return;
      s.delete(fn);
      if (s.size === 0) {
        listeners.delete(channel);
        await subscriber?.unsubscribe(channel).catch(() => {});
      }
    };
  };

  const readRange = async (runId: string, afterId: string | null): Promise<StreamEvent[]> => {
    const entries = await client.xrange(logKey(runId), afterId === null ? "-" : `(${afterId}`, "+");
    return entries.map(([id, fields]) => ({ id, event: fields[1] ?? "", data: fields[3] ?? "null" }));
  };

  const lastLogId = async (runId: string): Promise<string | null> => {
    const [last] = await client.xrevrange(logKey(runId), "+", "-", "COUNT", 1);
    return last ? last[0] : null;
  };

  const appendScript = (runId: string, id: string, event: string, data: string, ttl = 0) => {
    const args = [logKey(runId), evChannel(runId), maxEvents, id, event, data, ttl] as const;
    return client.evalsha(APPEND_SHA, 2, ...args).catch((err: unknown) => {
      if (/NOSCRIPT/.test(String((err as Error).message))) return client.eval(APPEND_SCRIPT, 2, ...args);
      throw err;
    });
  };

  async function append(runId: string, event: string, data: string, retried = false): Promise<string> {
    if (!started.has(runId)) {
      // First event from this process: continue after an earlier attempt's events.
      const last = await lastLogId(runId);
      started.add(runId);
      if (last) clock.advance(runId, last);
    }
    const id = clock.next(runId);
    try {
      await appendScript(runId, id, event, data);
    } catch (err) {
      // Another process wrote a later id to this run's log (a previous lease holder).
      if (!retried && /equal or smaller/i.test(String((err as Error).message))) {
        started.delete(runId);
        return append(runId, event, data, true);
      }
      throw err;
    }
    return id;
  }

  return {
    // A rolling log (a thread's) takes Redis's own ids: monotonic across processes, no clock kept here.
    publish: async (runId, event, data, popts) =>
      popts?.rolling ? String(await appendScript(runId, "*", event, data, opts.ttlSecs)) : append(runId, event, data),

    async finish(runId) {
      await append(runId, END_EVENT, "null");
      await client.expire(logKey(runId), opts.ttlSecs);
      started.delete(runId);
      clock.forget(runId);
    },

    async subscribe(runId, { after }) {
      const queue = new EventQueue();
      let lastSeen: string | null = null;
      let filling: Promise<void> | null = null;
      let refillWanted = false;
      let stopAfterDrain = false;

      const deliver = (ev: StreamEvent) => {
        if (lastSeen !== null && compareIds(ev.id, lastSeen) <= 0) return;
        lastSeen = ev.id;
        if (ev.event === END_EVENT) queue.end();
        else queue.push(ev);
      };
      // Reads everything after lastSeen from the log; coalesces concurrent requests.
      const fill = (): Promise<void> => {
        if (filling) {
          refillWanted = true;
          return filling;
        }
        filling = (async () => {
          do {
            refillWanted = false;
            for (const ev of await readRange(runId, lastSeen)) deliver(ev);
          } while (refillWanted);
        })()
          .catch((err) => opts.onError?.(err))
          .finally(() => {
            filling = null;
            if (stopAfterDrain) queue.end();
          });
        return filling;
      };

      const onMessage = (message: string) => {
        const i1 = message.indexOf("\n");
        const i2 = message.indexOf("\n", i1 + 1);
        const i3 = message.indexOf("\n", i2 + 1);
        const id = message.slice(0, i1);
        const prev = message.slice(i1 + 1, i2);
        const ev = { id, event: message.slice(i2 + 1, i3), data: message.slice(i3 + 1) };
        if (filling === null && lastSeen !== null && prev === lastSeen) deliver(ev);
        else if (lastSeen === null || compareIds(id, lastSeen) > 0) void fill();
      };

      // Subscribe first, then read the log: nothing published in between is lost.
      const unlisten = await listen(evChannel(runId), onMessage);
      if (after !== undefined) {
        lastSeen = isFromStart(after) ? null : after;
        await fill();
      } else {
        const entries = await client.xrevrange(logKey(runId), "+", "-", "COUNT", 1);
        const last = entries[0];
        if (last) {
          lastSeen = last[0];
          if (last[1][1] === END_EVENT) queue.end();
        } else lastSeen = "0-0";
      }
      const catchUp = () => void fill();
      catchUps.add(catchUp);
      return {
        [Symbol.asyncIterator]: () => queue[Symbol.asyncIterator](),
        drainAndStop: () => {
          stopAfterDrain = true;
          void fill();
        },
        close: async () => {
          catchUps.delete(catchUp);
          queue.end();
          await unlisten();
        },
      } satisfies Subscription;
    },

    async sendControl(runId, action) {
      await client.publish(ctlChannel(runId), action);
    },

    async onControl(runId, handler: (a: CancelAction) => void) {
      return listen(ctlChannel(runId), (m) => handler(m as CancelAction));
    },

    async close() {
      listeners.clear();
      catchUps.clear();
      const s = subscriber;
      subscriber = null;
      if (s) await s.quit().catch(() => s.disconnect());
    },
  };
}
