// report.html of real run folders (the toy trainer through the training loop), as a person
// would read it: the title's plural, a Result card in words with the run time and date,
// the kNN monitor told apart from the final kNN, and a one-epoch run drawn as bars instead
// of lone dots. Rendered in headless Chromium; a screenshot of each page is written to
// SUPCON_REPORT_SCREENSHOT_DIR (or a scratch folder) to look at.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runTraining } from '../dist/lib/cli/train-loop.js';
import { chartSeries } from '../dist/lib/report/html.js';
import { formatSeconds, plural, writeRunReport } from '../dist/lib/report/write.js';
import { headless, requireChromium } from './fixtures/browser';
import { syntheticSet, toyFactory } from './fixtures/toy-trainer.mjs';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'supcon-report-page-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const chromium = requireChromium('report-page.test.ts');

let runs = 0;
async function runFolder(epochs: number) {
  const out = path.join(root, `run-${epochs}-${runs++}`);
  await runTraining({
    method: 'ce', dataset: 'synthetic', encoder: 'mlp', epochs, batchSize: 8, lr: 0.5, temperature: 0.1,
    augmentation: 'none', device: 'cpu', seed: 5, linearEpochs: 1, limit: 0, testLimit: 0, out,
  }, {
    factory: toyFactory(), stream: { write: () => true },
    loadData: () => ({ train: syntheticSet(120, 3, 4, 1), test: syntheticSet(60, 3, 4, 2) }),
    writeReport: (run, e, names, hooks) => writeRunReport(run, e, names, { ...hooks, now: new Date('2026-03-04T05:06:07Z') }),
  });
  return path.join(out, 'report.html');
}

describe('report words', () => {
  it('plurals and durations', () => {
    expect(plural(1, 'epoch')).toBe('1 epoch');
    expect(plural(5, 'epoch')).toBe('5 epochs');
    expect(plural(12000, 'image')).toBe('12,000 images');
    expect(formatSeconds(45.4)).toBe('45 s');
    expect(formatSeconds(725)).toBe('12 min 05 s');
    expect(formatSeconds(3720)).toBe('1 h 02 min');
  });

  it('one epoch: accuracies as bars, no lone dots; two or more: curves', () => {
    const one = [{ type: 'step', epoch: 1, step: 1, loss: 3 }, { type: 'epoch', epoch: 1, meanLoss: 3, knnAccuracy: 0.7 }, { type: 'eval', testAccuracy: 0.8, knnAccuracy: 0.75 }];
    const names = { monitors: { knnAccuracy: 'kNN monitor' }, final: { knnAccuracy: 'kNN', testAccuracy: 'linear' } };
    const a = chartSeries(one, names);
    expect(a.accuracySeries).toEqual([]);
    expect(a.accuracyBars.map((b) => [b.name, b.value])).toEqual([['kNN monitor', 0.7], ['linear (final)', 0.8], ['kNN (final)', 0.75]]);
    const two = [...one.slice(0, 2), { type: 'epoch', epoch: 2, meanLoss: 2, knnAccuracy: 0.72 }, one[2]];
    const b = chartSeries(two, names);
    expect(b.accuracyBars).toEqual([]);
    expect(b.accuracySeries[0]).toMatchObject({ name: 'kNN monitor', points: [[1, 0.7], [2, 0.72]] });
  });

  it('the page: title, Result card in words with run time and dates', async () => {
    const html = fs.readFileSync(await runFolder(1), 'utf8');
    expect(html).toContain('<title>Cross-entropy on synthetic: mlp, 1 epoch</title>');
    expect(html).not.toMatch(/1 epochs/);
    expect(html).toMatch(/<th>Linear evaluation: test accuracy<\/th><td class="value">\d+\.\d%<\/td>/);
    expect(html).toMatch(/<th>Training<\/th><td class="value">1 epoch in \d+ s<\/td>/);
    expect(html).toMatch(/<th>Run started<\/th><td class="value">\d{4}-\d\d-\d\d \d\d:\d\d UTC<\/td>/);
    expect(html).toContain('<th>Report written</th><td class="value">2026-03-04 05:06 UTC</td>');
    expect(html).not.toMatch(/<th>testAccuracy<\/th>/);
  });
});

describe.skipIf(!chromium)('the report in headless chromium', () => {
  it.each([1, 3])('a %i-epoch run renders without script errors, and a screenshot is taken', async (epochs) => {
    const file = await runFolder(epochs);
    const dom = headless(chromium!, root, ['--virtual-time-budget=10000', '--dump-dom', `file://${file}`]);
    expect(dom.status, dom.stderr).toBe(0);
    const out = dom.stdout;
    expect(out).toMatch(/<html[^>]*data-rendered="true"/);
    expect(out).not.toMatch(/data-errors=/);
    const accuracy = out.slice(out.indexOf('id="accuracy-chart"'), out.indexOf('id="map-chart"'));
    if (epochs === 1) {
      expect((accuracy.match(/class="bar"/g) ?? []).length).toBe(2); // trainAccuracy monitor, final testAccuracy
      expect(accuracy).not.toMatch(/class="marker"/);
      expect(accuracy).toContain('One epoch: the accuracies as bars');
      expect(accuracy).toContain('Linear evaluation: test accuracy (final)');
    } else {
      expect(accuracy).not.toMatch(/class="bar"/);
      expect((accuracy.match(/class="series"/g) ?? []).length).toBe(2);
      expect((accuracy.match(/class="marker"/g) ?? []).length).toBe(3 + 1);
    }
    const dir = process.env.SUPCON_REPORT_SCREENSHOT_DIR ?? root;
    fs.mkdirSync(dir, { recursive: true });
    const shot = path.join(dir, `report-${epochs}-epoch.png`);
    const png = headless(chromium!, root, ['--window-size=1400,1500', '--hide-scrollbars', `--screenshot=${shot}`, `file://${file}`]);
    expect(png.status, png.stderr).toBe(0);
    expect(fs.readFileSync(shot).subarray(1, 4).toString()).toBe('PNG');
  }, 120_000);
});
