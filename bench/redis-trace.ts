/**
 * Which part of openplane issues which Redis commands for one run: starts the stores and
 * `openplane serve` (API + worker), runs `--runs` trivial runs.wait one after another under
 * Redis MONITOR, and counts commands per run by subsystem (BullMQ keys vs the stream bus's
 * run:<id> keys), separating those a client sent from those a Lua script ran.
 *
 *   npx tsx bench/redis-trace.ts [--runs 20]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { startInfra } from "./lib/infra.js";
import { checkValues, startTarget } from "./lib/targets.js";

const { values } = parseArgs({ options: { runs: { type: "string", default: "20" } } });
const runs = Number(values.runs);
const workDir = mkdtempSync(join(tmpdir(), "openplane-redis-trace-"));
const infra = await startInfra({ pgUnsafe: false, workDir });
const tag = Math.random().toString(36).slice(2, 8);
const t = await startTarget("op-one", { infra, workDir, jobsPerWorker: 10, logLevel: "info", tag });
try {
  const thread = await t.ops.newThread();
  // Warm up (first run loads scripts, prepares statements).
  checkValues("trivial", await t.ops.wait(thread, "trivial"));
  const monitor = await new Redis(infra.redisUri).monitor();
  const counts = new Map<string, number>();
  monitor.on("monitor", (_time: string, args: string[], source: string) => {
    const cmd = (args[0] ?? "?").toLowerCase();
    if (cmd === "monitor" || cmd === "info") return;
    const joined = args.slice(1).join(" ");
    const who = /bull:/.test(joined) ? "BullMQ" : /run:[0-9a-f-]+:(log|ev|ctl)/.test(joined) ? "stream bus" : "other";
    const key = `${who}\t${source === "lua" ? "in script" : "sent"}\t${cmd}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  });
  for (let i = 0; i < runs; i++) checkValues("trivial", await t.ops.wait(thread, "trivial"));
  // Let the worker's post-run commands (finish, job completion) land.
  await new Promise((r) => setTimeout(r, 1_000));
  monitor.disconnect();
  const rows = [...counts.entries()].map(([k, v]) => [...k.split("\t"), (v / runs).toFixed(2)] as string[]).sort((a, b) => Number(b[3]) - Number(a[3]));
  const total = (who: string, how?: string) => rows.filter((r) => r[0] === who && (!how || r[1] === how)).reduce((s, r) => s + Number(r[3]), 0);
  console.log(`Redis commands per trivial run (${runs} runs, MONITOR; includes idle polling during the runs):\n`);
  console.log("| subsystem | sent / in script | command | per run |\n|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
  for (const who of ["BullMQ", "stream bus", "other"]) {
    console.log(`\n${who}: ${total(who).toFixed(1)} per run (${total(who, "sent").toFixed(1)} sent by the client, ${total(who, "in script").toFixed(1)} inside scripts)`);
  }
} finally {
  await t.stop();
  await infra.stop();
  rmSync(workDir, { recursive: true, force: true });
}
process.exit(0);
