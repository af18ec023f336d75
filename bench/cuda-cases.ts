// The one case table of the CUDA-vs-CPU checks. `npm run gpu:check` runs it at full sizes
// on a GPU; `gpu-check --emulated` (the emulated CUDA backend of `npm run
// test:cuda-emulated`) runs the same cases at small sizes. A case names its inputs and
// options only; bench/gpu-check.ts makes the data, runs both paths and compares them.
//
// The loss cases are a covering design, not the full cross product: twelve configurations
// of everything but the precision, chosen so that every value of every option appears and
// the pairs that select different kernel code appear together (variant x denominator,
// labels kind x contrast mode, the backward kernel's d class x normalisation), each run in
// every precision, so that every pair of precision x option value is covered.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { AugmentOp, AugmentPipeline } from '../lib/index';

export type Precision = 'fp32' | 'tf32' | 'bf16';
export const PRECISIONS: readonly Precision[] = ['fp32', 'tf32', 'bf16'];

/** Relative error allowed in the loss (and, times GRADIENT_FACTOR, in gradients and GEMM results). */
export const TOLERANCE: Readonly<Record<Precision, number>> = Object.freeze({ fp32: 1e-5, tf32: 2e-3, bf16: 2e-2 });
export const GRADIENT_FACTOR = 10;
/**
 * Floor of the reference norm in relative L2 errors, as an RMS per element: an exactly
 * zero reference (d = 1 with normalize: z = +-1, so every gradient component cancels;
 * SimCLR with one view: no anchor has a positive) compares as an absolute error against
 * this instead of dividing by zero. The non-zero reference gradients of the table have an
 * RMS of 2e-6 and more, which the floor moves by under 0.2%.
 */
export const RMS_FLOOR = 1e-7;
/** Floor of |reference loss| in the loss's relative error (a loss of exactly 0 when no anchor counts). */
export const LOSS_FLOOR = 1e-6;
/**
 * Augmentation: CUDA and CPU views agree to this absolute error per value, except after
 * the thresholding ops (solarize, posterize, equalize, autoContrast), where a last-bit
 * difference may move a value across a threshold: there at most `jumpShare` of the values
 * may differ by more.
 */
export const AUGMENT_TOLERANCE = Object.freeze({ abs: 1e-4, jumpShare: 1e-2 });
export const THRESHOLDING_OPS: readonly string[] = ['solarize', 'posterize', 'equalize', 'autoContrast'];

/** ||a - b|| / max(||b||, RMS_FLOOR sqrt(count)) over the indices `at` selects (default all). */
export function relL2(a: ArrayLike<number>, b: ArrayLike<number>, at?: (i: number) => boolean): number {
  let num = 0, den = 0, count = 0;
  for (let i = 0; i < b.length; i++) {
    if (at && !at(i)) continue;
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
    count++;
  }
  return Math.sqrt(num / Math.max(den, count * RMS_FLOOR ** 2, 1e-300));
}

/** The median; of an even count, the mean of the two middle values. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((p, q) => p - q), mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export type Scale = 'full' | 'small';
const pick = (sizes: readonly [number, number], scale: Scale) => (scale === 'full' ? sizes[0] : sizes[1]);

// ---------------------------------------------------------------------------------------
// The loss

/** The forward kernel's row blocks and the backward kernel's tiles are 64 rows. */
export const TILE = 64;

/** Which backward kernel a feature width selects (native/cuda/supcon_loss.cu, launchBackward). */
export function backwardVariant(d: number): string {
  const ld = Math.ceil(d / 32) * 32, chunks = Math.ceil(ld / 64);
  return chunks === 1 ? 'registers, d <= 64' : chunks === 2 ? 'registers, d <= 128' : chunks <= 4 ? 'registers, d <= 256' : 'global memory, d > 256';
}

export interface LossOptionsOfCase {
  temperature: number;
  baseTemperature: number;
  contrastMode: 'all' | 'one';
  variant: 'out' | 'in';
  denominator: 'all' | 'onePositive' | 'onlyNegatives';
  normalize: boolean;
  excludeAnchorsWithoutPositives: boolean;
}

export interface LossCase {
  id: string;
  precision: Precision;
  n: number;
  v: number;
  d: number;
  /** 'labels': classes drawn from `classes`; 'simclr': no labels (positives are the other views); 'mask': an [n, n] mask. */
  positives: 'labels' | 'simclr' | 'mask';
  classes: number;
  options: LossOptionsOfCase;
  /** A contrast set (docs/LOSS.md, "The contrast set"), or null: the batch alone. */
  contrast: ContrastOfCase | null;
  /** Rows whose largest value is near the float32 maximum (|x| past the float32 range). */
  huge: boolean;
  seed: number;
  /** What the case is there for. */
  covers: string;
}

/**
 * The contrast set of a case: 'queue' is the own rows then `extra` rows (withAnchors);
 * 'global' holds the own rows, shuffled among `extra` others, at given positions; 'disjoint'
 * is `extra` rows apart from the anchors. `hostRows`: the rows in host memory (else a CUDA
 * tensor). `gradient`: d loss / d contrast rows comes back too.
 */
export interface ContrastOfCase {
  form: 'queue' | 'global' | 'disjoint';
  extra: number;
  gradient: boolean;
  hostRows: boolean;
}

/** Contrast rows the caller passes (m) and the columns of the loss (M). */
export function contrastSizes(n: number, v: number, c: ContrastOfCase): { m: number; M: number } {
  const B = n * v;
  const m = c.form === 'global' ? B + c.extra : c.extra;
  return { m, M: c.form === 'queue' ? B + m : m };
}

interface LossConfig {
  n: readonly [number, number];  // [full, small]
  v: number;
  d: number;
  positives: LossCase['positives'];
  classes?: readonly [number, number];
  contrastMode: LossOptionsOfCase['contrastMode'];
  variant: LossOptionsOfCase['variant'];
  denominator: LossOptionsOfCase['denominator'];
  normalize: boolean;
  exclude: boolean;
  temperature: number;
  contrast?: { form: ContrastOfCase['form']; extra: readonly [number, number]; gradient: boolean; hostRows: boolean };
  huge?: boolean;
  covers: string;
}

