/** Test data for runs written straight through the repositories (no API request). */
import type { RunKwargs } from "../../src/domain/run.js";

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
