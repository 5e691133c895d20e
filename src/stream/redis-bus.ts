import { createHash } from "node:crypto";
import { Redis } from "ioredis";
import type { CancelAction } from "../domain/run.js";
import { END_EVENT, IdClock, compareIds, isFromStart } from "./bus.js";
import type { RunStreamBus, StreamEvent, Subscription } from "./bus.js";
import { boundedSet } from "../lib/bounded-map.js";
import { EventQueue } from "./event-queue.js";

/**
 * Appends a batch of events, each to its log, and publishes each with the id of the entry
 * before it in its log. KEYS: log and channel of each event, in turn. ARGV: maxlen, the
 * rolling ttl, then six per event:
 * - kind: "r" a run's log (the caller gives the id: its clock) or "l" a rolling log (a
 *   thread's: Redis makes the id, and the log expires `rolling ttl` after its latest event);
 * - id: the run event's id ("*" for a rolling one);
 * - prev: the id of the entry the caller believes is the log's last (the one it issued just
 *   before); "" when it does not know (its first append to this log, or after an error): it is
 *   then read from the log, and a run log's expiry left by an earlier finish is removed (a log
 *   that was empty has none: the XADD created it). An earlier event of the batch on the same
 *   log overrides it;
 * - ttl: run logs only: 0 = the log persists until finish(), else it expires ttl seconds after
 *   this event;
 * - event, data.
 * Returns one string per event: "=<id>" appended and published; "?<last>" a run event whose id
 * is not above its log's last entry (another process wrote a later one): not written, the
 * caller moves its clock past <last> and sends it again; "!<error>" refused. After a refusal
 * every later event of the batch on that log gets the same answer unwritten, so a log never
 * receives a batch's events out of order. An event is published only if its XADD succeeded.
 * A run event whose id the log already holds with the same event and data is answered "=<id>"
 * as written, and not published again: ioredis re-sends a call left unanswered when its
 * connection dropped, and Redis may have run it already; sent again with a new id, its events
 * would be in the log twice.
 */
const APPEND_SCRIPT = `
local maxlen, rolling_ttl = ARGV[1], ARGV[2]
local answers, last_of, refused, rolling, rolled = {}, {}, {}, {}, {}
local function last_id(log)
  local last = redis.pcall('XREVRANGE', log, '+', '-', 'COUNT', 1)
  if last.err then return nil, last.err end
  if last[1] then return last[1][1] end
  return '0-0'
end
local function written(log, id, event, data)
  local at = redis.call('XRANGE', log, id, id)
  return at[1] ~= nil and at[1][2][2] == event and at[1][2][4] == data
end
for i = 1, (#ARGV - 2) / 6 do
  local a = 2 + (i - 1) * 6
  local log, channel = KEYS[2 * i - 1], KEYS[2 * i]
  local kind, id, prev, ttl, event, data = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], tonumber(ARGV[a + 4]), ARGV[a + 5], ARGV[a + 6]
  if refused[log] then
    answers[i] = refused[log]
  else
    local first, err = false, nil
    if last_of[log] then prev = last_of[log] elseif prev == '' then first = true; prev, err = last_id(log) end
    local added = err and { err = err } or redis.pcall('XADD', log, 'MAXLEN', '~', maxlen, id, 'e', event, 'd', data)
    local collided = type(added) == 'table' and kind == 'r' and string.find(added.err, 'equal or smaller', 1, true)
    if collided and written(log, id, event, data) then
      last_of[log] = id
      answers[i] = '=' .. id
    elseif type(added) == 'table' then
      local last = collided and last_id(log)
      refused[log] = last and ('?' .. last) or ('!' .. added.err)
      answers[i] = refused[log]
    else
      if kind == 'l' then
        if not rolling[log] then rolling[log] = true; rolled[#rolled + 1] = log end
      elseif ttl > 0 then redis.call('EXPIRE', log, ttl)
      elseif first and prev ~= '0-0' then redis.call('PERSIST', log) end
      redis.call('PUBLISH', channel, added .. '\\n' .. prev .. '\\n' .. event .. '\\n' .. data)
      last_of[log] = added
      answers[i] = '=' .. added
    end
  end
end
for _, log in ipairs(rolled) do redis.call('EXPIRE', log, rolling_ttl) end
return answers`;
const APPEND_SHA = createHash("sha1").update(APPEND_SCRIPT).digest("hex");