// B = n v rows ('all' mode anchors all of them, 'one' mode the n of view 0).
const LOSS_CONFIGS: readonly LossConfig[] = [
  { n: [37, 37], v: 2, d: 1, positives: 'labels', classes: [3, 3], contrastMode: 'all', variant: 'out', denominator: 'all', normalize: true, exclude: false, temperature: 0.1, covers: 'd = 1 with normalize: a gradient of exactly 0' },
  { n: [150, 45], v: 2, d: 3, positives: 'simclr', contrastMode: 'one', variant: 'in', denominator: 'onePositive', normalize: false, exclude: false, temperature: 0.5, covers: "SimCLR, 'one' mode, odd d" },
  { n: [333, 70], v: 2, d: 64, positives: 'mask', contrastMode: 'all', variant: 'out', denominator: 'onlyNegatives', normalize: true, exclude: false, temperature: 0.07, covers: "'all'-mode mask whose last block is partial (padding rows must not read the mask)" },
  { n: [101, 33], v: 4, d: 128, positives: 'labels', classes: [5, 5], contrastMode: 'one', variant: 'out', denominator: 'onePositive', normalize: true, exclude: true, temperature: 0.2, covers: 'v = 4, two register chunks' },
  { n: [500, 96], v: 2, d: 129, positives: 'mask', contrastMode: 'one', variant: 'in', denominator: 'all', normalize: false, exclude: true, temperature: 0.1, covers: "'one'-mode mask whose last block is partial, four register chunks" },
  { n: [700, 50], v: 2, d: 300, positives: 'labels', classes: [7, 7], contrastMode: 'all', variant: 'in', denominator: 'onlyNegatives', normalize: true, exclude: false, temperature: 0.05, covers: 'dz in global memory, normalised' },
  { n: [30, 20], v: 2, d: 2048, positives: 'simclr', contrastMode: 'all', variant: 'out', denominator: 'onePositive', normalize: false, exclude: false, temperature: 0.1, covers: 'd = 2048 unnormalised, B below one tile' },
  { n: [1001, 77], v: 1, d: 64, positives: 'labels', classes: [400, 40], contrastMode: 'all', variant: 'in', denominator: 'onePositive', normalize: false, exclude: true, temperature: 0.3, covers: 'v = 1 with singleton classes: the exclusion rule' },
  { n: [256, 32], v: 2, d: 64, positives: 'labels', classes: [4, 4], contrastMode: 'all', variant: 'out', denominator: 'all', normalize: false, exclude: false, temperature: 1, covers: 'B a multiple of the tile' },
  { n: [150, 40], v: 3, d: 128, positives: 'mask', contrastMode: 'one', variant: 'out', denominator: 'onlyNegatives', normalize: false, exclude: false, temperature: 0.3, covers: 'v = 3, two register chunks unnormalised' },
  { n: [200, 50], v: 1, d: 129, positives: 'simclr', contrastMode: 'all', variant: 'in', denominator: 'all', normalize: true, exclude: true, temperature: 0.1, covers: 'SimCLR with one view: no anchor has a positive, the loss is 0' },
  { n: [300, 24], v: 2, d: 2048, positives: 'labels', classes: [10, 6], contrastMode: 'all', variant: 'out', denominator: 'all', normalize: true, exclude: false, temperature: 0.1, covers: 'd = 2048 normalised' },
  { n: [4097, 130], v: 2, d: 128, positives: 'labels', classes: [100, 10], contrastMode: 'all', variant: 'out', denominator: 'all', normalize: true, exclude: false, temperature: 0.1, covers: 'the timed configuration, many column tiles' },
  // A contrast set: the three forms, each kind of positives, the contrast gradient on and off,
  // contrast rows from the host and from the device, every class of d.
  { n: [512, 40], v: 2, d: 128, positives: 'labels', classes: [10, 6], contrastMode: 'all', variant: 'out', denominator: 'all', normalize: true, exclude: false, temperature: 0.1, contrast: { form: 'queue', extra: [4096, 200], gradient: false, hostRows: false }, covers: 'a memory queue after the batch (withAnchors), detached' },
  { n: [300, 37], v: 2, d: 64, positives: 'labels', classes: [20, 5], contrastMode: 'one', variant: 'in', denominator: 'onePositive', normalize: false, exclude: false, temperature: 0.2, contrast: { form: 'global', extra: [1000, 70], gradient: true, hostRows: true }, covers: "a global batch: the anchors at shuffled positions, 'one' mode" },
  { n: [200, 30], v: 2, d: 300, positives: 'mask', contrastMode: 'all', variant: 'in', denominator: 'onlyNegatives', normalize: true, exclude: false, temperature: 0.1, contrast: { form: 'disjoint', extra: [700, 90], gradient: true, hostRows: false }, covers: 'a reference set apart from the anchors, a weighted [n, m] mask' },
  { n: [256, 33], v: 2, d: 129, positives: 'simclr', contrastMode: 'all', variant: 'out', denominator: 'onePositive', normalize: false, exclude: true, temperature: 0.3, contrast: { form: 'global', extra: [300, 40], gradient: true, hostRows: false }, covers: 'a global batch without labels: positives through the positions' },
  { n: [100, 45], v: 3, d: 3, positives: 'mask', contrastMode: 'one', variant: 'out', denominator: 'all', normalize: true, exclude: false, temperature: 0.5, contrast: { form: 'queue', extra: [2000, 64], gradient: true, hostRows: true }, covers: 'a queue with a weighted [n, n + m] mask, odd d' },
  { n: [64, 20], v: 2, d: 2048, positives: 'labels', classes: [8, 4], contrastMode: 'all', variant: 'in', denominator: 'all', normalize: false, exclude: true, temperature: 0.1, contrast: { form: 'disjoint', extra: [500, 50], gradient: true, hostRows: true }, covers: 'a reference set with labels, d = 2048' },
  { n: [300, 40], v: 2, d: 128, positives: 'labels', classes: [10, 5], contrastMode: 'all', variant: 'out', denominator: 'all', normalize: true, exclude: false, temperature: 0.1, huge: true, covers: 'rows near the float32 maximum, normalised: |x| past the float32 range (scale-invariant, as on the CPU)' },
];

