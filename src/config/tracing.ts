import { z } from "zod";

/** Where one copy of every trace goes. The key is a secret: never log this object. */
export interface TraceReplica {
  apiUrl: string;
  apiKey: string;
  projectName?: string;
}

export interface TracingConfig {
  /** Primary LangSmith (LANGSMITH_ENDPOINT + LANGSMITH_API_KEY); unused for writes when replicas are set. */
  apiUrl: string;
  apiKey: string | null;
  project: string;
  /** LANGSMITH_RUNS_ENDPOINTS: every trace is written to each of these. */
  replicas: TraceReplica[];
}

const replicaArray = z.array(
  z
    .object({
      api_url: z.string().url(),
      api_key: z.string().min(1),
      project_name: z.string().min(1).nullable().optional(),
    })
    .strict(),
);
const replicaObject = z.record(z.string().url(), z.string().min(1));

/**
 * Parses LANGSMITH_RUNS_ENDPOINTS: an object `{url: key}` or an array of
 * `{api_url, api_key, project_name?}`. Problems are described without the
 * value (it holds API keys).
 */
export function parseRunsEndpoints(text: string): { replicas: TraceReplica[]; form: "object" | "array" } | { problem: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { problem: "LANGSMITH_RUNS_ENDPOINTS: is not valid JSON" };
  }
  if (Array.isArray(json)) {
    const parsed = replicaArray.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      return { problem: `LANGSMITH_RUNS_ENDPOINTS: item ${issue.path.join(".")}: ${issue.message}` };
    }
    return {
      form: "array",
      replicas: parsed.data.map((r) => ({ apiUrl: trim(r.api_url), apiKey: r.api_key, projectName: r.project_name ?? undefined })),
    };
  }
  const parsed = replicaObject.safeParse(json);
  if (!parsed.success) {
    return { problem: 'LANGSMITH_RUNS_ENDPOINTS: must be an object {"<url>": "<api key>"} or an array of {api_url, api_key, project_name?}' };
  }
  return { form: "object", replicas: Object.entries(parsed.data).map(([url, key]) => ({ apiUrl: trim(url), apiKey: key })) };
}

const trim = (url: string) => url.replace(/\/+$/, "");
