/** Test data for runs written straight through the repositories (no API request). */
import type { Run, RunKwargs } from "../../src/domain/run.js";
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
