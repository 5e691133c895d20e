/**
 * Node flags our servers run with. The image sets them in NODE_OPTIONS (Dockerfile) and `up`
 * passes them to the servers it starts.
 *
 * A larger young generation: with tens of runs in flight, V8's default 16 MiB semi-space fills
 * in a few milliseconds, while most of what those runs allocated is still in use. Each
 * scavenge then copies it, and promotes it to the old generation, whose collections cost far
 * more. With 64 MiB most of it is garbage by the next scavenge (bench/RESULTS.md, "Eleventh
 * measurement": about 1 ms less CPU per run at concurrency 32). The cost is memory: the young
 * generation may grow by up to about 150 MiB under load.
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
