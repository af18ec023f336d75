// An in-memory labelled image set: uint8 pixels [n, c, h, w] and int32 labels.

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
  const [n, c, h, w] = set.shape;
  const stride = c * h * w;
  const images = new Uint8Array(indices.length * stride);
  const labels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const k = indices[i];
    if (!Number.isInteger(k) || k < 0 || k >= n)
      throw new RangeError(`indices[${i}]: expected an integer in [0, ${n}), got ${k}`);
    images.set(set.images.subarray(k * stride, (k + 1) * stride), i * stride);
    labels[i] = set.labels[k];
  }
  return { images, shape: [indices.length, c, h, w], labels, numClasses: set.numClasses, classNames: set.classNames };
}

/** The first `count` images (all when count >= n). */
export function headImages(set: ImageSet, count: number): ImageSet {
  const n = Math.min(count, set.shape[0]);
  return takeImages(set, Array.from({ length: n }, (_, i) => i));
}
