// Optimizers with fused native updates (one pass per parameter tensor) and learning-rate
// schedules. Formulas: docs/LAYERS.md (PyTorch's for SGD, AdamW and RMSProp).
import { checkOptionNames, describe, optionsObject } from '../check';
import { native } from '../native';
import { keep, Tensor } from '../tensor';
import { numThreads, Parameter } from './autograd';
import { Module } from './module';
import { timed } from './profile';

type Named = [string, Parameter][];

function namedParams(params: unknown): Named {
  if (params instanceof Module) return params.namedParameters();
  if (Array.isArray(params)) {
    return params.map((p, i): [string, Parameter] => {
      if (p instanceof Parameter) return [String(i), p];
      if (Array.isArray(p) && typeof p[0] === 'string' && p[1] instanceof Parameter) return [p[0], p[1]];
      throw new TypeError(`params[${i}]: expected a Parameter or a [name, Parameter] pair, got ${describe(p)}`);
    });
  }
  throw new TypeError(`params: expected a Module or an array of Parameters, got ${describe(params)}`);
}

function num(o: Record<string, unknown>, key: string, fallback: number | undefined, min = 0, max = Infinity): number {
  const x = o[key] ?? fallback;
  if (typeof x !== 'number') throw new TypeError(`options.${key}: expected a number, got ${describe(x)}`);
  if (!(Number.isFinite(x) && x >= min && x <= max))
    throw new RangeError(`options.${key}: expected a finite number in [${min}, ${max}], got ${x}`);
  return x;
}

export abstract class Optimizer {
  /** The learning rate of the next step (schedules set it). */
  lr: number;
  protected readonly params: Named;
  /** Steps taken. */
  stepCount = 0;
  // State tensors by '<parameter index>.<slot>', and per-parameter step counts.
  readonly #slots = new Map<string, Tensor<'float32'>>();
  readonly #counts = new Map<number, number>();

  constructor(params: Module | Parameter[] | [string, Parameter][], lr: number) {
    this.params = namedParams(params);
    if (!(typeof lr === 'number' && Number.isFinite(lr) && lr >= 0))
      throw new RangeError(`options.lr: expected a finite number >= 0, got ${describe(lr)}`);
    this.lr = lr;
  }

  /** The state tensor `slot` of parameter i, or null before the parameter's first update. */
  protected slot(i: number, slot: string): Tensor<'float32'> | null {
    return this.#slots.get(`${i}.${slot}`) ?? null;
  }

  /** Creates the zero state tensor `slot` of parameter i (it outlives the step's tidy()). */
  protected createSlot(i: number, slot: string, p: Parameter): Tensor<'float32'> {
    const t = keep(Tensor.zeros<'float32'>(p.shape.slice(), { device: p.value.device }));
    this.#slots.set(`${i}.${slot}`, t);
    return t;
  }

