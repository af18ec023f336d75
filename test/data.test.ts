// Data loaders on real files written here (IDX plain and gzip, CIFAR-10/100 layouts), the
// bad-file errors, the Philox generator (published known-answer vectors), shuffling and batching.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import {
  batchCount, batches, DataFileError, encodeIdx, loadFolder, parseIdx, permutation, philox4x32, PhiloxStream, readIdx,
} from '../dist/index.js';
import { rng } from './reference';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'supcon-data-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let dirCount = 0;
function freshDir(): string {
  const d = path.join(root, `d${dirCount++}`);
  fs.mkdirSync(d);
  return d;
}

function randomBytes(n: number, seed: number): Uint8Array {
  const r = rng(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
}

/** An IDX file built byte by byte from the format's definition (independent of encodeIdx). */
function idxBytes(dims: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(data)]);
}

function writeIdxSplit(dir: string, prefix: string, n: number, h: number, w: number, seed: number, gzip: boolean) {
  const images = randomBytes(n * h * w, seed);
  const labels = Uint8Array.from(randomBytes(n, seed + 1), (x) => x % 7);
  const ext = gzip ? '.gz' : '';
  const enc = (b: Buffer) => (gzip ? zlib.gzipSync(b) : b);
  fs.writeFileSync(path.join(dir, `${prefix}-images-idx3-ubyte${ext}`), enc(idxBytes([n, h, w], images)));
  fs.writeFileSync(path.join(dir, `${prefix}-labels-idx1-ubyte${ext}`), enc(idxBytes([n], labels)));
  return { images, labels };
}

