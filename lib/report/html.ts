// report.html: one self-contained file (inline CSS, inline SVG drawn by an inline script,
// the data as JSON in the page) that opens offline in any browser.
import type { MetricsRecord } from '../cli/run-folder';
import { ERROR_TRAP, REPORT_SCRIPT } from './client';
import type { Map2d } from './map';

export interface ReportInput {
  title: string;
  config: Record<string, unknown>;
  metrics: readonly MetricsRecord[];
  /** Final numbers (the evaluation). */
  final: Record<string, number>;
  map: Map2d | null;
  classNames: readonly string[] | null;
  /** How the map was made, e.g. 'UMAP of 2,000 test embeddings'. */
  mapCaption: string;
  /** The Result card in words (default: the final numbers by key). */
  result?: readonly ReportRow[];
  /** Words for the chart series: per-epoch monitors and final metrics, by key. */
  seriesNames?: SeriesNames;
}

export interface ReportRow { name: string; value: string; note: string }
export interface SeriesNames { monitors?: Record<string, string>; final?: Record<string, string> }
export interface Bar { name: string; color: string; value: number }

interface Series { name: string; color: string; points: [number, number][]; markers?: boolean; width?: number }

const TAB10 = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

export function classPalette(k: number): string[] {
  if (k <= TAB10.length) return TAB10.slice(0, k);
  // Evenly spaced hues, alternating lightness so that neighbours differ.
  return Array.from({ length: k }, (_, i) => `hsl(${Math.round((i * 360) / k)}, 65%, ${i % 2 ? 38 : 55}%)`);
}

/** Averages consecutive points into at most `max` buckets. */
export function downsample(points: [number, number][], max: number): [number, number][] {
  if (points.length <= max) return points;
  const out: [number, number][] = [];
  const per = points.length / max;
  for (let b = 0; b < max; b++) {
    const from = Math.floor(b * per), to = Math.floor((b + 1) * per);
    let sx = 0, sy = 0;
    for (let i = from; i < to; i++) { sx += points[i][0]; sy += points[i][1]; }
    out.push([sx / (to - from), sy / (to - from)]);
  }
  return out;
}

const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * The series of the two charts, from metrics.jsonl records (epochs and steps counted from 1).
 * With fewer than two epochs an accuracy curve would be lone dots: the accuracies come as
 * bars instead (accuracyBars), and accuracySeries is empty.
 */
