// A memory queue of projected features (Cross-Batch Memory, MoCo): the rows and labels of
// the last K samples, detached, that every anchor is contrasted against besides its batch.
import { parseSafetensors, serializeSafetensors } from '../nn/safetensors';

export class FeatureQueue {
  /** Rows it holds at most: K samples times their views. */
  readonly capacity: number;
  readonly dim: number;
  readonly #rows: Float32Array;
  readonly #labels: Int32Array;
  #filled = 0;
  /** The slot the next row goes to (the oldest row once full). */
  #next = 0;

  constructor(capacity: number, dim: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`capacity: expected a positive integer, got ${capacity}`);
    if (!Number.isSafeInteger(dim) || dim < 1) throw new RangeError(`dim: expected a positive integer, got ${dim}`);
    this.capacity = capacity;
    this.dim = dim;
    this.#rows = new Float32Array(capacity * dim);
    this.#labels = new Int32Array(capacity);
  }

  get size(): number {
    return this.#filled;
  }

  /** rows [count, dim] with one label each, replacing the oldest when full. */
  push(rows: Float32Array, labels: Int32Array): void {
    const count = labels.length;
    if (rows.length !== count * this.dim)
      throw new RangeError(`rows: expected ${count} x ${this.dim} values (one row per label), got ${rows.length}`);
    for (let r = Math.max(0, count - this.capacity); r < count; r++) {
      this.#rows.set(rows.subarray(r * this.dim, (r + 1) * this.dim), this.#next * this.dim);
      this.#labels[this.#next] = labels[r];
      this.#next = (this.#next + 1) % this.capacity;
      this.#filled = Math.min(this.#filled + 1, this.capacity);
    }
  }

  /**
   * The rows held, in slot order (the loss does not depend on the order of contrast rows),
   * as views of the queue's own memory: valid until the next push.
   */
  contents(): { features: { data: Float32Array; shape: number[] }; labels: Int32Array } {
    return {
      features: { data: this.#rows.subarray(0, this.#filled * this.dim), shape: [this.#filled, this.dim] },
      labels: this.#labels.subarray(0, this.#filled),
    };
  }

  /** The queue as safetensors (its rows, labels and ring position), for checkpoints. */
  toBytes(): Uint8Array {
    const bytes = (a: Float32Array | BigInt64Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const labels = BigInt64Array.from(this.#labels, (x) => BigInt(x));
    return serializeSafetensors(
      [
        { name: 'rows', dtype: 'F32', shape: [this.capacity, this.dim], data: bytes(this.#rows) },
        { name: 'labels', dtype: 'I64', shape: [this.capacity], data: bytes(labels) },
      ],
      { filled: String(this.#filled), next: String(this.#next) },
    );
  }

  /** Restores what toBytes() wrote (the same capacity and dim). */
  load(bytes: Uint8Array): void {
    const { tensors, metadata } = parseSafetensors(bytes);
    const rows = tensors.get('rows'), labels = tensors.get('labels');
    const filled = Number(metadata?.filled), next = Number(metadata?.next);
    if (rows === undefined || labels === undefined || !Number.isSafeInteger(filled) || !Number.isSafeInteger(next))
      throw new RangeError('state: the queue part lacks its rows, labels or position');
    if (rows.data.length !== this.#rows.byteLength || labels.dtype !== 'I64' || labels.data.length !== 8 * this.capacity)
      throw new RangeError(`state: the queue holds ${rows.data.length / 4 / this.dim} rows of ${this.dim}, this run's holds ${this.capacity}`);
    if (filled < 0 || filled > this.capacity || next < 0 || next >= this.capacity)
      throw new RangeError(`state: the queue position (${filled} filled, next ${next}) is outside its ${this.capacity} rows`);
    new Uint8Array(this.#rows.buffer).set(rows.data);
    const wide = new BigInt64Array(labels.data.slice().buffer);
    for (let i = 0; i < this.capacity; i++) this.#labels[i] = Number(wide[i]);
    this.#filled = filled;
    this.#next = next;
  }
}