describe('IDX', () => {
  it.each([false, true])('reads train and test splits (gzip %s) with odd sizes', (gzip) => {
    const dir = freshDir();
    const train = writeIdxSplit(dir, 'train', 37, 13, 11, 5, gzip);
    const test = writeIdxSplit(dir, 't10k', 9, 13, 11, 6, gzip);
    const a = loadFolder(dir, 'train');
    expect(a.shape).toEqual([37, 1, 13, 11]);
    expect(Array.from(a.images)).toEqual(Array.from(train.images));
    expect(Array.from(a.labels)).toEqual(Array.from(train.labels));
    expect(a.labels).toBeInstanceOf(Int32Array);
    expect(a.numClasses).toBe(Math.max(...train.labels) + 1);
    const b = loadFolder(dir, 'test');
    expect(b.shape).toEqual([9, 1, 13, 11]);
    expect(Array.from(b.images)).toEqual(Array.from(test.images));
  });

  it('accepts the dotted MNIST names (train-images.idx3-ubyte)', () => {
    const dir = freshDir();
    const images = randomBytes(5 * 4 * 4, 1);
    fs.writeFileSync(path.join(dir, 'train-images.idx3-ubyte'), idxBytes([5, 4, 4], images));
    fs.writeFileSync(path.join(dir, 'train-labels.idx1-ubyte'), idxBytes([5], Uint8Array.of(0, 1, 2, 1, 0)));
    expect(Array.from(loadFolder(dir, 'train').labels)).toEqual([0, 1, 2, 1, 0]);
  });

  it('encodeIdx writes what parseIdx and the format definition agree on', () => {
    const data = randomBytes(3 * 5 * 2, 9);
    const enc = encodeIdx([3, 5, 2], data);
    expect(Buffer.from(enc).equals(idxBytes([3, 5, 2], data))).toBe(true);
    const back = parseIdx(enc, 'x');
    expect(back.dims).toEqual([3, 5, 2]);
    expect(Array.from(back.data)).toEqual(Array.from(data));
    expect(() => encodeIdx([3, 5], data)).toThrow(RangeError);
  });

  describe('bad files name the file and the problem', () => {
    const cases: [string, (f: string) => void, RegExp][] = [
      ['wrong magic', (f) => fs.writeFileSync(f, Buffer.from([0x50, 0x4b, 3, 4, 0, 0, 0, 0])), /magic must start with 00 00, found 0x50 0x4b/],
      ['non-byte type', (f) => fs.writeFileSync(f, Buffer.concat([Buffer.from([0, 0, 0x0d, 1]), Buffer.alloc(4)])), /0x0d \(float32\) is not supported/],
      ['too few bytes for a magic', (f) => fs.writeFileSync(f, Buffer.from([0, 0])), /shorter than the 4-byte magic/],
      ['truncated header', (f) => fs.writeFileSync(f, Buffer.from([0, 0, 8, 3, 0, 0, 0, 2, 0, 0])), /truncated IDX header: 3 dimensions need 16 bytes, the file has 10/],
      ['header claims more data', (f) => fs.writeFileSync(f, idxBytes([10, 4, 4], randomBytes(10 * 16, 2)).subarray(0, 16 + 100)), /truncated: the header says \[10, 4, 4\] = 160 bytes of data, the file has 100/],
      ['header claims less data', (f) => fs.writeFileSync(f, Buffer.concat([idxBytes([2, 4, 4], randomBytes(32, 3)), Buffer.alloc(7)])), /\(7 extra bytes\)/],
      ['a header that lies about huge sizes', (f) => fs.writeFileSync(f, Buffer.concat([Buffer.from([0, 0, 8, 3]), Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 1, 0, 0, 0, 1, 0]), Buffer.alloc(64)])), /truncated: the header says \[4294967295, 256, 256\]/],
      ['zero dimensions', (f) => fs.writeFileSync(f, Buffer.from([0, 0, 8, 0])), /0 dimensions; expected 1 to 4/],
      ['corrupt gzip', (f) => { const z = zlib.gzipSync(idxBytes([4, 4, 4], randomBytes(64, 4))); z[z.length - 6] ^= 0xff; fs.writeFileSync(f, z); }, /gzip data is corrupt or truncated/],
      ['truncated gzip', (f) => fs.writeFileSync(f, zlib.gzipSync(idxBytes([40, 8, 8], randomBytes(2560, 5))).subarray(0, 200)), /gzip data is corrupt or truncated/],
      ['.gz name on plain data', (f) => fs.writeFileSync(f + '.gz', idxBytes([1], Uint8Array.of(1))), /not gzip data/],
    ];
    it.each(cases)('%s', (_name, write, message) => {
      const dir = freshDir();
      const file = path.join(dir, 'train-images-idx3-ubyte');
      write(file);
      const target = fs.existsSync(file) ? file : file + '.gz';
      let caught: unknown;
      try { readIdx(target); } catch (e) { caught = e; }
      expect(caught).toBeInstanceOf(DataFileError);
      expect((caught as Error).message.startsWith(target + ': ')).toBe(true);
      expect((caught as Error).message).toMatch(message);
    });

    it('labels that disagree with the images in count or rank', () => {
      const dir = freshDir();
      fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), idxBytes([6, 3, 3], randomBytes(54, 6)));
      fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), idxBytes([5], randomBytes(5, 7)));
      expect(() => loadFolder(dir, 'train')).toThrow(/train-labels-idx1-ubyte: has 5 labels but .*train-images-idx3-ubyte has 6 images/);
      fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), idxBytes([6, 1], randomBytes(6, 7)));
      expect(() => loadFolder(dir, 'train')).toThrow(/expected labels with 1 dimension \[n\], the header has \[6, 1\]/);
      fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), idxBytes([54], randomBytes(54, 6)));
      expect(() => loadFolder(dir, 'train')).toThrow(/expected images with 3 dimensions/);
    });

    it('a folder without a known layout lists what it looked for', () => {
      const dir = freshDir();
      fs.writeFileSync(path.join(dir, 'readme.txt'), 'nothing here');
      expect(() => loadFolder(dir, 'test')).toThrow(/no test split found; expected IDX files \(t10k-images-idx3-ubyte\[\.gz\]/);
      expect(() => loadFolder(path.join(dir, 'missing'), 'test')).toThrow(/not found or not a folder/);
    });
  });
});

function cifarRecords(n: number, labelBytes: number, seed: number, maxLabel: number) {
  const r = rng(seed);
  const labels: number[][] = [];
  const pixels = randomBytes(n * 3072, seed + 100);
  const out = Buffer.alloc(n * (labelBytes + 3072));
  for (let i = 0; i < n; i++) {
    const l = Array.from({ length: labelBytes }, () => Math.floor(r() * maxLabel));
    labels.push(l);
    const off = i * (labelBytes + 3072);
    l.forEach((x, j) => (out[off + j] = x));
    out.set(pixels.subarray(i * 3072, (i + 1) * 3072), off + labelBytes);
  }
  return { bytes: out, labels, pixels };
}

