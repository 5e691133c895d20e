import { createHash } from "node:crypto";
import { Redis } from "ioredis";
import type { CancelAction } from "../domain/run.js";
import { END_EVENT, IdClock, compareIds, isFromStart } from "./bus.js";
import type { RunStreamBus, StreamEvent, Subscription } from "./bus.js";
import { boundedSet } from "../lib/bounded-map.js";
import { EventQueue } from "./event-queue.js";

/**
 * Appends one event and publishes it with the id of the log entry before it.
 * KEYS: log, channel. ARGV: maxlen, id, event, data, ttl, prev.
 * - ttl: 0 = the log persists until finish(); otherwise it expires ttl seconds after this event.
 * - prev: the id of the entry this process believes is the log's last (the id it wrote or
 *   issued just before); "" when it does not know (its first append to this log, or after an
 *   id error): the script then reads it from the log and, with ttl 0, removes an expiry left
 *   by an earlier finish() (a log that was empty has none: the XADD created it). Only then:
 *   every later append is XADD + PUBLISH (+ EXPIRE if ttl).
 * Returns {id, prev}; {"", last} when the id is not above the log's last entry (another
 * process wrote a later one), without writing or publishing anything: the caller moves its
 * clock past `last` and tries again. Any other XADD error aborts the script before PUBLISH.
 */
const APPEND_SCRIPT = `
local prev = ARGV[6]
local first = prev == ''
local function last_id()
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if last[1] then return last[1][1] end
  return '0-0'
end
if first then prev = last_id() end
local id = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], ARGV[2], 'e', ARGV[3], 'd', ARGV[4])
if type(id) == 'table' then
  if id.err and string.find(id.err, 'equal or smaller', 1, true) then return {'', last_id()} end
  return id
end
local ttl = tonumber(ARGV[5])
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) elseif first and prev ~= '0-0' then redis.call('PERSIST', KEYS[1]) end
redis.call('PUBLISH', KEYS[2], id .. '\\n' .. prev .. '\\n' .. ARGV[3] .. '\\n' .. ARGV[4])
return {id, prev}`;
const APPEND_SHA = createHash("sha1").update(APPEND_SCRIPT).digest("hex");

/**
 * Appends events to a rolling log (a thread's) with Redis's own ids, publishing each with
 * the id before it, and renews the log's expiry. KEYS: log, channel. ARGV: maxlen, ttl,
 * prev (as in APPEND_SCRIPT: "" = read it from the log), then event, data for each event.
 * Returns the new ids in order.
 */
const ROLLING_SCRIPT = `
local prev = ARGV[3]
if prev == '' then
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if last[1] then prev = last[1][1] else prev = '0-0' end
end
local ids = {}
for i = 4, #ARGV, 2 do
  local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[i], 'd', ARGV[i + 1])
  redis.call('PUBLISH', KEYS[2], id .. '\\n' .. prev .. '\\n' .. ARGV[i] .. '\\n' .. ARGV[i + 1])
  prev = id
  ids[#ids + 1] = id
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return ids`;
const ROLLING_SHA = createHash("sha1").update(ROLLING_SCRIPT).digest("hex");

/** Escapes Redis glob characters, so a key prefix is matched literally inside a pattern. */
const globEscape = (s: string) => s.replace(/[\\*?[\]]/g, (ch) => `\\${ch}`);

type RollingBatch = Array<{ event: string; data: string; resolve: (id: string) => void; reject: (err: unknown) => void }>;

/**
 * Redis bus. Per run:
 * - `<prefix>run:<id>:log`, a Redis Stream holding every event (bounded, and
 *   expiring `ttl` seconds after the run ends) for replay and gap filling;
 * - `<prefix>run:<id>:ev`, a pub/sub channel carrying each event together with
 *   the id of the event before it in the log, so a subscriber that sees a jump
 *   reads the missing range from the log instead of losing events;
 * - `<prefix>run:<id>:ctl`, the cancel channel, heard by one pattern subscription per process.
 * XADD and PUBLISH run in one script: one round trip per event; the script publishes only
 * if the XADD succeeded (a MULTI would still publish an event whose XADD was refused,
 * handing subscribers an event that is not in the log).
 *
 * The previous id a message carries is the one this process issued just before on that log;
 * the script reads it from the log only on the process's first append to the log (several
 * processes may write one run's log: a previous lease holder and the current one) or after
 * an id error. When another process wrote in between, the message's `prev` is not the log's
 * real previous entry; that is harmless: Redis delivers a channel's messages in the order it
 * ran the scripts, so a subscriber has already seen the other process's message (and moved
 * its `lastSeen` past `prev`, or started a fill) unless it missed it while its connection was
 * down, and after a reconnect every subscription gap-fills from its log before it trusts a
 * message's `prev` again.
 */
