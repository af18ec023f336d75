/// <reference lib="esnext.disposable" preserve="true" />
// (The directive above goes into the declarations too: [Symbol.dispose] needs the lib for a
// consumer whose own lib or @types/node does not declare it.)
// Tensor: shape, dtype and device over native storage, in the style of TensorFlow.js:
// dispose() / [Symbol.dispose] / tidy() / memory(). The garbage collector frees storage
// that was never disposed, but only as a backstop: dispose what you create.
import { checkShape, describe, product } from './check';
import { native, NativeStorage } from './native';

export type DType = 'float32' | 'int32' | 'uint8';
export type DeviceName = 'cpu' | 'cuda';
export type TypedArray = Float32Array | Int32Array | Uint8Array;
export type DataFor<D extends DType> = D extends 'float32' ? Float32Array : D extends 'int32' ? Int32Array : Uint8Array;

const DTYPES: readonly DType[] = ['float32', 'int32', 'uint8'];
const BYTES: Record<DType, number> = { float32: 4, int32: 4, uint8: 1 };
/** The addon's limit on one storage (2^46 bytes). */
const MAX_STORAGE_BYTES = 2 ** 46;
/** The most arrays arraySync() builds. */
const MAX_NESTED_ARRAYS = 2 ** 24;

function arrayFor(dtype: DType, length: number): TypedArray {
  switch (dtype) {
    case 'float32': return new Float32Array(length);
    case 'int32': return new Int32Array(length);
    case 'uint8': return new Uint8Array(length);
  }
}

function dtypeOf(data: TypedArray): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Int32Array) return 'int32';
  return 'uint8';
}

// tidy() scopes: tensors created inside are disposed at the end unless returned or kept.
const scopes: Set<Tensor>[] = [];
const kept = new WeakSet<Tensor>();
let liveTensors = 0;

export interface TensorOptions<D extends DType = DType> {
  dtype?: D;
  device?: DeviceName;
}

export class Tensor<D extends DType = DType> {
  readonly shape: readonly number[];
  readonly dtype: D;
  /** Number of elements. */
  readonly size: number;
  #storage: NativeStorage | null;
  #device: DeviceName;

  private constructor(storage: NativeStorage, shape: number[], dtype: D, device: DeviceName) {
    this.#storage = storage;
    this.shape = Object.freeze(shape);
    this.dtype = dtype;
    this.#device = device;
    this.size = product(shape);
    liveTensors++;
    scopes[scopes.length - 1]?.add(this);
  }

  /** A tensor holding a copy of `data` (a typed array, or numbers for 'float32'/'int32'). */
  static from<D extends DType = 'float32'>(
    data: TypedArray | readonly number[],
    shape?: readonly number[],
    options: TensorOptions<D> = {},
  ): Tensor<D> {
    if (options === null || typeof options !== 'object')
      throw new TypeError(`options: expected an object, got ${describe(options)}`);
    const asked = options.dtype;
    if (asked !== undefined && !DTYPES.includes(asked))
      throw new RangeError(`options.dtype: expected one of 'float32', 'int32', 'uint8', got ${describe(asked)}`);
    let values: TypedArray;
    if (Array.isArray(data)) {
      const dtype = asked ?? 'float32';
      // Checked element by element before anything is allocated: an array whose length lies
      // (a Proxy, a sparse Array(1e9)) fails at its first hole, not after allocating the length.
      const length = data.length;
      const copy: number[] = [];
      for (let i = 0; i < length; i++) {
        const x: unknown = data[i];
        if (typeof x !== 'number') throw new TypeError(`data[${i}]: expected a number, got ${describe(x)}`);
        if (dtype !== 'float32' && !Number.isInteger(x))
          throw new RangeError(`data[${i}]: expected an integer for dtype '${dtype}', got ${x}`);
        copy.push(x);
      }
      values = arrayFor(dtype, copy.length);
      values.set(copy);
    } else if (data instanceof Float32Array || data instanceof Int32Array || data instanceof Uint8Array) {
      values = data;
      if (asked !== undefined && asked !== dtypeOf(data))
        throw new TypeError(`data: expected a typed array for dtype '${asked}', got ${describe(data)}`);
    } else {
      throw new TypeError(`data: expected a Float32Array, Int32Array, Uint8Array or number[], got ${describe(data)}`);
    }
    const dims = shape === undefined ? [values.length] : checkShape(shape, 'shape');
    if (product(dims) !== values.length)
      throw new RangeError(`shape: [${dims.join(', ')}] holds ${product(dims)} elements, but data has ${values.length}`);
    const t = Tensor.uninitialized(dims, { dtype: dtypeOf(values) as D, device: options.device });
    try {
      t.storage.write(values, 0);
    } catch (e) {
      t.dispose(); // a failed call leaves nothing allocated
      throw e;
    }
    return t;
  }

