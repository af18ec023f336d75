// The native addon: loaded once, from prebuilds/<platform>-<arch>/ or a local build.
import path from 'node:path';
import load = require('node-gyp-build');

// dispose() frees a storage's or a context's native object along with its memory (nothing is
// left for a finalizer): a disposed handle reads bytes 0 and device null.
export interface NativeStorage {
  readonly bytes: number;
  readonly disposed: boolean;
  readonly device: 'cpu' | 'cuda' | null;
  write(data: ArrayBufferView, byteOffset: number): void;
  read(out: ArrayBufferView, byteOffset: number): void;
  dispose(): void;
}

export interface NativeLossContext {
  readonly loss: number;
  /** Anchors in the loss's mean. */
  readonly counted: number;
  readonly bytes: number;
  readonly disposed: boolean;
  readonly device: 'cpu' | 'cuda' | null;
  dispose(): void;
}

export interface NativeLossOptions {
  temperature: number;
  baseTemperature: number;
  contrastMode: string;
  variant: string;
  denominator: string;
  normalize: boolean;
  excludeAnchorsWithoutPositives: boolean;
  threads?: number;
  device?: 'cpu' | 'cuda';
  precision?: 'fp32' | 'tf32' | 'bf16';
  contrast?: NativeContrast;
}

/** A contrast set for lossForward (docs/LOSS.md, "The contrast set"). */
export interface NativeContrast {
  features: Float32Array | NativeStorage;
  m: number;
  labels: Int32Array | null;
  positions: Int32Array | null;
  withAnchors: boolean;
  gradient: boolean;
}

export interface NativeDeviceInfo {
  index: number;
  name: string;
  computeCapability: string;
  totalMemory: number;
  multiprocessors: number;
}

export interface NativeBuildInfo {
  cuda: boolean;
  cudaRuntimeVersion?: number;
  cudaDriverVersion?: number;
  cudaArchitectures?: string;
  noGpuReason: string;
  napiVersion: number;
}

type F32 = Float32Array | NativeStorage;
type I32 = Int32Array | NativeStorage;
type Opt<T> = T | null;
type Precision = 'fp32' | 'tf32' | 'bf16';

export interface NativeConvDesc {
  N: number; C: number; H: number; W: number; K: number; R: number; S: number;
  strideH: number; strideW: number; padH: number; padW: number;
}
export interface NativePoolDesc {
  N: number; C: number; H: number; W: number; R: number; S: number;
  strideH: number; strideW: number; padH: number; padW: number;
}
export interface NativeBatchNormDesc { N: number; C: number; L: number; eps: number; momentum: number; relu?: boolean }

