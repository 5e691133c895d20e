/** Run and thread statuses and the rules that relate them (api.md §3.1–§3.2). */
export const RUN_STATUSES = ["pending", "running", "success", "error", "timeout", "interrupted"] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
export const TERMINAL_RUN_STATUSES: readonly RunStatus[] = ["success", "error", "timeout", "interrupted"];
export const isTerminal = (s: RunStatus): boolean => TERMINAL_RUN_STATUSES.includes(s);

export const THREAD_STATUSES = ["idle", "busy", "interrupted", "error"] as const;
export type ThreadStatus = (typeof THREAD_STATUSES)[number];

export const MULTITASK_STRATEGIES = ["reject", "interrupt", "rollback", "enqueue"] as const;
export type MultitaskStrategy = (typeof MULTITASK_STRATEGIES)[number];

export const STREAM_MODES = [
  "values",
  "updates",
  "messages",
  "messages-tuple",
  "events",
  "debug",
  "custom",
  "tasks",
  "checkpoints",
] as const;
export type StreamMode = (typeof STREAM_MODES)[number];

export type CancelAction = "interrupt" | "rollback";

export interface RunConfig {
  tags?: string[];
  recursion_limit?: number;
  configurable?: Record<string, unknown>;
  [key: string]: unknown;
}

/** What a worker needs to execute a run, stored on the run row. */
export interface RunKwargs {
  input: unknown;
  command: { resume?: unknown; update?: unknown; goto?: unknown } | null;
  config: RunConfig;
  context: Record<string, unknown> | null;
  stream_mode: StreamMode[];
  interrupt_before: string[] | "*" | null;
  interrupt_after: string[] | "*" | null;
  webhook: string | null;
  feedback_keys: string[] | null;
  temporary: boolean;
  subgraphs: boolean;
  resumable: boolean;
  checkpoint_id: string | null;
  checkpoint: Record<string, unknown> | null;
  durability: "sync" | "async" | "exit" | null;
}

export interface Run {
  run_id: string;
  thread_id: string;
  assistant_id: string;
  created_at: string;
  updated_at: string;
  status: RunStatus;
  metadata: Record<string, unknown>;
  kwargs: RunKwargs;
  multitask_strategy: MultitaskStrategy;
}

/** Worker bookkeeping, never shown to API clients. */
export interface RunLease {
  attempt: number;
  lease_owner: string | null;
  lease_expires_at: string | null;
  cancel_action: CancelAction | null;
}