  /** A zero-filled tensor. */
  static zeros<D extends DType = 'float32'>(shape: readonly number[], options: TensorOptions<D> = {}): Tensor<D> {
    if (options === null || typeof options !== 'object') throw new TypeError(`options: expected an object, got ${describe(options)}`);
    return Tensor.empty(checkShape(shape, 'shape'), options);
  }

  /**
   * @internal A tensor of a checked shape whose host memory is not cleared (what it held
   * before, or NaN under SUPCON_POISON_UNINITIALIZED=1): for outputs that the kernel writes
   * in full. On a GPU it is zero-filled as ever.
   */
  static uninitialized<D extends DType>(shape: number[], options: TensorOptions<D>): Tensor<D> {
    return Tensor.empty(shape, options, false);
  }

  /** @internal A zero-filled tensor of a checked shape (`zero` false: see uninitialized). */
  static empty<D extends DType>(shape: number[], options: TensorOptions<D>, zero = true): Tensor<D> {
    const dtype = (options.dtype ?? 'float32') as D;
    if (!DTYPES.includes(dtype))
      throw new RangeError(`options.dtype: expected one of 'float32', 'int32', 'uint8', got ${describe(dtype)}`);
    const device = options.device ?? 'cpu';
    if (device !== 'cpu' && device !== 'cuda')
      throw new RangeError(`options.device: expected 'cpu' or 'cuda', got ${describe(device)}`);
    const bytes = product(shape) * BYTES[dtype];
    if (!(bytes <= MAX_STORAGE_BYTES))
      throw new RangeError(`shape: [${shape.join(', ')}] needs ${bytes} bytes, more than the ${MAX_STORAGE_BYTES} one tensor may hold`);
    return new Tensor(new native.Storage(bytes, device, zero), shape, dtype, device);
  }

  /** @internal The native storage (throws when disposed). */
  get storage(): NativeStorage {
    if (this.#storage === null) throw new RangeError('tensor: it has been disposed');
    return this.#storage;
  }

  get isDisposed(): boolean {
    return this.#storage === null;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** A copy of the data, as a typed array of the tensor's dtype. */
  dataSync(): DataFor<D> {
    const out = arrayFor(this.dtype, this.size);
    this.storage.read(out, 0);
    return out as DataFor<D>;
  }

  /** Like dataSync(), for code written against asynchronous backends. */
  async data(): Promise<DataFor<D>> {
    return this.dataSync();
  }

  /**
   * Nested arrays in the tensor's shape. At most 2^26 values and 2^24 arrays are built (a
   * shape like [2^31, 0] holds no values but would need 2^31 empty arrays): past that, a
   * RangeError.
   */
  arraySync(): unknown {
    if (this.size > MAX_NESTED_ARRAYS * 4)
      throw new RangeError(`arraySync: ${this.size} values are more than the ${MAX_NESTED_ARRAYS * 4} it returns as nested arrays; use dataSync()`);
    let arrays = 0, level = 1;
    for (let d = 0; d < this.shape.length; d++) {
      arrays += level;
      level *= this.shape[d];
      if (arrays > MAX_NESTED_ARRAYS)
        throw new RangeError(`arraySync: shape [${this.shape.join(', ')}] needs more than ${MAX_NESTED_ARRAYS} nested arrays; use dataSync()`);
    }
    const flat = Array.from(this.dataSync() as ArrayLike<number>);
    const build = (dim: number, offset: number): unknown => {
      if (dim === this.shape.length) return flat[offset];
      const stride = product(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim] }, (_, i) => build(dim + 1, offset + i * stride));
    };
    return this.shape.length === 0 ? flat[0] : build(0, 0);
  }

