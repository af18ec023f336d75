// Data augmentation for contrastive learning: torchvision's transforms as plain-data
// pipelines, drawn per (sample, view) from Philox4x32-10 keyed by (seed, epoch, sample
// index, view) and applied natively (SIMD + threads on the CPU; CUDA kernels as a twin).
// One call turns a batch of images into [n, views, C, H, W] float32. Formulas and
// choices: docs/AUGMENT.md.
import { checkOneOf, checkOptionNames, checkShape, describe, isPositiveInteger, plainArray, product } from './check';
import { resolveDevice } from './device';
import { native, NativeStorage } from './native';
import { Tensor } from './tensor';

/** Images [n, C, H, W] (C = 1 or 3): uint8 (scaled by 1/255, as ToTensor) or float32 in [0, 1]. */
export type ImagesInput =
  | Tensor<'uint8'>
  | Tensor<'float32'>
  | { data: Uint8Array | Float32Array; shape: readonly number[] };

export type Interpolation = 'nearest' | 'bilinear';
export type Range = readonly [number, number];

export interface RandomResizedCropSpec {
  /** Fraction of the image area, default [0.08, 1]. */
  scale?: Range;
  /** Aspect ratio w / h, default [3/4, 4/3]. */
  ratio?: Range;
}

export interface ColorJitterSpec {
  /** f: factor drawn from [max(0, 1 - f), 1 + f]; or the [lo, hi] range itself. */
  brightness?: number | Range;
  contrast?: number | Range;
  saturation?: number | Range;
  /** h in [0, 0.5]: shift drawn from [-h, h]; or the range. */
  hue?: number | Range;
  /** Probability of applying the jitter (RandomApply), default 1. */
  p?: number;
}

export interface RandAugmentSpec {
  /** N, the number of ops per image (default 2). */
  ops?: number;
  /** M, the magnitude bin (default 9). */
  magnitude?: number;
  /** Magnitude bins (default 31). */
  bins?: number;
  /** Resampling of the geometric ops (default 'nearest', as torchvision). */
  interpolation?: Interpolation;
}

export interface AutoAugmentSpec {
  policy: 'imagenet' | 'cifar10';
  interpolation?: Interpolation;
}

export interface GaussianBlurSpec {
  /** Odd kernel size. */
  kernelSize: number;
  /** Sigma drawn from this range, default [0.1, 2]. */
  sigma?: Range;
  /** Probability, default 1. */
  p?: number;
}

export interface SolarizeSpec {
  /** Pixels >= threshold are inverted (default 0.5). */
  threshold?: number;
  /** Probability, default 1. */
  p?: number;
}

export interface NormalizeSpec {
  mean: readonly number[];
  std: readonly number[];
}

/**
 * A pipeline: torchvision's transforms applied in this order (each optional):
 * RandomResizedCrop (else a plain resize to `size`), RandomHorizontalFlip, RandomApply
 * (ColorJitter), RandomGrayscale, RandAugment or AutoAugment, RandomApply(GaussianBlur),
 * RandomSolarize, Normalize.
 */
export interface AugmentPipeline {
  /** Output size (a side, or [height, width]); default the input size. */
  size?: number | readonly [number, number];
  crop?: RandomResizedCropSpec | null;
  /** Probability of a horizontal flip. */
  flip?: number;
  colorJitter?: ColorJitterSpec | null;
  /** Probability of converting to grayscale (kept at C channels). */
  grayscale?: number;
  randAugment?: RandAugmentSpec | null;
  autoAugment?: AutoAugmentSpec | null;
  blur?: GaussianBlurSpec | null;
  solarize?: SolarizeSpec | null;
  normalize?: NormalizeSpec | null;
  /** Value outside the image after geometric ops; null (default) reads 0, as torchvision's fill=None. */
  fill?: number | null;
}

/** Per-channel mean and std of CIFAR-10 as the SupCon reference normalises. */
export const CIFAR10_NORMALIZE: NormalizeSpec = Object.freeze({
  mean: Object.freeze([0.4914, 0.4822, 0.4465]),
  std: Object.freeze([0.2023, 0.1994, 0.201]),
});

interface PresetOptions {
  size?: number | readonly [number, number];
  normalize?: NormalizeSpec | null;
}

function sideOf(size: number | readonly [number, number] | undefined): number | undefined {
  if (size === undefined) return undefined;
  return typeof size === 'number' ? size : Math.min(size[0], size[1]);
}

