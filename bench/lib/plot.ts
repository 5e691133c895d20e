/**
 * Line charts drawn as SVG by hand and rasterised with @resvg/resvg-js (its prebuilt
 * binary ships inside an npm package: nothing is downloaded at install time). Text uses the
 * system fonts (DejaVu Sans here); without any installed font the labels are blank.
 */
import { writeFileSync } from "node:fs";
import { Resvg } from "@resvg/resvg-js";

export interface Series {
  name: string;
  color: string;
  dashed?: boolean;
  points: Array<[number, number]>;
}

export interface Panel {
  title: string;
  xLabel: string;
  yLabel: string;
  xLog?: boolean;
  yLog?: boolean;
  series: Series[];
}

const W = 760;
const PLOT_H = 276;
const M = { l: 78, r: 20, t: 44, b: 0 };
/** Panel height: the plot, its axis labels and a two-column legend under it. */
const panelHeight = (legendItems: number) => M.t + PLOT_H + 60 + Math.ceil(legendItems / 2) * 19 + 12;

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function fmt(v: number): string {
  if (v >= 1000) return `${(v / 1000).toFixed(v >= 10000 ? 0 : 1)}k`;
  if (v >= 10) return v.toFixed(0);
  if (v >= 1) return v.toFixed(1).replace(/\.0$/, "");
  return v.toPrecision(1);
}

function ticks(min: number, max: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** e;
        if (v >= min * 0.999 && v <= max * 1.001) out.push(v);
      }
    }
    return out;
  }
  const step = 10 ** Math.floor(Math.log10((max - min) / 5 || 1));
  const s = [1, 2, 5, 10].map((k) => k * step).find((k) => (max - min) / k <= 6) ?? step * 10;
  const out: number[] = [];
  for (let v = Math.ceil(min / s) * s; v <= max + 1e-9; v += s) out.push(v);
  return out;
}

function panelSvg(p: Panel, ox: number, oy: number, H: number): string {
  const pts = p.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!p.yLog || y > 0));
  if (pts.length === 0) return `<text x="${ox + W / 2}" y="${oy + H / 2}" text-anchor="middle">${esc(p.title)}: no data</text>`;
  let [x0, x1] = [Math.min(...pts.map((q) => q[0])), Math.max(...pts.map((q) => q[0]))];
  let [y0, y1] = [Math.min(...pts.map((q) => q[1])), Math.max(...pts.map((q) => q[1]))];
  if (p.yLog) {
    y0 = 10 ** Math.floor(Math.log10(y0));
    y1 = 10 ** Math.ceil(Math.log10(y1));
  } else {
    y0 = 0;
    y1 = y1 * 1.1 || 1;
  }
  if (x0 === x1) {
    x0 /= 2;
    x1 *= 2;
  }
  const pw = W - M.l - M.r;
  const ph = PLOT_H;
  const sx = (x: number) => ox + M.l + (p.xLog ? (Math.log(x) - Math.log(x0)) / (Math.log(x1) - Math.log(x0)) : (x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => oy + M.t + ph - (p.yLog ? (Math.log(y) - Math.log(y0)) / (Math.log(y1) - Math.log(y0)) : (y - y0) / (y1 - y0)) * ph;
  const out: string[] = [];
  out.push(`<text x="${ox + W / 2}" y="${oy + 26}" text-anchor="middle" font-size="17" font-weight="bold">${esc(p.title)}</text>`);
  out.push(`<rect x="${ox + M.l}" y="${oy + M.t}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`);
  for (const v of ticks(y0, y1, !!p.yLog)) {
    out.push(`<line x1="${ox + M.l}" x2="${ox + M.l + pw}" y1="${sy(v)}" y2="${sy(v)}" stroke="#ddd"/>`);
    out.push(`<text x="${ox + M.l - 6}" y="${sy(v) + 4}" text-anchor="end" font-size="12">${fmt(v)}</text>`);
  }
  const xs = [...new Set(pts.map((q) => q[0]))].sort((a, b) => a - b);
  for (const v of xs) {
    out.push(`<line x1="${sx(v)}" x2="${sx(v)}" y1="${oy + M.t}" y2="${oy + M.t + ph}" stroke="#eee"/>`);
    out.push(`<text x="${sx(v)}" y="${oy + M.t + ph + 18}" text-anchor="middle" font-size="12">${fmt(v)}</text>`);
  }
  out.push(`<text x="${ox + M.l + pw / 2}" y="${oy + M.t + ph + 38}" text-anchor="middle" font-size="13">${esc(p.xLabel)}</text>`);
  out.push(`<text transform="translate(${ox + 18},${oy + M.t + ph / 2}) rotate(-90)" text-anchor="middle" font-size="13">${esc(p.yLabel)}</text>`);
  for (const s of p.series) {
    const sp = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!p.yLog || y > 0)).sort((a, b) => a[0] - b[0]);
    if (sp.length === 0) continue;
    const d = sp.map(([x, y], i) => `${i ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2.2"${s.dashed ? ' stroke-dasharray="7,5"' : ""}/>`);
    for (const [x, y] of sp) out.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3.5" fill="${s.color}"/>`);
  }
  // Legend under the plot, two columns.
  p.series.forEach((s, i) => {
    const lx = ox + M.l + (i % 2) * (pw / 2);
    const ly = oy + M.t + ph + 60 + Math.floor(i / 2) * 19;
    out.push(`<line x1="${lx}" x2="${lx + 28}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2.5"${s.dashed ? ' stroke-dasharray="7,5"' : ""}/>`);
    out.push(`<text x="${lx + 34}" y="${ly}" font-size="12">${esc(s.name)}</text>`);
  });
  return out.join("\n");
}

export function renderPlot(panels: Panel[], title: string, file: string): void {
  const cols = Math.min(2, panels.length);
  const rows = Math.ceil(panels.length / cols);
  const H = panelHeight(Math.max(...panels.map((p) => p.series.length)));
  const width = cols * W;
  const height = rows * H + 40;
  const body = panels.map((p, i) => panelSvg(p, (i % cols) * W, 40 + Math.floor(i / cols) * H, H)).join("\n");
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${width / 2}" y="26" text-anchor="middle" font-size="19" font-weight="bold">${esc(title)}</text>
${body}
</svg>`;
  writeFileSync(file.replace(/\.png$/, ".svg"), svg);
  const png = new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" }, fitTo: { mode: "width", value: width } }).render().asPng();
  writeFileSync(file, png);
}

export const COLORS: Record<string, string> = {
  "op-one": "#d62728",
  "op-split": "#ff7f0e",
  official: "#1f77b4",
  "floor-exec": "#9467bd",
  "floor-pg": "#2ca02c",
  "floor-mem": "#7f7f7f",
};
