import type { DesiredDeployment } from "../types.js";

/**
 * Where the desired state comes from. `fetch` either returns the complete
 * desired state or throws: a source that cannot answer (unreachable,
 * erroring, invalid) changes nothing, so an outage never deletes anything.
 */
export interface DesiredStateSource {
  readonly kind: "control-plane" | "manifest" | "langgraph-json";
  /** Identifies this source (kind and address): a persisted state from another source is not reused. */
  readonly key: string;
  /** Poll interval when healthy. */
  readonly intervalMs: number;
  /** Longest wait between attempts while failing. */
  readonly maxBackoffMs: number;
  fetch(signal: AbortSignal): Promise<DesiredDeployment[]>;
  /** Optional push: calls `wake` when the state may have changed (a file watch). Returns the unsubscribe. */
  watch?(wake: () => void): () => void;
}