/** Named pipelines of the SupCon paper (Khosla et al. 2020) and of SimCLR. */
export const pipelines = {
  /**
   * SimAugment, the SupCon reference's CIFAR recipe: RandomResizedCrop(scale 0.2..1), flip,
   * ColorJitter(0.4, 0.4, 0.4, 0.1) with p 0.8, grayscale with p 0.2.
   */
  simAugment(options: PresetOptions = {}): AugmentPipeline {
    return {
      size: options.size,
      crop: { scale: [0.2, 1], ratio: [3 / 4, 4 / 3] },
      flip: 0.5,
      colorJitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1, p: 0.8 },
      grayscale: 0.2,
      normalize: options.normalize ?? null,
    };
  },
  /**
   * SimCLR (Chen et al. 2020): RandomResizedCrop(0.08..1), flip, ColorJitter(0.8s, 0.8s,
   * 0.8s, 0.2s) with p 0.8, grayscale p 0.2, and a Gaussian blur (kernel 10% of the side,
   * sigma 0.1..2, p 0.5), which SimCLR leaves out for CIFAR-10: default on from 64 pixels.
   */
  simclr(options: PresetOptions & { strength?: number; blur?: boolean } = {}): AugmentPipeline {
    const s = options.strength ?? 1;
    const side = sideOf(options.size);
    const blur = options.blur ?? (side !== undefined && side >= 64);
    if (blur && side === undefined)
      throw new RangeError('options.size: the SimCLR blur needs the output size to choose its kernel, got undefined');
    return {
      size: options.size,
      crop: { scale: [0.08, 1], ratio: [3 / 4, 4 / 3] },
      flip: 0.5,
      colorJitter: { brightness: 0.8 * s, contrast: 0.8 * s, saturation: 0.8 * s, hue: Math.min(0.5, 0.2 * s), p: 0.8 },
      grayscale: 0.2,
      blur: blur ? { kernelSize: Math.floor(0.1 * (side as number)) | 1, sigma: [0.1, 2], p: 0.5 } : null,
      normalize: options.normalize ?? null,
    };
  },
  /** RandomResizedCrop(0.2..1), flip, then AutoAugment with the given policy (default CIFAR-10). */
  autoAugment(options: PresetOptions & { policy?: 'imagenet' | 'cifar10' } = {}): AugmentPipeline {
    return {
      size: options.size,
      crop: { scale: [0.2, 1], ratio: [3 / 4, 4 / 3] },
      flip: 0.5,
      autoAugment: { policy: options.policy ?? 'cifar10' },
      normalize: options.normalize ?? null,
    };
  },
  /** RandomResizedCrop(0.2..1), flip, then RandAugment(N = ops, M = magnitude), default (2, 9). */
  randAugment(options: PresetOptions & { ops?: number; magnitude?: number } = {}): AugmentPipeline {
    return {
      size: options.size,
      crop: { scale: [0.2, 1], ratio: [3 / 4, 4 / 3] },
      flip: 0.5,
      randAugment: { ops: options.ops ?? 2, magnitude: options.magnitude ?? 9 },
      normalize: options.normalize ?? null,
    };
  },
  /**
   * Stacked RandAugment (InfoMin, Tian et al. 2020): SimAugment's crop, flip, jitter and
   * grayscale followed by RandAugment(N = ops, M = magnitude), default (2, 9).
   */
  stackedRandAugment(options: PresetOptions & { ops?: number; magnitude?: number } = {}): AugmentPipeline {
    return {
      ...pipelines.simAugment(options),
      randAugment: { ops: options.ops ?? 2, magnitude: options.magnitude ?? 9 },
    };
  },
};

/** One deterministic operation (fixed parameters), for applyAugmentOps. */
export type AugmentOp =
  | { op: 'resizedCrop'; top: number; left: number; height: number; width: number }
  | { op: 'hflip' }
  | { op: 'brightness' | 'contrast' | 'saturation' | 'sharpness'; factor: number }
  | { op: 'hue'; factor: number }
  | { op: 'grayscale' | 'invert' | 'autoContrast' | 'equalize' }
  | { op: 'solarize'; threshold: number }
  | { op: 'posterize'; bits: number }
  | { op: 'gaussianBlur'; kernelSize: number; sigma: number }
  | { op: 'rotate'; angle: number; center?: Range; interpolation?: Interpolation }
  | {
      op: 'affine'; angle: number; translate: Range; scale: number; shear: Range; center?: Range;
      interpolation?: Interpolation;
    }
  | { op: 'affineMatrix'; matrix: readonly number[]; interpolation?: Interpolation }
  | { op: 'shearX' | 'shearY'; factor: number; interpolation?: Interpolation }
  | { op: 'translateX' | 'translateY'; pixels: number; interpolation?: Interpolation };

