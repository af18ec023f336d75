// Differentiable ops: each runs a native forward kernel and, when recording, leaves a node
// whose backward runs the native backward kernel. Shapes are checked here with messages
// that name the argument, what was expected and what came.
import { describe, MAX_RANK, optionsObject, plainArray } from '../check';
import { supconForwardDeferred, SupconOptions } from '../loss';
import { native, NativeStorage } from '../native';
import { Tensor } from '../tensor';
import { gradOf, intoGrad, matmulPrecision, needsGrad, numThreads, recording, result, Variable } from './autograd';
import { profiling, timed } from './profile';

const MIN_NORMAL_FLOAT32 = 2 ** -126;
const MAX_FLOAT32 = 3.4028234663852886e38;

export type VariableLike = Variable | Tensor<'float32'>;
export type Pair = number | readonly [number, number];

/** @internal A Variable for x (a float32 Tensor becomes a constant). */
export function asVariable(x: unknown, name: string): Variable {
  if (x instanceof Variable) {
    if (x.value.isDisposed) throw new RangeError(`${name}: the variable's tensor has been disposed`);
    return x;
  }
  if (x instanceof Tensor) {
    if (x.dtype !== 'float32') throw new TypeError(`${name}: expected a float32 tensor, got dtype '${x.dtype}'`);
    if (x.isDisposed) throw new RangeError(`${name}: the tensor has been disposed`);
    return new Variable(x as Tensor<'float32'>);
  }
  throw new TypeError(`${name}: expected a Variable or a float32 Tensor, got ${describe(x)}`);
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function requireRank(v: Variable, ranks: number[], name: string, what: string): void {
  if (!ranks.includes(v.shape.length))
    throw new RangeError(`${name}: expected ${what}, got shape ${shapeText(v.shape)}`);
}

function requireShape(v: Variable, shape: readonly number[], name: string): void {
  if (v.shape.length !== shape.length || v.shape.some((s, i) => s !== shape[i]))
    throw new RangeError(`${name}: expected shape ${shapeText(shape)}, got ${shapeText(v.shape)}`);
}

/** @internal [h, w] from a number or a pair of positive (or non-negative) integers. */
export function pair(value: unknown, name: string, min: number): [number, number] {
  const ok = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= min;
  if (ok(value)) return [value, value];
  if (Array.isArray(value) && value.length === 2 && ok(value[0]) && ok(value[1])) return [value[0], value[1]];
  throw new RangeError(`${name}: expected an integer >= ${min} or a pair of them, got ${describe(value)}`);
}

/**
 * Runs a forward kernel into freshly allocated outputs; when it throws (a disposed input, a
 * value the kernel refuses), the outputs are disposed at once, not left to the GC.
 */
function into<T>(outputs: readonly Tensor[], kernel: () => T): T {
  try {
    return kernel();
  } catch (e) {
    for (const t of outputs) t.dispose();
    throw e;
  }
}

const storageOrNull = (v: Variable | null) => (v === null ? null : v.value.storage);
/** The products' precision for v's device: the CPU computes in fp32 whatever is set. */
const precisionFor = (v: Variable) => (v.value.device === 'cuda' ? matmulPrecision() : 'fp32');
/**
 * An op's output on v's device (every op's outputs live where its inputs are; the kernels
 * then run there), its host memory not cleared: each kernel below writes every element of
 * its outputs, which the whole test suite checks by running with uninitialised memory
 * poisoned to NaN (SUPCON_POISON_UNINITIALIZED=1, vitest.config.mts).
 */
const outputOn = <D extends 'float32' | 'int32' = 'float32'>(v: Variable, shape: readonly number[], dtype?: D) =>
  Tensor.uninitialized<D>(shape.slice(), { device: v.value.device, dtype });
const gradIfNeeded = (v: Variable | null) => (needsGrad(v) ? gradOf(v).storage : null);
/** intoGrad for an input that may want no gradient: then the kernel runs with dx null. */
const intoGradIfNeeded = <T>(v: Variable | null, kernel: (dx: Tensor<'float32'> | null, overwrite: boolean) => T): T =>
  (needsGrad(v) ? intoGrad(v, kernel) : kernel(null, false));
/** v's gradient += g (a copy of g when v has none yet). */
const gradFrom = (v: Variable, g: Tensor<'float32'>) => intoGrad(v, (dx, overwrite) => (overwrite
  ? native.nn.copyFloats(g.storage, dx.storage, v.size)
  : native.nn.addInto(dx.storage, g.storage, v.size, numThreads())));

/** y = x W^T + b, x [N, in], W [out, in], b [out]. */
export function linear(x: VariableLike, weight: VariableLike, bias: VariableLike | null = null): Variable {
  const xv = asVariable(x, 'x'), w = asVariable(weight, 'weight');
  const b = bias === null ? null : asVariable(bias, 'bias');
  requireRank(w, [2], 'weight', '[out, in]');
  const [outF, inF] = w.shape;
  requireRank(xv, [2], 'x', `[N, ${inF}]`);
  if (xv.shape[1] !== inF) throw new RangeError(`x: expected [N, ${inF}] (the weight's in features), got ${shapeText(xv.shape)}`);
  if (b !== null) requireShape(b, [outF], 'bias');
  const N = xv.shape[0];
  const y = outputOn(xv, [N, outF]);
  into([y], () => timed('linear', () => native.nn.linearForward(xv.value.storage, w.value.storage, storageOrNull(b), y.storage, N, inF, outF, numThreads(), precisionFor(xv))));
  if (!recording(xv, w, b)) return result(y, null);
  return result(y, {
    inputs: b === null ? [xv, w] : [xv, w, b],
    backward(g) {
      const run = (dx: Tensor<'float32'> | null, overwrite: boolean) => timed('linear', () => native.nn.linearBackward(xv.value.storage,
        w.value.storage, g.storage, dx?.storage ?? null, gradIfNeeded(w), gradIfNeeded(b), N, inF, outF, numThreads(), precisionFor(xv), overwrite));
      intoGradIfNeeded(xv, run);
    },
    release() {},
  });
}

/** @internal The shape of a convolution as the native kernels take it. */
export interface Conv2dDesc {
  N: number; C: number; H: number; W: number; K: number; R: number; S: number;
  strideH: number; strideW: number; padH: number; padW: number;
}

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
}

