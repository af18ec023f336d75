// The CIFAR-10 and CIFAR-100 binary formats. CIFAR-10: records of 1 label byte and 3072
// pixel bytes (1024 red, 1024 green, 1024 blue, each 32 x 32 row-major), in
// data_batch_1..5.bin and test_batch.bin. CIFAR-100: records of a coarse and a fine label
// byte and the same 3072 pixel bytes, in train.bin and test.bin.
import fs from 'node:fs';
import path from 'node:path';
import { describe } from '../check';
import { DataFileError, findFile, readMaybeGzip } from './files';
import type { ImageSet } from './image-set';
import type { Split } from './idx';

const PIXELS = 3 * 32 * 32;

export type CifarKind = 'cifar10' | 'cifar100';

export interface CifarFiles {
  kind: CifarKind;
  files: string[];
  /** batches.meta.txt (CIFAR-10) or fine_label_names.txt (CIFAR-100), when present. */
  classNamesFile: string | null;
  coarseNamesFile: string | null;
}

const CIFAR10_TRAIN = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);

/** The CIFAR files of a split in `dir` (or in its cifar-10-batches-bin / cifar-100-binary folder). */
export function findCifarFiles(dir: string, split: Split): CifarFiles | null {
  for (const d of [dir, path.join(dir, 'cifar-10-batches-bin'), path.join(dir, 'cifar-100-binary')]) {
    if (!fs.existsSync(d)) continue;
    const test10 = findFile(d, ['test_batch.bin']);
    if (test10) {
      const files = split === 'test' ? [test10] : CIFAR10_TRAIN.map((n) => path.join(d, n));
      return { kind: 'cifar10', files, classNamesFile: findFile(d, ['batches.meta.txt']), coarseNamesFile: null };
    }
    const file100 = findFile(d, [split === 'test' ? 'test.bin' : 'train.bin']);
    if (file100)
      return {
        kind: 'cifar100', files: [file100],
        classNamesFile: findFile(d, ['fine_label_names.txt']),
        coarseNamesFile: findFile(d, ['coarse_label_names.txt']),
      };
  }
  return null;
}

function readNames(file: string | null): string[] | null {
  if (!file) return null;
  const names = fs.readFileSync(file, 'utf8').split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0);
  return names.length > 0 ? names : null;
}

export interface CifarOptions {
  /** CIFAR-100 only: the 100 fine labels (default) or the 20 coarse ones. */
  labels?: 'fine' | 'coarse';
}

/** Reads CIFAR binary files (plain or gzip) into one set, checking every record. */
export function readCifar(found: CifarFiles, options: CifarOptions = {}): ImageSet {
  if (found === null || typeof found !== 'object')
    throw new TypeError(`found: expected the result of findCifarFiles ({ kind, files, ... }), got ${describe(found)}`);
  if (found.kind !== 'cifar10' && found.kind !== 'cifar100')
    throw new RangeError(`found.kind: expected 'cifar10' or 'cifar100', got ${describe(found.kind)}`);
  if (!Array.isArray(found.files) || found.files.length === 0 || !found.files.every((f) => typeof f === 'string'))
    throw new TypeError(`found.files: expected a non-empty array of path strings, got ${describe(found.files)}`);
  for (const key of ['classNamesFile', 'coarseNamesFile'] as const)
    if (found[key] !== null && found[key] !== undefined && typeof found[key] !== 'string')
      throw new TypeError(`found.${key}: expected a path string or null, got ${describe(found[key])}`);
  if (options === null || typeof options !== 'object') throw new TypeError(`options: expected an object, got ${describe(options)}`);
  if (options.labels !== undefined && options.labels !== 'fine' && options.labels !== 'coarse')
    throw new RangeError(`options.labels: expected 'fine' or 'coarse', got ${describe(options.labels)}`);
  const coarse = options.labels === 'coarse';
  if (coarse && found.kind !== 'cifar100')
    throw new RangeError(`labels: 'coarse' exists only for CIFAR-100, got CIFAR-10 files (${found.files[0]})`);
  const labelBytes = found.kind === 'cifar10' ? 1 : 2;
  const record = labelBytes + PIXELS;
  const numClasses = found.kind === 'cifar10' ? 10 : coarse ? 20 : 100;
  const parts = found.files.map((file) => {
    if (!fs.existsSync(file)) throw new DataFileError(file, 'missing (a CIFAR-10 training split needs data_batch_1.bin to data_batch_5.bin)');
    const bytes = readMaybeGzip(file);
    if (bytes.length === 0) throw new DataFileError(file, 'is empty');
    if (bytes.length % record !== 0)
      throw new DataFileError(file, `size ${bytes.length} is not a whole number of ${record}-byte ${found.kind === 'cifar10' ? 'CIFAR-10' : 'CIFAR-100'} records (truncated or not this format)`);
    return { file, bytes };
  });
  const n = parts.reduce((s, p) => s + p.bytes.length / record, 0);
  const images = new Uint8Array(n * PIXELS);
  const labels = new Int32Array(n);
  let k = 0;
  for (const { file, bytes } of parts) {
    for (let off = 0; off < bytes.length; off += record, k++) {
      const label = bytes[off + (labelBytes === 2 && !coarse ? 1 : 0)];
      if (label >= numClasses)
        throw new DataFileError(file, `record ${off / record} has label ${label}, outside [0, ${numClasses}) (not a ${found.kind === 'cifar10' ? 'CIFAR-10' : 'CIFAR-100'} file?)`);
      labels[k] = label;
      images.set(bytes.subarray(off + labelBytes, off + record), k * PIXELS);
    }
  }
  const names = readNames(coarse ? found.coarseNamesFile : found.classNamesFile);
  return {
    images, shape: [n, 3, 32, 32], labels, numClasses,
    classNames: names && names.length === numClasses ? names : null,
  };
}
