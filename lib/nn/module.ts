// Modules: parameters, buffers and children under PyTorch's names, so that a model's state
// maps one to one onto the PyTorch module of the same architecture (docs/LAYERS.md).
import { describe } from '../check';
import { DeviceName, keep, Tensor } from '../tensor';
import { Parameter, Variable } from './autograd';
import { VariableLike } from './ops';

/** A 64-bit integer buffer (PyTorch's BatchNorm num_batches_tracked), kept as a number. */
export interface Counter {
  value: number;
}

export type StateEntry =
  | { name: string; kind: 'float32'; tensor: Tensor<'float32'> }
  | { name: string; kind: 'int64'; counter: Counter };

export abstract class Module {
  /** Training mode (batch statistics in BatchNorm); eval() turns it off. */
  training = true;
  readonly #params = new Map<string, Parameter>();
  readonly #buffers = new Map<string, Tensor<'float32'> | Counter>();
  readonly #children = new Map<string, Module>();

  abstract forward(x: VariableLike): Variable;

  protected registerParameter(name: string, p: Parameter): Parameter {
    this.#params.set(name, p);
    return p;
  }

  /** A buffer (running statistics): part of the state, outlives tidy() scopes. */
  protected registerBuffer<T extends Tensor<'float32'> | Counter>(name: string, b: T): T {
    if (b instanceof Tensor) keep(b);
    this.#buffers.set(name, b);
    return b;
  }

  protected registerModule<M extends Module>(name: string, m: M): M {
    if (!(m instanceof Module)) throw new TypeError(`${name}: expected a Module, got ${describe(m)}`);
    this.#children.set(name, m);
    return m;
  }

  /** Direct children, by name. */
  children(): [string, Module][] {
    return [...this.#children];
  }

  /** Parameters under their dotted PyTorch names: own first, then children's, in order. */
  namedParameters(prefix = ''): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    for (const [n, p] of this.#params) out.push([prefix + n, p]);
    for (const [n, m] of this.#children) out.push(...m.namedParameters(`${prefix}${n}.`));
    return out;
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Parameters and buffers in PyTorch's state_dict order (per module: parameters, buffers, then children). */
  stateDict(prefix = ''): StateEntry[] {
    const out: StateEntry[] = [];
    for (const [n, p] of this.#params) out.push({ name: prefix + n, kind: 'float32', tensor: p.value });
    for (const [n, b] of this.#buffers) {
      if (b instanceof Tensor) out.push({ name: prefix + n, kind: 'float32', tensor: b });
      else out.push({ name: prefix + n, kind: 'int64', counter: b });
    }
    for (const [n, m] of this.#children) out.push(...m.stateDict(`${prefix}${n}.`));
    return out;
  }

  /** Training mode for this module and its children. */
  train(mode = true): this {
    if (typeof mode !== 'boolean') throw new TypeError(`mode: expected a boolean, got ${describe(mode)}`);
    this.training = mode;
    for (const m of this.#children.values()) m.train(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  /**
   * Moves every parameter and buffer to `device` in place ('cpu' or 'cuda'); gradients are
   * dropped (they are made again on the new device). Optimizers made before the move keep
   * their state on the old device: make them after.
   */
  to(device: DeviceName): this {
    if (device !== 'cpu' && device !== 'cuda') throw new RangeError(`device: expected 'cpu' or 'cuda', got ${describe(device)}`);
    for (const p of this.#params.values()) {
      p.value.relocate(device);
      p.grad?.dispose();
      p.grad = null;
    }
    for (const b of this.#buffers.values()) if (b instanceof Tensor) b.relocate(device);
    for (const m of this.#children.values()) m.to(device);
    return this;
  }

  /** Frees every parameter, gradient and buffer. */
  dispose(): void {
    for (const p of this.#params.values()) p.dispose();
    for (const b of this.#buffers.values()) if (b instanceof Tensor) b.dispose();
    for (const m of this.#children.values()) m.dispose();
  }
}