/** 2-d convolution (cross-correlation, as PyTorch): x [N, C, H, W], weight [K, C, R, S]. */
export function conv2d(x: VariableLike, weight: VariableLike, bias: VariableLike | null = null, options: Conv2dOptions = {}): Variable {
  options = optionsObject(options, 'options');
  const xv = asVariable(x, 'x'), w = asVariable(weight, 'weight');
  const b = bias === null ? null : asVariable(bias, 'bias');
  requireRank(w, [4], 'weight', '[outChannels, inChannels, kH, kW]');
  const [K, C, R, S] = w.shape;
  requireRank(xv, [4], 'x', `[N, ${C}, H, W]`);
  if (xv.shape[1] !== C) throw new RangeError(`x: expected [N, ${C}, H, W] (the weight's in channels), got ${shapeText(xv.shape)}`);
  if (b !== null) requireShape(b, [K], 'bias');
  const [strideH, strideW] = pair(options.stride ?? 1, 'options.stride', 1);
  const [padH, padW] = pair(options.padding ?? 0, 'options.padding', 0);
  const [N, , H, W] = xv.shape;
  if (padH >= R || padW >= S)
    throw new RangeError(`options.padding: expected less than the kernel size [${R}, ${S}], got [${padH}, ${padW}]`);
  if (H + 2 * padH < R || W + 2 * padW < S)
    throw new RangeError(`x: the padded input [${H + 2 * padH}, ${W + 2 * padW}] is smaller than the kernel [${R}, ${S}]`);
  const P = Math.floor((H + 2 * padH - R) / strideH) + 1, Q = Math.floor((W + 2 * padW - S) / strideW) + 1;
  const desc: Conv2dDesc = { N, C, H, W, K, R, S, strideH, strideW, padH, padW };
  const y = outputOn(xv, [N, K, P, Q]);
  into([y], () => timed('conv forward', () => native.nn.conv2dForward(desc, xv.value.storage, w.value.storage, storageOrNull(b), y.storage,
    numThreads(), precisionFor(xv)), desc));
  if (!recording(xv, w, b)) return result(y, null);
  return result(y, {
    inputs: b === null ? [xv, w] : [xv, w, b],
    backward(g) {
      const dw = gradIfNeeded(w), db = gradIfNeeded(b);
      type Out = NativeStorage | null;
      const run = (dxOut: Out, dwOut: Out, dbOut: Out, overwrite: boolean) => native.nn.conv2dBackward(desc, xv.value.storage,
        w.value.storage, g.storage, dxOut, dwOut, dbOut, numThreads(), precisionFor(xv), overwrite);
      if (!profiling()) return intoGradIfNeeded(xv, (dx, overwrite) => run(dx?.storage ?? null, dw, db, overwrite));
      // Timed apart: each gradient is computed independently, so the two calls give the same bits as one.
      if (needsGrad(xv)) intoGrad(xv, (dx, overwrite) => timed('conv backward data', () => run(dx.storage, null, null, overwrite), desc));
      if (dw !== null || db !== null) timed('conv backward weights', () => run(null, dw, db, false), desc);
    },
    release() {},
  });
}

