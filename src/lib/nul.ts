/**
 * PostgreSQL text and jsonb cannot hold the NUL character. Requests carrying one are refused
 * (http/validate.ts uses nulPath to say where), but a graph may still produce one in its state
 * or an error message. Where such output is copied into a jsonb column (the thread's cached
 * values, a run's error), withoutNul removes NULs, as the library's PostgresSaver removes them
 * from checkpoint metadata; the checkpoint itself (bytea) keeps the exact value.
 */

/**
 * The path of the first string or key holding a NUL character, or null when none does. Runs on
 * every run's end (withoutNul): the path is only built on the way back from a hit.
 */
export function nulPath(v: unknown): string[] | null {
  if (typeof v === "string") return v.includes("\0") ? [] : null;
  if (v === null || typeof v !== "object") return null;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const found = nulPath(v[i]);
      if (found) return [String(i), ...found];
    }
    return null;
  }
  for (const k in v) {
    if (k.includes("\0")) return [k];
    const found = nulPath((v as Record<string, unknown>)[k]);
    if (found) return [k, ...found];
  }
  return null;
}

/** The value with NULs removed from its strings and keys; a value without any is returned as it is. */
export function withoutNul<T>(value: T): T {
  return nulPath(value) ? (strip(value) as T) : value;
}

function strip(v: unknown): unknown {
  if (typeof v === "string") return v.replaceAll("\0", "");
  if (v === null || typeof v !== "object") return v;
  // What JSON.stringify would send (toJSON: dates and the like) is what gets cleaned.
  if (typeof (v as { toJSON?: unknown }).toJSON === "function") return strip((v as { toJSON(): unknown }).toJSON());
  if (Array.isArray(v)) return v.map(strip);
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k.replaceAll("\0", ""), strip(x)]));
}
