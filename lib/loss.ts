/// <reference lib="esnext.disposable" preserve="true" />
// (The directive above goes into the declarations too: [Symbol.dispose] needs the lib for a
// consumer whose own lib or @types/node does not declare it.)
// The Supervised Contrastive loss (Khosla et al. 2020) and SimCLR's NT-Xent, fused: the
// B x B similarity matrix is never stored. Semantics: docs/LOSS.md.
import { checkOneOf, checkOptionNames, checkShape, describe, isPositiveInteger, product } from './check';
import { resolveDevice } from './device';
import { native, NativeContrast, NativeLossContext, NativeStorage } from './native';
import { Tensor } from './tensor';

export type ContrastMode = 'all' | 'one';
export type Variant = 'out' | 'in';
export type Denominator = 'all' | 'onePositive' | 'onlyNegatives';

/** Features [n, v, d] (or [n, v, ...] flattened to d): n samples, v views each. */
export type FeaturesInput = Tensor<'float32'> | { data: Float32Array; shape: readonly number[] };
/** One integer label per sample; null or omitted for SimCLR (every sample its own class). */
/**
 * One integer class label per sample; or `null` for no labels, which makes the loss SimCLR's
 * NT-Xent (each sample's own other views are its only positives). Leaving the argument out
 * (`undefined`) means the same as `null`: no labels, SimCLR. Pass `null` to say so.
 */
export type LabelsInput = Int32Array | readonly number[] | null | undefined;
/**
 * n x n, row-major: mask[a * n + b] = 1 when sample b is a positive of sample a. With a
 * contrast set, n x m (n x (n + m) with `withAnchors`): the columns are the contrast rows.
 * A Float32Array or an Int32Array may hold non-negative weights (docs/LOSS.md); a Uint8Array
 * or a number[] holds 0/1.
 */
export type MaskInput = Uint8Array | Int32Array | Float32Array | readonly number[];

/**
 * Contrast rows given apart from the anchors (docs/LOSS.md, "The contrast set"): a memory
 * queue, a gathered global batch, or a reference set.
 */
export interface ContrastSet {
  /** [m, d] (a Tensor on the CPU, or data + shape). */
  features: Tensor<'float32'> | { data: Float32Array; shape: readonly number[] };
  /** One label per contrast row; required when the anchors have labels, absent otherwise. */
  labels?: Int32Array | readonly number[] | null;
  /**
   * [n * v], in the features' sample-major order (index sample * v + view): the contrast row
   * that is this anchor row itself (excluded from its terms), or -1. Each row at most once.
   */
  positions?: Int32Array | readonly number[] | null;
  /** The contrast set is the features' own rows (view-major, as always) followed by these. */
  withAnchors?: boolean;
  /** Also return d loss / d contrast rows (default true). */
  gradient?: boolean;
}

export interface SupconOptions {
  /** tau in s_ij = z_i . z_j / tau. Default 0.07 (the reference's; the paper trains with 0.1). */
  temperature?: number;
  /** The loss is scaled by temperature / baseTemperature. Default 0.07. */
  baseTemperature?: number;
  /** 'all': every view is an anchor (default); 'one': only view 0. */
  contrastMode?: ContrastMode;
  /** 'out' (paper eq. 2, default) or 'in' (eq. 3). */
  variant?: Variant;
  /** Positives by sample pair instead of labels (or weights: see MaskInput). */
  mask?: MaskInput;
  /** Contrast the anchors against these rows instead of the batch alone (CPU and CUDA). */
  contrast?: ContrastSet;
  /** 'all' (default), 'onePositive' (each positive against the negatives), 'onlyNegatives'. */
  denominator?: Denominator;
  /** L2-normalise features inside the loss (exact backward). Default false. */
  normalize?: boolean;
  /** Leave anchors that have no positives out of the mean. Default false (they count, as zeros). */
  excludeAnchorsWithoutPositives?: boolean;
  /** CPU threads; default all the process may use. */
  threads?: number;
  /**
   * 'auto' (default: a working GPU, else the CPU), 'cpu' or 'cuda'. A CUDA tensor always
   * runs on the GPU.
   */
  device?: 'auto' | 'cpu' | 'cuda';
  /**
   * GPU arithmetic of the logits and gradient products: 'fp32' (default, exact), 'tf32' or
   * 'bf16' (tensor cores, fp32 accumulation). The CPU always computes in fp32.
   */
  precision?: 'fp32' | 'tf32' | 'bf16';
}

