// The HTML report: series from metrics lines, the UMAP map, and the page itself rendered in a
// real headless browser (Debian's chromium; the test says so and skips when it is absent).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chartSeries, classPalette, downsample, renderReport } from '../dist/lib/report/html.js';
import { embeddingMap } from '../dist/lib/report/map.js';
import { rng } from './reference';
import { headless as headlessIn, requireChromium } from './fixtures/browser';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'supcon-report-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** Ten separated Gaussian clusters in `dim` dimensions (class k around 4 * e_k). */
function clusters(n: number, dim: number, seed: number) {
  const r = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const labels = Int32Array.from({ length: n }, (_, i) => i % 10);
  const data = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) data[i * dim + j] = gauss() * 0.5 + (j === labels[i] ? 4 : 0);
  return { data, labels };
}

function metricsLines(epochs: number, steps: number) {
  const out: Record<string, unknown>[] = [];
  for (let e = 0; e < epochs; e++) {
    let sum = 0;
    for (let s = 0; s < steps; s++) {
      const loss = 5 * Math.exp(-(e * steps + s) / 40) + 1 + 0.1 * Math.sin(s);
      sum += loss;
      out.push({ type: 'step', epoch: e + 1, step: s + 1, loss, lr: 0.1 });
    }
    out.push({ type: 'epoch', epoch: e + 1, meanLoss: sum / steps, seconds: 3.2, knnAccuracy: 0.6 + 0.05 * e, trainAccuracy: 0.55 + 0.06 * e });
  }
  out.push({ type: 'eval', testAccuracy: 0.91, knnAccuracy: 0.89 });
  return out as { type: string }[];
}

describe('report data', () => {
  it('chart series: step losses at fractional epochs, epoch means, accuracy per epoch plus the final value', () => {
    const { lossSeries, accuracySeries } = chartSeries(metricsLines(3, 4));
    expect(lossSeries[0].points.length).toBe(12);
    expect(lossSeries[0].points[0][0]).toBe(0.25);
    expect(lossSeries[0].points[11][0]).toBe(3);
    expect(lossSeries[1].points.map((p) => p[0])).toEqual([1, 2, 3]);
    expect(accuracySeries.map((s) => s.name)).toEqual(['knnAccuracy', 'trainAccuracy', 'testAccuracy (final)', 'knnAccuracy (final)']);
    expect(accuracySeries[0].points).toEqual([1, 2, 3].map((e) => [e, 0.6 + 0.05 * (e - 1)]));
    expect(accuracySeries[2].points).toEqual([[3, 0.91]]);
  });

  it('downsample keeps the mean of each bucket', () => {
    const pts = Array.from({ length: 10 }, (_, i) => [i, i * i] as [number, number]);
    expect(downsample(pts, 20)).toBe(pts);
    expect(downsample(pts, 5)).toEqual([[0.5, 0.5], [2.5, 6.5], [4.5, 20.5], [6.5, 42.5], [8.5, 72.5]]);
  });

  it('palette: distinct colours for any number of classes', () => {
    expect(new Set(classPalette(10)).size).toBe(10);
    expect(new Set(classPalette(100)).size).toBe(100);
  });

  it('the UMAP map keeps separated clusters apart, is seeded, and samples at most maxPoints', () => {
    const { data, labels } = clusters(700, 24, 3);
    const map = embeddingMap(data, 24, labels, { maxPoints: 400, seed: 1 });
    expect(map.x.length).toBe(400);
    expect(new Set(map.indices).size).toBe(400);
    map.indices.forEach((i, k) => expect(map.labels[k]).toBe(labels[i]));
    // Each point's nearest neighbour on the map has its class (clusters stay apart in 2-D).
    let same = 0;
    for (let i = 0; i < 400; i++) {
      let best = Infinity, bj = -1;
      for (let j = 0; j < 400; j++) {
        if (j === i) continue;
        const d = (map.x[i] - map.x[j]) ** 2 + (map.y[i] - map.y[j]) ** 2;
        if (d < best) { best = d; bj = j; }
      }
      if (map.labels[bj] === map.labels[i]) same++;
    }
    expect(same / 400).toBeGreaterThan(0.95);
    const again = embeddingMap(data, 24, labels, { maxPoints: 400, seed: 1 });
    expect(Array.from(again.x)).toEqual(Array.from(map.x));
    expect(() => embeddingMap(data, 25, labels)).toThrow(/data: expected 700 x 25 = 17500 values, got 16800/);
  });

  it('the page is self-contained: no external URL, data escaped inside the script', () => {
    const html = renderReport({
      title: 'a </script><b>title', config: { dataset: '</script>' }, metrics: metricsLines(2, 3), final: { testAccuracy: 0.9 },
      map: null, classNames: null, mapCaption: 'none',
    });
    expect(html).not.toMatch(/\b(src|href)=/);
    expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    expect(html).toContain('a &lt;/script&gt;&lt;b&gt;title');
    expect(html.match(/<\/script>/g)!.length).toBe(3); // the error trap, the data, the drawing script
  });
});