/** Events per script call, and the length of their data (a single longer event still goes, alone). */
const MAX_BATCH_EVENTS = 256;
const MAX_BATCH_CHARS = 1 << 20;
/**
 * SUBSCRIBEs on their way at once (a run's creation waits for its SUBSCRIBE). Appends have
 * one script call on their way at a time: with several, a run event refused for its id
 * (another writer's later one) could land after that run's next event, already sent in a
 * later call.
 */
const SUBSCRIPTIONS_IN_FLIGHT = 4;
/**
 * A channel nobody here listens to any more stays subscribed this long, or until this many
 * wait (a run publishes nothing after its end): its UNSUBSCRIBE then goes with the others, one
 * command for many runs instead of a socket write per run, and a listener that comes back
 * meanwhile (a join after a wait) finds it live.
 */
const UNSUBSCRIBE_AFTER_MS = 1_000;
const MAX_UNSUBSCRIBE_BATCH = 256;
/** How often a run event is sent again after its id collided with a later one. */
const MAX_ID_RETRIES = 3;

/** Escapes Redis glob characters, so a key prefix is matched literally inside a pattern. */
const globEscape = (s: string) => s.replace(/[\\*?[\]]/g, (ch) => `\\${ch}`);

/** An event waiting for its script call. */
interface Append {
  /** The run id, or the rolling log's key (a thread's, see thread-stream.ts). */
  log: string;
  rolling: boolean;
  event: string;
  data: string;
  /** Run logs: 0 = the log persists, else it expires this many seconds after this event (finish). */
  ttl: number;
  /** How often its id collided so far. */
  retries: number;
  /** Run logs: the id it was last sent with. */
  id: string;
  resolve: (id: string) => void;
  reject: (err: unknown) => void;
}