  /** Parameter i's own step count (AdamW's bias correction), advanced by one. */
  protected nextCount(i: number): number {
    const c = (this.#counts.get(i) ?? 0) + 1;
    this.#counts.set(i, c);
    return c;
  }

  /** Everything a checkpoint needs to continue exactly: copies of the state. */
  stateDict(): OptimizerState {
    return {
      stepCount: this.stepCount,
      lr: this.lr,
      slots: [...this.#slots].map(([key, t]) => [key, t.dataSync()]),
      counts: [...this.#counts],
    };
  }

  /** Restores stateDict()'s result (from an optimizer over the same parameters). */
  loadStateDict(state: OptimizerState): void {
    checkOptimizerState(state);
    const parsed = new Map<string, Float32Array>();
    for (const [key, data] of state.slots) {
      const m = /^(\d+)\.(\w+)$/.exec(key);
      const i = m === null ? -1 : Number(m[1]);
      if (m === null || i >= this.params.length || data.length !== this.params[i][1].size)
        throw new RangeError(`state.slots: '${key}' does not fit this optimizer's parameters`);
      parsed.set(key, data);
    }
    for (const t of this.#slots.values()) t.dispose();
    this.#slots.clear();
    for (const [key, data] of parsed) {
      const i = Number(key.split('.')[0]);
      const t = keep(Tensor.zeros<'float32'>(this.params[i][1].shape.slice(), { device: this.params[i][1].value.device }));
      t.storage.write(data, 0);
      this.#slots.set(key, t);
    }
    this.#counts.clear();
    for (const [i, c] of state.counts) this.#counts.set(i, c);
    this.stepCount = state.stepCount;
    this.lr = state.lr;
  }

  /** One update of every parameter that has a gradient. */
  step(): void {
    if (!(typeof this.lr === 'number' && Number.isFinite(this.lr) && this.lr >= 0))
      throw new RangeError(`lr: expected a finite number >= 0, got ${describe(this.lr)}`);
    this.stepCount++;
    for (let i = 0; i < this.params.length; i++) {
      const [name, p] = this.params[i];
      if (p.grad === null || p.grad.isDisposed) continue;
      const grad = p.grad;
      timed('optimizer', () => this.update(i, name, p, grad));
    }
  }

  protected abstract update(index: number, name: string, p: Parameter, grad: Tensor<'float32'>): void;

  zeroGrad(): void {
    for (const [, p] of this.params) p.zeroGrad();
  }

  /** Frees the optimizer state (momentum buffers, moments). */
  dispose(): void {
    for (const t of this.#slots.values()) t.dispose();
    this.#slots.clear();
    this.#counts.clear();
  }
}

/** TypeErrors and RangeErrors that name the part of a state that is wrong, before anything changes. */
function checkOptimizerState(state: unknown): asserts state is OptimizerState {
  if (state === null || typeof state !== 'object' || Array.isArray(state))
    throw new TypeError(`state: expected { stepCount, lr, slots, counts }, got ${describe(state)}`);
  const { stepCount, lr, slots, counts } = state as Record<string, unknown>;
  if (typeof stepCount !== 'number' || !Number.isSafeInteger(stepCount) || stepCount < 0)
    throw new RangeError(`state.stepCount: expected an integer >= 0, got ${describe(stepCount)}`);
  if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0)
    throw new RangeError(`state.lr: expected a finite number >= 0, got ${describe(lr)}`);
  if (!Array.isArray(slots)) throw new TypeError(`state.slots: expected an array of [key, Float32Array], got ${describe(slots)}`);
  slots.forEach((slot: unknown, i) => {
    if (!Array.isArray(slot) || slot.length !== 2 || typeof slot[0] !== 'string' || !(slot[1] instanceof Float32Array))
      throw new TypeError(`state.slots[${i}]: expected [key, Float32Array], got ${describe(slot)}`);
    const bad = (slot[1] as Float32Array).findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw new RangeError(`state.slots[${i}] ('${slot[0]}'): value ${bad} is ${(slot[1] as Float32Array)[bad]}, not finite`);
  });
  if (!Array.isArray(counts)) throw new TypeError(`state.counts: expected an array of [index, count], got ${describe(counts)}`);
  counts.forEach((c: unknown, i) => {
    if (!Array.isArray(c) || c.length !== 2 || !c.every((x) => Number.isSafeInteger(x) && x >= 0))
      throw new TypeError(`state.counts[${i}]: expected [index, count] of integers >= 0, got ${describe(c)}`);
  });
}

/** An optimizer's state, as stateDict() gives and loadStateDict() takes. */
export interface OptimizerState {
  stepCount: number;
  lr: number;
  slots: [string, Float32Array][];
  counts: [number, number][];
}

export interface SgdOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

/** PyTorch's SGD: momentum (buffer starts at the first gradient), dampening, Nesterov, weight decay. */
export class SGD extends Optimizer {
  readonly momentum: number;
  readonly dampening: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
  constructor(params: Module | Parameter[] | [string, Parameter][], options: SgdOptions) {
    options = optionsObject(options, 'options');
    checkOptionNames(options ?? {}, ['lr', 'momentum', 'dampening', 'weightDecay', 'nesterov'], 'options');
    super(params, num(options as unknown as Record<string, unknown>, 'lr', undefined));
    const o = options as unknown as Record<string, unknown>;
    this.momentum = num(o, 'momentum', 0);
    this.dampening = num(o, 'dampening', 0);
    this.weightDecay = num(o, 'weightDecay', 0);
    this.nesterov = options.nesterov ?? false;
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0))
      throw new RangeError('options.nesterov: Nesterov momentum needs momentum > 0 and dampening 0');
  }
  protected update(i: number, _name: string, p: Parameter, g: Tensor<'float32'>): void {
    let buf = this.slot(i, 'momentum');
    const firstStep = buf === null;
    if (buf === null && this.momentum > 0) buf = this.createSlot(i, 'momentum', p);
    native.nn.sgdStep(p.value.storage, g.storage, buf?.storage ?? null, p.size, {
      lr: this.lr, momentum: this.momentum, dampening: this.dampening, weightDecay: this.weightDecay,
      nesterov: this.nesterov, firstStep,
    }, numThreads());
  }
}

export interface LarsOptions {
  lr: number;
  momentum?: number;
  weightDecay?: number;
  /** eta in the trust ratio. Default 0.001. */
  trustCoefficient?: number;
  eps?: number;
  /**
   * Parameters updated by plain momentum SGD without decay or adaptation. Default: rank-1
   * parameters (biases and BatchNorm weights and biases).
   */
  exclude?: (name: string, p: Parameter) => boolean;
}

/**
 * LARS (You et al. 2017) as used for SupCon / SimCLR: d = g + wd p, scaled by
 * eta |p| / (|g| + wd |p| + eps), then momentum; excluded parameters skip decay and scaling.
 */
export class LARS extends Optimizer {
  readonly momentum: number;
  readonly weightDecay: number;
  readonly trustCoefficient: number;
  readonly eps: number;
  readonly #exclude: (name: string, p: Parameter) => boolean;
  constructor(params: Module | Parameter[] | [string, Parameter][], options: LarsOptions) {
    options = optionsObject(options, 'options');
    checkOptionNames(options ?? {}, ['lr', 'momentum', 'weightDecay', 'trustCoefficient', 'eps', 'exclude'], 'options');
    const o = options as unknown as Record<string, unknown>;
    super(params, num(o, 'lr', undefined));
    this.momentum = num(o, 'momentum', 0.9);
    this.weightDecay = num(o, 'weightDecay', 0);
    this.trustCoefficient = num(o, 'trustCoefficient', 0.001);
    this.eps = num(o, 'eps', 1e-8);
    if (options.exclude !== undefined && typeof options.exclude !== 'function')
      throw new TypeError(`options.exclude: expected a function (name, parameter) => boolean, got ${describe(options.exclude)}`);
    this.#exclude = options.exclude ?? ((_n, p) => p.shape.length <= 1);
  }
  protected update(i: number, name: string, p: Parameter, g: Tensor<'float32'>): void {
    const buf = this.slot(i, 'momentum') ?? this.createSlot(i, 'momentum', p);
    native.nn.larsStep(p.value.storage, g.storage, buf.storage, p.size, {
      lr: this.lr, momentum: this.momentum, weightDecay: this.weightDecay, trustCoefficient: this.trustCoefficient,
      eps: this.eps, adapt: !this.#exclude(name, p),
    }, numThreads());
  }
}

export interface AdamWOptions {
  lr?: number;
  betas?: readonly [number, number];
  eps?: number;
  weightDecay?: number;
}

/** PyTorch's AdamW (decoupled weight decay, bias-corrected moments). */
export class AdamW extends Optimizer {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  constructor(params: Module | Parameter[] | [string, Parameter][], options: AdamWOptions = {}) {
    options = optionsObject(options, 'options');
    checkOptionNames(options ?? {}, ['lr', 'betas', 'eps', 'weightDecay'], 'options');
    const o = options as unknown as Record<string, unknown>;
    super(params, num(o, 'lr', 1e-3));
    const betas = options.betas ?? [0.9, 0.999];
    if (!Array.isArray(betas) || betas.length !== 2 || !betas.every((b) => typeof b === 'number' && b >= 0 && b < 1))
      throw new RangeError(`options.betas: expected two numbers in [0, 1), got ${describe(betas)}`);
    [this.beta1, this.beta2] = betas;
    this.eps = num(o, 'eps', 1e-8);
    if (this.eps <= 0) throw new RangeError(`options.eps: expected a number > 0, got ${this.eps}`);
    this.weightDecay = num(o, 'weightDecay', 1e-2);
  }
  protected update(i: number, _name: string, p: Parameter, g: Tensor<'float32'>): void {
    const m = this.slot(i, 'exp_avg') ?? this.createSlot(i, 'exp_avg', p);
    const v = this.slot(i, 'exp_avg_sq') ?? this.createSlot(i, 'exp_avg_sq', p);
    native.nn.adamwStep(p.value.storage, g.storage, m.storage, v.storage, p.size, {
      lr: this.lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: this.weightDecay, step: this.nextCount(i),
    }, numThreads());
  }
}

export interface RmspropOptions {
  lr?: number;
  alpha?: number;
  eps?: number;
  weightDecay?: number;
  momentum?: number;
}

/** PyTorch's RMSprop (not centred). */
export class RMSProp extends Optimizer {
  readonly alpha: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly momentum: number;
  constructor(params: Module | Parameter[] | [string, Parameter][], options: RmspropOptions = {}) {
    options = optionsObject(options, 'options');
    checkOptionNames(options ?? {}, ['lr', 'alpha', 'eps', 'weightDecay', 'momentum'], 'options');
    const o = options as unknown as Record<string, unknown>;
    super(params, num(o, 'lr', 1e-2));
    this.alpha = num(o, 'alpha', 0.99, 0, 1);
    this.eps = num(o, 'eps', 1e-8);
    if (this.eps <= 0) throw new RangeError(`options.eps: expected a number > 0, got ${this.eps}`);
    this.weightDecay = num(o, 'weightDecay', 0);
    this.momentum = num(o, 'momentum', 0);
  }
  protected update(i: number, _name: string, p: Parameter, g: Tensor<'float32'>): void {
    const sq = this.slot(i, 'square_avg') ?? this.createSlot(i, 'square_avg', p);
    const buf = this.momentum > 0 ? (this.slot(i, 'momentum') ?? this.createSlot(i, 'momentum', p)) : null;
    native.nn.rmspropStep(p.value.storage, g.storage, sq.storage, buf?.storage ?? null, p.size, {
      lr: this.lr, alpha: this.alpha, eps: this.eps, weightDecay: this.weightDecay, momentum: this.momentum,
    }, numThreads());
  }
}

export interface WarmupCosineOptions {
  baseLr: number;
  totalSteps: number;
  warmupSteps?: number;
  /** Learning rate at step 0 of the warm-up. Default 0. */
  warmupStartLr?: number;
  /** Final learning rate. Default 0. */
  minLr?: number;
}

/**
 * Linear warm-up from warmupStartLr to baseLr over warmupSteps, then cosine decay to minLr
 * at totalSteps: lr(t) = minLr + (baseLr - minLr) (1 + cos(pi (t - w) / (T - w))) / 2.
 */
export function warmupCosine(options: WarmupCosineOptions): (step: number) => number {
  const o = optionsObject(options, 'options') as unknown as Record<string, unknown>;
  const base = num(o, 'baseLr', undefined), total = num(o, 'totalSteps', undefined, 1);
  const warm = num(o, 'warmupSteps', 0, 0, total), start = num(o, 'warmupStartLr', 0), min = num(o, 'minLr', 0);
  return (step: number) => {
    if (!(Number.isFinite(step) && step >= 0)) throw new RangeError(`step: expected a number >= 0, got ${describe(step)}`);
    if (step < warm) return start + (base - start) * (step / warm);
    if (step >= total) return min;
    const t = total === warm ? 1 : (step - warm) / (total - warm);
    return min + (base - min) * 0.5 * (1 + Math.cos(Math.PI * t));
  };
}

export interface StepDecayOptions {
  baseLr: number;
  /** Steps between decays, or the steps at which to decay (milestones). */
  stepSize: number | readonly number[];
  /** Factor per decay. Default 0.1. */
  gamma?: number;
}

/** lr(t) = baseLr * gamma^(number of decays before t) (PyTorch's StepLR / MultiStepLR). */
export function stepDecay(options: StepDecayOptions): (step: number) => number {
  const o = optionsObject(options, 'options') as unknown as Record<string, unknown>;
  const base = num(o, 'baseLr', undefined), gamma = num(o, 'gamma', 0.1);
  const s = options.stepSize;
  if (typeof s === 'number') {
    if (!(Number.isSafeInteger(s) && s >= 1)) throw new RangeError(`options.stepSize: expected a positive integer, got ${describe(s)}`);
    return (step) => base * gamma ** Math.floor(step / s);
  }
  if (!Array.isArray(s) || !s.every((m) => Number.isSafeInteger(m) && m >= 0))
    throw new RangeError(`options.stepSize: expected a positive integer or an array of milestones, got ${describe(s)}`);
  return (step) => base * gamma ** s.filter((m) => step >= m).length;
}
