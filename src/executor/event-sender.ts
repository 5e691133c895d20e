/**
 * A run's stream events, sent without waiting for each answer: the bus sends one run's events
 * in call order, so waiting only put Redis round trips on the run's path. At most `max` are
 * unanswered at once, so a graph that streams faster than Redis answers waits instead of
 * filling memory. After a failure every later send and `flush()` throw it.
 */
export function createEventSender(send: (event: string, data: string) => Promise<unknown>, max: number) {
  const unanswered = new Set<Promise<void>>();
  let failure: { err: unknown } | null = null;
  return {
    async send(event: string, data: string): Promise<void> {
      if (failure) throw failure.err;
      const p: Promise<void> = send(event, data).then(
        () => void unanswered.delete(p),
        (err: unknown) => {
          failure ??= { err };
          unanswered.delete(p);
        },
      );
      unanswered.add(p);
      if (unanswered.size >= max) await Promise.race(unanswered);
    },
    /** Resolves once every event sent so far was answered; rejects with the first failure. */
    async flush(): Promise<void> {
      await Promise.all(unanswered);
      if (failure) throw failure.err;
    },
  };
}