export interface BatchNormOptions {
  /** Batch statistics (and running-statistics updates) when true; running statistics when false. */
  training: boolean;
  /** Weight of the new batch statistic in the running average. Default 0.1 (PyTorch's). */
  momentum?: number;
  eps?: number;
  /**
   * A ReLU fused after the normalisation: max(batchNorm(x), 0) in one pass over the
   * activations, and its gradient where that output is > 0 (the same bits as
   * relu(batchNorm(x)), one tensor fewer). Default false.
   */
  relu?: boolean;
}

/**
 * Batch normalisation over x [N, C] or [N, C, ...]: per channel. In training, the running
 * statistics (when given) are updated in place as PyTorch does (unbiased variance).
 */
export function batchNorm(
  x: VariableLike, weight: VariableLike, bias: VariableLike,
  runningMean: Tensor<'float32'> | null, runningVar: Tensor<'float32'> | null, options: BatchNormOptions,
): Variable {
  const xv = asVariable(x, 'x'), w = asVariable(weight, 'weight'), b = asVariable(bias, 'bias');
  requireRank(w, [1], 'weight', '[C]');
  const C = w.shape[0];
  if (xv.shape.length < 2 || xv.shape[1] !== C)
    throw new RangeError(`x: expected [N, ${C}] or [N, ${C}, ...] (the layer's channels), got ${shapeText(xv.shape)}`);
  requireShape(b, [C], 'bias');
  for (const [t, name] of [[runningMean, 'runningMean'], [runningVar, 'runningVar']] as const) {
    if (t !== null && !(t instanceof Tensor && t.dtype === 'float32' && t.size === C && t.device === xv.value.device))
      throw new TypeError(`${name}: expected a float32 tensor of ${C} values on '${xv.value.device}' (x's device) or null, got ${describe(t)}`);
  }
  if (typeof options !== 'object' || options === null) throw new TypeError(`options: expected an object, got ${describe(options)}`);
  if (typeof options.training !== 'boolean') throw new TypeError(`options.training: expected a boolean, got ${describe(options.training)}`);
  const momentum = options.momentum ?? 0.1, eps = options.eps ?? 1e-5;
  if (!(typeof momentum === 'number' && momentum >= 0 && momentum <= 1))
    throw new RangeError(`options.momentum: expected a number in [0, 1], got ${describe(momentum)}`);
  if (!(typeof eps === 'number' && eps > 0 && Number.isFinite(eps)))
    throw new RangeError(`options.eps: expected a finite number > 0, got ${describe(eps)}`);
  const relu = options.relu ?? false;
  if (typeof relu !== 'boolean') throw new TypeError(`options.relu: expected a boolean, got ${describe(options.relu)}`);
  const N = xv.shape[0];
  const L = xv.size / (N * C);
  if (options.training && N * L < 2)
    throw new RangeError(`x: training batch norm needs more than one value per channel, got shape ${shapeText(xv.shape)}`);
  const desc = { N, C, L, eps, momentum, relu };
  const y = outputOn(xv, xv.shape);
  const saveMean = outputOn(xv, [C]), saveInvStd = outputOn(xv, [C]);
  into([y, saveMean, saveInvStd], () => timed('batch norm', () => native.nn.batchNormForward(desc, options.training, xv.value.storage,
    w.value.storage, b.value.storage, runningMean?.storage ?? null, runningVar?.storage ?? null, y.storage, saveMean.storage,
    saveInvStd.storage, numThreads())));
  const release = () => {
    saveMean.dispose();
    saveInvStd.dispose();
  };
  if (!recording(xv, w, b)) {
    release();
    return result(y, null);
  }
  const training = options.training;
  return result(y, {
    inputs: [xv, w, b],
    backward(g) {
      const run = (dx: Tensor<'float32'> | null, overwrite: boolean) => timed('batch norm', () => native.nn.batchNormBackward(desc,
        training, xv.value.storage, w.value.storage, saveMean.storage, saveInvStd.storage, g.storage, dx?.storage ?? null, gradIfNeeded(w),
        gradIfNeeded(b), numThreads(), relu ? y.storage : null, overwrite));
      intoGradIfNeeded(xv, run);
    },
    release,
  });
}