/** Every loss case at this scale: each configuration in every precision. */
export function lossCases(scale: Scale, precisions: readonly Precision[] = PRECISIONS): LossCase[] {
  const out: LossCase[] = [];
  LOSS_CONFIGS.forEach((c, k) => {
    for (const precision of precisions)
      out.push({
        id: `loss-${String(k + 1).padStart(2, '0')}-${precision}`,
        precision,
        n: pick(c.n, scale),
        v: c.v,
        d: c.d,
        positives: c.positives,
        classes: c.classes ? pick(c.classes, scale) : 0,
        options: {
          temperature: c.temperature, baseTemperature: 0.07, contrastMode: c.contrastMode, variant: c.variant,
          denominator: c.denominator, normalize: c.normalize, excludeAnchorsWithoutPositives: c.exclude,
        },
        contrast: c.contrast ? { form: c.contrast.form, extra: pick(c.contrast.extra, scale), gradient: c.contrast.gradient, hostRows: c.contrast.hostRows } : null,
        huge: c.huge ?? false,
        seed: 1000 + k,  // the same inputs in every precision
        covers: `${c.covers}; backward: ${backwardVariant(c.d)}`,
      });
  });
  return out;
}

/** Rows whose anchors the forward kernel's last block holds (0: the blocks are full). */
export function lossLastBlockRows(c: LossCase): number {
  const anchors = c.options.contrastMode === 'all' ? c.n * c.v : c.n;
  return anchors % TILE;
}

export interface Work {
  /** Floating-point operations of matrix products (tensor cores in tf32 and bf16). */
  flops: number;
  /** Other GPU operations, on the CUDA cores (the loss's row phase: masks, exponentials, sums). */
  scalarOps: number;
  /** Bytes the GPU reads and writes (the working set streamed per tile pass). */
  bytes: number;
  /** Host-side element work: generating, copying and comparing values. */
  hostElements: number;
  /** Floating-point operations of the CPU reference. */
  cpuFlops: number;
}

/**
 * Work of the fused loss, forward + backward, as the kernels tile it (not the model's
 * 6 B^2 d): the forward pass(es) over the anchors' blocks, the backward recomputing the
 * logits and multiplying H Z; about 30 row-phase operations a logit forward, 50 backward.
 */
export function lossWork(n: number, v: number, d: number, contrastMode: 'all' | 'one', denominator: string, contrast: ContrastOfCase | null = null): Work {
  const B = n * v, anchors = contrastMode === 'all' ? B : n, ld = Math.ceil(d / 32) * 32;
  const passes = denominator === 'onePositive' ? 2 : 1;
  const anchorRows = Math.ceil(anchors / TILE) * TILE;
  if (contrast !== null) {
    // Forward over the M columns; backward: the anchors over the M columns, then the
    // contrast rows (all M with the gradient, else the own ones) over the anchors.
    const { m, M } = contrastSizes(n, v, contrast);
    const own = M - m, back = contrast.gradient ? M : own;
    const backRows = Math.ceil(back / TILE) * TILE;
    const flops = 2 * passes * anchorRows * M * ld + 4 * anchorRows * M * ld + 4 * backRows * anchors * ld;
    const bytes = 4 * M * ld * (passes + 2) * Math.ceil(anchors / TILE) + 8 * anchors * ld * Math.ceil(back / TILE) + 4 * 4 * (B + M) * d;
    return {
      flops, scalarOps: 30 * passes * anchorRows * M + 50 * (anchorRows * M + backRows * anchors), bytes,
      hostElements: 4 * (B + m) * d, cpuFlops: 2 * passes * anchors * M * d + 4 * anchors * M * d + 4 * back * anchors * d,
    };
  }
  const rows = Math.ceil(B / TILE) * TILE;
  const flops = 2 * passes * anchorRows * B * ld + 4 * rows * B * ld;
  const bytes = 4 * B * ld * (passes * Math.ceil(anchors / TILE) + 2 * Math.ceil(B / TILE)) + 3 * 4 * B * d;
  return {
    flops, scalarOps: 30 * passes * anchorRows * B + 50 * rows * B, bytes, hostElements: 4 * B * d,
    cpuFlops: 2 * passes * anchors * B * d + 4 * B * B * d,
  };
}

// ---------------------------------------------------------------------------------------
// The GEMM

export interface GemmCase {
  id: string;
  precision: Precision;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  /** Extra row stride beyond the stored widths (padding that holds NaN in A and B, sentinels in C). */
  padA: number;
  padB: number;
  padC: number;
  alpha: number;
  beta: number;
  seed: number;
}

const GEMM_SHAPES: readonly (readonly [readonly [number, number, number], readonly [number, number, number]])[] = [
  [[1, 1, 1], [1, 1, 1]],
  [[7, 33, 5], [7, 33, 5]],
  [[64, 64, 64], [64, 64, 64]],
  [[130, 67, 257], [70, 45, 131]],
  [[257, 300, 129], [65, 66, 33]],
  [[65, 1, 300], [65, 1, 40]],
  [[1, 200, 33], [1, 70, 33]],
  [[33, 17, 0], [9, 17, 0]],
];
// (alpha, beta); beta = 0 must not read C (it holds NaN then).
const GEMM_SCALARS: readonly (readonly [number, number])[] = [[1, 0], [0.7, 0.3], [-1.5, 1], [2, 0]];
const GEMM_PADS: readonly (readonly [number, number, number])[] = [[0, 0, 0], [3, 0, 2], [0, 17, 5], [1, 2, 3]];

/** Every shape with every transpose pair, strides and scalars rotating, in every precision. */
export function gemmCases(scale: Scale, precisions: readonly Precision[] = PRECISIONS): GemmCase[] {
  const out: GemmCase[] = [];
  let k = 0;
  GEMM_SHAPES.forEach((sizes, s) => {
    const [M, N, K] = scale === 'full' ? sizes[0] : sizes[1];
    for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
      const [alpha, beta] = GEMM_SCALARS[k % GEMM_SCALARS.length];
      const [padA, padB, padC] = GEMM_PADS[(k + s) % GEMM_PADS.length];
      for (const precision of precisions)
        out.push({ id: `gemm-${String(k + 1).padStart(2, '0')}-${precision}`, precision, M, N, K, transA, transB, padA, padB, padC, alpha, beta, seed: 500 + k });
      k++;
    }
  });
  return out;
}

/** Stored rows, columns and row stride of op(X) [rows, cols] kept transposed or not. */
export function stored(rows: number, cols: number, trans: boolean, pad: number) {
  const r = trans ? cols : rows, c = trans ? rows : cols;
  return { rows: r, cols: c, ld: Math.max(1, c + pad) };
}

export function gemmWork(c: GemmCase): Work {
  const bytes = 4 * (c.M * c.K + c.K * c.N + 2 * c.M * c.N);
  return { flops: 2 * c.M * c.N * c.K, scalarOps: 0, bytes, hostElements: 3 * (c.M * c.K + c.K * c.N + c.M * c.N), cpuFlops: 2 * c.M * c.N * c.K };
}