export function chartSeries(metrics: readonly MetricsRecord[], names: SeriesNames = {}): { lossSeries: Series[]; accuracySeries: Series[]; accuracyBars: Bar[] } {
  const stepsIn = new Map<number, number>();
  for (const r of metrics) if (r.type === 'step' && num(r.epoch) && num(r.step))
    stepsIn.set(r.epoch, Math.max(stepsIn.get(r.epoch) ?? 0, r.step));
  const stepLoss: [number, number][] = [];
  for (const r of metrics) if (r.type === 'step' && num(r.epoch) && num(r.step) && num(r.loss))
    stepLoss.push([r.epoch - 1 + r.step / (stepsIn.get(r.epoch) ?? 1), r.loss]);
  const epochs = metrics.filter((r) => r.type === 'epoch' && num(r.epoch));
  const epochLoss = epochs.filter((r) => num(r.meanLoss)).map((r) => [r.epoch as number, r.meanLoss as number] as [number, number]);
  const accuracyKeys = [...new Set(epochs.flatMap((r) => Object.keys(r).filter((k) => /acc/i.test(k) && num(r[k]))))];
  const palette = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf'];
  const accuracySeries: Series[] = accuracyKeys.map((k, i) => ({
    name: names.monitors?.[k] ?? k, color: palette[i % palette.length], markers: true,
    points: epochs.filter((r) => num(r[k])).map((r) => [r.epoch as number, r[k] as number] as [number, number]),
  }));
  const evalRecord = [...metrics].reverse().find((r) => r.type === 'eval');
  const lastEpoch = epochs.length > 0 ? (epochs[epochs.length - 1].epoch as number) : 0;
  if (evalRecord)
    Object.keys(evalRecord).filter((k) => /acc/i.test(k) && num(evalRecord[k])).forEach((k, i) => accuracySeries.push({
      name: `${names.final?.[k] ?? k} (final)`, color: palette[(accuracyKeys.length + i) % palette.length], markers: true, width: 0,
      points: [[lastEpoch, evalRecord[k] as number]],
    }));
  const accuracyBars: Bar[] = epochs.length < 2
    ? accuracySeries.map((s) => ({ name: s.name, color: s.color, value: s.points[s.points.length - 1][1] }))
    : [];
  return {
    accuracyBars,
    lossSeries: [
      { name: 'step loss', color: '#9fb7d4', points: downsample(stepLoss, 2000), width: 1 },
      { name: 'epoch mean loss', color: '#1f4e89', points: epochLoss, markers: true, width: 2 },
    ],
    accuracySeries: epochs.length < 2 ? [] : accuracySeries,
  };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** JSON that is safe inside a <script> element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

function table(rows: [string, unknown][]): string {
  return `<table>${rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(typeof v === 'number' ? String(+v.toPrecision(6)) : String(v))}</td></tr>`).join('')}</table>`;
}

function resultTable(rows: readonly ReportRow[]): string {
  return `<table class="result">${rows.map((r) => `<tr><th>${escapeHtml(r.name)}</th><td class="value">${escapeHtml(r.value)}</td><td class="note">${escapeHtml(r.note)}</td></tr>`).join('')}</table>`;
}

export function renderReport(input: ReportInput): string {
  const { lossSeries, accuracySeries, accuracyBars } = chartSeries(input.metrics, input.seriesNames);
  const k = input.map ? Math.max(0, ...input.map.labels) + 1 : 0;
  const classNames = Array.from({ length: Math.max(k, input.classNames?.length ?? 0) }, (_, i) => input.classNames?.[i] ?? `class ${i}`);
  const payload = {
    lossSeries, accuracySeries, accuracyBars, classNames, palette: classPalette(classNames.length),
    map: input.map ? {
      x: Array.from(input.map.x, (v) => +v.toFixed(4)), y: Array.from(input.map.y, (v) => +v.toFixed(4)), labels: Array.from(input.map.labels),
    } : null,
  };
  const title = escapeHtml(input.title);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 24px auto; max-width: 1360px; padding: 0 16px; color: #1d2330; }
h1 { font-size: 22px; margin: 0 0 12px; } h2 { font-size: 16px; margin: 0 0 8px; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(640px, 1fr)); gap: 20px; }
section { background: #fff; border: 1px solid #dde2ea; border-radius: 6px; padding: 12px 14px; }
table { border-collapse: collapse; } th, td { text-align: left; padding: 2px 12px 2px 0; } th { font-weight: 600; color: #4a5568; }
svg.chart { max-width: 100%; height: auto; display: block; }
.plot-area { fill: #fafbfc; stroke: #c9d1dc; } .grid { stroke: #e6eaf0; } .tick { font-size: 11px; fill: #56606e; }
.axis-label { font-size: 12px; fill: #2d3543; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; margin-top: 6px; font-size: 12px; }
.legend-item i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; }
#errors { background: #fde8e8; color: #8a1c1c; padding: 8px; border-radius: 4px; }
.caption { color: #56606e; font-size: 12px; margin: 4px 0 0; }
table.result td.value { font-size: 16px; font-weight: 600; white-space: nowrap; } table.result td.note { color: #56606e; font-size: 12px; }
table.result th, table.result td { padding: 4px 12px 4px 0; vertical-align: baseline; }
</style>
<script>${ERROR_TRAP}</script>
</head>
<body>
<h1>${title}</h1>
<div id="errors" hidden></div>
<div class="grid2">
<section><h2>Result</h2>${resultTable(input.result ?? Object.entries(input.final).map(([k, v]) => ({ name: k, value: String(+v.toPrecision(6)), note: '' })))}</section>
<section><h2>Configuration</h2>${table(Object.entries(input.config))}</section>
<section><h2>Loss</h2><div id="loss-chart"></div></section>
<section><h2>Accuracy</h2><div id="accuracy-chart"></div></section>
<section><h2>Test embeddings</h2><div id="map-chart"></div><p class="caption">${escapeHtml(input.mapCaption)}</p></section>
</div>
<script type="application/json" id="report-data">${scriptJson(payload)}</script>
<script>${REPORT_SCRIPT}</script>
</body>
</html>
`;
}