/** Layer kernels; backward functions add into their gradient outputs. */
export interface NativeNn {
  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number, A: F32, lda: number,
    B: F32, ldb: number, beta: number, C: F32, ldc: number, threads?: number): void;
  fmaPeak(threads: number, seconds: number): number;
  /** The layers' products take a precision on CUDA tensors (fp32 only on the CPU). */
  linearForward(x: F32, w: F32, b: Opt<F32>, y: F32, N: number, inF: number, outF: number, threads?: number, precision?: Precision): void;
  /**
   * The backward passes add into their gradients; with overwrite true, dx is written instead
   * (a fresh buffer, never read: autograd's intoGrad).
   */
  linearBackward(x: F32, w: F32, dy: F32, dx: Opt<F32>, dw: Opt<F32>, db: Opt<F32>, N: number, inF: number,
    outF: number, threads?: number, precision?: Precision, overwrite?: boolean): void;
  conv2dForward(d: NativeConvDesc, x: F32, w: F32, b: Opt<F32>, y: F32, threads?: number, precision?: Precision): void;
  conv2dBackward(d: NativeConvDesc, x: F32, w: F32, dy: F32, dx: Opt<F32>, dw: Opt<F32>, db: Opt<F32>, threads?: number,
    precision?: Precision, overwrite?: boolean): void;
  /** The CPU's algorithm for one pass of this convolution (docs/LAYERS.md). */
  conv2dAlgorithm(d: NativeConvDesc, pass: 'forward' | 'data' | 'weights'): 'winograd' | 'direct' | 'im2col-gemm';
  batchNormForward(d: NativeBatchNormDesc, training: boolean, x: F32, gamma: F32, beta: F32, runningMean: Opt<F32>,
    runningVar: Opt<F32>, y: F32, saveMean: F32, saveInvStd: F32, threads?: number): void;
  /** y: the forward output, when d.relu (a fused ReLU: dy counts where y > 0). */
  batchNormBackward(d: NativeBatchNormDesc, training: boolean, x: F32, gamma: F32, saveMean: F32, saveInvStd: F32,
    dy: F32, dx: Opt<F32>, dgamma: Opt<F32>, dbeta: Opt<F32>, threads?: number, y?: Opt<F32>, overwrite?: boolean): void;
  reluForward(x: F32, y: F32, n: number, threads?: number): void;
  reluBackward(y: F32, dy: F32, dx: F32, n: number, threads?: number, overwrite?: boolean): void;
  add(a: F32, b: F32, y: F32, n: number, threads?: number): void;
  addInto(y: F32, x: F32, n: number, threads?: number): void;
  copyFloats(src: F32, dst: F32, n: number): void;
  fill(x: F32, n: number, value: number, threads?: number): void;
  maxPool2dForward(d: NativePoolDesc, x: F32, y: F32, indices: I32, threads?: number): void;
  maxPool2dBackward(d: NativePoolDesc, indices: I32, dy: F32, dx: F32, threads?: number): void;
  globalAvgPoolForward(x: F32, y: F32, planes: number, L: number, threads?: number): void;
  globalAvgPoolBackward(dy: F32, dx: F32, planes: number, L: number, threads?: number): void;
  l2NormalizeForward(x: F32, y: F32, norms: F32, rows: number, dim: number, eps: number, threads?: number): void;
  l2NormalizeBackward(y: F32, norms: F32, dy: F32, dx: F32, rows: number, dim: number, eps: number, threads?: number): void;
  crossEntropyForward(logits: F32, labels: I32, rows: number, classes: number, threads?: number): number;
  crossEntropyBackward(logits: F32, labels: I32, rows: number, classes: number, gradLoss: number, dlogits: F32,
    threads?: number): void;
  fillNormal(x: F32, n: number, mean: number, std: number, seed: number, threads?: number): void;
  fillUniform(x: F32, n: number, low: number, high: number, seed: number, threads?: number): void;
  sgdStep(p: F32, g: F32, buf: Opt<F32>, n: number, o: {
    lr: number; momentum: number; dampening: number; weightDecay: number; nesterov: boolean; firstStep: boolean;
  }, threads?: number): void;
  larsStep(p: F32, g: F32, buf: F32, n: number, o: {
    lr: number; momentum: number; weightDecay: number; trustCoefficient: number; eps: number; adapt: boolean;
  }, threads?: number): void;
  adamwStep(p: F32, g: F32, m: F32, v: F32, n: number, o: {
    lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; step: number;
  }, threads?: number): void;
  rmspropStep(p: F32, g: F32, sq: F32, buf: Opt<F32>, n: number, o: {
    lr: number; alpha: number; eps: number; weightDecay: number; momentum: number;
  }, threads?: number): void;
  l2Norm(x: F32, n: number, threads?: number): number;
  /** The k most similar training rows (cosine) of each test row, into index and similarity [nTest, k]. */
  knnTopK(train: F32, test: F32, index: I32, similarity: F32, nTrain: number, nTest: number, d: number, k: number,
    threads?: number): void;
}