// ---------------------------------------------------------------------------------------
// Augmentation

export interface ImageConfig {
  name: string;
  dtype: 'uint8' | 'float32';
  n: number;
  channels: 1 | 3;
  height: number;
  width: number;
  outHeight: number;
  outWidth: number;
}

/** Per-view scratch of the CUDA kernel: two planar buffers, planes padded to 16 floats (native/cuda/augment.cu). */
export function augmentScratchBytes(img: ImageConfig): number {
  const plane = Math.ceil((img.outHeight * img.outWidth) / 16) * 16;
  return 2 * img.channels * plane * 4;
}
/** Above this the two buffers live in global memory instead of shared memory. */
export const AUGMENT_SHARED_LIMIT = 44 * 1024;

// Two images whose buffers fit in shared memory and two that do not, between them uint8
// and float input, 1 and 3 channels, resizes up and down.
function images(scale: Scale): ImageConfig[] {
  const n = scale === 'full' ? 16 : 2;
  return [
    { name: 'u8 3x32x32', dtype: 'uint8', n, channels: 3, height: 32, width: 32, outHeight: 32, outWidth: 32 },
    { name: 'f32 1x28x28->24x20', dtype: 'float32', n, channels: 1, height: 28, width: 28, outHeight: 24, outWidth: 20 },
    { name: 'u8 3x96x96', dtype: 'uint8', n, channels: 3, height: 96, width: 96, outHeight: 96, outWidth: 96 },
    { name: 'f32 1x67x45->80x72', dtype: 'float32', n, channels: 1, height: 67, width: 45, outHeight: 80, outWidth: 72 },
  ];
}

/** Every op of the CUDA kernel (native/common/augment_types.h, OpKind) and the resampling in front of it. */
export const AUGMENT_OPS: readonly AugmentOp[] = [
  { op: 'hflip' },
  { op: 'brightness', factor: 1.3 },
  { op: 'contrast', factor: 0.6 },
  { op: 'saturation', factor: 1.7 },
  { op: 'hue', factor: -0.2 },
  { op: 'grayscale' },
  { op: 'solarize', threshold: 0.4 },
  { op: 'posterize', bits: 3 },
  { op: 'invert' },
  { op: 'autoContrast' },
  { op: 'equalize' },
  { op: 'sharpness', factor: 1.9 },
  // the largest kernel on the 32 x 32 and 80 x 72 images (reflect padding 31 < each side)
  { op: 'gaussianBlur', kernelSize: 63, sigma: 9 },
  { op: 'gaussianBlur', kernelSize: 5, sigma: 1.3 },
  { op: 'rotate', angle: 17, interpolation: 'bilinear' },
  { op: 'affine', angle: -8, translate: [3, -2], scale: 1.15, shear: [5, -3], interpolation: 'nearest' },
  { op: 'affineMatrix', matrix: [0.9, 0.1, 2, -0.1, 1.05, -1], interpolation: 'bilinear' },
  { op: 'shearX', factor: 0.2 },
  { op: 'shearY', factor: -0.15, interpolation: 'bilinear' },
  { op: 'translateX', pixels: 5 },
  { op: 'translateY', pixels: -4 },
];

export interface AugmentCase {
  id: string;
  image: ImageConfig;
  /** applyAugmentOps: a resizedCrop then these ops; or augment() with a pipeline. */
  ops?: AugmentOp[];
  pipeline?: AugmentPipeline;
  normalize: boolean;
  fill: number | null;
  seed: number;
  covers: string;
}

const NORMALIZE = { 3: { mean: [0.4914, 0.4822, 0.4465], std: [0.2023, 0.1994, 0.201] }, 1: { mean: [0.5], std: [0.25] } } as const;
export function normalizeSpec(channels: 1 | 3) {
  return NORMALIZE[channels];
}

/**
 * Each op on one image of the shared-memory path and one of the global-memory path,
 * alternating so that each op meets uint8 and float, 1 and 3 channels; Normalize and the
 * fill rotate. Then whole pipelines (their drawn programs chain many ops per view).
 */
export function augmentCases(scale: Scale): AugmentCase[] {
  const [smallA, smallB, bigA, bigB] = images(scale);
  const out: AugmentCase[] = [];
  AUGMENT_OPS.forEach((op, k) => {
    const pair = k % 2 === 0 ? [smallA, bigB] : [smallB, bigA];
    pair.forEach((image, j) => {
      out.push({
        id: `augment-${String(out.length + 1).padStart(2, '0')}`,
        image,
        ops: [op],
        normalize: (k + j) % 3 === 0,
        fill: (k + j) % 4 === 1 ? 0.4 : null,
        seed: 700 + out.length,
        covers: `${op.op} on ${image.name} (${augmentScratchBytes(image) > AUGMENT_SHARED_LIMIT ? 'global' : 'shared'} memory)`,
      });
    });
  });
  const pipelines: [string, AugmentPipeline][] = [
    ['simAugment', { crop: { scale: [0.2, 1] }, flip: 0.5, colorJitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1, p: 0.8 }, grayscale: 0.2 }],
    ['simclr with blur', { crop: { scale: [0.08, 1] }, flip: 0.5, colorJitter: { brightness: 0.8, contrast: 0.8, saturation: 0.8, hue: 0.2, p: 0.8 }, grayscale: 0.2, blur: { kernelSize: 9, sigma: [0.1, 2], p: 0.5 }, solarize: { threshold: 0.5, p: 0.2 } }],
    ['randAugment', { crop: { scale: [0.2, 1] }, flip: 0.5, randAugment: { ops: 4, magnitude: 12, interpolation: 'bilinear' } }],
    ['autoAugment imagenet', { crop: { scale: [0.2, 1] }, flip: 0.5, autoAugment: { policy: 'imagenet' } }],
  ];
  pipelines.forEach(([name, pipeline], k) => {
    const image = [smallA, bigA, smallB, bigB][k];
    out.push({
      id: `augment-${String(out.length + 1).padStart(2, '0')}`,
      image,
      pipeline: { ...pipeline, size: [image.outHeight, image.outWidth] },
      normalize: k % 2 === 1,
      fill: k === 2 ? 0.5 : null,
      seed: 700 + out.length,
      covers: `pipeline ${name} on ${image.name}`,
    });
  });
  return out;
}

