/// <reference lib="esnext.disposable" preserve="true" />
// (The directive above goes into the declarations too: [Symbol.dispose] needs the lib for a
// consumer whose own lib or @types/node does not declare it.)
// The Supervised Contrastive loss (Khosla et al. 2020) and SimCLR's NT-Xent, fused: the
// B x B similarity matrix is never stored. Semantics: docs/LOSS.md.
import { checkOneOf, checkOptionNames, checkShape, describe, isPositiveInteger, product } from './check';
import { resolveDevice } from './device';
import { native, NativeLossContext, NativeStorage } from './native';
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
/** n x n, row-major: mask[a * n + b] = 1 when sample b is a positive of sample a. */
export type MaskInput = Uint8Array | Int32Array | Float32Array | readonly number[];

export interface SupconOptions {
  /** tau in s_ij = z_i . z_j / tau. Default 0.07 (the reference's; the paper trains with 0.1). */
  temperature?: number;
  /** The loss is scaled by temperature / baseTemperature. Default 0.07. */
  baseTemperature?: number;
  /** 'all': every view is an anchor (default); 'one': only view 0. */
  contrastMode?: ContrastMode;
  /** 'out' (paper eq. 2, default) or 'in' (eq. 3). */
  variant?: Variant;
  /** Positives by sample pair instead of labels. */
  mask?: MaskInput;
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
  'normalize', 'excludeAnchorsWithoutPositives', 'threads', 'device', 'precision',
] as const;

interface Prepared {
  source: Float32Array | NativeStorage;
  tensor: Tensor<'float32'> | null;
  shape: number[];
  n: number;
  v: number;
  d: number;
  labels: Int32Array | null;
  mask: Uint8Array | null;
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
  };
}

function prepareFeatures(features: unknown): Pick<Prepared, 'source' | 'tensor' | 'shape'> {
  if (features instanceof Tensor) {
    if (features.dtype !== 'float32')
      throw new TypeError(`features: expected a float32 tensor, got dtype '${features.dtype}'`);
    return { source: features.storage, tensor: features as Tensor<'float32'>, shape: features.shape.slice() };
  }
  if (features === null || typeof features !== 'object' || Array.isArray(features) || ArrayBuffer.isView(features))
    throw new TypeError(`features: expected a Tensor or { data: Float32Array, shape: [n, v, d] }, got ${describe(features)}`);
  const { data, shape } = features as { data?: unknown; shape?: unknown };
  if (!(data instanceof Float32Array))
    throw new TypeError(`features.data: expected a Float32Array, got ${describe(data)}`);
  const dims = checkShape(shape, 'features.shape');
  if (product(dims) !== data.length)
    throw new RangeError(`features.data: shape [${dims.join(', ')}] needs ${product(dims)} values, got ${data.length}`);
  return { source: data, tensor: null, shape: dims };
}

function prepareLabels(labels: unknown, n: number): Int32Array | null {
  if (labels === null || labels === undefined) return null;
  if (labels instanceof Int32Array) {
    if (labels.length !== n) throw new RangeError(`labels: expected ${n} labels (one per sample), got ${labels.length}`);
    return labels;
  }
  if (!Array.isArray(labels))
    throw new TypeError(`labels: expected an Int32Array, a number[] or null, got ${describe(labels)}`);
  if (labels.length !== n) throw new RangeError(`labels: expected ${n} labels (one per sample), got ${labels.length}`);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const x = labels[i];
    if (typeof x !== 'number') throw new TypeError(`labels[${i}]: expected an integer, got ${describe(x)}`);
    if (!Number.isInteger(x) || x < -2147483648 || x > 2147483647)
      throw new RangeError(`labels[${i}]: expected a 32-bit integer, got ${x}`);
    out[i] = x;
  }
  return out;
}

