import type { WorkloadStatus } from "../types.js";

/** Everything a driver needs to run one revision of one deployment. */
export interface WorkloadSpec {
  deploymentId: string;
  revisionId: string;
  /** Deployment name (log prefix, cache paths). */
  name: string;
  /** Makes the revision's code available: returns the project directory and its langgraph.json. */
  prepare(signal: AbortSignal): Promise<{ dir: string; configFile: string }>;
  /** Complete environment of the server (secrets included; never on argv). */
  env: Record<string, string>;
  /** Working directory of the server; default the project directory. */
  cwd?: string;
  /** Health path, e.g. "/ok" (or "<MOUNT_PREFIX>/ok"). */
  healthPath: string;
  /** Removes secret values from text bound for logs and status messages. */
  redact(text: string): string;
}

/** An error that retrying cannot fix (bad source, missing langgraph.json): the revision fails at once. */
export class PermanentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PermanentError";
  }
}

/**
 * Runs workloads somewhere (child processes here; containers or pods in
 * other drivers). The reconciler only starts, stops and observes.
 */
export interface WorkloadDriver {
  /** Starts (and keeps restarting) the workload. A no-op if it exists. */
  start(spec: WorkloadSpec): void;
  /**
   * Drains and removes the workload. Resolves once it is gone. `quiesce`, if
   * given, is awaited before the server is signalled (the gateway waits for
   * the requests it still has in flight there).
   */
  stop(deploymentId: string, revisionId: string, opts?: { quiesce?: () => Promise<void> }): Promise<void>;
  /** What runs now. */
  list(): WorkloadStatus[];
  /** Called whenever a workload changes state. */
  onChange(listener: () => void): void;
  /** Stops every workload (drain within `graceMs`). Idempotent. */
  close(graceMs: number): Promise<void>;
}
