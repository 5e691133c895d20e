import type { StreamEvent } from "./bus.js";

/** A single-consumer async queue: producers push, one `for await` loop consumes. */
export class EventQueue implements AsyncIterable<StreamEvent> {
  private items: StreamEvent[] = [];
  private waiter: (() => void) | null = null;
  private ended = false;

  push(ev: StreamEvent): void {
    if (this.ended) return;
    this.items.push(ev);
    this.wake();
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  get isEnded(): boolean {
    return this.ended;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<StreamEvent> {
    for (;;) {
      if (this.items.length > 0) {
        const batch = this.items;
        this.items = [];
        yield* batch;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }
}
