import { isMessage } from "../stream/serialize.js";

type Emit = (event: string, data: unknown) => Promise<unknown>;

interface ChunkLike {
  id?: string;
  concat?: (other: unknown) => unknown;
}

/**
 * The legacy `messages` stream mode, built from LangGraph's token stream and
 * values: `messages/metadata` the first time a message id is seen,
 * `messages/partial` with the message accumulated so far after each token,
 * and `messages/complete` once for every message that appears in the state.
 */
export class LegacyMessages {
  private readonly partial = new Map<string, unknown>();
  private readonly complete = new Set<string>();

  constructor(private readonly emit: Emit) {}

  async onToken(tuple: unknown): Promise<void> {
    const [chunk, metadata] = tuple as [ChunkLike, unknown];
    const id = chunk?.id;
    if (!id) return;
    const prev = this.partial.get(id) as ChunkLike | undefined;
    if (!prev) await this.emit("messages/metadata", { [id]: { metadata } });
    const acc = prev && typeof prev.concat === "function" ? prev.concat(chunk) : chunk;
    this.partial.set(id, acc);
    await this.emit("messages/partial", [acc]);
  }

  async onValues(values: unknown): Promise<void> {
    for (const msg of messagesIn(values)) {
      const id = (msg as ChunkLike).id;
      if (!id || this.complete.has(id)) continue;
      this.complete.add(id);
      await this.emit("messages/complete", [msg]);
    }
  }
}

function messagesIn(values: unknown): unknown[] {
  if (isMessage(values)) return [values];
  if (Array.isArray(values)) return values.filter(isMessage);
  if (typeof values !== "object" || values === null) return [];
  return Object.values(values).flatMap((v) => (Array.isArray(v) ? v.filter(isMessage) : isMessage(v) ? [v] : []));
}