export interface AugmentOptions {
  /** Seed of the Philox streams: a safe integer or a bigint in [0, 2^64). Default 0. */
  seed?: number | bigint;
  /** Epoch, part of the stream key (default 0). */
  epoch?: number;
  /** Dataset index of each image, part of the stream key (default: `select`, else 0..n-1). */
  indices?: Int32Array | readonly number[];
  /**
   * Positions of the images to augment among `images` (one per output image, repeats
   * allowed): a training step picks its batch from a whole data set kept on the GPU this way,
   * with nothing copied but the positions. Default: every image in order.
   */
  select?: Int32Array | readonly number[];
  /** Views per image (default 2). */
  views?: number;
  /** CPU threads (default all the process may use). */
  threads?: number;
  /** 'cpu' (default), 'cuda' or 'auto'. */
  device?: 'auto' | 'cpu' | 'cuda';
  /** 'tensor' (default for Tensor input) or 'array' ({ data, shape }). */
  output?: 'array' | 'tensor';
  /**
   * Where to write the views (a Float32Array of n * views * C * H * W values, or a float32
   * Tensor of shape [n, views, C, H, W]), apart from the images; it is returned (and
   * `output` ignored). Reusing one across calls saves the allocation and the page faults of
   * fresh memory.
   */
  out?: Float32Array | Tensor<'float32'>;
}

export interface AugmentArray {
  data: Float32Array;
  shape: number[];
}

export type AugmentResult = AugmentArray | Tensor<'float32'>;

const PIPELINE_KEYS = [
  'size', 'crop', 'flip', 'colorJitter', 'grayscale', 'randAugment', 'autoAugment', 'blur', 'solarize',
  'normalize', 'fill',
] as const;
const OPTION_KEYS = ['seed', 'epoch', 'indices', 'select', 'views', 'threads', 'device', 'output', 'out'] as const;
const OPS_OPTION_KEYS = ['size', 'normalize', 'fill', 'threads', 'device', 'output', 'out'] as const;

/** Milliseconds of one CUDA augmentation call (CUDA events). */
export interface CudaAugmentTiming {
  copyInMs: number;
  kernelMs: number;
  copyOutMs: number;
}

interface NativeAugment {
  augmentPipeline(images: unknown, spec: object, pipeline: object, transform: object, out: unknown): CudaAugmentTiming | undefined;
  augmentOps(images: unknown, spec: object, ops: readonly object[], transform: object, out: unknown): CudaAugmentTiming | undefined;
  augmentDraw(spec: object, pipeline: object): object[][];
  augmentPipelineAsync(...args: Parameters<NativeAugment['augmentPipeline']>): Promise<CudaAugmentTiming | undefined>;
  augmentOpsAsync(...args: Parameters<NativeAugment['augmentOps']>): Promise<CudaAugmentTiming | undefined>;
}
const addon = native as unknown as NativeAugment;

interface PreparedImages {
  source: Uint8Array | Float32Array | NativeStorage;
  dtype: 'uint8' | 'float32';
  n: number;
  channels: number;
  height: number;
  width: number;
  isTensor: boolean;
  /** Where a tensor's images are ('cpu' for arrays). */
  device: 'cpu' | 'cuda';
}

