/**
 * A LIFO stack of cleanup callbacks. Register a resource's cleanup the moment
 * it is acquired; `release()` runs every callback even if one throws, and
 * rethrows the first error. Calling `release()` twice returns the same promise.
 */
export class Releasers {
  private readonly stack: Array<{ name: string; fn: () => unknown }> = [];
  private releasing: Promise<void> | null = null;

  add(name: string, fn: () => unknown): void {
    if (this.releasing) throw new Error(`cannot register "${name}" after release started`);
    this.stack.push({ name, fn });
  }

  release(onError?: (name: string, err: unknown) => void): Promise<void> {
    this.releasing ??= (async () => {
      let first: unknown;
      while (this.stack.length > 0) {
        const { name, fn } = this.stack.pop()!;
        try {
          await fn();
        } catch (err) {
          onError?.(name, err);
          first ??= err;
        }
      }
      if (first !== undefined) throw first;
    })();
    return this.releasing;
  }
}
