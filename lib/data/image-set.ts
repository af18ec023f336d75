// An in-memory labelled image set: uint8 pixels [n, c, h, w] and int32 labels.
import { describe } from '../check';

export interface ImageSet {
  /** Pixels, row-major [n, c, h, w] (channel planes, as the CIFAR files and the kernels use). */
  readonly images: Uint8Array;
  readonly shape: readonly [n: number, c: number, h: number, w: number];
  /** One label per image, in [0, numClasses). */
  readonly labels: Int32Array;
  readonly numClasses: number;
  /** Names of the classes when the format or the dataset gives them. */
  readonly classNames: readonly string[] | null;
}

/** The images at `indices`, in that order, as a new set (pixels and labels copied). */
export function takeImages(set: ImageSet, indices: ArrayLike<number>): ImageSet {
  if (set === null || typeof set !== 'object' || !Array.isArray(set.shape) || !(set.images instanceof Uint8Array))
    throw new TypeError(`set: expected an image set { images, shape, labels, ... }, got ${describe(set)}`);
  if (indices === null || typeof indices !== 'object' || !Number.isSafeInteger(indices.length))
    throw new TypeError(`indices: expected an array of image indices, got ${describe(indices)}`);
  const [n, c, h, w] = set.shape;
  const stride = c * h * w;
  // Every index checked (each read once) before the copy is allocated: a length that lies
  // fails at its first hole.
  const picked: number[] = [];
  for (let i = 0, length = indices.length; i < length; i++) {
    const k = indices[i];
    if (!Number.isInteger(k) || k < 0 || k >= n)
      throw new RangeError(`indices[${i}]: expected an integer in [0, ${n}), got ${describe(k)}`);
    picked.push(k);
  }
  const images = new Uint8Array(picked.length * stride);
  const labels = new Int32Array(picked.length);
  picked.forEach((k, i) => {
    images.set(set.images.subarray(k * stride, (k + 1) * stride), i * stride);
    labels[i] = set.labels[k];
  });
  return { images, shape: [picked.length, c, h, w], labels, numClasses: set.numClasses, classNames: set.classNames };
}

/** The first `count` images (all when count >= n). */
export function headImages(set: ImageSet, count: number): ImageSet {
  if (typeof count !== 'number' || !(count >= 0)) throw new RangeError(`count: expected a number >= 0, got ${describe(count)}`);
  const n = Math.min(count, set.shape[0]);
  return takeImages(set, Array.from({ length: n }, (_, i) => i));
}