const OPTION_NAMES = [
  'temperature', 'baseTemperature', 'contrastMode', 'variant', 'mask', 'denominator',
  'normalize', 'excludeAnchorsWithoutPositives', 'threads', 'device', 'precision', 'contrast',
] as const;
const CONTRAST_NAMES = ['features', 'labels', 'positions', 'withAnchors', 'gradient'] as const;

interface Prepared {
  source: Float32Array | NativeStorage;
  tensor: Tensor<'float32'> | null;
  shape: number[];
  n: number;
  v: number;
  d: number;
  labels: Int32Array | null;
  mask: Uint8Array | Float32Array | null;
  /** Contrast rows m, or 0; and whether their gradient comes back. */
  m: number;
  contrastGradient: boolean;
  native: {
    temperature: number;
    baseTemperature: number;
    contrastMode: ContrastMode;
    variant: Variant;
    denominator: Denominator;
    normalize: boolean;
    excludeAnchorsWithoutPositives: boolean;
    threads?: number;
    device: 'cpu' | 'cuda';
    precision: 'fp32' | 'tf32' | 'bf16';
    contrast?: NativeContrast;
  };
}

function prepareFeatures(
  features: unknown, name = 'features', layout = '[n, v, d]',
): Pick<Prepared, 'source' | 'tensor' | 'shape'> {
  if (features instanceof Tensor) {
    if (features.dtype !== 'float32')
      throw new TypeError(`${name}: expected a float32 tensor, got dtype '${features.dtype}'`);
    return { source: features.storage, tensor: features as Tensor<'float32'>, shape: features.shape.slice() };
  }
  if (features === null || typeof features !== 'object' || Array.isArray(features) || ArrayBuffer.isView(features))
    throw new TypeError(`${name}: expected a Tensor or { data: Float32Array, shape: ${layout} }, got ${describe(features)}`);
  const { data, shape } = features as { data?: unknown; shape?: unknown };
  if (!(data instanceof Float32Array))
    throw new TypeError(`${name}.data: expected a Float32Array, got ${describe(data)}`);
  const dims = checkShape(shape, `${name}.shape`);
  if (product(dims) !== data.length)
    throw new RangeError(`${name}.data: shape [${dims.join(', ')}] needs ${product(dims)} values, got ${data.length}`);
  return { source: data, tensor: null, shape: dims };
}

function prepareLabels(labels: unknown, n: number, name = 'labels', what = 'one per sample'): Int32Array | null {
  if (labels === null || labels === undefined) return null;
  if (labels instanceof Int32Array) {
    if (labels.length !== n) throw new RangeError(`${name}: expected ${n} labels (${what}), got ${labels.length}`);
    return labels;
  }
  if (!Array.isArray(labels))
    throw new TypeError(`${name}: expected an Int32Array, a number[] or null, got ${describe(labels)}`);
  if (labels.length !== n) throw new RangeError(`${name}: expected ${n} labels (${what}), got ${labels.length}`);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const x = labels[i];
    if (typeof x !== 'number') throw new TypeError(`${name}[${i}]: expected an integer, got ${describe(x)}`);
    if (!Number.isInteger(x) || x < -2147483648 || x > 2147483647)
      throw new RangeError(`${name}[${i}]: expected a 32-bit integer, got ${x}`);
    out[i] = x;
  }
  return out;
}