export interface NativeAddon {
  Storage: new (bytes: number, device?: 'cpu' | 'cuda', zero?: boolean) => NativeStorage;
  /** The layer ops: each runs on the CPU or on CUDA by where its tensors are. */
  nn: NativeNn;
  lossForward(
    features: Float32Array | NativeStorage,
    n: number,
    v: number,
    d: number,
    labels: Int32Array | null,
    mask: Uint8Array | Float32Array | null,
    options: NativeLossOptions,
  ): NativeLossContext;
  lossBackward(
    context: NativeLossContext,
    gradLoss: number,
    out: Float32Array | NativeStorage,
    options?: { threads?: number; outOffset?: number; contrastOut?: Float32Array | NativeStorage },
  ): void;
  /**
   * lossForward as a promise: the same checks (a bad argument rejects with the same error),
   * the CPU pass on the libuv thread pool; a CUDA pass runs at once and resolves.
   */
  lossForwardAsync(...args: Parameters<NativeAddon['lossForward']>): Promise<NativeLossContext>;
  /** lossBackward as a promise (a pending pass keeps the context's state past its dispose()). */
  lossBackwardAsync(...args: Parameters<NativeAddon['lossBackward']>): Promise<void>;
  cpuKernels(select?: string): { active: string; available: string[]; threads: number };
  devices(): NativeDeviceInfo[];
  buildInfo(): NativeBuildInfo;
  memory(): { cpuBytes: number; cpuStorages: number; cpuCachedBytes: number; cudaBytes: number; cudaCachedBytes: number; cudaHostWaits: number };
  /** out[0] = a CUDA loss as float32, on the device (no read-back). */
  lossValueInto(context: NativeLossContext, out: NativeStorage): void;
  cudaStatus(): { usable: boolean; reason: string };
  emptyCache(): void;
  cudaGemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number, A: NativeStorage, lda: number,
    B: NativeStorage, ldb: number, beta: number, C: NativeStorage, ldc: number, precision?: 'fp32' | 'tf32' | 'bf16'): void;
  cudaTimeGemm(M: number, N: number, K: number, precision: 'fp32' | 'tf32' | 'bf16', repeats: number): number[];
  /** Philox4x32-10 of one counter (4 words) and key (2 words). */
  philox4x32(c0: number, c1: number, c2: number, c3: number, k0: number, k1: number): number[];
  lossUnfused(
    features: Float32Array,
    n: number,
    v: number,
    d: number,
    labels: Int32Array | null,
    temperature: number,
    baseTemperature: number,
    out: Float32Array,
    threads?: number,
  ): number;
  /**
   * Forward + backward on device features: one untimed warm-up, then `repeats` runs timed
   * with CUDA events; the label upload and the loss read-back are outside the intervals.
   */
  cudaTimeLoss(
    features: NativeStorage,
    n: number,
    v: number,
    d: number,
    labels: Int32Array | null,
    options: Partial<NativeLossOptions>,
    grad: NativeStorage,
    repeats: number,
  ): { forwardMs: number[]; backwardMs: number[]; peakExtraBytes: number; loss: number };
  /**
   * Only in the emulated CUDA build (SUPCON_CUDA_EMULATION): the kernels launched so far in
   * this process, by name, with their launch counts; `reset` clears the counts.
   */
  cudaEmulator?(reset?: boolean): { kernels: Record<string, number>; schedules: number; guard: string };
}

/**
 * SUPCON_ADDON=/abs/path/supcon.node loads that build instead (the emulated CUDA backend of
 * `npm run test:cuda-emulated`, a sanitizer build); otherwise node-gyp-build finds
 * prebuilds/<platform>-<arch>/ or build/Release.
 */
function loadAddon(): NativeAddon {
  const override = process.env.SUPCON_ADDON;
  if (override !== undefined && override !== '') {
    if (!path.isAbsolute(override)) throw new Error(`SUPCON_ADDON: expected an absolute path to a supcon.node, got '${override}'`);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(override) as NativeAddon;
  }
  return load(path.join(__dirname, '..', '..')) as NativeAddon;
}

export const native = loadAddon();