export function augmentWork(c: AugmentCase): Work {
  const outValues = c.image.n * (c.pipeline ? 2 : 1) * c.image.channels * c.image.outHeight * c.image.outWidth;
  const inValues = c.image.n * c.image.channels * c.image.height * c.image.width;
  // A blur of kernel k does 2k taps a value; the other ops a handful.
  const taps = (c.ops ?? []).reduce((s, o) => s + (o.op === 'gaussianBlur' ? 4 * o.kernelSize : 20), 20);
  return { flops: 0, scalarOps: outValues * taps, bytes: 4 * (inValues + outValues), hostElements: 3 * (inValues + outValues), cpuFlops: outValues * taps };
}

// ---------------------------------------------------------------------------------------
// Layers: each CUDA op against its CPU twin (native.cudaNn.* against native.nn.*)

/** One tensor argument of an nn op, by the name the op's runner (bench/gpu-check.ts, NN_OPS) passes it as. */
export interface NnTensor {
  name: string;
  count: number;
  role: 'input' | 'output';
  /**
   * Backward outputs ADD into what they hold: they start as random values and the increment
   * is compared. Other outputs start as NaN (they must be written and never read).
   */
  accumulate?: boolean;
  /** Inputs are normal values times this (weights: 1 / sqrt(fan-in)); default 1. */
  scale?: number;
  /** An input of integers in [0, int32Below) (positions, class labels), as int32. */
  int32Below?: number;
  /** Max-pooling positions: for each output, a random input position inside its window (the case's params are the pooling). */
  poolPositions?: boolean;
  /** An output of int32 values (positions), compared exactly. */
  int32?: boolean;
  /** Values that must be positive (variances, norms, inverse standard deviations): 0.5 + |normal|. */
  positive?: boolean;
}

/**
 * A generic row of the layer stage: an op of the runner's table with its scalar arguments
 * and its tensors. A tensor the op takes but the case leaves out is passed as null (an
 * optional bias or gradient, skipped). New ops (ReLU, pooling, batch norm, optimizers) are
 * rows of the same shape, with their own `params`.
 */
export interface NnCase {
  id: string;
  op: string;
  precision: Precision;
  params: Record<string, number | boolean | string>;
  tensors: NnTensor[];
  /** The same inputs in every precision (the CPU reference is computed once per seed and op). */
  seed: number;
  covers: string;
  work: Work;
}

export interface ConvDescOfCase {
  N: number; C: number; H: number; W: number; K: number; R: number; S: number;
  strideH: number; strideW: number; padH: number; padW: number;
}

export function convOutput(d: ConvDescOfCase): { P: number; Q: number } {
  return { P: Math.floor((d.H + 2 * d.padH - d.R) / d.strideH) + 1, Q: Math.floor((d.W + 2 * d.padW - d.S) / d.strideW) + 1 };
}

type Geometry = [N: number, C: number, H: number, W: number, K: number];
interface ConvConfig {
  sizes: readonly [Geometry, Geometry];  // [full, small]
  R: number; S: number; strideH: number; strideW: number; padH: number; padW: number;
  /** The forward case adds a bias; the weight-gradient case also sums db. */
  bias: boolean;
  /** Also the data gradient into a fresh dx (overwrite: written, not added into), in fp32. */
  written?: boolean;
  covers: string;
}

// Channel counts off the 64-wide tiles and N*P*Q off the 64-row tiles at the small sizes,
// except where a config is there for an exact multiple.
const CONV_CONFIGS: readonly ConvConfig[] = [
  { sizes: [[8, 3, 32, 32, 64], [2, 3, 9, 8, 20]], R: 3, S: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, bias: true, written: true, covers: '3x3 stem, C = 3' },
  { sizes: [[4, 130, 16, 16, 70], [2, 70, 5, 7, 66]], R: 1, S: 1, strideH: 1, strideW: 1, padH: 0, padW: 0, bias: false, covers: '1x1, C and K just past a tile' },
  { sizes: [[4, 64, 17, 17, 128], [2, 36, 9, 9, 40]], R: 3, S: 3, strideH: 2, strideW: 2, padH: 1, padW: 1, bias: true, covers: '3x3 stride 2 (the gather skips taps off the stride)' },
  { sizes: [[2, 17, 20, 20, 33], [1, 5, 11, 11, 9]], R: 5, S: 5, strideH: 1, strideW: 1, padH: 2, padW: 2, bias: true, covers: '5x5 pad 2' },
  { sizes: [[3, 20, 15, 12, 24], [2, 7, 9, 6, 11]], R: 3, S: 1, strideH: 2, strideW: 1, padH: 1, padW: 0, bias: false, written: true, covers: 'non-square 3x1 window, stride (2, 1)' },
  { sizes: [[4, 64, 16, 16, 128], [2, 24, 8, 8, 72]], R: 1, S: 1, strideH: 2, strideW: 2, padH: 0, padW: 0, bias: false, covers: '1x1 stride 2 (a ResNet shortcut)' },
  { sizes: [[16, 8, 32, 32, 16], [4, 4, 13, 13, 8]], R: 3, S: 3, strideH: 1, strideW: 1, padH: 0, padW: 0, bias: true, covers: '3x3 pad 0, N*P*Q long against few weight tiles (the weight gradient split into partial sums)' },
  { sizes: [[2, 64, 8, 8, 64], [1, 64, 8, 8, 64]], R: 1, S: 1, strideH: 1, strideW: 1, padH: 0, padW: 0, bias: true, covers: 'every size a multiple of the tiles' },
];

/** The work of one conv case: its GEMM (M x N x Kdim), the tensors it streams. */
function convWork(d: ConvDescOfCase, which: 'forward' | 'data' | 'weights'): Work {
  const { P, Q } = convOutput(d);
  const x = d.N * d.C * d.H * d.W, w = d.K * d.C * d.R * d.S, y = d.N * d.K * P * Q;
  const flops = which === 'data' ? 2 * d.N * d.H * d.W * d.C * d.K * d.R * d.S : 2 * d.N * P * Q * d.K * d.C * d.R * d.S;
  return { flops, scalarOps: 0, bytes: 4 * (x + w + 2 * y), hostElements: 4 * (x + w + y), cpuFlops: flops };
}