function prepareImages(images: unknown): PreparedImages {
  if (images instanceof Tensor) {
    if (images.dtype !== 'uint8' && images.dtype !== 'float32')
      throw new TypeError(`images: expected a uint8 or float32 tensor, got dtype '${images.dtype}'`);
    return { source: images.storage, dtype: images.dtype, ...dims(images.shape, 'images.shape'), isTensor: true, device: images.device };
  }
  if (images === null || typeof images !== 'object' || Array.isArray(images) || ArrayBuffer.isView(images))
    throw new TypeError(`images: expected a Tensor or { data: Uint8Array | Float32Array, shape: [n, C, H, W] }, got ${describe(images)}`);
  const { data, shape } = images as { data?: unknown; shape?: unknown };
  if (!(data instanceof Uint8Array) && !(data instanceof Float32Array))
    throw new TypeError(`images.data: expected a Uint8Array or a Float32Array, got ${describe(data)}`);
  const d = dims(checkShape(shape, 'images.shape'), 'images.shape');
  if (d.n * d.channels * d.height * d.width !== data.length)
    throw new RangeError(`images.data: shape [${d.n}, ${d.channels}, ${d.height}, ${d.width}] needs ${d.n * d.channels * d.height * d.width} values, got ${data.length}`);
  return { source: data, dtype: data instanceof Uint8Array ? 'uint8' : 'float32', ...d, isTensor: false, device: 'cpu' };
}

function dims(shape: readonly number[], name: string) {
  if (shape.length !== 4)
    throw new RangeError(`${name}: expected [n, C, H, W], got [${shape.join(', ')}]`);
  const [n, channels, height, width] = shape;
  if (channels !== 1 && channels !== 3) throw new RangeError(`${name}: expected 1 or 3 channels (C), got ${channels}`);
  if (!isPositiveInteger(height) || !isPositiveInteger(width))
    throw new RangeError(`${name}: expected positive H and W, got [${shape.join(', ')}]`);
  return { n, channels, height, width };
}

/** The largest output side (the native limit). */
const MAX_SIDE = 1 << 15;

function outputSize(size: unknown, height: number, width: number, name: string): [number, number] {
  if (size === undefined || size === null) return [height, width];
  const side = (x: unknown) => isPositiveInteger(x) && x <= MAX_SIDE;
  if (typeof size === 'number') {
    if (!side(size)) throw new RangeError(`${name}: expected a positive integer (at most ${MAX_SIDE}), got ${describe(size)}`);
    return [size, size];
  }
  const pair = Array.isArray(size) && size.length === 2 ? plainArray(size, name, 2) : null; // each side read once
  if (pair === null || !pair.every(side))
    throw new RangeError(`${name}: expected a positive integer or [height, width] (at most ${MAX_SIDE}), got ${describe(size)}`);
  return [pair[0] as number, pair[1] as number];
}

function num(x: unknown, name: string): number {
  if (typeof x !== 'number') throw new TypeError(`${name}: expected a number, got ${describe(x)}`);
  if (!Number.isFinite(x)) throw new RangeError(`${name}: expected a finite number, got ${x}`);
  return x;
}

function probability(x: unknown, name: string, fallback: number): number {
  if (x === undefined) return fallback;
  const p = num(x, name);
  if (p < 0 || p > 1) throw new RangeError(`${name}: expected a probability in [0, 1], got ${p}`);
  return p;
}

function range(x: unknown, name: string, fallback: Range): [number, number] {
  if (x === undefined) return [fallback[0], fallback[1]];
  if (!Array.isArray(x) || x.length !== 2) throw new TypeError(`${name}: expected [lo, hi], got ${describe(x)}`);
  const lo = num(x[0], `${name}[0]`), hi = num(x[1], `${name}[1]`);
  if (lo > hi) throw new RangeError(`${name}: expected lo <= hi, got [${lo}, ${hi}]`);
  return [lo, hi];
}

function object(x: unknown, name: string, keys: readonly string[]): Record<string, unknown> {
  if (x === null || typeof x !== 'object' || Array.isArray(x)) throw new TypeError(`${name}: expected an object, got ${describe(x)}`);
  checkOptionNames(x, keys, name);
  return x as Record<string, unknown>;
}

// torchvision ColorJitter._check_input: f -> [max(0, 1 - f), 1 + f] (or [-f, f] for hue).
function jitterRange(x: unknown, name: string, hue: boolean): [number, number] {
  if (x === undefined) return hue ? [0, 0] : [1, 1];
  if (typeof x === 'number') {
    const f = num(x, name);
    if (hue ? f < 0 || f > 0.5 : f < 0)
      throw new RangeError(`${name}: expected a number in ${hue ? '[0, 0.5]' : '[0, inf)'}, got ${f}`);
    return hue ? [-f, f] : [Math.max(0, 1 - f), 1 + f];
  }
  return range(x, name, [0, 0]);
}

function interpolation(x: unknown, name: string): Interpolation {
  return x === undefined ? 'nearest' : checkOneOf<Interpolation>(x, ['nearest', 'bilinear'], name);
}