export function createRedisBus(opts: {
  client: Redis;
  prefix: string;
  ttlSecs: number;
  maxEvents?: number;
  onError?: (err: unknown) => void;
  /** How many logs' last ids (runs and threads written by this process) are kept. */
  maxTrackedLogs?: number;
}): RunStreamBus {
  const { client, prefix } = opts;
  const maxEvents = opts.maxEvents ?? 10_000;
  const maxTracked = opts.maxTrackedLogs ?? 100_000;
  const logKey = (runId: string) => `${prefix}run:${runId}:log`;
  const evChannel = (runId: string) => `${prefix}run:${runId}:ev`;
  const ctlChannel = (runId: string) => `${prefix}run:${runId}:ctl`;
  const ctlPattern = `${globEscape(prefix)}run:*:ctl`;
  const clock = new IdClock();
  /** Per run log this process writes: the id it issued last (absent: read it from the log). */
  const lastIssued = new Map<string, string>();
  /** Per rolling log (a thread's): the id Redis gave this process's last append, and appends in flight. */
  const rollingLast = new Map<string, string>();
  const rollingInFlight = new Map<string, number>();
  /** Rolling appends of this tick, per log, not sent yet. */
  const rollingBatches = new Map<string, RollingBatch>();

  // One subscriber connection per process, shared by every local listener.
  let subscriber: Redis | null = null;
  const listeners = new Map<string, Set<(message: string) => void>>();
  /** Control handlers per control channel, fed by the process's one pattern subscription. */
  const ctlHandlers = new Map<string, Set<(action: CancelAction) => void>>();
  let ctlListening: Promise<unknown> | null = null;
  /** Per run: the live subscriptions (SSE) of this process that follow it (watched). */
  const liveSubs = new Map<string, number>();
  /** Open subscriptions: told when the subscriber connection drops and when it is live again. */
  const resyncs = new Set<{ lost(): void; catchUp(): void }>();
  const getSubscriber = (): Redis => {
    if (!subscriber) {
      const s = client.duplicate();
      subscriber = s;
      s.on("error", (err) => opts.onError?.(err));
      s.on("message", (channel: string, message: string) => {
        const set = listeners.get(channel);
        if (set) for (const l of set) l(message);
      });
      s.on("pmessage", (pattern: string, channel: string, message: string) => {
        if (pattern !== ctlPattern) return;
        const set = ctlHandlers.get(channel);
        if (set) for (const h of set) h(message as CancelAction);
      });
      // Messages published while the connection is down never arrive: until its catch-up
      // below, a subscription must not trust a message's `prev`.
      s.on("close", () => {
        for (const r of resyncs) r.lost();
      });
      // After a reconnect (Redis restarted, network blip) ioredis has re-sent SUBSCRIBE and
      // PSUBSCRIBE by the time "ready" fires; once a PING behind it answers, the channels are
      // live again. Events published while the connection was down never arrive by pub/sub,
      // and the last of them may be the end of the run: read them from each open
      // subscription's log.
      s.on("ready", () => {
        if (resyncs.size === 0) return;
        s.ping().then(
          () => {
            for (const r of resyncs) r.catchUp();
          },
          (err: unknown) => opts.onError?.(err),
        );
      });
    }
    return subscriber;
  };
  /** Per channel with listeners: its SUBSCRIBE, which every listener awaits (live once it answered). */
  const subscribing = new Map<string, Promise<unknown>>();
  const listen = async (channel: string, fn: (message: string) => void) => {
    let set = listeners.get(channel);
    if (!set) {
      set = new Set();
      listeners.set(channel, set);
      subscribing.set(channel, getSubscriber().subscribe(channel));
    }
    set.add(fn);
    const unlisten = async () => {
      const s = listeners.get(channel);
      if (!s?.delete(fn) || s.size > 0) return;
      listeners.delete(channel);
      subscribing.delete(channel);
      await subscriber?.unsubscribe(channel).catch(() => {});
    };
    try {
      await subscribing.get(channel);
    } catch (err) {
      await unlisten();
      throw err;
    }
    return unlisten;
  };

  const readRange = async (runId: string, afterId: string | null): Promise<StreamEvent[]> => {
    const entries = await client.xrange(logKey(runId), afterId === null ? "-" : `(${afterId}`, "+");
    return entries.map(([id, fields]) => ({ id, event: fields[1] ?? "", data: fields[3] ?? "null" }));
  };

  /** Runs a script by its hash, loading it when Redis does not know it (restarted, flushed). */
  const runScript = (sha: string, script: string, args: readonly (string | number)[]): Promise<unknown> =>
    client.evalsha(sha, 2, ...args).catch((err: unknown) => {
      if (/NOSCRIPT/.test(String((err as Error).message))) return client.eval(script, 2, ...args);
      throw err;
    });

  const appendScript = async (runId: string, id: string, event: string, data: string, ttl: number, prev: string): Promise<[string, string]> => {
    const res = await runScript(APPEND_SHA, APPEND_SCRIPT, [logKey(runId), evChannel(runId), maxEvents, id, event, data, ttl, prev]);
    const [got = "", last = ""] = res as string[];
    return [got, last];
  };

  /** Sends the rolling appends still waiting for the end of the tick, so they keep call order. */
  function sendRollingNow(): void {
    for (const [key, batch] of rollingBatches) {
      rollingBatches.delete(key);
      void sendRolling(key, batch);
    }
  }

  async function append(runId: string, event: string, data: string, ttl = 0): Promise<string> {
    // A thread event issued before this append goes to Redis before it (a run's end status
    // precedes the end of its stream, see worker.ts).
    sendRollingNow();
    for (let attempt = 0; ; attempt++) {
      const prev = lastIssued.get(runId) ?? "";
      const id = clock.next(runId);
      // Set before the round trip: an append issued while this one is in flight follows it.
      boundedSet(lastIssued, runId, id, maxTracked);
      let got: string;
      let last: string;
      try {
        [got, last] = await appendScript(runId, id, event, data, ttl, prev);
      } catch (err) {
        // Unknown state (e.g. Redis restarted mid-call): the next append reads the log again.
        if (lastIssued.get(runId) === id) lastIssued.delete(runId);
        throw err;
      }
      if (got !== "") return got;
      // Another process wrote a later id to this run's log (a previous lease holder, or an
      // earlier attempt whose clock was ahead): continue after it, reading the log afresh.
      if (lastIssued.get(runId) === id) lastIssued.delete(runId);
      clock.advance(runId, last);
      if (attempt >= 3) throw new Error(`run ${runId}: could not append after ${last}`);
    }
  }

  /**
   * A rolling log takes Redis's own ids: increasing across processes, no clock kept here.
   * Appends to one log issued in the same tick (a run's end: its status and the thread's
   * new state) go in one script call, in call order; a run-log append issued after them
   * sends them first.
   */
  function appendRolling(key: string, event: string, data: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const waiting = rollingBatches.get(key);
      if (waiting) return void waiting.push({ event, data, resolve, reject });
      const batch: RollingBatch = [{ event, data, resolve, reject }];
      rollingBatches.set(key, batch);
      queueMicrotask(() => {
        if (rollingBatches.get(key) !== batch) return; // sent by an append meanwhile
        rollingBatches.delete(key);
        void sendRolling(key, batch);
      });
    });
  }

  async function sendRolling(key: string, batch: RollingBatch): Promise<void> {
    const inFlight = rollingInFlight.get(key) ?? 0;
    // Our last id is the log's previous entry only if no append of ours is still on its way.
    const prev = inFlight === 0 ? (rollingLast.get(key) ?? "") : "";
    rollingInFlight.set(key, inFlight + 1);
    const args = [logKey(key), evChannel(key), maxEvents, opts.ttlSecs, prev, ...batch.flatMap((b) => [b.event, b.data])];
    try {
      const ids = (await runScript(ROLLING_SHA, ROLLING_SCRIPT, args)) as string[];
      if ((rollingInFlight.get(key) ?? 1) === 1) boundedSet(rollingLast, key, ids.at(-1)!, maxTracked);
      batch.forEach((b, i) => b.resolve(ids[i]!));
    } catch (err) {
      rollingLast.delete(key);
      for (const b of batch) b.reject(err);
    } finally {
      const n = (rollingInFlight.get(key) ?? 1) - 1;
      if (n > 0) rollingInFlight.set(key, n);
      else rollingInFlight.delete(key);
    }
  }

  return {
    publish: (runId, event, data, popts) => (popts?.rolling ? appendRolling(runId, event, data) : append(runId, event, data)),

    async finish(runId) {
      // The end marker and the log's expiry in one script.
      await append(runId, END_EVENT, "null", opts.ttlSecs);
      lastIssued.delete(runId);
      clock.forget(runId);
    },

    watched: (runId) => liveSubs.has(runId),

    async subscribe(runId, { after, fresh, live }) {
      const queue = new EventQueue();
      let lastSeen: string | null = null;
      let filling: Promise<void> | null = null;
      let refillWanted = false;
      let stopAfterDrain = false;
      /** The subscriber connection dropped and the catch-up after it has not completed yet. */
      let suspect = false;
      let lostEpoch = 0;

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
        if (!suspect && filling === null && lastSeen !== null && prev === lastSeen) deliver(ev);
        else if (lastSeen === null || compareIds(id, lastSeen) > 0) void fill();
      };

      // Told from the start about a dropped subscriber connection; catches up once positioned.
      let positioned = false;
      const resync = {
        lost: () => {
          suspect = true;
          lostEpoch++;
        },
        catchUp: () => {
          if (!positioned) return;
          const epoch = lostEpoch;
          void fill().then(() => {
            if (epoch === lostEpoch) suspect = false;
          });
        },
      };
      resyncs.add(resync);
      // Subscribe first, then read the log: nothing published in between is lost.
      const unlisten = await listen(evChannel(runId), onMessage).catch((err: unknown) => {
        resyncs.delete(resync);
        throw err;
      });
      try {
        if (fresh) {
          // A run id this process minted and has not inserted yet: nobody has written its log
          // (no worker can claim a run that is not in PostgreSQL), so there is nothing to read;
          // "0-0" is the `prev` its first event carries.
          lastSeen = "0-0";
        } else if (after !== undefined) {
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
      } catch (err) {
        resyncs.delete(resync);
        await unlisten();
        throw err;
      }
      positioned = true;
      if (suspect) resync.catchUp(); // the connection dropped while we positioned ourselves
      let counted = false;
      if (live) {
        liveSubs.set(runId, (liveSubs.get(runId) ?? 0) + 1);
        counted = true;
      }
      return {
        [Symbol.asyncIterator]: () => queue[Symbol.asyncIterator](),
        drainAndStop: () => {
          stopAfterDrain = true;
          void fill();
        },
        close: async () => {
          resyncs.delete(resync);
          queue.end();
          if (counted) {
            counted = false;
            const n = (liveSubs.get(runId) ?? 1) - 1;
            if (n > 0) liveSubs.set(runId, n);
            else liveSubs.delete(runId);
          }
          await unlisten();
        },
      } satisfies Subscription;
    },

    async sendControl(runId, action) {
      await client.publish(ctlChannel(runId), action);
    },

    // One PSUBSCRIBE per process for every run's control channel: no command per run.
    async onControl(runId, handler: (a: CancelAction) => void) {
      const channel = ctlChannel(runId);
      let set = ctlHandlers.get(channel);
      if (!set) ctlHandlers.set(channel, (set = new Set()));
      set.add(handler);
      try {
        ctlListening ??= getSubscriber()
          .psubscribe(ctlPattern)
          .catch((err: unknown) => {
            ctlListening = null;
            throw err;
          });
        await ctlListening;
      } catch (err) {
        removeCtl(channel, handler);
        throw err;
      }
      return async () => removeCtl(channel, handler);
    },

    async close() {
      listeners.clear();
      liveSubs.clear();
      subscribing.clear();
      ctlHandlers.clear();
      ctlListening = null;
      resyncs.clear();
      const s = subscriber;
      subscriber = null;
      if (s) await s.quit().catch(() => s.disconnect());
    },
  };

  function removeCtl(channel: string, handler: (a: CancelAction) => void) {
    const set = ctlHandlers.get(channel);
    if (!set) return;
    set.delete(handler);
    if (set.size === 0) ctlHandlers.delete(channel);
  }
}