/** max(x, 0). */
export function relu(x: VariableLike): Variable {
  const xv = asVariable(x, 'x');
  const y = outputOn(xv, xv.shape);
  into([y], () => timed('relu', () => native.nn.reluForward(xv.value.storage, y.storage, xv.size, numThreads())));
  if (!recording(xv)) return result(y, null);
  return result(y, {
    inputs: [xv],
    backward(g) {
      intoGrad(xv, (dx, overwrite) => timed('relu', () => native.nn.reluBackward(y.storage, g.storage, dx.storage, xv.size, numThreads(), overwrite)));
    },
    release() {},
  });
}

/** a + b (same shapes). */
export function add(a: VariableLike, b: VariableLike): Variable {
  const av = asVariable(a, 'a'), bv = asVariable(b, 'b');
  requireShape(bv, av.shape, 'b');
  const y = outputOn(av, av.shape);
  into([y], () => timed('add', () => native.nn.add(av.value.storage, bv.value.storage, y.storage, av.size, numThreads())));
  if (!recording(av, bv)) return result(y, null);
  return result(y, {
    inputs: [av, bv],
    backward(g) {
      for (const v of [av, bv]) if (needsGrad(v)) timed('add', () => gradFrom(v, g));
    },
    release() {},
  });
}

/** The same values in another shape (a copy). One dimension may be -1. */
export function reshape(x: VariableLike, shape: readonly number[]): Variable {
  const xv = asVariable(x, 'x');
  const dims = plainArray(shape, 'shape', MAX_RANK) as number[];
  const free = dims.indexOf(-1);
  const known = dims.reduce((p, s) => (s === -1 ? p : p * s), 1);
  if (dims.some((s) => !(Number.isSafeInteger(s) && (s > 0 || s === -1))) || dims.filter((s) => s === -1).length > 1)
    throw new RangeError(`shape: expected positive integers and at most one -1, got ${shapeText(dims)}`);
  if (free >= 0) dims[free] = xv.size / known;
  if (!Number.isSafeInteger(dims[free >= 0 ? free : 0]) || dims.reduce((p, s) => p * s, 1) !== xv.size)
    throw new RangeError(`shape: ${shapeText(shape)} does not hold the ${xv.size} values of shape ${shapeText(xv.shape)}`);
  const y = outputOn(xv, dims);
  into([y], () => timed('copy', () => native.nn.copyFloats(xv.value.storage, y.storage, xv.size)));
  if (!recording(xv)) return result(y, null);
  return result(y, {
    inputs: [xv],
    backward(g) {
      timed('copy', () => gradFrom(xv, g));
    },
    release() {},
  });
}

