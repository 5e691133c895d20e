/** Test data for runs written straight through the repositories (no API request). */
import { systemAssistantId } from "../../src/domain/assistant.js";
import type { Run, RunKwargs } from "../../src/domain/run.js";
import { uuidv7 } from "../../src/lib/uuid.js";
import type { CreateRunInput, createRunsRepo } from "../../src/storage/runs.js";

/** The kwargs of a plain run (values stream, no interrupts, no webhook), with `over` applied. */
export const runKwargs = (over: Partial<RunKwargs> = {}): RunKwargs => ({
  input: {},
  command: null,
  config: { configurable: {} },
  context: null,
  stream_mode: ["values"],
  interrupt_before: null,
  interrupt_after: null,
  webhook: null,
  feedback_keys: null,
  temporary: false,
  subgraphs: false,
  resumable: false,
  checkpoint_id: null,
  checkpoint: null,
  durability: null,
  ...over,
});

/** Inserts a run through the repository (no assistant token, so never "stale"). */
export async function insertRun(runs: Pick<ReturnType<typeof createRunsRepo>, "create">, input: CreateRunInput): Promise<{ run: Run; inflight: string[] }> {
  const created = await runs.create(input);
  if (created.outcome !== "created") throw new Error(`run ${input.run_id}: ${created.outcome}`);
  return created;
}

/** A new run of the system assistant "agent" on a thread (enqueue, no delay), with `over` applied. */
export function runInput(threadId: string, over: Partial<CreateRunInput> = {}): CreateRunInput {
  return {
    run_id: uuidv7(),
    thread_id: threadId,
    if_not_exists: "reject",
    assistant_id: systemAssistantId("agent"),
    graph_id: "agent",
    metadata: {},
    kwargs: runKwargs({ input: { n: 1 } }),
    multitask_strategy: "enqueue",
    after_seconds: 0,
    ...over,
  };
}