  /** Where the values live: 'cpu' (host memory) or 'cuda'. */
  get device(): DeviceName {
    return this.#device;
  }

  /**
   * @internal Moves the values to `device` in place: the same object, with new storage
   * (Module.to moves parameters and buffers this way, so every reference to them stays valid).
   */
  relocate(device: DeviceName): void {
    if (device === this.#device) return;
    const copy = this.to(device);
    const old = this.storage;
    this.#storage = copy.#storage;
    this.#device = device;
    // The copy's storage now belongs to this tensor: the copy itself is gone.
    copy.#storage = null;
    liveTensors--;
    for (const scope of scopes) scope.delete(copy);
    old.dispose();
  }

  /** A copy of this tensor on `device` (a new tensor even when it is already there). */
  to(device: DeviceName): Tensor<D> {
    const out = Tensor.uninitialized<D>(this.shape.slice(), { dtype: this.dtype, device });
    try {
      out.storage.write(this.dataSync(), 0);
    } catch (e) {
      out.dispose();
      throw e;
    }
    return out;
  }

  /** Frees the storage now. Safe to call twice. */
  dispose(): void {
    if (this.#storage === null) return;
    this.#storage.dispose();
    this.#storage = null;
    liveTensors--;
    for (const scope of scopes) scope.delete(this);
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape.join(', ')}], ${this.device}${this.isDisposed ? ', disposed' : ''})`;
  }
}

function collectTensors(value: unknown, into: Set<Tensor>, depth = 0): void {
  if (value instanceof Tensor) into.add(value);
  else if (depth < 4 && Array.isArray(value)) for (const v of value) collectTensors(v, into, depth + 1);
  else if (depth < 4 && value !== null && typeof value === 'object' && !ArrayBuffer.isView(value))
    for (const v of Object.values(value)) collectTensors(v, into, depth + 1);
}

/**
 * Runs fn and disposes every tensor created inside it, except those it returns (alone, or
 * in arrays and plain objects) and those passed to keep(). fn must be synchronous.
 */
export function tidy<T>(fn: () => T): T {
  if (typeof fn !== 'function') throw new TypeError(`fn: expected a function, got ${describe(fn)}`);
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    closeScope(scope, new Set());
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) {
    closeScope(scope, new Set());
    throw new TypeError('fn: tidy() takes a synchronous function, got one that returned a Promise');
  }
  const returned = new Set<Tensor>();
  collectTensors(result, returned);
  closeScope(scope, returned);
  return result;
}

/** Disposes a finished scope's tensors, handing returned and kept ones to the parent. */
function closeScope(scope: Set<Tensor>, returned: Set<Tensor>): void {
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (returned.has(t) || kept.has(t)) parent?.add(t);
    else t.dispose();
  }
}

/** Keeps a tensor alive past the end of the enclosing tidy(). */
export function keep<T extends Tensor>(tensor: T): T {
  if (!(tensor instanceof Tensor)) throw new TypeError(`tensor: expected a Tensor, got ${describe(tensor)}`);
  kept.add(tensor);
  return tensor;
}

export interface MemoryInfo {
  /** Tensors created and not yet disposed. */
  numTensors: number;
  /** Bytes of native memory held by tensors, all devices. */
  numBytes: number;
  /** Host memory of live tensors, and freed blocks kept for reuse (SUPCON_HOST_CACHE_MB caps it). */
  cpu: { bytes: number; storages: number; cachedBytes: number };
  /**
   * GPU memory in use by tensors and loss states, and held in the allocator's cache; and how
   * many times the host has waited for the GPU (read-backs, synchronisations) in this process.
   */
  cuda: { bytes: number; cachedBytes: number; hostWaits: number };
}

/** Returns the memory that the host and GPU allocators keep for reuse to the system. */
export function emptyCache(): void {
  native.emptyCache();
}

export function memory(): MemoryInfo {
  const m = native.memory();
  return {
    numTensors: liveTensors,
    numBytes: m.cpuBytes + m.cudaBytes,
    cpu: { bytes: m.cpuBytes, storages: m.cpuStorages, cachedBytes: m.cpuCachedBytes },
    cuda: { bytes: m.cudaBytes, cachedBytes: m.cudaCachedBytes, hostWaits: m.cudaHostWaits },
  };
}