function prepareMask(mask: unknown, n: number): Uint8Array | null {
  if (mask === undefined || mask === null) return null;
  const ok = Array.isArray(mask) || mask instanceof Uint8Array || mask instanceof Int32Array || mask instanceof Float32Array;
  if (!ok) throw new TypeError(`options.mask: expected a Uint8Array, Int32Array, Float32Array or number[] of n * n zeros and ones, got ${describe(mask)}`);
  const values = mask as ArrayLike<number>;
  if (values.length !== n * n)
    throw new RangeError(`options.mask: expected n * n = ${n * n} values, got ${values.length}`);
  if (mask instanceof Uint8Array) return mask;
  const out = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    if (x !== 0 && x !== 1) throw new RangeError(`options.mask[${i}]: expected 0 or 1, got ${describe(x)}`);
    out[i] = x;
  }
  return out;
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
    mask: prepareMask(o.mask, n),
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
    },
  };
}

/** The result of supconForward: the loss, and what supconBackward needs. */
export class SupconForward<G extends Float32Array | Tensor<'float32'> = Float32Array | Tensor<'float32'>> {
  readonly loss: number;
  /** Features shape, as given. */
  readonly shape: readonly number[];
  #context: NativeLossContext | null;
  /** Where the loss ran. */
  readonly device: 'cpu' | 'cuda';
  /** For Tensor features: the device of the features, where the gradient goes. */
  readonly #gradDevice: 'cpu' | 'cuda' | null;
  readonly #threads: number | undefined;

  /** @internal */
  constructor(context: NativeLossContext, shape: number[], gradDevice: 'cpu' | 'cuda' | null, threads: number | undefined) {
    if (context === null || typeof context !== 'object' || !Array.isArray(shape))
      throw new TypeError(`context: a SupconForward comes from supconForward(), got ${describe(context)}`);
    this.#context = context;
    this.loss = context.loss;
    this.device = context.device;
    this.shape = Object.freeze(shape);
    this.#gradDevice = gradDevice;
    this.#threads = threads;
  }

  /** Bytes of native memory this result holds (O(B * d + B)). */
  get bytes(): number {
    return this.#context?.bytes ?? 0;
  }

  /** The context and the native options of a backward pass, once gradLoss is checked. */
  #backwardArgs(gradLoss: unknown): [NativeLossContext, { threads?: number }] {
    if (this.#context === null) throw new RangeError('context: the forward result has been disposed');
    if (typeof gradLoss !== 'number') throw new TypeError(`gradLoss: expected a number, got ${describe(gradLoss)}`);
    if (!Number.isFinite(gradLoss)) throw new RangeError(`gradLoss: expected a finite number, got ${gradLoss}`);
    return [this.#context, this.#threads !== undefined ? { threads: this.#threads } : {}];
  }

  /**
   * gradLoss * d loss / d features, in the layout and kind of the features (for Tensor
   * features, a Tensor on the features' device).
   */
  backward(gradLoss = 1): G {
    const [context, opts] = this.#backwardArgs(gradLoss);
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
    const [context, opts] = this.#backwardArgs(gradLoss);
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
  const p = prepare(features, labels, options);
  const ctx = native.lossForward(p.source, p.n, p.v, p.d, p.labels, p.mask, p.native);
  return new SupconForward<GradOf<F>>(ctx, p.shape, p.tensor?.device ?? null, p.native.threads);
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
    return { loss: forward.loss, grad: forward.backward(1) };
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
  return new SupconForward<GradOf<F>>(ctx, p.shape, p.tensor?.device ?? null, p.native.threads);
}

/** supconLoss as a promise: supconForwardAsync, then backwardAsync (the same bits as supconLoss). */
export async function supconLossAsync<F extends FeaturesInput>(
  features: F,
  labels?: LabelsInput,
  options: SupconOptions = {},
): Promise<SupconResult<GradOf<F>>> {
  const forward = await supconForwardAsync(features, labels, options);
  try {
    return { loss: forward.loss, grad: await forward.backwardAsync(1) };
  } finally {
    forward.dispose();
  }
}
