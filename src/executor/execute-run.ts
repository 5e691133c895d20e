import type { Run } from "../domain/run.js";
import type { GraphRegistry, RunnableGraph, StateSnapshotLike } from "../graphs/registry.js";
import { coerceError } from "../lib/errors.js";
import type { RunStreamBus } from "../stream/bus.js";
import { toJson, toPlain } from "../stream/serialize.js";

export type AbortReason = "interrupt" | "rollback" | "timeout" | "shutdown" | "lease_lost";

export interface RunOutcome {
  status: "success" | "error" | "interrupted" | "timeout";
  values: Record<string, unknown> | null;
  interrupts: Record<string, unknown[]>;
  hasPendingNext: boolean;
  error: { error: string; message: string } | null;
}

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

/**
 * Executes one claimed run: streams the graph, publishes every event to the
 * run's stream, and reports the outcome. It never touches run rows: the worker
 * records the outcome. Throws only when aborted for shutdown or a lost lease,
 * so the caller can hand the run back instead of finishing it.
 */
export async function executeRun(
  deps: { graphs: GraphRegistry; bus: RunStreamBus },
  run: Run & { attempt: number },
  signal: AbortSignal,
): Promise<RunOutcome> {
  const { kwargs } = run;
  const publish = (event: string, data: unknown) => deps.bus.publish(run.run_id, event, toJson(data));
  await publish("metadata", { run_id: run.run_id, attempt: run.attempt });

  const configurable: Record<string, unknown> = {
    ...(kwargs.config.configurable ?? {}),
    thread_id: run.thread_id,
    ...(kwargs.checkpoint_id ? { checkpoint_id: kwargs.checkpoint_id } : {}),
    ...(kwargs.checkpoint ?? {}),
  };
  const graphId = String(configurable.graph_id ?? "");
  const baseConfig = { ...kwargs.config, configurable };
  try {
    const { graph, runtime } = await deps.graphs.get(graphId, baseConfig);
    const threadConfig = { configurable: { thread_id: run.thread_id } };
    const input = await chooseInput(graph, run, threadConfig, runtime.Command);
    const modes = kwargs.stream_mode.map((m) => GRAPH_MODE[m]).filter((m): m is string => !!m);
    const graphModes = [...new Set([...modes, "values"])];
    const stream = await graph.stream(input, {
      ...baseConfig,
      metadata: { ...(kwargs.config.metadata as object | undefined), ...run.metadata, run_id: run.run_id, run_attempt: run.attempt, graph_id: graphId, assistant_id: run.assistant_id, thread_id: run.thread_id },
      context: kwargs.context ?? undefined,
      streamMode: graphModes,
      subgraphs: kwargs.subgraphs,
      interruptBefore: kwargs.interrupt_before ?? undefined,
      interruptAfter: kwargs.interrupt_after ?? undefined,
      durability: kwargs.durability ?? undefined,
      signal,
    });
    const wanted = new Set(modes);
    for await (const chunk of stream) {
      const [ns, mode, data] = (kwargs.subgraphs ? chunk : [[], ...(chunk as [string, unknown])]) as [string[], string, unknown];
      if (!wanted.has(mode)) continue;
      const name = mode === "messages" ? "messages" : mode;
      await publish(ns.length > 0 ? `${name}|${ns.join("|")}` : name, data);
    }
    const state = await graph.getState(threadConfig);
    return { status: "success", ...summarise(state), error: null };
  } catch (err) {
    const reason = signal.aborted ? (signal.reason as AbortReason) : null;
    if (reason === "shutdown" || reason === "lease_lost") throw err;
    if (reason === "interrupt" || reason === "rollback") {
      return { status: "interrupted", values: null, interrupts: {}, hasPendingNext: false, error: null };
    }
    const e = reason === "timeout" ? { error: "TimeoutError", message: "Run exceeded BG_JOB_TIMEOUT_SECS" } : describe(err);
    await publish("error", e);
    return { status: reason === "timeout" ? "timeout" : "error", values: null, interrupts: {}, hasPendingNext: false, error: e };
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

function describe(err: unknown): { error: string; message: string } {
  const e = coerceError(err);
  return { error: e.constructor?.name && e.constructor.name !== "Error" ? e.constructor.name : e.name, message: e.message };
}
