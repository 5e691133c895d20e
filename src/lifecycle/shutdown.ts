/**
 * First SIGTERM/SIGINT: graceful shutdown (bounded by `deadlineMs`). A second
 * signal, or the deadline, exits at once. `run` must be idempotent.
 */
export function installShutdown(opts: {
  run: (signal: string) => Promise<void>;
  deadlineMs: number;
  log: (msg: string, extra?: Record<string, unknown>) => void;
}): void {
  let started = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (started) {
      opts.log("second signal: exiting now", { signal });
      process.exit(130);
    }
    started = true;
    opts.log("shutting down", { signal, deadline_ms: opts.deadlineMs });
    const timer = setTimeout(() => {
      opts.log("shutdown deadline passed: exiting");
      process.exit(1);
    }, opts.deadlineMs);
    timer.unref();
    opts.run(signal).then(
      () => process.exit(0),
      (err) => {
        opts.log("shutdown failed", { err: String(err) });
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}