describe('CIFAR', () => {
  it('CIFAR-10: five training batches concatenated in order, test batch, class names', () => {
    const dir = path.join(freshDir(), 'cifar-10-batches-bin');
    fs.mkdirSync(dir);
    const parts = [1, 2, 3, 4, 5].map((i) => cifarRecords(2 + i, 1, i, 10));
    parts.forEach((p, i) => fs.writeFileSync(path.join(dir, `data_batch_${i + 1}.bin`), i === 2 ? zlib.gzipSync(p.bytes) : p.bytes));
    const test = cifarRecords(7, 1, 99, 10);
    fs.writeFileSync(path.join(dir, 'test_batch.bin'), test.bytes);
    const names = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
    fs.writeFileSync(path.join(dir, 'batches.meta.txt'), names.join('\n') + '\n\n');
    const set = loadFolder(path.dirname(dir), 'train');
    expect(set.shape).toEqual([25, 3, 32, 32]);
    expect(set.numClasses).toBe(10);
    expect(set.classNames).toEqual(names);
    expect(Array.from(set.labels)).toEqual(parts.flatMap((p) => p.labels.map((l) => l[0])));
    const allPixels = Buffer.concat(parts.map((p) => Buffer.from(p.pixels)));
    expect(Buffer.from(set.images).equals(allPixels)).toBe(true);
    // Channel planes: pixel (y, x) of channel c of image i is byte 1 + c*1024 + y*32 + x of record i.
    const i = 11, c = 2, y = 17, x = 5;
    const rec = parts[2].bytes; // batches hold 3, 4, 5, 6, 7 records: image 11 is record 4 of batch 3
    const before = parts[0].labels.length + parts[1].labels.length;
    expect(set.images[((i * 3 + c) * 32 + y) * 32 + x]).toBe(rec[(i - before) * 3073 + 1 + c * 1024 + y * 32 + x]);
    const t = loadFolder(dir, 'test');
    expect(t.shape).toEqual([7, 3, 32, 32]);
    expect(Array.from(t.labels)).toEqual(test.labels.map((l) => l[0]));
  });

  it('CIFAR-100: fine labels by default, coarse on request', () => {
    const dir = freshDir();
    const train = cifarRecords(11, 2, 3, 20);
    fs.writeFileSync(path.join(dir, 'train.bin'), train.bytes);
    fs.writeFileSync(path.join(dir, 'test.bin'), cifarRecords(3, 2, 4, 20).bytes);
    const fine = loadFolder(dir, 'train');
    expect(fine.numClasses).toBe(100);
    expect(Array.from(fine.labels)).toEqual(train.labels.map((l) => l[1]));
    const coarse = loadFolder(dir, 'train', { cifarLabels: 'coarse' });
    expect(coarse.numClasses).toBe(20);
    expect(Array.from(coarse.labels)).toEqual(train.labels.map((l) => l[0]));
    expect(Buffer.from(coarse.images).equals(Buffer.from(train.pixels))).toBe(true);
    expect(loadFolder(dir, 'test').shape).toEqual([3, 3, 32, 32]);
  });

  it('bad CIFAR files: truncated record, label out of range, missing batch', () => {
    const dir = freshDir();
    const ok = cifarRecords(4, 1, 5, 10);
    fs.writeFileSync(path.join(dir, 'test_batch.bin'), ok.bytes.subarray(0, 3 * 3073 + 100));
    expect(() => loadFolder(dir, 'test')).toThrow(/test_batch\.bin: size 9319 is not a whole number of 3073-byte CIFAR-10 records/);
    const bad = Buffer.from(ok.bytes);
    bad[2 * 3073] = 10;
    fs.writeFileSync(path.join(dir, 'test_batch.bin'), bad);
    expect(() => loadFolder(dir, 'test')).toThrow(/test_batch\.bin: record 2 has label 10, outside \[0, 10\)/);
    expect(() => loadFolder(dir, 'train')).toThrow(/data_batch_1\.bin: missing/);
    fs.writeFileSync(path.join(dir, 'test_batch.bin'), Buffer.alloc(0));
    expect(() => loadFolder(dir, 'test')).toThrow(/test_batch\.bin: is empty/);
  });
});

