import { EventEmitter } from "node:events";
import type { CancelAction } from "../domain/run.js";
import { END_EVENT, IdClock, compareIds, isFromStart } from "./bus.js";
import type { RunStreamBus, StreamEvent, Subscription } from "./bus.js";
import { EventQueue } from "./event-queue.js";

interface RunLog {
  events: StreamEvent[];
  listeners: Set<(ev: StreamEvent) => void>;
  expiry: NodeJS.Timeout | null;
}

/**
 * In-process bus for a single-process deployment without Redis (the embedded
 * default). Same contract as the Redis bus; nothing crosses process boundaries.
 */
export function createMemoryBus(opts: { ttlSecs: number; maxEvents?: number }): RunStreamBus {
  const logs = new Map<string, RunLog>();
  const control = new EventEmitter().setMaxListeners(0);
  const clock = new IdClock();
  const maxEvents = opts.maxEvents ?? 10_000;

  const logFor = (runId: string): RunLog => {
    let log = logs.get(runId);
    if (!log) {
      log = { events: [], listeners: new Set(), expiry: null };
      logs.set(runId, log);
    }
    return log;
  };

  const release = (runId: string, log: RunLog) => {
    if (log.listeners.size === 0 && log.events.length === 0) logs.delete(runId);
  };

  return {
    async publish(runId, event, data, popts) {
      const log = logFor(runId);
      if (log.expiry) {
        // A new attempt of the run after an earlier end marker: keep the log alive.
        clearTimeout(log.expiry);
        log.expiry = null;
      }
      if (popts?.rolling) {
        // Expires ttl after its latest event; its clock goes with it (ids stay time-based).
        log.expiry = setTimeout(() => {
          log.events = [];
          log.expiry = null;
          clock.forget(runId);
          release(runId, log);
        }, opts.ttlSecs * 1000);
        log.expiry.unref();
      }
      const last = log.events.at(-1);
      if (last) clock.advance(runId, last.id);
      const ev = { id: clock.next(runId), event, data };
      log.events.push(ev);
      if (log.events.length > maxEvents) log.events.splice(0, log.events.length - maxEvents);
      for (const l of log.listeners) l(ev);
      return ev.id;
    },

    async finish(runId) {
      await this.publish(runId, END_EVENT, "null");
      clock.forget(runId);
      const log = logFor(runId);
      log.expiry = setTimeout(() => {
        log.events = [];
        log.expiry = null;
        release(runId, log);
      }, opts.ttlSecs * 1000);
      log.expiry.unref();
    },

    async subscribe(runId, { after }) {
      const log = logFor(runId);
      const queue = new EventQueue();
      let lastSeen: string | null = null;
      const deliver = (ev: StreamEvent) => {
        if (lastSeen !== null && compareIds(ev.id, lastSeen) <= 0) return;
        lastSeen = ev.id;
        if (ev.event === END_EVENT) queue.end();
        else queue.push(ev);
      };
      if (after !== undefined) {
        const from = isFromStart(after) ? null : after;
        for (const ev of log.events) if (from === null || compareIds(ev.id, from) > 0) deliver(ev);
      } else {
        // Live only, but a run that already ended must still end the subscription.
        const last = log.events.at(-1);
        if (last) lastSeen = last.id;
        if (last?.event === END_EVENT) queue.end();
      }
      log.listeners.add(deliver);
      const close = async () => {
        log.listeners.delete(deliver);
        queue.end();
        release(runId, log);
      };
      const sub: Subscription = {
        [Symbol.asyncIterator]: () => queue[Symbol.asyncIterator](),
        drainAndStop: () => queue.end(),
        close,
      };
      return sub;
    },

    // Events reach subscribers within publish(): nothing to wait for.
    watched: () => false,

    async sendControl(runId, action) {
      control.emit(runId, action);
    },

    async onControl(runId, handler: (a: CancelAction) => void) {
      control.on(runId, handler);
      return async () => {
        control.off(runId, handler);
      };
    },

    async close() {
      for (const log of logs.values()) if (log.expiry) clearTimeout(log.expiry);
      logs.clear();
      control.removeAllListeners();
    },
  };
}
