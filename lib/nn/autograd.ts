// A small reverse-mode autograd. Every op returns a Variable that remembers how it was
// made (its GradNode); backward() walks those nodes in reverse topological order and
// each node's native backward kernel ADDS into the gradients of its inputs. Users compose
// models from ops and layers and never write backward code.
import { describe } from '../check';
import { native } from '../native';
import { keep, Tensor } from '../tensor';
import { timed } from './profile';

/** @internal How a Variable was computed: its inputs and the pass that sends gradOut back. */
export interface GradNode {
  readonly inputs: readonly Variable[];
  /** Adds d loss / d input into each input that requires a gradient (gradOf(input)). */
  backward(gradOut: Tensor<'float32'>): void;
  /** Frees what the forward pass saved for the backward pass. */
  release(): void;
}

let gradEnabled = true;
let threadCount: number | undefined;

/** Threads the layer kernels use (default: all the process may use). */
export function setNumThreads(threads: number | undefined): void {
  if (threads !== undefined && !(Number.isSafeInteger(threads) && threads >= 1 && threads <= 1024))
    throw new RangeError(`threads: expected an integer in [1, 1024] or undefined, got ${describe(threads)}`);
  threadCount = threads;
}

/** @internal */
export function numThreads(): number | undefined {
  return threadCount;
}

export type MatmulPrecision = 'fp32' | 'tf32' | 'bf16';
let precision: MatmulPrecision = 'fp32';

/**
 * The inputs of the convolutions' and linear layers' products on CUDA tensors: exact 'fp32'
 * (the default), or 'tf32' / 'bf16' tensor cores with fp32 accumulation (PyTorch's
 * allow_tf32 and autocast). Parameters, gradients and optimizer state stay fp32. The CPU
 * always computes in fp32.
 */
export function setMatmulPrecision(p: MatmulPrecision): void {
  if (p !== 'fp32' && p !== 'tf32' && p !== 'bf16')
    throw new RangeError(`precision: expected 'fp32', 'tf32' or 'bf16', got ${describe(p)}`);
  precision = p;
}

export function matmulPrecision(): MatmulPrecision {
  return precision;
}