/** [N, ...] -> [N, product of the rest]. */
export function flatten(x: VariableLike): Variable {
  const xv = asVariable(x, 'x');
  if (xv.shape.length < 1) throw new RangeError(`x: expected at least one dimension, got shape ${shapeText(xv.shape)}`);
  return reshape(xv, [xv.shape[0], xv.size / xv.shape[0]]);
}

export interface MaxPool2dOptions {
  kernelSize: Pair;
  /** Default: the kernel size. */
  stride?: Pair;
  /** At most half the kernel size. Default 0. */
  padding?: Pair;
}

/** Max pooling over x [N, C, H, W]. */
export function maxPool2d(x: VariableLike, options: MaxPool2dOptions): Variable {
  const xv = asVariable(x, 'x');
  requireRank(xv, [4], 'x', '[N, C, H, W]');
  if (typeof options !== 'object' || options === null) throw new TypeError(`options: expected an object, got ${describe(options)}`);
  const [R, S] = pair(options.kernelSize, 'options.kernelSize', 1);
  const [strideH, strideW] = pair(options.stride ?? [R, S], 'options.stride', 1);
  const [padH, padW] = pair(options.padding ?? 0, 'options.padding', 0);
  if (2 * padH > R || 2 * padW > S)
    throw new RangeError(`options.padding: expected at most half the kernel size [${R}, ${S}], got [${padH}, ${padW}]`);
  const [N, C, H, W] = xv.shape;
  if (H + 2 * padH < R || W + 2 * padW < S)
    throw new RangeError(`x: the padded input [${H + 2 * padH}, ${W + 2 * padW}] is smaller than the kernel [${R}, ${S}]`);
  const P = Math.floor((H + 2 * padH - R) / strideH) + 1, Q = Math.floor((W + 2 * padW - S) / strideW) + 1;
  const desc = { N, C, H, W, R, S, strideH, strideW, padH, padW };
  const y = outputOn(xv, [N, C, P, Q]);
  const indices = outputOn(xv, [N, C, P, Q], 'int32');
  into([y, indices], () => timed('pooling', () => native.nn.maxPool2dForward(desc, xv.value.storage, y.storage, indices.storage, numThreads())));
  if (!recording(xv)) {
    indices.dispose();
    return result(y, null);
  }
  return result(y, {
    inputs: [xv],
    backward(g) {
      timed('pooling', () => native.nn.maxPool2dBackward(desc, indices.storage, g.storage, gradOf(xv).storage, numThreads()));
    },
    release() {
      indices.dispose();
    },
  });
}

/** The mean over each plane: x [N, C, ...] -> [N, C]. */
export function globalAvgPool(x: VariableLike): Variable {
  const xv = asVariable(x, 'x');
  if (xv.shape.length < 3) throw new RangeError(`x: expected [N, C, H, W] (or [N, C, L]), got shape ${shapeText(xv.shape)}`);
  const [N, C] = xv.shape;
  const L = xv.size / (N * C);
  const y = outputOn(xv, [N, C]);
  into([y], () => timed('pooling', () => native.nn.globalAvgPoolForward(xv.value.storage, y.storage, N * C, L, numThreads())));
  if (!recording(xv)) return result(y, null);
  return result(y, {
    inputs: [xv],
    backward(g) {
      timed('pooling', () => native.nn.globalAvgPoolBackward(g.storage, gradOf(xv).storage, N * C, L, numThreads()));
    },
    release() {},
  });
}

