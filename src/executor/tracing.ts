import { LangChainTracer } from "@langchain/core/tracers/tracer_langchain";
import { Client } from "langsmith";
import type { TracingConfig } from "../config/tracing.js";

export interface Tracing {
  /** A callback handler that traces one run (to every replica when configured). */
  tracer(): LangChainTracer;
  /** Waits until queued trace batches are sent (on shutdown). */
  flush(): Promise<void>;
}

/**
 * LangSmith tracing built from config, not from the environment: each client
 * has `omitTracedRuntimeInfo`, because the SDK otherwise copies LANGSMITH_*
 * variables into every trace's metadata, and LANGSMITH_RUNS_ENDPOINTS (which
 * holds API keys) is not among the names it filters out. Each replica gets a
 * client of its own, so a key is only ever sent to its own endpoint.
 */
export function createTracing(cfg: TracingConfig): Tracing {
  const client = (apiUrl: string, apiKey: string | undefined) =>
    new Client({ apiUrl, apiKey, omitTracedRuntimeInfo: true, autoBatchTracing: true });
  const primary = client(cfg.apiUrl, cfg.apiKey ?? undefined);
  const replicas = cfg.replicas.map((r) => ({
    apiUrl: r.apiUrl,
    projectName: r.projectName ?? cfg.project,
    client: client(r.apiUrl, r.apiKey),
  }));
  return {
    tracer: () =>
      new LangChainTracer({
        client: primary,
        projectName: cfg.project,
        replicas: replicas.length > 0 ? replicas : undefined,
      }),
    async flush() {
      await Promise.allSettled([primary, ...replicas.map((r) => r.client)].map((c) => c.awaitPendingTraceBatches()));
    },
  };
}
