/**
 * Node flags our servers run with. The image sets them in NODE_OPTIONS (Dockerfile) and `up`
 * passes them to the servers it starts.
 *
 * A larger young generation: with tens of runs in flight, V8's default semi-space (16 MiB on
 * a large machine, less in a small container) fills about every 100 ms while a third of it is
 * still in use by those runs, and each scavenge copies what is. With 64 MiB scavenges are ~3.5
 * times rarer (bench/RESULTS.md, "Eleventh measurement": one --trace-gc run each at concurrency
 * 32, main-thread GC pauses 6.6 % -> 4.5 % of the time). The cost is memory: the young
 * generation may take up to 192 MiB (3 x 64) per process under load.
 */
export const SERVER_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=64"];

/** The flag's name: `--max-semi-space-size=64` → `--max-semi-space-size` (V8 also accepts `_`). */
function flagName(flag: string): string {
  return flag.split("=", 1)[0]!.replaceAll("_", "-");
}

/**
 * SERVER_NODE_FLAGS minus those a child's NODE_OPTIONS already sets: flags on the command
 * line win over NODE_OPTIONS, and the operator's choice should.
 */
export function serverNodeFlags(nodeOptions: string | undefined): string[] {
  const set = new Set((nodeOptions ?? "").split(/\s+/).filter(Boolean).map(flagName));
  return SERVER_NODE_FLAGS.filter((f) => !set.has(flagName(f)));
}