// A Uint8Array or number[] holds 0/1 flags; a Float32Array or Int32Array weights >= 0.
function prepareMask(mask: unknown, n: number, columns: number, shape: string): Uint8Array | Float32Array | null {
  if (mask === undefined || mask === null) return null;
  const ok = Array.isArray(mask) || mask instanceof Uint8Array || mask instanceof Int32Array || mask instanceof Float32Array;
  if (!ok) throw new TypeError(`options.mask: expected a Uint8Array, Int32Array, Float32Array or number[] of ${shape} zeros and ones (or weights), got ${describe(mask)}`);
  const values = mask as ArrayLike<number>;
  if (values.length !== n * columns)
    throw new RangeError(`options.mask: expected ${shape} = ${n * columns} values, got ${values.length}`);
  if (mask instanceof Uint8Array) return mask;
  const weighted = mask instanceof Float32Array || mask instanceof Int32Array;
  const out = weighted ? new Float32Array(values.length) : new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    if (weighted) {
      if (!(Number.isFinite(x) && x >= 0))
        throw new RangeError(`options.mask[${i}]: expected a finite weight >= 0, got ${describe(x)} (row ${Math.floor(i / columns)}, column ${i % columns})`);
    } else if (x !== 0 && x !== 1) {
      throw new RangeError(`options.mask[${i}]: expected 0 or 1, got ${describe(x)} (weights: pass a Float32Array)`);
    }
    out[i] = x;
  }
  return out;
}

function preparePositions(positions: unknown, count: number, m: number): Int32Array | null {
  if (positions === null || positions === undefined) return null;
  const name = 'options.contrast.positions';
  if (!(positions instanceof Int32Array) && !Array.isArray(positions))
    throw new TypeError(`${name}: expected an Int32Array or number[] of n * v = ${count} contrast rows (or -1), got ${describe(positions)}`);
  const values = positions as ArrayLike<unknown>;
  if (values.length !== count)
    throw new RangeError(`${name}: expected n * v = ${count} positions (one per anchor row), got ${values.length}`);
  const out = new Int32Array(count);
  const owner = new Map<number, number>();
  for (let i = 0; i < count; i++) {
    const x = values[i];
    if (typeof x !== 'number' || !Number.isInteger(x) || x < -1 || x >= m)
      throw new RangeError(`${name}[${i}]: expected -1 or a contrast row in [0, ${m}), got ${describe(x)}`);
    if (x >= 0) {
      const first = owner.get(x);
      if (first !== undefined)
        throw new RangeError(`${name}: expected each contrast row at most once, got row ${x} at indices ${first} and ${i}`);
      owner.set(x, i);
    }
    out[i] = x;
  }
  return out;
}

function prepareContrast(
  contrast: unknown, n: number, v: number, d: number, hasLabels: boolean, device: 'cpu' | 'cuda',
): { native: NativeContrast; m: number; gradient: boolean } | null {
  if (contrast === undefined || contrast === null) return null;
  if (typeof contrast !== 'object' || Array.isArray(contrast))
    throw new TypeError(`options.contrast: expected { features, labels?, positions?, withAnchors?, gradient? }, got ${describe(contrast)}`);
  checkOptionNames(contrast, CONTRAST_NAMES, 'options.contrast');
  const c = contrast as ContrastSet;
  const f = prepareFeatures(c.features, 'options.contrast.features', '[m, d]');
  if (f.tensor !== null && f.tensor.device === 'cuda' && device !== 'cuda')
    throw new TypeError("options.contrast.features: a CUDA tensor, but the loss runs on the CPU; move it with .to('cpu') or pass options.device 'cuda'");
  if (f.shape.length !== 2 || f.shape[1] !== d)
    throw new RangeError(`options.contrast.features.shape: expected [m, ${d}] (d as the features'), got [${f.shape.join(', ')}]`);
  const m = f.shape[0];
  if (!isPositiveInteger(m))
    throw new RangeError(`options.contrast.features.shape: expected at least one contrast row (m >= 1), got m = ${m}`);
  const withAnchors = c.withAnchors ?? false;
  if (typeof withAnchors !== 'boolean') throw new TypeError(`options.contrast.withAnchors: expected a boolean, got ${describe(withAnchors)}`);
  const gradient = c.gradient ?? true;
  if (typeof gradient !== 'boolean') throw new TypeError(`options.contrast.gradient: expected a boolean, got ${describe(gradient)}`);
  const labels = prepareLabels(c.labels, m, 'options.contrast.labels', 'one per contrast row');
  if (hasLabels && labels === null)
    throw new TypeError(`options.contrast.labels: expected ${m} labels (the anchors have labels), got ${describe(c.labels)}`);
  if (!hasLabels && labels !== null)
    throw new TypeError('options.contrast.labels: contrast labels need labels for the anchors too');
  if (withAnchors && c.positions !== undefined && c.positions !== null)
    throw new TypeError('options.contrast.positions: withAnchors places the anchors first; pass no positions with it');
  const positions = preparePositions(c.positions, n * v, m);
  return { native: { features: f.source, m, labels, positions, withAnchors, gradient }, m, gradient };
}