describe('Philox4x32-10 and shuffling', () => {
  const hex = (a: Uint32Array) => Array.from(a, (x) => x.toString(16).padStart(8, '0')).join(' ');
  it('matches the known-answer vectors of the Random123 distribution', () => {
    expect(hex(philox4x32([0, 0, 0, 0], [0, 0]))).toBe('6627e8d5 e169c58d bc57ac4c 9b00dbd8');
    expect(hex(philox4x32([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff])))
      .toBe('408f276d 41c83b0e a20bc7c6 6d5451fd');
    expect(hex(philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0])))
      .toBe('d16cfe09 94fdcceb 5001e420 24126ea1');
  });

  it('nextBelow is in range and close to uniform (chi-square)', () => {
    const s = new PhiloxStream(7, 0, 0, 1);
    for (const n of [1, 2, 3, 7, 1000, 0xffffffff]) for (let i = 0; i < 200; i++) {
      const x = s.nextBelow(n);
      expect(Number.isInteger(x) && x >= 0 && x < n).toBe(true);
    }
    const k = 13, draws = 130000, counts = new Array(k).fill(0);
    for (let i = 0; i < draws; i++) counts[s.nextBelow(k)]++;
    const e = draws / k;
    const chi2 = counts.reduce((a, c) => a + (c - e) ** 2 / e, 0);
    expect(chi2).toBeLessThan(32.9); // 12 degrees of freedom, p = 0.001
    expect(() => s.nextBelow(0)).toThrow(RangeError);
  });

  it('permutation: a permutation, reproducible, different per seed and epoch, uniform over positions', () => {
    const p = permutation(1001, 42, 3);
    expect(Array.from(p).sort((a, b) => a - b)).toEqual(Array.from({ length: 1001 }, (_, i) => i));
    expect(Array.from(permutation(1001, 42, 3))).toEqual(Array.from(p));
    expect(Array.from(permutation(1001, 42, 4))).not.toEqual(Array.from(p));
    expect(Array.from(permutation(1001, 43, 3))).not.toEqual(Array.from(p));
    // Where element 0 lands over many epochs: uniform over 5 positions.
    const counts = new Array(5).fill(0);
    for (let e = 0; e < 5000; e++) counts[permutation(5, 1, e).indexOf(0)]++;
    const chi2 = counts.reduce((a, c) => a + (c - 1000) ** 2 / 1000, 0);
    expect(chi2).toBeLessThan(18.5); // 4 degrees of freedom, p = 0.001
    expect(permutation(0, 1).length).toBe(0);
    expect(() => permutation(5, -1)).toThrow(/seed: expected a non-negative safe integer/);
  });

  it('batches visit every image once per epoch, with matching pixels and labels', () => {
    const n = 23, c = 3, h = 2, w = 5;
    const images = randomBytes(n * c * h * w, 8);
    const labels = Int32Array.from({ length: n }, (_, i) => (i * 7) % 4);
    const set = { images, shape: [n, c, h, w] as const, labels, numClasses: 4, classNames: null };
    for (const dropLast of [false, true]) {
      const seen: number[] = [];
      const all = [...batches(set, { batchSize: 6, seed: 3, epoch: 2, dropLast })];
      expect(all.length).toBe(batchCount(n, 6, dropLast));
      expect(all.length).toBe(dropLast ? 3 : 4);
      for (const b of all) {
        expect(b.shape).toEqual([b.indices.length, c, h, w]);
        b.indices.forEach((k, i) => {
          seen.push(k);
          expect(b.labels[i]).toBe(labels[k]);
          const stride = c * h * w;
          expect(Array.from(b.images.subarray(i * stride, (i + 1) * stride))).toEqual(Array.from(images.subarray(k * stride, (k + 1) * stride)));
        });
      }
      expect(seen.length).toBe(dropLast ? 18 : 23);
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen).toEqual(Array.from(permutation(n, 3, 2)).slice(0, seen.length));
    }
    const resumed = [...batches(set, { batchSize: 6, seed: 3, epoch: 2 }, 2)];
    expect(Array.from(resumed[0].indices)).toEqual(Array.from(permutation(n, 3, 2)).slice(12, 18));
    const ordered = [...batches(set, { batchSize: 10, shuffle: false })];
    expect(Array.from(ordered[2].indices)).toEqual([20, 21, 22]);
    expect(() => [...batches(set, { batchSize: 0 })]).toThrow(/batchSize: expected a positive integer/);
  });
});
