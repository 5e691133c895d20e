import type { Run } from "../domain/run.js";
import type { GraphRegistry, RunnableGraph, StateSnapshotLike } from "../graphs/registry.js";
import { coerceError } from "../lib/errors.js";
import type { CheckpointWrite } from "../storage/checkpoint-sql.js";
import type { RunWrites } from "../storage/checkpointer.js";
import type { RunStreamBus } from "../stream/bus.js";
import { toJson, toPlain } from "../stream/serialize.js";
import { createEventSender } from "./event-sender.js";
import { LegacyMessages } from "./legacy-messages.js";
import type { Tracing } from "./tracing.js";

export type AbortReason = "interrupt" | "rollback" | "timeout" | "shutdown" | "lease_lost";

export interface RunOutcome {
  status: "success" | "error" | "interrupted" | "timeout";
  values: Record<string, unknown> | null;
  interrupts: Record<string, unknown[]>;
  hasPendingNext: boolean;
  error: { error: string; message: string } | null;
  /** Checkpoint writes to commit with the outcome (ExecuteDeps.writesWithOutcome); else none. */
  writes: CheckpointWrite[];
}

interface StreamEventLike {
  event: string;
  run_id: string;
  tags?: string[];
  data?: { chunk?: unknown };
}

const INTERRUPT = "__interrupt__";

/** Stream events a run may have sent and not yet seen answered (event-sender.ts). */
const MAX_UNANSWERED_EVENTS = 64;

/** Stream modes a client may ask for, mapped to LangGraph's own mode names. */
const GRAPH_MODE: Record<string, string> = {
  values: "values",
  updates: "updates",
  "messages-tuple": "messages",
  custom: "custom",
  debug: "debug",
  tasks: "tasks",
  checkpoints: "checkpoints",
};

export interface ExecuteDeps {
  graphs: GraphRegistry;
  bus: RunStreamBus;
  tracing: Tracing | null;
  /** Pipelines the run's checkpoint writes until settled (RunAwarePostgresSaver.writeBehind). */
  writeBehind: (runId: string) => RunWrites;
  /**
   * The caller records the outcome with the run's last checkpoint writes in one statement
   * (runs.finish): a run that ends with values hands over the writes not sent yet instead of
   * committing them itself.
   */
  writesWithOutcome: boolean;
}

/**
 * Executes one claimed run: streams the graph, publishes every event to the
 * run's stream, and reports the outcome once every checkpoint it wrote is
 * committed, or is in `writes` for the caller to commit with the outcome. It
 * never touches run rows: the worker records the outcome.
 * Throws only when aborted for shutdown or a lost lease, or when its start
 * could not be published, so the caller can hand the run back instead of
 * finishing it.
 */