function prepare(features: unknown, labels: unknown, options: unknown): Prepared {
  if (options === null || typeof options !== 'object' || Array.isArray(options))
    throw new TypeError(`options: expected an object, got ${describe(options)}`);
  checkOptionNames(options, OPTION_NAMES, 'options');
  const o = options as SupconOptions;
  const f = prepareFeatures(features);
  if (f.shape.length < 3)
    throw new RangeError(`features.shape: expected [n, v, d] (n samples, v views, d dims), got [${f.shape.join(', ')}]`);
  const [n, v] = f.shape;
  const d = product(f.shape.slice(2));
  if (!isPositiveInteger(n) || !isPositiveInteger(v) || !isPositiveInteger(d))
    throw new RangeError(`features.shape: expected positive dimensions, got [${f.shape.join(', ')}]`);
  if (labels !== null && labels !== undefined && o.mask !== undefined && o.mask !== null)
    throw new TypeError('labels: pass labels or options.mask, not both');
  const onGpu = f.tensor !== null && f.tensor.device === 'cuda';
  if (onGpu && o.device === 'cpu')
    throw new TypeError("options.device: the features are a CUDA tensor; move them with .to('cpu') to run on the CPU");
  const device = onGpu ? 'cuda' : resolveDevice(o.device, 'options.device');
  const precision = checkOneOf(o.precision ?? 'fp32', ['fp32', 'tf32', 'bf16'], 'options.precision');
  if (precision !== 'fp32' && device !== 'cuda')
    throw new RangeError(`options.precision: '${precision}' runs on GPU tensor cores, but the loss runs on the CPU`);
  const bool = (x: unknown, name: string, fallback: boolean): boolean => {
    if (x === undefined) return fallback;
    if (typeof x !== 'boolean') throw new TypeError(`${name}: expected a boolean, got ${describe(x)}`);
    return x;
  };
  const positive = (x: unknown, name: string, fallback: number): number => {
    if (x === undefined) return fallback;
    if (typeof x !== 'number') throw new TypeError(`${name}: expected a number, got ${describe(x)}`);
    if (!(Number.isFinite(x) && x > 0)) throw new RangeError(`${name}: expected a finite number > 0, got ${x}`);
    return x;
  };
  if (o.threads !== undefined && !(isPositiveInteger(o.threads) && o.threads <= 1024))
    throw new RangeError(`options.threads: expected an integer in [1, 1024], got ${describe(o.threads)}`);
  const contrast = prepareContrast(o.contrast, n, v, d, labels !== null && labels !== undefined, device);
  const maskColumns = contrast === null ? n : (contrast.native.withAnchors ? n : 0) + contrast.m;
  const maskShape = contrast === null ? 'n * n' : contrast.native.withAnchors ? 'n * (n + m)' : 'n * m';
  // No object spread here: objects built by spread ended up in V8's old generation, which
  // in a loop of loss calls grew the heap by about 1.4 KB a call until a full collection
  // (docs/RELIABILITY.md, the soak).
  return {
    source: f.source,
    tensor: f.tensor,
    shape: f.shape,
    n,
    v,
    d,
    labels: prepareLabels(labels, n),
    mask: prepareMask(o.mask, n, maskColumns, maskShape),
    m: contrast?.m ?? 0,
    contrastGradient: contrast?.gradient ?? false,
    native: {
      temperature: positive(o.temperature, 'options.temperature', 0.07),
      baseTemperature: positive(o.baseTemperature, 'options.baseTemperature', 0.07),
      contrastMode: checkOneOf(o.contrastMode ?? 'all', ['all', 'one'], 'options.contrastMode'),
      variant: checkOneOf(o.variant ?? 'out', ['out', 'in'], 'options.variant'),
      denominator: checkOneOf(o.denominator ?? 'all', ['all', 'onePositive', 'onlyNegatives'], 'options.denominator'),
      normalize: bool(o.normalize, 'options.normalize', false),
      excludeAnchorsWithoutPositives: bool(o.excludeAnchorsWithoutPositives, 'options.excludeAnchorsWithoutPositives', false),
      threads: o.threads,
      device,
      precision,
      contrast: contrast?.native,
    },
  };
}

