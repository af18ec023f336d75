// Mini-batches of an image set: a seeded permutation per epoch, gathered into contiguous
// pixel and label arrays.
import { isPositiveInteger } from '../check';
import type { ImageSet } from './image-set';
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
  return dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
}

/** The order in which an epoch visits the set. */
export function epochOrder(n: number, options: BatchOptions): Uint32Array {
  if (options.shuffle === false) return Uint32Array.from({ length: n }, (_, i) => i);
  return permutation(n, options.seed ?? 0, options.epoch ?? 0);
}

/** Gathers the images at `indices` (checked) into one batch. */
export function gatherBatch(set: ImageSet, indices: Uint32Array): Batch {
  const [n, c, h, w] = set.shape;
  const stride = c * h * w;
  const images = new Uint8Array(indices.length * stride);
  const labels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const k = indices[i];
    if (k >= n) throw new RangeError(`indices[${i}]: expected an index below ${n}, got ${k}`);
    images.set(set.images.subarray(k * stride, (k + 1) * stride), i * stride);
    labels[i] = set.labels[k];
  }
  return { indices, images, shape: [indices.length, c, h, w], labels };
}

/**
 * The batches of one epoch, in order. With the same seed and epoch the batches are the same
 * on every machine; `startBatch` resumes an epoch part-way through.
 */
export function* batches(set: ImageSet, options: BatchOptions, startBatch = 0): Generator<Batch> {
  if (!isPositiveInteger(options.batchSize))
    throw new RangeError(`batchSize: expected a positive integer, got ${options.batchSize}`);
  const n = set.shape[0];
  const order = epochOrder(n, options);
  const count = batchCount(n, options.batchSize, options.dropLast);
  for (let b = startBatch; b < count; b++) {
    const from = b * options.batchSize;
    yield gatherBatch(set, order.subarray(from, Math.min(n, from + options.batchSize)));
  }
}
