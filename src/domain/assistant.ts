import { uuidv5 } from "../lib/uuid.js";

/** Namespace the official server uses for system assistant ids (UUID DNS namespace + 1). */
export const SYSTEM_ASSISTANT_NAMESPACE = "6ba7b821-9dad-11d1-80b4-00c04fd430c8";

export const systemAssistantId = (graphId: string): string => uuidv5(graphId, SYSTEM_ASSISTANT_NAMESPACE);

export interface Assistant {
  assistant_id: string;
  graph_id: string;
  config: Record<string, unknown>;
  context: Record<string, unknown>;
  metadata: Record<string, unknown>;
  name: string;
  description: string | null;
  version: number;
  created_at: string;
  updated_at: string;
}

export interface Thread {
  thread_id: string;
  created_at: string;
  updated_at: string;
  state_updated_at: string;
  metadata: Record<string, unknown>;
  config: Record<string, unknown>;
  status: import("./run.js").ThreadStatus;
  values: Record<string, unknown> | null;
  interrupts: Record<string, unknown[]>;
  error: unknown;
}