/** The pipeline as the native layer reads it (every field explicit). */
function nativePipeline(pipeline: unknown) {
  const p = object(pipeline, 'pipeline', PIPELINE_KEYS);
  const crop = p.crop === undefined || p.crop === null ? null : object(p.crop, 'pipeline.crop', ['scale', 'ratio']);
  const jitter = p.colorJitter === undefined || p.colorJitter === null
    ? null : object(p.colorJitter, 'pipeline.colorJitter', ['brightness', 'contrast', 'saturation', 'hue', 'p']);
  const ra = p.randAugment === undefined || p.randAugment === null
    ? null : object(p.randAugment, 'pipeline.randAugment', ['ops', 'magnitude', 'bins', 'interpolation']);
  const aa = p.autoAugment === undefined || p.autoAugment === null
    ? null : object(p.autoAugment, 'pipeline.autoAugment', ['policy', 'interpolation']);
  const blur = p.blur === undefined || p.blur === null ? null : object(p.blur, 'pipeline.blur', ['kernelSize', 'sigma', 'p']);
  const sol = p.solarize === undefined || p.solarize === null ? null : object(p.solarize, 'pipeline.solarize', ['threshold', 'p']);
  const int = (x: unknown, name: string, fallback: number): number => {
    if (x === undefined) return fallback;
    if (typeof x !== 'number') throw new TypeError(`${name}: expected an integer, got ${describe(x)}`);
    if (!Number.isSafeInteger(x)) throw new RangeError(`${name}: expected an integer, got ${x}`);
    return x;
  };
  return {
    crop: crop && { scale: range(crop.scale, 'pipeline.crop.scale', [0.08, 1]), ratio: range(crop.ratio, 'pipeline.crop.ratio', [3 / 4, 4 / 3]) },
    flip: probability(p.flip, 'pipeline.flip', 0),
    colorJitter: jitter && {
      brightness: jitterRange(jitter.brightness, 'pipeline.colorJitter.brightness', false),
      contrast: jitterRange(jitter.contrast, 'pipeline.colorJitter.contrast', false),
      saturation: jitterRange(jitter.saturation, 'pipeline.colorJitter.saturation', false),
      hue: jitterRange(jitter.hue, 'pipeline.colorJitter.hue', true),
      p: probability(jitter.p, 'pipeline.colorJitter.p', 1),
    },
    grayscale: probability(p.grayscale, 'pipeline.grayscale', 0),
    randAugment: ra && {
      ops: int(ra.ops, 'pipeline.randAugment.ops', 2),
      magnitude: int(ra.magnitude, 'pipeline.randAugment.magnitude', 9),
      bins: int(ra.bins, 'pipeline.randAugment.bins', 31),
      interpolation: interpolation(ra.interpolation, 'pipeline.randAugment.interpolation'),
    },
    autoAugment: aa && {
      policy: checkOneOf(aa.policy, ['imagenet', 'cifar10'], 'pipeline.autoAugment.policy'),
      interpolation: interpolation(aa.interpolation, 'pipeline.autoAugment.interpolation'),
    },
    blur: blur && {
      kernelSize: int(blur.kernelSize, 'pipeline.blur.kernelSize', 3),
      sigma: range(blur.sigma, 'pipeline.blur.sigma', [0.1, 2]),
      p: probability(blur.p, 'pipeline.blur.p', 1),
    },
    solarize: sol && {
      threshold: num(sol.threshold ?? 0.5, 'pipeline.solarize.threshold'),
      p: probability(sol.p, 'pipeline.solarize.p', 1),
    },
  };
}

function nativeTransform(normalize: unknown, fill: unknown, prefix: string) {
  let n = null;
  if (normalize !== undefined && normalize !== null) {
    const o = object(normalize, `${prefix}normalize`, ['mean', 'std']);
    const list = (x: unknown, name: string) => {
      if (!Array.isArray(x)) throw new TypeError(`${name}: expected an array of numbers, got ${describe(x)}`);
      return x.map((v, i) => num(v, `${name}[${i}]`));
    };
    n = { mean: list(o.mean, `${prefix}normalize.mean`), std: list(o.std, `${prefix}normalize.std`) };
  }
  return { normalize: n, fill: fill === undefined || fill === null ? null : num(fill, `${prefix}fill`) };
}