/** Both gradients of a loss with a contrast set. */
export interface SupconGradients<G> {
  /** d loss / d features, as backward() gives it. */
  grad: G;
  /** d loss / d contrast rows [m, d]; null without a contrast set or with gradient: false. */
  contrastGrad: Float32Array | null;
}

/** The result of supconForward: the loss, and what supconBackward needs. */
export class SupconForward<G extends Float32Array | Tensor<'float32'> = Float32Array | Tensor<'float32'>> {
  #loss: number | undefined;
  #counted: number | undefined;
  /** Features shape, as given. */
  readonly shape: readonly number[];
  #context: NativeLossContext | null;
  /** Where the loss ran. */
  readonly device: 'cpu' | 'cuda';
  /** For Tensor features: the device of the features, where the gradient goes. */
  readonly #gradDevice: 'cpu' | 'cuda' | null;
  readonly #threads: number | undefined;
  /** Values of d loss / d contrast rows (m * d), or 0. */
  readonly #contrastValues: number;

  /** @internal */
  constructor(
    context: NativeLossContext, shape: number[], gradDevice: 'cpu' | 'cuda' | null, threads: number | undefined,
    contrastValues = 0, deferred = false,
  ) {
    if (context === null || typeof context !== 'object' || !Array.isArray(shape))
      throw new TypeError(`context: a SupconForward comes from supconForward(), got ${describe(context)}`);
    this.#context = context;
    const device = context.device;
    if (device === null) throw new RangeError('context: the loss context has been disposed');
    this.device = device;
    // Read now (on CUDA: wait for the GPU), unless the caller defers it (a training step).
    if (!deferred) {
      this.#loss = context.loss;
      this.#counted = context.counted;
    }
    this.shape = Object.freeze(shape);
    this.#gradDevice = gradDevice;
    this.#threads = threads;
    this.#contrastValues = contrastValues;
  }

