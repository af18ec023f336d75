// Writes a run folder's report.html from its metrics and the evaluation's test embeddings.
import { writeFileAtomic } from '../io/atomic';
import type { RunFolder } from '../cli/run-folder';
import type { EvaluationResult } from '../cli/trainer';
import { renderReport } from './html';
import { embeddingMap } from './map';

const METHOD_NAMES: Record<string, string> = { supcon: 'SupCon', simclr: 'SimCLR', ce: 'Cross-entropy' };

export interface ReportOptions {
  /** Points on the map (default 2,000). */
  maxPoints?: number;
}

export function writeRunReport(
  run: RunFolder, evaluation: EvaluationResult, classNames: readonly string[] | null, options: ReportOptions = {},
): string {
  const config = run.readConfig();
  const e = evaluation.embeddings;
  const map = e ? embeddingMap(e.data, e.dim, e.labels, { maxPoints: options.maxPoints, seed: config.seed }) : null;
  const html = renderReport({
    title: `${METHOD_NAMES[config.method] ?? config.method} on ${config.dataset}: ${config.encoder}, ${config.epochs} epochs`,
    config: { ...config },
    metrics: run.readMetrics(),
    final: evaluation.metrics,
    map,
    classNames,
    mapCaption: map
      ? `UMAP (umap-js) of ${map.x.length.toLocaleString('en-US')} of ${e!.labels.length.toLocaleString('en-US')} test representations (${e!.dim}-d), coloured by class.`
      : 'The evaluation returned no embeddings.',
  });
  writeFileAtomic(run.reportFile, html);
  return run.reportFile;
}
