/**
 * Rebuilds the Markdown report and the plot of a finished bench run from its JSON:
 *   tsx bench/replot.ts bench/results/<timestamp>.json
 * (e.g. after a change of the report format; the measurements are not touched).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { markdown, plot } from "./lib/report.js";
import type { Results } from "./lib/report.js";

const file = process.argv[2];
if (!file?.endsWith(".json")) {
  console.error("usage: tsx bench/replot.ts bench/results/<timestamp>.json");
  process.exit(2);
}
const r = JSON.parse(readFileSync(file, "utf8")) as Results;
r.profileCounters ??= [];
for (const c of r.profileCounters) c.breakdown ??= null;
for (const p of r.points) p.load.warmupS ??= NaN;
const base = file.slice(0, -".json".length);
writeFileSync(`${base}.md`, markdown(r));
console.log(`${base}.md`);
if (plot(r, `${base}.png`)) console.log(`${base}.png`);