/**
 * Redis bus. Per run:
 * - `<prefix>run:<id>:log`, a Redis Stream holding every event (bounded, and
 *   expiring `ttl` seconds after the run ends) for replay and gap filling;
 * - `<prefix>run:<id>:ev`, a pub/sub channel carrying each event together with
 *   the id of the event before it in the log, so a subscriber that sees a jump
 *   reads the missing range from the log instead of losing events;
 * - `<prefix>run:<id>:ctl`, the cancel channel, heard by one pattern subscription per process.
 * XADD and PUBLISH run in one script, which publishes only if the XADD succeeded (a MULTI
 * would still publish an event whose XADD was refused, handing subscribers an event that is
 * not in the log). The process's appends, to every log, go in call order through one queue
 * with one script call on its way at a time: what is issued together, or while that call is
 * answered, goes in the next (a run's start: the thread's `running` and the run's
 * `metadata`; its end: its status, the thread's new state and the end marker; under load,
 * many runs' events). Channel subscriptions are gathered the same way; a channel left by its
 * last listener is unsubscribed up to a second later, with the others left meanwhile.
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
  /** How long a channel left by its last listener stays subscribed (UNSUBSCRIBE_AFTER_MS). */
  unsubscribeAfterMs?: number;
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
  /** Per rolling log (a thread's): the id Redis gave this process's last append to it. */
  const rollingLast = new Map<string, string>();
  /** Appends not sent yet, in call order, and whether a script call is on its way. */
  const outbox: Append[] = [];
  let sending = false;

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
      // subscription's log. The first "ready" is the first connection: nothing was lost (a
      // catch-up then only cost a needless XRANGE per subscription being opened).
      let connectedBefore = false;
      s.on("ready", () => {
        const reconnected = connectedBefore;
        connectedBefore = true;
        if (!reconnected || resyncs.size === 0) return;
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
  /**
   * Channels to subscribe, sent as one SUBSCRIBE once the current code yields, or once one of
   * the commands on their way is answered; channels to unsubscribe, sent as one UNSUBSCRIBE
   * once due (UNSUBSCRIBE_AFTER_MS). A channel whose last listener left is unsubscribed only
   * then: a listener that comes back before finds it live. A channel is never in both sets:
   * one is queued for UNSUBSCRIBE only once its SUBSCRIBE answered.
   */
  let toSubscribe = new Set<string>();
  let subscribed: { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void } | null = null;
  const toUnsubscribe = new Set<string>();
  let unsubscribeTimer: NodeJS.Timeout | null = null;
  let subscriptionsSending = 0;
  const subscribeSoon = (channel: string): Promise<void> => {
    if (toUnsubscribe.delete(channel)) return Promise.resolve();
    toSubscribe.add(channel);
    if (!subscribed) {
      let resolve!: () => void;
      let reject!: (err: unknown) => void;
      const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
      subscribed = { promise, resolve, reject };
      queueMicrotask(sendSubscriptions);
    }
    return subscribed.promise;
  };
  const unsubscribeLater = (channel: string) => {
    toUnsubscribe.add(channel);
    if (toUnsubscribe.size >= MAX_UNSUBSCRIBE_BATCH) unsubscribeNow();
    else unsubscribeTimer ??= setTimeout(unsubscribeNow, opts.unsubscribeAfterMs ?? UNSUBSCRIBE_AFTER_MS).unref();
  };
  /** One UNSUBSCRIBE for every channel left (none if every one came back meanwhile). */
  function unsubscribeNow(): void {
    if (unsubscribeTimer) clearTimeout(unsubscribeTimer);
    unsubscribeTimer = null;
    if (toUnsubscribe.size === 0) return;
    void getSubscriber().unsubscribe(...toUnsubscribe).catch(() => {});
    toUnsubscribe.clear();
  }
  function sendSubscriptions(): void {
    if (subscriptionsSending >= SUBSCRIPTIONS_IN_FLIGHT || toSubscribe.size === 0) return;
    const batch = subscribed!;
    const sent = getSubscriber().subscribe(...toSubscribe).then(() => batch.resolve(), batch.reject);
    toSubscribe = new Set();
    subscribed = null;
    subscriptionsSending++;
    void sent.finally(() => {
      subscriptionsSending--;
      sendSubscriptions();
    });
  }
  /** Per channel with listeners: its SUBSCRIBE, which every listener awaits (live once it answered). */
  const subscribing = new Map<string, Promise<unknown>>();
  const listen = async (channel: string, fn: (message: string) => void) => {
    let set = listeners.get(channel);
    if (!set) {
      set = new Set();
      listeners.set(channel, set);
      subscribing.set(channel, subscribeSoon(channel));
    }
    set.add(fn);
    const leave = () => {
      const s = listeners.get(channel);
      if (!s?.delete(fn) || s.size > 0) return false;
      listeners.delete(channel);
      subscribing.delete(channel);
      return true;
    };
    try {
      await subscribing.get(channel);
    } catch (err) {
      // Its SUBSCRIBE failed (it may still have reached Redis): undone at once, never revived.
      if (leave()) await subscriber?.unsubscribe(channel).catch(() => {});
      throw err;
    }
    return async () => {
      if (leave()) unsubscribeLater(channel);
    };
  };

  const readRange = async (runId: string, afterId: string | null): Promise<StreamEvent[]> => {
    const entries = await client.xrange(logKey(runId), afterId === null ? "-" : `(${afterId}`, "+");
    return entries.map(([id, fields]) => ({ id, event: fields[1] ?? "", data: fields[3] ?? "null" }));
  };

  /** Runs a script by its hash, loading it when Redis does not know it (restarted, flushed). */
  const runScript = (sha: string, script: string, numKeys: number, args: readonly (string | number)[]): Promise<unknown> =>
    client.evalsha(sha, numKeys, ...args).catch((err: unknown) => {
      if (/NOSCRIPT/.test(String((err as Error).message))) return client.eval(script, numKeys, ...args);
      throw err;
    });

  /** Queues an event; the queue is sent once the current code yields, or once the call on its way is answered. */
  function append(log: string, rolling: boolean, event: string, data: string, ttl: number): Promise<string> {
    return new Promise((resolve, reject) => {
      outbox.push({ log, rolling, event, data, ttl, retries: 0, id: "", resolve, reject });
      if (outbox.length === 1 && !sending) queueMicrotask(sendBatch);
    });
  }

  /** How many of the queued appends go in the next call. */
  function batchSize(): number {
    let chars = 0;
    let n = 0;
    for (; n < outbox.length && n < MAX_BATCH_EVENTS; n++) {
      chars += outbox[n]!.data.length;
      if (n > 0 && chars > MAX_BATCH_CHARS) break;
    }
    return n;
  }

  /** Sends the oldest queued appends in one script call, unless one is on its way. */
  function sendBatch(): void {
    if (sending || outbox.length === 0) return;
    sending = true;
    const batch = outbox.splice(0, batchSize());
    const keys: string[] = [];
    const args: (string | number)[] = [maxEvents, opts.ttlSecs];
    for (const a of batch) {
      keys.push(logKey(a.log), evChannel(a.log));
      if (a.rolling) {
        args.push("l", "*", rollingLast.get(a.log) ?? "", 0, a.event, a.data);
        continue;
      }
      const prev = lastIssued.get(a.log) ?? "";
      a.id = clock.next(a.log);
      // Set before the answer: the run's next event (in this batch or later) follows this one.
      boundedSet(lastIssued, a.log, a.id, maxTracked);
      args.push("r", a.id, prev, a.ttl, a.event, a.data);
    }
    runScript(APPEND_SHA, APPEND_SCRIPT, keys.length, [...keys, ...args])
      .then(
        (answers) => settle(batch, answers as string[]),
        (err: unknown) => settle(batch, null, err),
      )
      .catch((err: unknown) => opts.onError?.(err))
      .finally(() => {
        sending = false;
        sendBatch();
      });
  }

  /** Settles a batch's appends from the script's answers (null: the call failed). */
  function settle(batch: Append[], answers: string[] | null, failure?: unknown): void {
    const again: Append[] = [];
    batch.forEach((a, i) => {
      const answer = answers?.[i] ?? "!no answer";
      const ok = answer.startsWith("=");
      // Unknown or refused (e.g. Redis restarted mid-call): the log's next append reads its last id afresh.
      if (a.rolling) {
        if (ok) boundedSet(rollingLast, a.log, answer.slice(1), maxTracked);
        else rollingLast.delete(a.log);
      } else if (!ok && lastIssued.get(a.log) === a.id) lastIssued.delete(a.log);
      if (ok) return a.resolve(answer.slice(1));
      if (answer.startsWith("?")) {
        // Another process wrote a later id to this run's log (a previous lease holder, or an
        // earlier attempt whose clock was ahead): continue after it.
        clock.advance(a.log, answer.slice(1));
        if (++a.retries <= MAX_ID_RETRIES) return void again.push(a);
        return a.reject(new Error(`run ${a.log}: could not append after ${answer.slice(1)}`));
      }
      a.reject(answers ? new Error(answer.slice(1)) : failure);
    });
    // Ahead of what was queued meanwhile: a log's events stay in call order.
    outbox.unshift(...again);
  }

  return {
    publish: (runId, event, data, popts) => append(runId, popts?.rolling ?? false, event, data, 0),

    async finish(runId) {
      // The end marker and the log's expiry in one script.
      const id = await append(runId, false, END_EVENT, "null", opts.ttlSecs);
      // Unless the run was published to again since (a later attempt in this process).
      if ((lastIssued.get(runId) ?? id) !== id) return;
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

      /**
       * Messages that came before the subscription knew where it starts: the channel may carry
       * them before this SUBSCRIBE answers (another listener's subscription to it is still
       * live) and while the log is read. Handled once positioned: an older one is dropped, a
       * later one delivered or filled from the log.
       */
      let early: string[] | null = [];
      const onMessage = (message: string) => {
        if (early) return void early.push(message);
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
      const held = early;
      early = null;
      for (const message of held) onMessage(message);
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
      subscribed?.reject(new Error("bus closed"));
      subscribed = null;
      toSubscribe.clear();
      toUnsubscribe.clear();
      if (unsubscribeTimer) clearTimeout(unsubscribeTimer);
      unsubscribeTimer = null;
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