function seedWords(seed: unknown): [number, number] {
  if (seed === undefined) return [0, 0];
  if (typeof seed === 'bigint') {
    if (seed < 0n || seed >= 1n << 64n) throw new RangeError(`options.seed: expected a bigint in [0, 2^64), got ${seed}`);
    return [Number(seed & 0xffffffffn), Number(seed >> 32n)];
  }
  if (typeof seed !== 'number') throw new TypeError(`options.seed: expected a number or a bigint, got ${describe(seed)}`);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`options.seed: expected a safe integer >= 0, got ${seed}`);
  return [seed % 2 ** 32, Math.floor(seed / 2 ** 32)];
}

function prepareIndices(indices: unknown, n: number): Int32Array | null {
  if (indices === undefined) return null;
  if (indices instanceof Int32Array) {
    if (indices.length !== n) throw new RangeError(`options.indices: expected ${n} indices (one per image), got ${indices.length}`);
    return indices;
  }
  if (!Array.isArray(indices)) throw new TypeError(`options.indices: expected an Int32Array or a number[], got ${describe(indices)}`);
  if (indices.length !== n) throw new RangeError(`options.indices: expected ${n} indices (one per image), got ${indices.length}`);
  return Int32Array.from(indices, (x, i) => {
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > 2147483647)
      throw new RangeError(`options.indices[${i}]: expected an integer in [0, 2^31), got ${describe(x)}`);
    return x;
  });
}

function prepareSelect(select: unknown, images: number): Int32Array | null {
  if (select === undefined) return null;
  if (!(select instanceof Int32Array) && !Array.isArray(select))
    throw new TypeError(`options.select: expected an Int32Array or a number[] of image positions, got ${describe(select)}`);
  const out = select instanceof Int32Array ? select : new Int32Array(select.length);
  for (let i = 0; i < select.length; i++) {
    const x = (select as ArrayLike<unknown>)[i];
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x >= images)
      throw new RangeError(`options.select[${i}]: expected an image position in [0, ${images}), got ${describe(x)}`);
    out[i] = x;
  }
  return out;
}

function commonOptions(o: Record<string, unknown>, isTensor: boolean) {
  if (o.threads !== undefined && !(isPositiveInteger(o.threads) && o.threads <= 1024))
    throw new RangeError(`options.threads: expected an integer in [1, 1024], got ${describe(o.threads)}`);
  const device = resolveDevice(o.device ?? 'cpu', 'options.device');
  const output = o.output === undefined ? (isTensor ? 'tensor' : 'array') : checkOneOf(o.output, ['array', 'tensor'], 'options.output');
  return { threads: o.threads as number | undefined, device, output };
}