export function convCases(scale: Scale, precisions: readonly Precision[] = PRECISIONS): NnCase[] {
  const out: NnCase[] = [];
  CONV_CONFIGS.forEach((c, k) => {
    const [N, C, H, W, K] = scale === 'full' ? c.sizes[0] : c.sizes[1];
    const desc: ConvDescOfCase = { N, C, H, W, K, R: c.R, S: c.S, strideH: c.strideH, strideW: c.strideW, padH: c.padH, padW: c.padW };
    const { P, Q } = convOutput(desc);
    const x = N * C * H * W, w = K * C * c.R * c.S, y = N * K * P * Q, wScale = 1 / Math.sqrt(C * c.R * c.S);
    const shape = `N=${N} C=${C} ${H}x${W} K=${K} ${c.R}x${c.S} stride ${c.strideH},${c.strideW} pad ${c.padH},${c.padW} (P*Q ${P}x${Q}, N*P*Q ${N * P * Q})`;
    const variants: [string, string, NnTensor[], Work][] = [
      ['fwd', 'conv2dForward', [
        { name: 'x', count: x, role: 'input' }, { name: 'w', count: w, role: 'input', scale: wScale },
        ...(c.bias ? [{ name: 'b', count: K, role: 'input' as const }] : []), { name: 'y', count: y, role: 'output' },
      ], convWork(desc, 'forward')],
      ['bwd-data', 'conv2dBackward', [
        { name: 'x', count: x, role: 'input' }, { name: 'w', count: w, role: 'input', scale: wScale }, { name: 'dy', count: y, role: 'input' },
        { name: 'dx', count: x, role: 'output', accumulate: true },
      ], convWork(desc, 'data')],
      ['bwd-weights', 'conv2dBackward', [
        { name: 'x', count: x, role: 'input' }, { name: 'w', count: w, role: 'input', scale: wScale }, { name: 'dy', count: y, role: 'input' },
        { name: 'dw', count: w, role: 'output', accumulate: true }, ...(c.bias ? [{ name: 'db', count: K, role: 'output' as const, accumulate: true }] : []),
      ], convWork(desc, 'weights')],
      // A fresh gradient (overwrite): dx starts as NaN and must be written, not added into.
      ...(c.written ? [['bwd-data-written', 'conv2dBackward', [
        { name: 'x', count: x, role: 'input' }, { name: 'w', count: w, role: 'input', scale: wScale }, { name: 'dy', count: y, role: 'input' },
        { name: 'dx', count: x, role: 'output' },
      ], convWork(desc, 'data')] as [string, string, NnTensor[], Work]] : []),
    ];
    variants.forEach(([name, op, tensors, work]) => {
      const written = name.endsWith('-written');
      for (const precision of precisions)
        if (!written || precision === 'fp32')
          out.push({
            id: `conv-${String(k + 1).padStart(2, '0')}-${name}-${precision}`, op, precision, params: written ? { ...desc, overwrite: true } : { ...desc }, tensors,
            seed: 1500 + k, covers: `${c.covers}; ${name}${tensors.some((t) => t.name === 'b' || t.name === 'db') ? ' with bias' : ''}; ${shape}`, work,
          });
    });
  });
  return out;
}

interface LinearConfig {
  sizes: readonly [readonly [number, number, number], readonly [number, number, number]];
  bias: boolean;
  /** Also the backward pass into a fresh dx (overwrite: written, not added into), in fp32. */
  written?: boolean;
  covers: string;
}
const LINEAR_CONFIGS: readonly LinearConfig[] = [
  { sizes: [[512, 300, 130], [70, 33, 20]], bias: true, written: true, covers: 'sizes off the tiles' },
  { sizes: [[1, 2048, 10], [1, 129, 10]], bias: true, written: true, covers: 'one row (a classifier on one image)' },
  { sizes: [[256, 512, 128], [64, 64, 64]], bias: false, covers: 'tile multiples, no bias' },
];

export function linearCases(scale: Scale, precisions: readonly Precision[] = PRECISIONS): NnCase[] {
  const out: NnCase[] = [];
  LINEAR_CONFIGS.forEach((c, k) => {
    const [N, inF, outF] = scale === 'full' ? c.sizes[0] : c.sizes[1];
    const flops = 2 * N * inF * outF;
    const work = (products: number): Work => ({ flops: products * flops, scalarOps: N * outF, bytes: 4 * (N * inF + inF * outF + 2 * N * outF), hostElements: 4 * (N * inF + inF * outF + N * outF), cpuFlops: products * flops });
    const x = { name: 'x', count: N * inF, role: 'input' as const }, w = { name: 'w', count: outF * inF, role: 'input' as const, scale: 1 / Math.sqrt(inF) };
    const variants: [string, string, NnTensor[], Work][] = [
      ['fwd', 'linearForward', [x, w, ...(c.bias ? [{ name: 'b', count: outF, role: 'input' as const }] : []), { name: 'y', count: N * outF, role: 'output' }], work(1)],
      ['bwd', 'linearBackward', [x, w, { name: 'dy', count: N * outF, role: 'input' },
        { name: 'dx', count: N * inF, role: 'output', accumulate: true }, { name: 'dw', count: outF * inF, role: 'output', accumulate: true },
        ...(c.bias ? [{ name: 'db', count: outF, role: 'output' as const, accumulate: true }] : [])], work(2)],
      // A fresh dx (overwrite): written, not added into; dw adds as ever.
      ...(c.written ? [['bwd-written', 'linearBackward', [x, w, { name: 'dy', count: N * outF, role: 'input' },
        { name: 'dx', count: N * inF, role: 'output' }, { name: 'dw', count: outF * inF, role: 'output', accumulate: true }], work(2)] as
        [string, string, NnTensor[], Work]] : []),
    ];
    variants.forEach(([name, op, tensors, wk]) => {
      const written = name.endsWith('-written');
      for (const precision of precisions)
        if (!written || precision === 'fp32')
          out.push({
            id: `linear-${String(k + 1).padStart(2, '0')}-${name}-${precision}`, op, precision,
            params: written ? { N, inF, outF, overwrite: true } : { N, inF, outF }, tensors,
            seed: 1600 + k, covers: `${c.covers}; ${name}; N=${N} in=${inF} out=${outF}`, work: wk,
          });
    });
  });
  return out;
}

// ---------------------------------------------------------------------------------------
// The other layer ops (nn.cu): element-wise, pooling, normalisation, the cross-entropy,
// initialisers and optimizer steps, as rows of the same layer stage. They have no tensor
// cores: one row each, in fp32.

/** The work of a streaming op over `elements` values with `tensors` tensors of that size. */
function streamWork(elements: number, tensors: number, opsPerElement = 1): Work {
  return { flops: 0, scalarOps: elements * opsPerElement, bytes: 4 * elements * tensors, hostElements: 4 * elements * tensors, cpuFlops: elements * opsPerElement };
}

