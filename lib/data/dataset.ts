// One entry point for the datasets: the embedded default ('fashion-mnist') or a folder of IDX
// or CIFAR binary files, recognised by their standard names.
import fs from 'node:fs';
import { describe, optionsObject } from '../check';
import { findCifarFiles, readCifar } from './cifar';
import { ensureFashionMnist, FASHION_MNIST_CLASSES } from './fashion-mnist';
import { findIdxFiles, idxFileNames, readIdxPair, Split } from './idx';
import { headImages, ImageSet } from './image-set';

export interface LoadOptions {
  /** Keep only the first `limit` images (the converted default is stored shuffled). */
  limit?: number;
  /** CIFAR-100: fine (default) or coarse labels. */
  cifarLabels?: 'fine' | 'coarse';
  /** Told when the default dataset is converted from its package (first use only). */
  onConvert?: (dir: string) => void;
}

/** The built-in dataset names. */
export const BUILTIN_DATASETS = ['fashion-mnist'] as const;

/** Loads a split of a folder of IDX or CIFAR files. */
function checkSource(value: unknown, name: string, split: unknown, options: unknown): void {
  if (typeof value !== 'string') throw new TypeError(`${name}: expected a path string, got ${describe(value)}`);
  if (split !== 'train' && split !== 'test') throw new RangeError(`split: expected 'train' or 'test', got ${describe(split)}`);
  optionsObject(options as object | undefined, 'options');
}

export function loadFolder(dir: string, split: Split, options: LoadOptions = {}): ImageSet {
  checkSource(dir, 'dir', split, options);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory())
    throw new Error(`data folder '${dir}': not found or not a folder`);
  const idx = findIdxFiles(dir, split);
  if (idx) return readIdxPair(idx.images, idx.labels);
  const cifar = findCifarFiles(dir, split);
  if (cifar) return readCifar(cifar, { labels: options.cifarLabels });
  throw new Error(
    `data folder '${dir}': no ${split} split found; expected IDX files (${idxFileNames(split).join(', ')}) ` +
      `or CIFAR binary files (${split === 'train' ? 'data_batch_1..5.bin or train.bin' : 'test_batch.bin or test.bin'})`,
  );
}

/** Loads a split of a built-in dataset (by name) or of a data folder (by path). */
export function loadImageSet(source: string, split: Split, options: LoadOptions = {}): ImageSet {
  checkSource(source, 'source', split, options);
  let set: ImageSet;
  if (source === 'fashion-mnist') {
    set = { ...loadFolder(ensureFashionMnist({ onConvert: options.onConvert }), split), classNames: FASHION_MNIST_CLASSES };
  } else {
    set = loadFolder(source, split, options);
  }
  if (options.limit !== undefined) {
    if (!Number.isSafeInteger(options.limit) || options.limit < 1)
      throw new RangeError(`limit: expected a positive integer, got ${options.limit}`);
    set = headImages(set, options.limit);
  }
  return set;
}
