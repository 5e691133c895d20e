/**
 * PostgreSQL text and jsonb cannot hold the NUL character. Requests carrying one are refused
 * (http/validate.ts), but a graph may still produce one in its state or an error message.
 * Where such output is copied into a jsonb column (the thread's cached values, a run's error),
 * NULs are removed, as the library's PostgresSaver removes them from checkpoint metadata; the
 * checkpoint itself (bytea) keeps the exact value. Values without a NUL are returned as they are.
 */
export function withoutNul<T>(value: T): T {
  return hasNul(value) ? (strip(value) as T) : value;
}

function hasNul(v: unknown): boolean {
  if (typeof v === "string") return v.includes("\0");
  if (v === null || typeof v !== "object") return false;
  if (Array.isArray(v)) return v.some(hasNul);
  for (const k in v) if (k.includes("\0") || hasNul((v as Record<string, unknown>)[k])) return true;
  return false;
}

function strip(v: unknown): unknown {
  if (typeof v === "string") return v.replaceAll("\0", "");
  if (v === null || typeof v !== "object") return v;
  // What JSON.stringify would send (toJSON: dates and the like) is what gets cleaned.
  if (typeof (v as { toJSON?: unknown }).toJSON === "function") return strip((v as { toJSON(): unknown }).toJSON());
  if (Array.isArray(v)) return v.map(strip);
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k.replaceAll("\0", ""), strip(x)]));
}
