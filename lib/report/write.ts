// Writes a run folder's report.html from its metrics and the evaluation's test embeddings.
import fs from 'node:fs';
import { writeFileAtomic } from '../io/atomic';
import type { RunFolder, SavedConfig } from '../cli/run-folder';
import type { EvaluationResult } from '../cli/trainer';
import { renderReport, ReportRow } from './html';
import { embeddingMapAsync } from './map';

const METHOD_NAMES: Record<string, string> = { supcon: 'SupCon', simclr: 'SimCLR', ce: 'Cross-entropy' };

/** "1 epoch", "5 epochs". */
export function plural(n: number, word: string): string {
  return `${n.toLocaleString('en-US')} ${word}${n === 1 ? '' : 's'}`;
}

/** "45 s", "12 min 05 s", "1 h 02 min". */
export function formatSeconds(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** The words for the metric keys the package's trainer writes; others are shown by key. */
export const METRIC_WORDS: Record<string, { name: string; note: string }> = {
  testAccuracy: {
    name: 'Linear evaluation: test accuracy',
    note: "a linear classifier trained on the frozen encoder's representations of all training images, tested on all test images",
  },
  knnAccuracy: {
    name: 'kNN: test accuracy',
    note: 'each test image takes the weighted vote of its 200 nearest training images (cosine similarity of the representations), over all training and test images; ' +
      'the per-epoch kNN monitor in the Accuracy chart uses only the first 10,000 training and 2,000 test images, so it can differ',
  },
  classifierAccuracy: {
    name: "The model's own classifier: test accuracy",
    note: 'the cross-entropy head trained with the encoder',
  },
};

/** The per-epoch kNN monitor runs on subsets, so it is not the same number as the final kNN. */
export const MONITOR_WORDS: Record<string, string> = {
  knnAccuracy: 'kNN monitor (at most 10,000 train / 2,000 test images)',
  trainAccuracy: 'training accuracy',
};

const percent = (v: number) => `${(100 * v).toFixed(1)}%`;

export interface ReportOptions {
  /** Points on the map (default 2,000). */
  maxPoints?: number;
  /** Told how far the map is (may throw to stop, or pause). */
  progress?: (done: number, total: number, label: string) => void | Promise<void>;
  /** The time the report says it was written (default: now). */
  now?: Date;
}

export async function writeRunReport(
  run: RunFolder, evaluation: EvaluationResult, classNames: readonly string[] | null, options: ReportOptions = {},
): Promise<string> {
  const saved = JSON.parse(fs.readFileSync(run.configFile, 'utf8')) as SavedConfig;
  const config = saved.config;
  const metrics = run.readMetrics();
  const e = evaluation.embeddings;
  const map = e
    ? await embeddingMapAsync(e.data, e.dim, e.labels, {
      maxPoints: options.maxPoints, seed: config.seed, progress: (done, total) => options.progress?.(done, total, 'map (UMAP)'),
    })
    : null;
  const epochs = metrics.filter((r) => r.type === 'epoch');
  const trainSeconds = epochs.reduce((sum, r) => sum + (typeof r.seconds === 'number' ? r.seconds : 0), 0);
  const order = Object.keys(METRIC_WORDS);
  const rank = (k: string) => (order.includes(k) ? order.indexOf(k) : order.length);
  const result: ReportRow[] = Object.entries(evaluation.metrics).sort(([a], [b]) => rank(a) - rank(b)).map(([k, v]) => {
    const words = METRIC_WORDS[k];
    return { name: words?.name ?? k, value: k.toLowerCase().includes('accuracy') ? percent(v) : String(+v.toPrecision(6)), note: words?.note ?? '' };
  });
  const method = METHOD_NAMES[config.method] ?? config.method;
  result.push(
    { name: 'Training', value: `${plural(epochs.length, 'epoch')} in ${formatSeconds(trainSeconds)}`, note: `${method}, the ${config.encoder} encoder, batch ${config.batchSize}` },
    { name: 'Run started', value: formatDate(new Date(saved.createdAt)), note: '' },
    { name: 'Report written', value: formatDate(options.now ?? new Date()), note: '' },
  );
  if (config.datasetSource) result.push({ name: 'Data', value: config.dataset, note: config.datasetSource });
  const html = renderReport({
    title: `${method} on ${config.dataset}: ${config.encoder}, ${plural(config.epochs, 'epoch')}`,
    config: { ...config },
    metrics,
    final: evaluation.metrics,
    result,
    seriesNames: { monitors: MONITOR_WORDS, final: Object.fromEntries(Object.entries(METRIC_WORDS).map(([k, w]) => [k, w.name])) },
    map,
    classNames,
    mapCaption: map
      ? `UMAP (umap-js, on cosine neighbours) of ${map.x.length.toLocaleString('en-US')} of ${e!.labels.length.toLocaleString('en-US')} test representations (${e!.dim}-d), coloured by class.`
      : 'The evaluation returned no embeddings.',
  });
  writeFileAtomic(run.reportFile, html);
  return run.reportFile;
}

/** "2026-03-04 05:06 UTC". */
function formatDate(d: Date): string {
  return Number.isNaN(d.getTime()) ? 'unknown' : d.toISOString().replace('T', ' ').replace(/:\d\d\.\d+Z$/, ' UTC');
}