/** Each row of x [N, D] divided by max(|row|, eps) (PyTorch's F.normalize, eps 1e-12). */
export function l2Normalize(x: VariableLike, eps = 1e-12): Variable {
  const xv = asVariable(x, 'x');
  requireRank(xv, [2], 'x', '[N, D]');
  if (!(typeof eps === 'number' && eps >= MIN_NORMAL_FLOAT32 && eps <= MAX_FLOAT32))
    throw new RangeError(`eps: expected a finite number > 0 that float32 holds as a normal number (>= ${MIN_NORMAL_FLOAT32}), got ${describe(eps)}`);
  const [rows, dim] = xv.shape;
  const y = outputOn(xv, [rows, dim]);
  const norms = outputOn(xv, [rows]);
  into([y, norms], () => timed('normalize', () => native.nn.l2NormalizeForward(xv.value.storage, y.storage, norms.storage, rows, dim, eps,
    numThreads())));
  if (!recording(xv)) {
    norms.dispose();
    return result(y, null);
  }
  return result(y, {
    inputs: [xv],
    backward(g) {
      timed('normalize', () => native.nn.l2NormalizeBackward(y.storage, norms.storage, g.storage, gradOf(xv).storage, rows, dim, eps,
        numThreads()));
    },
    release() {
      norms.dispose();
    },
  });
}

export type ClassLabels = Int32Array | readonly number[] | Tensor<'int32'>;

function labelsFor(labels: unknown, rows: number): Int32Array | Tensor<'int32'> {
  if (labels instanceof Tensor) {
    if (labels.dtype !== 'int32') throw new TypeError(`labels: expected an int32 tensor, got dtype '${labels.dtype}'`);
    if (labels.size !== rows) throw new RangeError(`labels: expected ${rows} labels (one per row), got ${labels.size}`);
    return labels as Tensor<'int32'>;
  }
  if (labels instanceof Int32Array) {
    if (labels.length !== rows) throw new RangeError(`labels: expected ${rows} labels (one per row), got ${labels.length}`);
    return labels;
  }
  if (!Array.isArray(labels)) throw new TypeError(`labels: expected an Int32Array, a number[] or an int32 Tensor, got ${describe(labels)}`);
  if (labels.length !== rows) throw new RangeError(`labels: expected ${rows} labels (one per row), got ${labels.length}`);
  const out = new Int32Array(rows);
  labels.forEach((x, i) => {
    if (!Number.isInteger(x)) throw new RangeError(`labels[${i}]: expected an integer, got ${describe(x)}`);
    out[i] = x;
  });
  return out;
}

/** Mean softmax cross-entropy of logits [N, classes] against integer labels in [0, classes). */
export function crossEntropy(logits: VariableLike, labels: ClassLabels): Variable {
  const z = asVariable(logits, 'logits');
  requireRank(z, [2], 'logits', '[N, classes]');
  const [rows, classes] = z.shape;
  const lab = labelsFor(labels, rows);
  const device = z.value.device;
  if (lab instanceof Tensor && lab.device !== device)
    throw new RangeError(`labels: expected a tensor on '${device}' (the logits' device), got one on '${lab.device}'`);
  // Labels given as an array go where the logits are, for the forward and backward passes.
  const uploaded = !(lab instanceof Tensor) && device !== 'cpu' ? Tensor.from(lab, [rows], { dtype: 'int32', device }) : null;
  const labelArg = uploaded !== null ? uploaded.storage : lab instanceof Tensor ? lab.storage : lab;
  let loss: number;
  try {
    loss = timed('loss', () => native.nn.crossEntropyForward(z.value.storage, labelArg, rows, classes, numThreads()));
  } catch (e) {
    uploaded?.dispose();
    throw e;
  }
  const y = Tensor.from(new Float32Array([loss]), []);
  const release = () => uploaded?.dispose();
  if (!recording(z)) {
    release();
    return result(y, null);
  }
  return result(y, {
    inputs: [z],
    backward(g) {
      const gradLoss = g.dataSync()[0];
      timed('loss', () => native.nn.crossEntropyBackward(z.value.storage, labelArg, rows, classes, gradLoss, gradOf(z).storage, numThreads()));
    },
    release,
  });
}