  /** The loss. */
  get loss(): number {
    if (this.#loss === undefined) this.#loss = this.#live('loss').loss;
    return this.#loss;
  }

  /**
   * Anchors in the loss's mean (all of them, or those with positives under
   * excludeAnchorsWithoutPositives): shards of one batch combine their losses by it.
   */
  get counted(): number {
    if (this.#counted === undefined) this.#counted = this.#live('counted').counted;
    return this.#counted;
  }

  #live(what: string): NativeLossContext {
    if (this.#context === null) throw new RangeError(`${what}: the forward result was disposed before its ${what} was read`);
    return this.#context;
  }

  /** @internal out (a CUDA scalar) = the loss, on the GPU: no read-back. */
  lossInto(out: Tensor<'float32'>): void {
    native.lossValueInto(this.#live('loss'), out.storage);
  }

  /** Bytes of native memory this result holds (O(B * d + B)). */
  get bytes(): number {
    return this.#context?.bytes ?? 0;
  }

  /** The context and the native options of a backward pass, once gradLoss is checked. */
  #backwardArgs(gradLoss: unknown, contrastOut: Float32Array | null): [NativeLossContext, { threads?: number; contrastOut?: Float32Array }] {
    if (this.#context === null) throw new RangeError('context: the forward result has been disposed');
    if (typeof gradLoss !== 'number') throw new TypeError(`gradLoss: expected a number, got ${describe(gradLoss)}`);
    if (!Number.isFinite(gradLoss)) throw new RangeError(`gradLoss: expected a finite number, got ${gradLoss}`);
    const opts: { threads?: number; contrastOut?: Float32Array } = {};
    if (this.#threads !== undefined) opts.threads = this.#threads;
    if (contrastOut !== null) opts.contrastOut = contrastOut;
    return [this.#context, opts];
  }

  /**
   * gradLoss * d loss / d features, in the layout and kind of the features (for Tensor
   * features, a Tensor on the features' device).
   */
  backward(gradLoss = 1): G {
    return this.#backward(gradLoss, null);
  }

  /** backward() and, with a contrast set, gradLoss * d loss / d contrast rows, in one pass. */
  gradients(gradLoss = 1): SupconGradients<G> {
    const contrastGrad = this.#contrastValues > 0 ? new Float32Array(this.#contrastValues) : null;
    return { grad: this.#backward(gradLoss, contrastGrad), contrastGrad };
  }

  #backward(gradLoss: number, contrastOut: Float32Array | null): G {
    const [context, opts] = this.#backwardArgs(gradLoss, contrastOut);
    if (this.#gradDevice !== null) {
      const grad = Tensor.zeros<'float32'>(this.shape, { device: this.#gradDevice });
      try {
        native.lossBackward(context, gradLoss, grad.storage, opts);
      } catch (e) {
        grad.dispose();
        throw e;
      }
      return grad as G;
    }
    const grad = new Float32Array(product(this.shape));
    native.lossBackward(context, gradLoss, grad, opts);
    return grad as G;
  }

  /**
   * backward() as a promise: the CPU pass runs on the libuv thread pool, so the event loop
   * stays free. The result may be disposed while it runs (the pass keeps its state).
   */
  async backwardAsync(gradLoss = 1): Promise<G> {
    return this.#backwardAsync(gradLoss, null);
  }

  /** gradients() as a promise, on the libuv thread pool. */
  async gradientsAsync(gradLoss = 1): Promise<SupconGradients<G>> {
    const contrastGrad = this.#contrastValues > 0 ? new Float32Array(this.#contrastValues) : null;
    return { grad: await this.#backwardAsync(gradLoss, contrastGrad), contrastGrad };
  }

  async #backwardAsync(gradLoss: number, contrastOut: Float32Array | null): Promise<G> {
    const [context, opts] = this.#backwardArgs(gradLoss, contrastOut);
    const grad = this.#gradDevice !== null ? Tensor.zeros<'float32'>(this.shape, { device: this.#gradDevice }) : new Float32Array(product(this.shape));
    try {
      await native.lossBackwardAsync(context, gradLoss, grad instanceof Tensor ? grad.storage : grad, opts);
    } catch (e) {
      if (grad instanceof Tensor) grad.dispose();
      throw e;
    }
    return grad as G;
  }

  /** Frees the native state now (the garbage collector would, later). */
  dispose(): void {
    this.#context?.dispose();
    this.#context = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

type GradOf<F> = F extends Tensor ? Tensor<'float32'> : Float32Array;

/**
 * Forward pass only: one object holding the loss (`.loss`) and the saved state for the
 * backward pass (`.backward(gradLoss)` or supconBackward). Dispose it when done (`.dispose()`
 * or `using`). `labels`: one per sample, or null / undefined for SimCLR (see LabelsInput).
 */
export function supconForward<F extends FeaturesInput>(
  features: F,
  labels?: LabelsInput,
  options: SupconOptions = {},
): SupconForward<GradOf<F>> {
  return forwardOf<F>(features, labels, options, false);
}

/**
 * @internal supconForward whose loss stays where it was computed until asked for: on CUDA,
 * no read-back (lossInto() puts it in a device scalar; .loss reads it).
 */
export function supconForwardDeferred<F extends FeaturesInput>(features: F, labels?: LabelsInput, options: SupconOptions = {}): SupconForward<GradOf<F>> {
  return forwardOf<F>(features, labels, options, true);
}

function forwardOf<F extends FeaturesInput>(features: F, labels: LabelsInput | undefined, options: SupconOptions, deferred: boolean): SupconForward<GradOf<F>> {
  const p = prepare(features, labels, options);
  const ctx = native.lossForward(p.source, p.n, p.v, p.d, p.labels, p.mask, p.native);
  const contrastValues = p.contrastGradient ? p.m * p.d : 0;
  try {
    return new SupconForward<GradOf<F>>(ctx, p.shape, p.tensor?.device ?? null, p.native.threads, contrastValues, deferred);
  } catch (e) {
    ctx.dispose();  // the loss overflowed (a CUDA loss reports it when read)
    throw e;
  }
}

/** Backward pass of a supconForward result: gradLoss * d loss / d features. */
export function supconBackward<G extends Float32Array | Tensor<'float32'>>(forward: SupconForward<G>, gradLoss = 1): G {
  if (!(forward instanceof SupconForward))
    throw new TypeError(`forward: expected the result of supconForward(), got ${describe(forward)}`);
  return forward.backward(gradLoss);
}

export interface SupconResult<G> {
  loss: number;
  /** d loss / d features, same shape as the features (a Tensor for Tensor input). */
  grad: G;
  /** With options.contrast (and its gradient on): d loss / d contrast rows, [m, d]. */
  contrastGrad?: Float32Array;
}

/**
 * The SupCon loss and its gradient. `features` is [n, v, d]; `labels` one integer per
 * sample, or null for SimCLR (undefined, an omitted argument, also means SimCLR: see
 * LabelsInput). Defaults follow the reference implementation.
 */
export function supconLoss<F extends FeaturesInput>(
  features: F,
  labels?: LabelsInput,
  options: SupconOptions = {},
): SupconResult<GradOf<F>> {
  const forward = supconForward(features, labels, options);
  try {
    return resultOf(forward.loss, forward.gradients(1));
  } finally {
    forward.dispose();
  }
}

/**
 * supconForward as a promise: the same checks (a bad argument rejects with the same
 * TypeError or RangeError), then the CPU pass on the libuv thread pool while the event loop
 * runs. The inputs are safe meanwhile: a typed array is copied, a tensor is pinned (disposing
 * it frees its memory when the pass ends). On CUDA the pass is queued on the stream at once
 * and the promise resolves with it.
 */
export async function supconForwardAsync<F extends FeaturesInput>(
  features: F,
  labels?: LabelsInput,
  options: SupconOptions = {},
): Promise<SupconForward<GradOf<F>>> {
  const p = prepare(features, labels, options);
  const ctx = await native.lossForwardAsync(p.source, p.n, p.v, p.d, p.labels, p.mask, p.native);
  try {
    return new SupconForward<GradOf<F>>(ctx, p.shape, p.tensor?.device ?? null, p.native.threads, p.contrastGradient ? p.m * p.d : 0);
  } catch (e) {
    ctx.dispose();
    throw e;
  }
}

/** supconLoss as a promise: supconForwardAsync, then backwardAsync (the same bits as supconLoss). */
export async function supconLossAsync<F extends FeaturesInput>(
  features: F,
  labels?: LabelsInput,
  options: SupconOptions = {},
): Promise<SupconResult<GradOf<F>>> {
  const forward = await supconForwardAsync(features, labels, options);
  try {
    return resultOf(forward.loss, await forward.gradientsAsync(1));
  } finally {
    forward.dispose();
  }
}

/** The result of supconLoss, built without object spread (docs/RELIABILITY.md, the soak). */
function resultOf<G>(loss: number, g: SupconGradients<G>): SupconResult<G> {
  const result: SupconResult<G> = { loss, grad: g.grad };
  if (g.contrastGrad !== null) result.contrastGrad = g.contrastGrad;
  return result;
}

/**
 * Weights for options.mask from multi-hot labels (the TensorFlow reference's form): entry
 * [a * m + b] = the number of labels sample a and contrast row b share. `contrast` defaults
 * to `anchors` ([n, n]).
 */
export function sharedLabelWeights(
  anchors: readonly (readonly number[])[], contrast: readonly (readonly number[])[] = anchors,
): Float32Array {
  const sets = contrast.map((labels) => new Set(labels));
  const out = new Float32Array(anchors.length * contrast.length);
  anchors.forEach((labels, a) => {
    const own = new Set(labels);
    sets.forEach((set, b) => {
      let shared = 0;
      for (const x of own) if (set.has(x)) shared++;
      out[a * contrast.length + b] = shared;
    });
  });
  return out;
}