/** Runs fn without recording gradients (inference, evaluation). */
export function noGrad<T>(fn: () => T): T {
  const previous = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** A float32 tensor in the autograd graph. */
export class Variable {
  readonly value: Tensor<'float32'>;
  /** d loss / d this, after backward() (accumulated across calls for parameters). */
  grad: Tensor<'float32'> | null = null;
  readonly requiresGrad: boolean;
  /** @internal */
  node: GradNode | null = null;

  constructor(value: Tensor<'float32'>, requiresGrad = false) {
    if (!(value instanceof Tensor)) throw new TypeError(`value: expected a Tensor, got ${describe(value)}`);
    if (value.dtype !== 'float32') throw new TypeError(`value: expected a float32 tensor, got dtype '${value.dtype}'`);
    this.value = value;
    this.requiresGrad = requiresGrad;
  }

  get shape(): readonly number[] {
    return this.value.shape;
  }

  get size(): number {
    return this.value.size;
  }

  /** The value of a one-element variable. */
  item(): number {
    if (this.value.size !== 1)
      throw new RangeError(`item(): expected a variable of one element, got shape [${this.shape.join(', ')}]`);
    return this.value.dataSync()[0];
  }

  /**
   * Back-propagates from this variable: seeds d this / d this with `grad` (1 for a
   * one-element variable), runs every node once in reverse topological order, then frees
   * the graph (intermediate gradients and saved tensors).
   */
  backward(grad?: Tensor<'float32'>): void {
    backward(this, grad);
  }

  /** Frees the value and gradient. */
  dispose(): void {
    this.node?.release();
    this.node = null;
    this.value.dispose();
    this.grad?.dispose();
    this.grad = null;
  }
}

/**
 * A trainable tensor: requires a gradient; its gradient is kept (and accumulates) until
 * zeroGrad(). Its value and gradient outlive any tidy() scope (free them with dispose()).
 */
export class Parameter extends Variable {
  constructor(value: Tensor<'float32'>) {
    super(keep(value), true);
  }

  /** Sets the gradient to zero (allocating it the first time). */
  zeroGrad(): void {
    if (this.grad === null || this.grad.isDisposed) gradOf(this);
    else {
      const g = this.grad;
      timed('zero grad', () => native.nn.fill(g.storage, g.size, 0));
    }
  }
}

/** @internal The gradient buffer of v (zero-filled the first time), for kernels to add into. */
export function gradOf(v: Variable): Tensor<'float32'> {
  if (v.grad === null || v.grad.isDisposed) {
    v.grad = Tensor.zeros(v.shape, { device: v.value.device });
    // A parameter's gradient outlives the tidy() scope it is first made in.
    if (v instanceof Parameter) keep(v.grad);
  }
  return v.grad;
}

/**
 * @internal Runs a backward kernel with v's gradient as its output dx. When v has no
 * gradient yet and is not a parameter, the buffer is a fresh one that is not cleared, and
 * the kernel is told to write it (overwrite true) rather than add into it: a pass over the
 * memory saved. Otherwise (v has a gradient from another consumer, or is a parameter) the
 * kernel adds into v's buffer. A kernel that throws leaves no fresh buffer behind.
 */
export function intoGrad<T>(v: Variable, kernel: (dx: Tensor<'float32'>, overwrite: boolean) => T): T {
  if (v instanceof Parameter || (v.grad !== null && !v.grad.isDisposed)) return kernel(gradOf(v), false);
  const fresh = Tensor.uninitialized<'float32'>(v.shape.slice(), { device: v.value.device });
  v.grad = fresh;
  try {
    return kernel(fresh, true);
  } catch (e) {
    v.grad = null;
    fresh.dispose();
    throw e;
  }
}

/** @internal Whether an op on these inputs records a node. */
export function recording(...inputs: (Variable | null | undefined)[]): boolean {
  if (!gradEnabled) return false;
  return inputs.some((v) => v != null && (v.requiresGrad || v.node !== null));
}

/** @internal A new variable for an op's output, with its node when recording. */
export function result(value: Tensor<'float32'>, node: GradNode | null): Variable {
  const v = new Variable(value, false);
  v.node = node;
  return v;
}

/** @internal Whether v wants a gradient (a parameter, or computed from one). */
export function needsGrad(v: Variable | null | undefined): v is Variable {
  return v != null && (v.requiresGrad || v.node !== null);
}

function backward(root: Variable, seed?: Tensor<'float32'>): void {
  if (root.node === null) {
    if (root.requiresGrad) throw new RangeError('backward(): the variable is a parameter; call backward() on a loss computed from it');
    throw new RangeError('backward(): the variable was not computed from anything that requires a gradient (or it was computed under noGrad(), or its graph was already freed)');
  }
  if (seed === undefined) {
    if (root.size !== 1)
      throw new RangeError(`backward(): pass the gradient for a variable of shape [${root.shape.join(', ')}]; only one-element variables default to 1`);
    root.grad = Tensor.from(new Float32Array([1]), root.shape.slice());
  } else {
    if (!(seed instanceof Tensor) || seed.dtype !== 'float32')
      throw new TypeError(`grad: expected a float32 Tensor, got ${describe(seed)}`);
    if (seed.shape.join() !== root.shape.join())
      throw new RangeError(`grad: expected shape [${root.shape.join(', ')}], got [${seed.shape.join(', ')}]`);
    const g = gradOf(root);
    native.nn.addInto(g.storage, seed.storage, g.size);
  }
  // Reverse topological order by an iterative depth-first search.
  const order: Variable[] = [];
  const seen = new Set<Variable>();
  const stack: [Variable, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [v, i] = top;
    const inputs = v.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const u = inputs[i];
      if (u.node !== null && !seen.has(u)) {
        seen.add(u);
        stack.push([u, 0]);
      }
    } else {
      stack.pop();
      order.push(v);
    }
  }
  for (let k = order.length - 1; k >= 0; k--) {
    const v = order[k];
    const node = v.node!;
    if (v.grad !== null) node.backward(v.grad);
    node.release();
    v.node = null;
    if (v !== root && v.grad !== null) {
      v.grad.dispose();
      v.grad = null;
    }
  }
}