function overlaps(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

function allocate(
  shape: number[], output: string, out: unknown, input: PreparedImages['source'], device: 'cpu' | 'cuda' = 'cpu',
): { out: Float32Array | NativeStorage; result: () => AugmentResult; dispose: () => void } {
  if (out !== undefined) {
    const same = out instanceof Tensor ? !out.isDisposed && out.storage === input : ArrayBuffer.isView(out) && ArrayBuffer.isView(input) && overlaps(out, input);
    if (same) throw new RangeError('options.out: expected memory apart from the images, got the same (or overlapping) memory');
    if (out instanceof Tensor) {
      if (out.dtype !== 'float32') throw new TypeError(`options.out: expected a float32 tensor, got dtype '${out.dtype}'`);
      if (out.shape.length !== shape.length || out.shape.some((d, i) => d !== shape[i]))
        throw new RangeError(`options.out: expected shape [${shape.join(', ')}], got [${out.shape.join(', ')}]`);
      return { out: out.storage, result: () => out as Tensor<'float32'>, dispose: () => undefined };
    }
    if (!(out instanceof Float32Array)) throw new TypeError(`options.out: expected a Float32Array or a float32 Tensor, got ${describe(out)}`);
    if (out.length !== product(shape))
      throw new RangeError(`options.out: expected ${product(shape)} values ([${shape.join(', ')}]), got ${out.length}`);
    return { out, result: () => ({ data: out, shape }), dispose: () => undefined };
  }
  if (output === 'tensor') {
    const t = Tensor.zeros<'float32'>(shape, { device });
    return { out: t.storage, result: () => t, dispose: () => t.dispose() };
  }
  const data = new Float32Array(product(shape));
  return { out: data, result: () => ({ data, shape }), dispose: () => undefined };
}

/**
 * Draws `views` augmentations of every image with `pipeline` and returns them as
 * [n, views, C, H, W] float32. The same (seed, epoch, indices) give the same images.
 */
export function augment(images: ImagesInput, pipeline: AugmentPipeline, options: AugmentOptions = {}): AugmentResult {
  return augmentWith(images, pipeline, options, false).result;
}

type Destination = ReturnType<typeof allocate>;

/** Runs a native call into `dest`; a failure frees the destination it allocated. */
function into<T>(dest: Destination, call: () => T): T {
  try {
    return call();
  } catch (e) {
    dest.dispose();
    throw e;
  }
}

/** The same for an asynchronous call: the destination is the result once it resolves. */
async function intoAsync(dest: Destination, call: () => Promise<unknown>): Promise<AugmentResult> {
  try {
    await call();
  } catch (e) {
    dest.dispose();
    throw e;
  }
  return dest.result();
}

/** @internal augment(), with the CUDA timing when it ran on CUDA (for the benchmarks). */
export function augmentTimed(
  images: ImagesInput, pipeline: AugmentPipeline, options: AugmentOptions = {},
): { result: AugmentResult; timing: CudaAugmentTiming | undefined } {
  return augmentWith(images, pipeline, options, true);
}

/** Timed on CUDA: the call then waits for its events (untimed, views on the device do not wait). */
function augmentWith(images: ImagesInput, pipeline: AugmentPipeline, options: AugmentOptions, timed: boolean) {
  const { args, dest } = pipelineCall(images, pipeline, options, timed);
  const timing = into(dest, () => addon.augmentPipeline(...args));
  return { result: dest.result(), timing };
}

/**
 * augment() as a promise: the same checks (a bad argument rejects with the same error), the
 * CPU work on the libuv thread pool while the event loop runs, the same bits. A typed-array
 * input is copied first and a tensor pinned (disposing it frees its memory when the work
 * ends); a Float32Array `out` is filled when the work ends. On CUDA the work is queued at
 * once and the promise resolves with it.
 */
export async function augmentAsync(images: ImagesInput, pipeline: AugmentPipeline, options: AugmentOptions = {}): Promise<AugmentResult> {
  const { args, dest } = pipelineCall(images, pipeline, options);
  return intoAsync(dest, () => addon.augmentPipelineAsync(...args));
}

/** The checked arguments of a pipeline call, and where its views go. */
function pipelineCall(images: ImagesInput, pipeline: AugmentPipeline, options: AugmentOptions, timed = false) {
  const o = object(options, 'options', OPTION_KEYS);
  const img = prepareImages(images);
  const p = nativePipeline(pipeline);
  const [outHeight, outWidth] = outputSize(pipeline.size, img.height, img.width, 'pipeline.size');
  const views = o.views === undefined ? 2 : o.views;
  if (!isPositiveInteger(views) || views > 64) throw new RangeError(`options.views: expected an integer in [1, 64], got ${describe(views)}`);
  if (o.epoch !== undefined && !(Number.isSafeInteger(o.epoch) && (o.epoch as number) >= 0 && (o.epoch as number) < 2 ** 32))
    throw new RangeError(`options.epoch: expected an integer in [0, 2^32), got ${describe(o.epoch)}`);
  const [seedLow, seedHigh] = seedWords(o.seed);
  const select = prepareSelect(o.select, img.n);
  const n = select?.length ?? img.n;
  const indices = prepareIndices(o.indices, n) ?? select;
  const c = commonOptions(o, img.isTensor);
  const spec = {
    dtype: img.dtype, n, channels: img.channels, height: img.height, width: img.width, outHeight, outWidth,
    views, seedLow, seedHigh, epoch: o.epoch ?? 0, indices, device: c.device,
    // Absent fields as undefined, not spread in: spread objects ended up in V8's old generation.
    select: select ?? undefined, total: select !== null ? img.n : undefined, threads: c.threads, timed,
  };
  const transform = nativeTransform(pipeline.normalize, pipeline.fill, 'pipeline.');
  // Views of images on the GPU stay there.
  const dest = allocate([n, views, img.channels, outHeight, outWidth], c.output, o.out, img.source, img.device);
  return { args: [img.source, spec, p, transform, dest.out] as Parameters<NativeAugment['augmentPipeline']>, dest };
}

export interface AugmentOpsOptions {
  /** Output size (a side, or [height, width]); default the input size. */
  size?: number | readonly [number, number];
  normalize?: NormalizeSpec | null;
  fill?: number | null;
  threads?: number;
  device?: 'auto' | 'cpu' | 'cuda';
  output?: 'array' | 'tensor';
  /** Where to write the result (as AugmentOptions.out, shape [n, C, H, W]). */
  out?: Float32Array | Tensor<'float32'>;
}

/**
 * Applies fixed operations to every image: an optional 'resizedCrop' first (else the whole
 * image is resized to `size`), then the ops in order. Returns [n, C, H, W] float32.
 */
export function applyAugmentOps(images: ImagesInput, ops: readonly AugmentOp[], options: AugmentOpsOptions = {}): AugmentResult {
  const { args, dest } = opsCall(images, ops, options);
  into(dest, () => addon.augmentOps(...args));
  return dest.result();
}

/** applyAugmentOps() as a promise, with augmentAsync's guarantees. */
export async function applyAugmentOpsAsync(
  images: ImagesInput, ops: readonly AugmentOp[], options: AugmentOpsOptions = {},
): Promise<AugmentResult> {
  const { args, dest } = opsCall(images, ops, options);
  return intoAsync(dest, () => addon.augmentOpsAsync(...args));
}

/** The checked arguments of an op-list call, and where its images go. */
function opsCall(images: ImagesInput, ops: readonly AugmentOp[], options: AugmentOpsOptions) {
  const o = object(options, 'options', OPS_OPTION_KEYS);
  const img = prepareImages(images);
  if (!Array.isArray(ops)) throw new TypeError(`ops: expected an array of operations, got ${describe(ops)}`);
  const [outHeight, outWidth] = outputSize(o.size, img.height, img.width, 'options.size');
  const c = commonOptions(o, img.isTensor);
  const spec = {
    dtype: img.dtype, n: img.n, channels: img.channels, height: img.height, width: img.width, outHeight, outWidth,
    device: c.device, ...(c.threads !== undefined ? { threads: c.threads } : {}),
  };
  const transform = nativeTransform(o.normalize, o.fill, 'options.');
  const dest = allocate([img.n, img.channels, outHeight, outWidth], c.output, o.out, img.source, img.device);
  return { args: [img.source, spec, ops, transform, dest.out] as Parameters<NativeAugment['augmentOps']>, dest };
}

/** The most op lists (images x views) one drawAugmentOps call returns. */
export const MAX_DRAWN_PROGRAMS = 65536;

/**
 * The operations `augment` would apply, without applying them (at most MAX_DRAWN_PROGRAMS
 * images x views in one call: a RangeError past it): result[i][v] is the op list
 * of image i, view v (a 'resizedCrop' first), in applyAugmentOps' vocabulary.
 */
export function drawAugmentOps(
  shape: readonly number[],
  pipeline: AugmentPipeline,
  options: Pick<AugmentOptions, 'seed' | 'epoch' | 'indices' | 'views'> = {},
): AugmentOp[][][] {
  const o = object(options, 'options', ['seed', 'epoch', 'indices', 'views']);
  const d = dims(checkShape(shape, 'shape'), 'shape');
  const p = nativePipeline(pipeline);
  const [outHeight, outWidth] = outputSize(pipeline.size, d.height, d.width, 'pipeline.size');
  const views = o.views ?? 2;
  if (!isPositiveInteger(views) || views > 64) throw new RangeError(`options.views: expected an integer in [1, 64], got ${describe(views)}`);
  if (d.n * views > MAX_DRAWN_PROGRAMS)
    throw new RangeError(`shape: ${d.n} images x ${views} views is ${d.n * views} op lists, more than the ${MAX_DRAWN_PROGRAMS} ` +
      'drawAugmentOps returns in one call (each is a JavaScript array of objects); draw the images in slices of options.indices');
  const [seedLow, seedHigh] = seedWords(o.seed);
  const spec = {
    n: d.n, channels: d.channels, height: d.height, width: d.width, outHeight, outWidth, views,
    seedLow, seedHigh, epoch: o.epoch ?? 0, indices: prepareIndices(o.indices, d.n),
  };
  const flat = addon.augmentDraw(spec, p) as AugmentOp[][];
  return Array.from({ length: d.n }, (_, i) => flat.slice(i * views, (i + 1) * views));
}