interface LayerOpRow {
  op: string;
  params: Record<string, number | boolean | string>;
  tensors: NnTensor[];
  covers: string;
  work: Work;
}

const input = (name: string, count: number, extra: Partial<NnTensor> = {}): NnTensor => ({ name, count, role: 'input', ...extra });
const output = (name: string, count: number, extra: Partial<NnTensor> = {}): NnTensor => ({ name, count, role: 'output', ...extra });
const added = (name: string, count: number, extra: Partial<NnTensor> = {}): NnTensor => ({ name, count, role: 'output', accumulate: true, ...extra });

function layerOpRows(scale: Scale): LayerOpRow[] {
  const small = scale === 'small';
  const n = small ? 3001 : (1 << 20) + 3;  // off every block size
  // Pooling and batch norm geometry: planes and windows off the 256-thread blocks.
  const [N, C, H, W] = small ? [3, 5, 9, 7] : [32, 64, 16, 16];
  const planes = N * C, hw = H * W;
  const pool = { N, C, H, W, R: 3, S: 3, strideH: 2, strideW: 2, padH: 1, padW: 1 };
  const P = Math.floor((H + 2 - 3) / 2) + 1, Q = Math.floor((W + 2 - 3) / 2) + 1;
  const pooled = N * C * P * Q;
  const [rows, dim] = small ? [37, 129] : [4096, 128];
  const [ceRows, classes] = small ? [41, 10] : [1024, 1000];
  const bn = { N, C, L: hw, eps: 1e-5, momentum: 0.1 };
  const sgd = { n, lr: 0.05, momentum: 0.9, dampening: 0, weightDecay: 5e-4, nesterov: true, firstStep: false };
  // The kNN monitor's search: training rows off the 256-thread blocks, test rows off the
  // 8-row similarity tiles, k off a power of two (the sort pads it).
  const knn = small ? { nTrain: 1201, nTest: 13, d: 33, k: 200 } : { nTrain: 60_001, nTest: 1_003, d: 128, k: 200 };
  return [
    { op: 'reluForward', params: { n }, tensors: [input('x', n), output('y', n)], covers: 'ReLU', work: streamWork(n, 2) },
    { op: 'reluBackward', params: { n }, tensors: [input('y', n), input('dy', n), added('dx', n)], covers: 'ReLU backward (adds)', work: streamWork(n, 3) },
    { op: 'reluBackward', params: { n, overwrite: true }, tensors: [input('y', n), input('dy', n), output('dx', n)], covers: 'ReLU backward writing a fresh dx (overwrite)', work: streamWork(n, 3) },
    { op: 'add', params: { n }, tensors: [input('a', n), input('b', n), output('y', n)], covers: 'the residual add', work: streamWork(n, 3) },
    { op: 'addInto', params: { n }, tensors: [input('x', n), added('y', n)], covers: 'gradient accumulation', work: streamWork(n, 2) },
    { op: 'fill', params: { n, value: -0.375 }, tensors: [output('x', n)], covers: 'gradient zeroing and constants', work: streamWork(n, 1) },
    { op: 'fillNormal', params: { n, mean: 0.25, std: 1.5, seed: 77 }, tensors: [output('x', n)], covers: 'normal draws (the CPU counter-based values, element for element)', work: streamWork(n, 1, 40) },
    { op: 'fillUniform', params: { n, low: -2, high: 3, seed: 78 }, tensors: [output('x', n)], covers: 'uniform draws', work: streamWork(n, 1, 20) },
    { op: 'maxPool2dForward', params: pool, tensors: [input('x', N * C * hw), output('y', pooled), output('indices', pooled, { int32: true })], covers: '3x3 stride 2 pad 1 max pooling (overlapping windows): values and argmax positions', work: streamWork(pooled, 2, 9) },
    { op: 'maxPool2dBackward', params: pool, tensors: [input('indices', pooled, { poolPositions: true }), input('dy', pooled), added('dx', N * C * hw)], covers: 'max pooling backward: a gather over the windows, random positions inside them', work: streamWork(N * C * hw, 2, 4) },
    { op: 'globalAvgPoolForward', params: { planes, L: hw }, tensors: [input('x', planes * hw), output('y', planes)], covers: 'global average pooling', work: streamWork(planes * hw, 1) },
    { op: 'globalAvgPoolBackward', params: { planes, L: hw }, tensors: [input('dy', planes), added('dx', planes * hw)], covers: 'global average pooling backward', work: streamWork(planes * hw, 1) },
    { op: 'batchNormForward', params: { ...bn, training: true }, tensors: [input('x', N * C * hw), input('gamma', C), input('beta', C), added('runningMean', C), added('runningVar', C, { positive: true }), output('y', N * C * hw), output('saveMean', C), output('saveInvStd', C)], covers: 'batch norm in training: batch statistics, the running ones updated', work: streamWork(N * C * hw, 3, 4) },
    { op: 'batchNormForward', params: { ...bn, training: false }, tensors: [input('x', N * C * hw), input('gamma', C), input('beta', C), input('runningMean', C), input('runningVar', C, { positive: true }), output('y', N * C * hw), output('saveMean', C), output('saveInvStd', C)], covers: 'batch norm in evaluation: the running statistics', work: streamWork(N * C * hw, 2, 2) },
    { op: 'batchNormBackward', params: { ...bn, training: true }, tensors: [input('x', N * C * hw), input('gamma', C), input('saveMean', C), input('saveInvStd', C, { positive: true }), input('dy', N * C * hw), added('dx', N * C * hw), added('dgamma', C), added('dbeta', C)], covers: 'batch norm backward in training', work: streamWork(N * C * hw, 3, 6) },
    { op: 'batchNormForward', params: { ...bn, training: true, relu: true }, tensors: [input('x', N * C * hw), input('gamma', C), input('beta', C), added('runningMean', C), added('runningVar', C, { positive: true }), output('y', N * C * hw), output('saveMean', C), output('saveInvStd', C)], covers: 'batch norm with a fused ReLU: max(y, 0)', work: streamWork(N * C * hw, 3, 5) },
    { op: 'batchNormBackward', params: { ...bn, training: true, relu: true }, tensors: [input('x', N * C * hw), input('gamma', C), input('saveMean', C), input('saveInvStd', C, { positive: true }), input('dy', N * C * hw), input('y', N * C * hw), added('dx', N * C * hw), added('dgamma', C), added('dbeta', C)], covers: 'batch norm backward with a fused ReLU: dy where the output y is > 0 (y random, both signs)', work: streamWork(N * C * hw, 4, 7) },
    { op: 'batchNormBackward', params: { ...bn, training: true, relu: true, overwrite: true }, tensors: [input('x', N * C * hw), input('gamma', C), input('saveMean', C), input('saveInvStd', C, { positive: true }), input('dy', N * C * hw), input('y', N * C * hw), output('dx', N * C * hw), added('dgamma', C), added('dbeta', C)], covers: 'batch norm backward with a fused ReLU writing a fresh dx (overwrite)', work: streamWork(N * C * hw, 4, 7) },
    { op: 'l2NormalizeForward', params: { rows, dim, eps: 1e-12 }, tensors: [input('x', rows * dim), output('y', rows * dim), output('norms', rows)], covers: 'L2 normalisation of rows', work: streamWork(rows * dim, 2, 3) },
    { op: 'l2NormalizeForward', params: { rows, dim, eps: 1e-12 }, tensors: [input('x', rows * dim, { scale: 5e37 }), output('y', rows * dim), output('norms', rows)], covers: 'L2 normalisation of rows near the float32 maximum: norms past it (the division in double, as on the CPU)', work: streamWork(rows * dim, 2, 3) },
    { op: 'l2NormalizeBackward', params: { rows, dim, eps: 1e-12 }, tensors: [input('y', rows * dim), input('norms', rows, { positive: true }), input('dy', rows * dim), added('dx', rows * dim)], covers: 'L2 normalisation backward', work: streamWork(rows * dim, 3, 4) },
    { op: 'crossEntropyForward', params: { rows: ceRows, classes }, tensors: [input('logits', ceRows * classes), input('labels', ceRows, { int32Below: classes })], covers: 'softmax cross-entropy: the mean loss, read back', work: streamWork(ceRows * classes, 1, 20) },
    { op: 'crossEntropyBackward', params: { rows: ceRows, classes, gradLoss: 0.75 }, tensors: [input('logits', ceRows * classes), input('labels', ceRows, { int32Below: classes }), added('dlogits', ceRows * classes)], covers: 'softmax cross-entropy backward', work: streamWork(ceRows * classes, 2, 20) },
    { op: 'sgdStep', params: sgd, tensors: [added('param', n), input('grad', n), added('buffer', n)], covers: 'SGD with Nesterov momentum and weight decay', work: streamWork(n, 3, 6) },
    { op: 'sgdStep', params: { ...sgd, momentum: 0, nesterov: false }, tensors: [added('param', n), input('grad', n)], covers: 'plain SGD (no momentum buffer)', work: streamWork(n, 2, 3) },
    { op: 'larsStep', params: { n, lr: 0.3, momentum: 0.9, weightDecay: 1e-4, trustCoefficient: 1e-3, eps: 1e-8, adapt: true }, tensors: [added('param', n), input('grad', n), added('buffer', n)], covers: 'LARS: the trust ratio from the norms of the parameter and the gradient', work: streamWork(n, 3, 8) },
    { op: 'adamwStep', params: { n, lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05, step: 3 }, tensors: [added('param', n), input('grad', n), added('expAvg', n), added('expAvgSq', n, { positive: true })], covers: 'AdamW with bias correction', work: streamWork(n, 4, 12) },
    { op: 'knnTopK', params: knn, tensors: [input('train', knn.nTrain * knn.d), input('test', knn.nTest * knn.d), output('index', knn.nTest * knn.k, { int32: true }), output('similarity', knn.nTest * knn.k)],
      covers: 'the kNN search of the accuracy monitor: cosine similarities and the top k, equal ones by lower index (indices compared exactly)',
      work: { flops: 0, scalarOps: 2 * knn.nTrain * knn.nTest * knn.d + 12 * knn.nTrain * knn.nTest, bytes: 4 * (knn.nTrain * knn.d * Math.ceil(knn.nTest / 8) + 6 * knn.nTrain * knn.nTest),
        hostElements: 4 * (knn.nTrain + knn.nTest) * knn.d, cpuFlops: 2 * knn.nTrain * knn.nTest * knn.d } },
    { op: 'rmspropStep', params: { n, lr: 1e-2, alpha: 0.99, eps: 1e-8, weightDecay: 1e-4, momentum: 0.5 }, tensors: [added('param', n), input('grad', n), added('squareAvg', n, { positive: true }), added('buffer', n)], covers: 'RMSProp with momentum', work: streamWork(n, 4, 10) },
  ];
}