const chromium = requireChromium('report.test.ts');
const headless = (args: string[]) => headlessIn(chromium!, root, args);

describe.skipIf(!chromium)('report in headless chromium', () => {
  it('renders both charts and the map without script errors', () => {
    const { data, labels } = clusters(1000, 32, 5);
    const map = embeddingMap(data, 32, labels, { maxPoints: 800, seed: 2 });
    const names = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
    const html = renderReport({
      title: 'supcon supcon on fashion-mnist', config: { method: 'supcon', epochs: 6, batchSize: 256 },
      metrics: metricsLines(6, 50), final: { testAccuracy: 0.91, knnAccuracy: 0.89 }, map, classNames: names,
      mapCaption: 'UMAP of 800 test representations',
    });
    const file = path.join(root, 'report.html');
    fs.writeFileSync(file, html);
    const dom = headless(['--virtual-time-budget=10000', '--dump-dom', `file://${file}`]);
    expect(dom.status, dom.stderr).toBe(0);
    const out = dom.stdout;
    expect(out).toMatch(/<html[^>]*data-rendered="true"/);
    expect(out).not.toMatch(/data-errors=/);
    expect(out).toMatch(/<div id="errors" hidden=""><\/div>/);
    expect((out.match(/class="point"/g) ?? []).length).toBe(800);
    expect((out.match(/class="series"/g) ?? []).length).toBe(2 + 4);
    expect((out.match(/class="legend-item"/g) ?? []).length).toBe(2 + 4 + 10);
    expect(out).toContain('Ankle boot');
    const shotDir = process.env.SUPCON_REPORT_SCREENSHOT_DIR ?? root;
    fs.mkdirSync(shotDir, { recursive: true });
    const shot = path.join(shotDir, 'report.png');
    const png = headless(['--window-size=1400,1500', '--hide-scrollbars', `--screenshot=${shot}`, `file://${file}`]);
    expect(png.status, png.stderr).toBe(0);
    expect(fs.readFileSync(shot).subarray(1, 4).toString()).toBe('PNG');
  });

  it('a page whose script fails says so (the check above would catch it)', () => {
    const html = renderReport({ title: 't', config: {}, metrics: [], final: {}, map: null, classNames: null, mapCaption: '' })
      .replace("document.getElementById('report-data').textContent", "document.getElementById('no-such-element').textContent");
    const file = path.join(root, 'broken.html');
    fs.writeFileSync(file, html);
    const out = headless(['--virtual-time-budget=5000', '--dump-dom', `file://${file}`]).stdout;
    expect(out).toMatch(/data-errors="1"/);
    expect(out).toContain("Script error: Uncaught TypeError: Cannot read properties of null (reading 'textContent')");
    expect(out).not.toMatch(/<html[^>]*data-rendered/);
  });
});
