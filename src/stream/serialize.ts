/**
 * JSON for the wire. LangChain messages become the plain dicts the official
 * server sends (`{type: "ai", content, id, tool_calls, ...}`) instead of their
 * `{lc: 1, type: "constructor", ...}` serialised form. Duck-typed, so messages
 * from any installed copy of @langchain/core qualify.
 */
export function toJson(value: unknown): string {
  return JSON.stringify(value, replacer) ?? "null";
}

function replacer(this: unknown, key: string, value: unknown): unknown {
  const raw = (this as Record<string, unknown> | null)?.[key];
  if (isMessage(raw)) return messageToDict(raw);
  if (typeof value === "bigint") return value.toString();
  if (raw instanceof Error) return { error: raw.name, message: raw.message };
  if (raw instanceof Uint8Array) return Buffer.from(raw).toString("base64");
  return value;
}

interface MessageLike {
  _getType(): string;
  toJSON(): { kwargs?: Record<string, unknown> };
  lc_kwargs: Record<string, unknown>;
}

export function isMessage(v: unknown): v is MessageLike {
  return (
    typeof v === "object" &&
    v !== null &&
    typeof (v as MessageLike)._getType === "function" &&
    typeof (v as MessageLike).toJSON === "function" &&
    "lc_kwargs" in v
  );
}

export function messageToDict(m: MessageLike): Record<string, unknown> {
  const kwargs = m.toJSON().kwargs ?? {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(kwargs)) out[k] = v;
  out.type = m._getType();
  out.id ??= (m as unknown as { id?: string }).id ?? null;
  return out;
}

/** Turns message instances inside a value into plain dicts (for values stored as jsonb). */
export function toPlain<T = unknown>(value: unknown): T {
  return JSON.parse(toJson(value)) as T;
}