export async function executeRun(deps: ExecuteDeps, run: Run & { attempt: number }, signal: AbortSignal): Promise<RunOutcome> {
  const { kwargs } = run;
  const sender = createEventSender((event, data) => deps.bus.publish(run.run_id, event, data), MAX_UNANSWERED_EVENTS);
  const publish = (event: string, data: unknown) => sender.send(event, toJson(data));
  // Not waited for before the graph starts: the bus sends a run's events in call order.
  const announced = deps.bus.publish(run.run_id, "metadata", toJson({ run_id: run.run_id, attempt: run.attempt })).then(
    () => null,
    (err: unknown) => ({ err }),
  );
  /** Throws if the start could not be published (the run is then handed back). */
  const wasAnnounced = async () => {
    const failed = await announced;
    if (failed) throw failed.err;
  };
  // With "sync" durability each step waits for its checkpoint: the saver must not answer early.
  const writes = kwargs.durability === "sync" ? null : deps.writeBehind(run.run_id);

  const configurable: Record<string, unknown> = {
    ...(kwargs.config.configurable ?? {}),
    thread_id: run.thread_id,
    ...(kwargs.checkpoint_id ? { checkpoint_id: kwargs.checkpoint_id } : {}),
    ...(kwargs.checkpoint ?? {}),
  };
  const graphId = String(configurable.graph_id ?? "");
  const baseConfig = { ...kwargs.config, configurable };
  const threadConfig = { configurable: { thread_id: run.thread_id } };
  let graph: RunnableGraph | null = null;
  try {
    // A client streaming the run from this process gets its first event before the graph's
    // first CPU-bound stretch (all of a short graph's run) holds up this event loop: the event
    // is in the log, and the subscriber's copy, read with the answer, is handled first.
    if (deps.bus.watched(run.run_id)) {
      await wasAnnounced();
      await new Promise((resolve) => setImmediate(resolve));
    }
    const loaded = await deps.graphs.get(graphId, baseConfig);
    graph = loaded.graph;
    const runtime = loaded.runtime;
    const input = await chooseInput(graph, run, threadConfig, runtime.Command);
    const wanted = new Set<string>(kwargs.stream_mode);
    const legacy = wanted.has("messages") ? new LegacyMessages(publish) : null;
    const graphModes = new Set<string>(["values"]);
    for (const m of wanted) if (GRAPH_MODE[m]) graphModes.add(GRAPH_MODE[m]);
    if (legacy) graphModes.add("messages");
    const options = {
      ...baseConfig,
      runId: run.run_id,
      metadata: { ...(kwargs.config.metadata as object | undefined), ...run.metadata, run_id: run.run_id, run_attempt: run.attempt, graph_id: graphId, assistant_id: run.assistant_id, thread_id: run.thread_id },
      context: kwargs.context ?? undefined,
      streamMode: [...graphModes],
      subgraphs: kwargs.subgraphs,
      interruptBefore: kwargs.interrupt_before ?? undefined,
      interruptAfter: kwargs.interrupt_after ?? undefined,
      durability: kwargs.durability ?? undefined,
      signal,
      ...(deps.tracing ? { callbacks: [deps.tracing.tracer()], runName: graphId } : {}),
    };
    // The root graph's last values are the thread's state at the end, unless it stopped at an
    // interrupt (LangGraph then streams a values chunk holding only `__interrupt__`).
    let lastValues: Record<string, unknown> | undefined;
    let interrupted = false;
    const onChunk = async (chunk: unknown) => {
      const [ns, mode, data] = (kwargs.subgraphs ? chunk : [[], ...(chunk as [string, unknown])]) as [string[], string, unknown];
      if (mode === "values" && ns.length === 0 && data && typeof data === "object") {
        if (INTERRUPT in data) interrupted = true;
        else lastValues = data as Record<string, unknown>;
      }
      const suffix = ns.length > 0 ? `|${ns.join("|")}` : "";
      if (mode === "messages") {
        if (wanted.has("messages-tuple")) await publish(`messages${suffix}`, data);
        if (legacy) await legacy.onToken(data);
        return;
      }
      if (mode === "values" && legacy && ns.length === 0) await legacy.onValues(data);
      if (wanted.has(mode)) await publish(`${mode}${suffix}`, data);
    };
    if (wanted.has("events")) {
      // streamEvents carries the other modes inside the root run's on_chain_stream events.
      const events = (graph as unknown as { streamEvents(i: unknown, o: unknown): AsyncIterable<StreamEventLike> }).streamEvents(input, {
        ...options,
        version: "v2",
      });
      for await (const ev of events) {
        if (ev.tags?.includes("langsmith:hidden")) continue;
        if (ev.event === "on_chain_stream" && ev.run_id === run.run_id) await onChunk(ev.data?.chunk);
        await publish("events", ev);
      }
    } else {
      for await (const chunk of await graph.stream(input, options)) await onChunk(chunk);
    }
    // Ended with values: its last writes may go with the outcome. Otherwise the state is read
    // from the checkpoints below: they must all be committed first.
    const done = !interrupted && lastValues !== undefined;
    const values = done ? toPlain<Record<string, unknown>>(lastValues) : null;
    const handOver = done && deps.writesWithOutcome ? writes : null;
    // What it streamed is durable (or handed over below) and sent now; a failed write fails
    // the run. Its events go first: past take() nothing may fail, or the writes taken are lost.
    await Promise.all([handOver ? null : writes?.settle(), sender.flush()]);
    await wasAnnounced();
    const tail: CheckpointWrite[] = handOver ? await handOver.take() : [];
    if (values) return { status: "success", values, interrupts: {}, hasPendingNext: false, error: null, writes: tail };
    // Interrupted (the interrupts and next tasks come from the checkpoint) or nothing streamed.
    const state = await graph.getState(threadConfig);
    return { status: "success", ...summarise(state), error: null, writes: [] };
  } catch (err) {
    const reason = signal.aborted ? (signal.reason as AbortReason) : null;
    // Its writes so far land before the state is read or the run is handed back; past its
    // lease another worker may own the run, so what is not sent yet is dropped.
    await (reason === "lease_lost" ? writes?.abandon() : writes?.settle())?.catch(() => {});
    await sender.flush().catch(() => {});
    if (await announced) throw err;
    if (reason === "shutdown" || reason === "lease_lost") throw err;
    if (reason === "interrupt" || reason === "rollback") {
      // An interrupted run keeps the checkpoints it wrote: the thread shows that progress.
      const state = graph ? await graph.getState(threadConfig).catch(() => null) : null;
      return state
        ? { status: "interrupted", ...summarise(state), error: null, writes: [] }
        : { status: "interrupted", values: null, interrupts: {}, hasPendingNext: false, error: null, writes: [] };
    }
    const e = reason === "timeout" ? { error: "TimeoutError", message: "Run exceeded BG_JOB_TIMEOUT_SECS" } : describe(err);
    await publish("error", e);
    await sender.flush();
    return { status: reason === "timeout" ? "timeout" : "error", values: null, interrupts: {}, hasPendingNext: false, error: e, writes: [] };
  }
}