export interface SupconLayerOptions extends SupconOptions {
  /** For features [n * views, d]: the views per sample (rows sample-major: row = sample * views + view). */
  views?: number;
}

/**
 * The SupCon loss as the last layer: features [n, v, d], or [n * v, d] with options.views
 * (row = sample * v + view). labels: one per sample, or null for SimCLR. See docs/LOSS.md.
 */
export function supcon(features: VariableLike, labels?: Int32Array | readonly number[] | null, options: SupconLayerOptions = {}): Variable {
  const f = asVariable(features, 'features');
  if (options === null || typeof options !== 'object') throw new TypeError(`options: expected an object, got ${describe(options)}`);
  const { views, ...lossOptions } = options;
  let shape: number[];
  if (f.shape.length === 2) {
    if (!(typeof views === 'number' && Number.isSafeInteger(views) && views >= 1))
      throw new RangeError(`options.views: features of shape ${shapeText(f.shape)} need the number of views per sample, got ${describe(views)}`);
    if (f.shape[0] % views !== 0)
      throw new RangeError(`features: ${f.shape[0]} rows do not split into samples of ${views} views`);
    shape = [f.shape[0] / views, views, f.shape[1]];
  } else if (f.shape.length === 3) {
    if (views !== undefined && views !== f.shape[1])
      throw new RangeError(`options.views: features of shape ${shapeText(f.shape)} have ${f.shape[1]} views, got ${describe(views)}`);
    shape = f.shape.slice();
  } else {
    throw new RangeError(`features: expected [n, v, d] or [n * v, d], got shape ${shapeText(f.shape)}`);
  }
  // [n * v, d] features are the same values as [n, v, d]: a copy under that shape.
  const reshaped = f.shape.length === 2 ? outputOn(f, shape) : null;
  if (reshaped !== null) into([reshaped], () => timed('copy', () => native.nn.copyFloats(f.value.storage, reshaped.storage, f.size)));
  let forward;
  try {
    forward = timed('loss', () => supconForwardDeferred(reshaped ?? f.value, labels, lossOptions));
  } catch (e) {
    reshaped?.dispose();
    throw e;
  }
  // For CUDA features the loss stays on the GPU (a device scalar; reading it waits): no
  // read-back a step. (Host features may have had their loss computed on a GPU: read back.)
  let y: Tensor<'float32'>;
  try {
    if (forward.device === 'cuda' && f.value.device === 'cuda') {
      y = Tensor.zeros<'float32'>([], { device: 'cuda' });
      forward.lossInto(y);
    } else {
      y = Tensor.from(new Float32Array([forward.loss]), []);
    }
  } catch (e) {
    forward.dispose();
    reshaped?.dispose();
    throw e;
  }
  const release = () => {
    forward.dispose();
    reshaped?.dispose();
  };
  if (!recording(f)) {
    release();
    return result(y, null);
  }
  return result(y, {
    inputs: [f],
    backward(g) {
      const grad = timed('loss', () => forward.backward(g.dataSync()[0]));
      try {
        timed('copy', () => native.nn.addInto(gradOf(f).storage, grad.storage, f.size, numThreads()));
      } finally {
        grad.dispose();
      }
    },
    release,
  });
}
