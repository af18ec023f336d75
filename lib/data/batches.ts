// Mini-batches of an image set: a seeded permutation per epoch, gathered into contiguous
// pixel and label arrays.
import { describe, isPositiveInteger } from '../check';
import { ImageSet, takeImages } from './image-set';
import { permutation } from './philox';

export interface Batch {
  /** Indices into the set, in batch order. */
  readonly indices: Uint32Array;
  /** Pixels [size, c, h, w]. */
  readonly images: Uint8Array;
  readonly shape: readonly [number, number, number, number];
  readonly labels: Int32Array;
}

export interface BatchOptions {
  batchSize: number;
  /** Shuffle with the permutation of (seed, epoch) (default true). */
  shuffle?: boolean;
  seed?: number;
  epoch?: number;
  /** Leave out a last, smaller batch (default false). */
  dropLast?: boolean;
}

/** How many batches an epoch of `n` images has. */
export function batchCount(n: number, batchSize: number, dropLast = false): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new RangeError(`n: expected an integer >= 0, got ${describe(n)}`);
  if (!isPositiveInteger(batchSize)) throw new RangeError(`batchSize: expected a positive integer, got ${describe(batchSize)}`);
  if (typeof dropLast !== 'boolean') throw new TypeError(`dropLast: expected a boolean, got ${describe(dropLast)}`);
  return dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
}

/** The order in which an epoch visits the set. */
export function epochOrder(n: number, options: BatchOptions): Uint32Array {
  if (options.shuffle === false) return Uint32Array.from({ length: n }, (_, i) => i);
  return permutation(n, options.seed ?? 0, options.epoch ?? 0);
}

/** Gathers the images at `indices` (checked) into one batch. */
export function gatherBatch(set: ImageSet, indices: Uint32Array): Batch {
  const { images, shape, labels } = takeImages(set, indices);
  return { indices, images, shape: shape as Batch['shape'], labels };
}

/**
 * The batches of one epoch, in order. With the same seed and epoch the batches are the same
 * on every machine; `startBatch` resumes an epoch part-way through.
 */
export function* batches(set: ImageSet, options: BatchOptions, startBatch = 0): Generator<Batch> {
  if (options === null || typeof options !== 'object') throw new TypeError(`options: expected { batchSize, ... }, got ${describe(options)}`);
  if (!isPositiveInteger(options.batchSize))
    throw new RangeError(`batchSize: expected a positive integer, got ${describe(options.batchSize)}`);
  const n = set.shape[0];
  const count = batchCount(n, options.batchSize, options.dropLast);
  if (!(Number.isSafeInteger(startBatch) && startBatch >= 0 && startBatch <= count))
    throw new RangeError(`startBatch: expected an integer in [0, ${count}] (the epoch's batches), got ${describe(startBatch)}`);
  const order = epochOrder(n, options);
  for (let b = startBatch; b < count; b++) {
    const from = b * options.batchSize;
    yield gatherBatch(set, order.subarray(from, Math.min(n, from + options.batchSize)));
  }
}