/** Every other layer op, one fp32 row each. */
export function layerOpCases(scale: Scale): NnCase[] {
  return layerOpRows(scale).map((r, k) => ({
    id: `layer-${String(k + 1).padStart(2, '0')}-${r.op}`, op: r.op, precision: 'fp32' as const, params: r.params, tensors: r.tensors,
    seed: 1700 + k, covers: r.covers, work: r.work,
  }));
}

/** Every layer case: conv2d and linear, each variant in every precision; the other ops in fp32. */
export function nnCases(scale: Scale, precisions: readonly Precision[] = PRECISIONS): NnCase[] {
  return [...convCases(scale, precisions), ...linearCases(scale, precisions), ...layerOpCases(scale)];
}

// ---------------------------------------------------------------------------------------
// The kernels a run must launch

/** Every `__global__` function defined in the .cu files of `dir` (native/cuda), by name. */
export function sourceKernels(dir: string): { name: string; file: string }[] {
  if (!existsSync(dir)) throw new Error(`${dir} is missing: the kernel list comes from the CUDA sources`);
  const out: { name: string; file: string }[] = [];
  const definition = /__global__\s+(?:(?:static|inline)\s+)*void\s+(?:__launch_bounds__\s*\((?:[^()]|\([^()]*\))*\)\s*)?([A-Za-z_]\w*)\s*\(/g;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cu')).sort()) {
    const text = readFileSync(path.join(dir, file), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
    for (const m of text.matchAll(definition)) if (!out.some((k) => k.name === m[1])) out.push({ name: m[1], file });
  }
  return out;
}

/**
 * The function's own name in a launched kernel's name: without template arguments (after
 * '<'), a parameter list, a return type or namespaces.
 */
export function kernelBaseName(launched: string): string {
  let s = launched.replace(/\(anonymous namespace\)/g, 'anonymous');
  s = s.split('<')[0].split('(')[0].trim();
  s = s.split(/\s+/).pop() ?? s;
  return s.split('::').pop() ?? s;
}
