// Seeded parameter initialisation (native, counter-based draws), with PyTorch's and
// torchvision's schemes.
import { describe } from '../check';
import { native } from '../native';
import { Tensor } from '../tensor';
import { numThreads } from './autograd';

/** Hands out one seed per parameter tensor, in construction order. */
export class SeedSequence {
  #next: number;
  constructor(seed: number) {
    if (!(Number.isSafeInteger(seed) && seed >= 0 && seed < 2 ** 32))
      throw new RangeError(`seed: expected an integer in [0, 2^32), got ${describe(seed)}`);
    this.#next = seed * 2 ** 20;
  }
  next(): number {
    return this.#next++;
  }
}

let defaultSequence = new SeedSequence(0);

/** The seed sequence of layers built without one (reset by setDefaultSeed). */
export function setDefaultSeed(seed: number): void {
  defaultSequence = new SeedSequence(seed);
}

/** @internal */
export function seedsFrom(seed: number | SeedSequence | undefined, name: string): SeedSequence {
  if (seed === undefined) return defaultSequence;
  if (seed instanceof SeedSequence) return seed;
  if (typeof seed !== 'number') throw new TypeError(`${name}: expected a number or a SeedSequence, got ${describe(seed)}`);
  return new SeedSequence(seed);
}

export function uniform(shape: number[], bound: number, seeds: SeedSequence): Tensor<'float32'> {
  const t = Tensor.zeros<'float32'>(shape);
  native.nn.fillUniform(t.storage, t.size, -bound, bound, seeds.next(), numThreads());
  return t;
}

export function normal(shape: number[], std: number, seeds: SeedSequence): Tensor<'float32'> {
  const t = Tensor.zeros<'float32'>(shape);
  native.nn.fillNormal(t.storage, t.size, 0, std, seeds.next(), numThreads());
  return t;
}

/** Re-draws t from N(0, std^2) in place. */
export function normalInPlace(t: Tensor<'float32'>, std: number, seeds: SeedSequence): void {
  native.nn.fillNormal(t.storage, t.size, 0, std, seeds.next(), numThreads());
}

export function constant(shape: number[], value: number): Tensor<'float32'> {
  const t = Tensor.zeros<'float32'>(shape);
  if (value !== 0) native.nn.fill(t.storage, t.size, value);
  return t;
}
