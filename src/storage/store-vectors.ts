/**
 * Text extraction and vector helpers for the store's semantic index
 * (langgraph.json `store.index`).
 *
 * Field paths follow LangGraph's store: "$" is the whole value; "a.b.c"
 * walks object keys; "a[0]" / "a[-1]" index arrays; "a[*]" or "a.*" fan out
 * over every element (or every value of an object). Each match is embedded
 * on its own; strings as they are, anything else as JSON. Missing paths are
 * skipped.
 */

type Segment = { kind: "key"; key: string } | { kind: "index"; index: number } | { kind: "all" };

export function parsePath(path: string): Segment[] {
  if (path === "$" || path === "") return [];
  const segs: Segment[] = [];
  const src = path.startsWith("$.") ? path.slice(2) : path;
  const re = /([^.[\]]+)|\[(-?\d+|\*)\]/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(src))) {
    if (m[1] !== undefined) segs.push(m[1] === "*" ? { kind: "all" } : { kind: "key", key: m[1] });
    else if (m[2] === "*") segs.push({ kind: "all" });
    else segs.push({ kind: "index", index: Number(m[2]) });
  }
  return segs;
}

/** The texts a path selects, each with a concrete field name (wildcards expanded to indexes/keys). */
export function textsAtPath(value: unknown, path: string): Array<{ field: string; text: string }> {
  const out: Array<{ field: string; text: string }> = [];
  const walk = (v: unknown, segs: Segment[], field: string) => {
    if (v === undefined || v === null) return;
    if (segs.length === 0) {
      out.push({ field: field || "$", text: typeof v === "string" ? v : JSON.stringify(v) });
      return;
    }
    const [s, ...rest] = segs as [Segment, ...Segment[]];
    if (s.kind === "key") {
      if (typeof v === "object" && !Array.isArray(v)) walk((v as Record<string, unknown>)[s.key], rest, field ? `${field}.${s.key}` : s.key);
    } else if (s.kind === "index") {
      if (Array.isArray(v)) {
        const i = s.index < 0 ? v.length + s.index : s.index;
        if (i >= 0 && i < v.length) walk(v[i], rest, `${field}[${i}]`);
      }
    } else if (Array.isArray(v)) {
      v.forEach((el, i) => walk(el, rest, `${field}[${i}]`));
    } else if (typeof v === "object") {
      for (const [k, el] of Object.entries(v as Record<string, unknown>)) walk(el, rest, field ? `${field}.${k}` : k);
    }
  };
  walk(value, parsePath(path), "");
  return out;
}

/** Every (field, text) to embed for an item, de-duplicated by field name. */
export function textsToIndex(value: Record<string, unknown>, paths: string[]): Array<{ field: string; text: string }> {
  const seen = new Map<string, string>();
  for (const p of paths) for (const t of textsAtPath(value, p)) if (!seen.has(t.field)) seen.set(t.field, t.text);
  return [...seen].map(([field, text]) => ({ field, text }));
}

/** The unit vector in the direction of v (a zero vector stays zero, so it scores 0 against anything). */
export function normalize(v: number[]): number[] {
  let n = 0;
  for (const x of v) n += x * x;
  n = Math.sqrt(n);
  return n === 0 ? v.map(() => 0) : v.map((x) => x / n);
}