/**
 * A retried attempt continues from the checkpoints this run already wrote
 * (input null resumes); a first attempt uses the run's input or command.
 */
async function chooseInput(
  graph: RunnableGraph,
  run: Run & { attempt: number },
  threadConfig: Record<string, unknown>,
  Command: new (a: Record<string, unknown>) => unknown,
): Promise<unknown> {
  if (run.attempt > 1) {
    const state = await graph.getState(threadConfig);
    if (state.metadata?.run_id === run.run_id) return null;
  }
  const { command, input } = run.kwargs;
  if (command) return new Command(command as Record<string, unknown>);
  return input ?? null;
}

function summarise(state: StateSnapshotLike) {
  const interrupts: Record<string, unknown[]> = {};
  for (const t of state.tasks ?? []) if (t.interrupts && t.interrupts.length > 0) interrupts[t.id] = t.interrupts;
  return {
    values: toPlain<Record<string, unknown>>(state.values ?? {}),
    interrupts: toPlain<Record<string, unknown[]>>(interrupts),
    hasPendingNext: (state.next ?? []).length > 0,
  };
}

/** An error as a run's `error` (its class name and message). */
export function describe(err: unknown): { error: string; message: string } {
  const e = coerceError(err);
  return { error: e.constructor?.name && e.constructor.name !== "Error" ? e.constructor.name : e.name, message: e.message };
}

/** The thread's current values (after a rollback removed a run's checkpoints). */
export async function readThreadValues(graphs: GraphRegistry, graphId: string, threadId: string): Promise<Record<string, unknown> | null> {
  const { graph } = await graphs.get(graphId, { configurable: { thread_id: threadId } });
  const state = await graph.getState({ configurable: { thread_id: threadId } });
  return state.config?.configurable?.checkpoint_id ? toPlain<Record<string, unknown>>(state.values ?? {}) : null;
}
