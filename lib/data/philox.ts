// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a
// counter-based generator. Output block i of a stream is a pure function of (key, counter),
// so any draw can be recomputed from (seed, epoch, index) without replaying a sequence. The
// generator itself is the native one the augmentations use, so both share one definition.
import { describe } from '../check';
import { native } from '../native';

const TWO32 = 4294967296;

/** High and low 32 bits of the 64-bit product of two uint32 (exact in doubles via 16-bit halves). */
function mulHiLo(a: number, b: number, out: Uint32Array, hiAt: number, loAt: number): void {
  const ah = a >>> 16, al = a & 0xffff, bh = b >>> 16, bl = b & 0xffff;
  const mid = ah * bl + al * bh;
  const low = (mid % 65536) * 65536 + al * bl;
  out[hiAt] = ah * bh + Math.floor(mid / 65536) + Math.floor(low / TWO32);
  out[loAt] = low;
}

/** Philox4x32-10 of a 128-bit counter and a 64-bit key, as four uint32 (native/common/philox.h). */
export function philox4x32(counter: ArrayLike<number>, key: ArrayLike<number>, out = new Uint32Array(4)): Uint32Array {
  for (const [words, name, length] of [[counter, 'counter', 4], [key, 'key', 2]] as const) {
    if (words === null || typeof words !== 'object' || words.length !== length)
      throw new TypeError(`${name}: expected ${length} uint32 words, got ${describe(words)}`);
    for (let i = 0; i < length; i++)
      if (typeof words[i] !== 'number') throw new TypeError(`${name}[${i}]: expected a number, got ${describe(words[i])}`);
  }
  if (!(out instanceof Uint32Array) || out.length < 4) throw new TypeError(`out: expected a Uint32Array of 4 words, got ${describe(out)}`);
  const r = native.philox4x32(counter[0] >>> 0, counter[1] >>> 0, counter[2] >>> 0, counter[3] >>> 0, key[0] >>> 0, key[1] >>> 0);
  out[0] = r[0]; out[1] = r[1]; out[2] = r[2]; out[3] = r[3];
  return out;
}

/** The 64-bit key of a seed (a safe non-negative integer): low and high 32 bits. */
export function seedKey(seed: number): [number, number] {
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new RangeError(`seed: expected a non-negative safe integer, got ${describe(seed)}`);
  return [seed % TWO32, Math.floor(seed / TWO32)];
}

/**
 * A stream of uint32 from Philox keyed by `seed`, with counter (block, a, b, domain): `a`, `b`
 * and `domain` select independent streams (an epoch, a purpose), the block index advances.
 */
export class PhiloxStream {
  readonly #key: [number, number];
  readonly #counter: Uint32Array;
  readonly #block = new Uint32Array(4);
  readonly #product = new Uint32Array(2);
  #used = 4;

  constructor(seed: number, a: number, b: number, domain: number) {
    for (const [x, name] of [[a, 'a'], [b, 'b'], [domain, 'domain']] as const)
      if (typeof x !== 'number' || !Number.isFinite(x))
        throw new TypeError(`${name}: expected a finite number (taken as a uint32), got ${describe(x)}`);
    this.#key = seedKey(seed);
    this.#counter = Uint32Array.of(0, a >>> 0, b >>> 0, domain >>> 0);
  }

  nextUint32(): number {
    if (this.#used === 4) {
      philox4x32(this.#counter, this.#key, this.#block);
      this.#counter[0]++;
      this.#used = 0;
    }
    return this.#block[this.#used++];
  }

  /** A uniform integer in [0, n), unbiased (Lemire's multiply-and-reject), n in [1, 2^32). */
  nextBelow(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n >= TWO32) throw new RangeError(`n: expected an integer in [1, 2^32), got ${describe(n)}`);
    const threshold = (TWO32 - n) % n;
    for (;;) {
      mulHiLo(this.nextUint32(), n, this.#product, 0, 1);
      if (this.#product[1] >= threshold) return this.#product[0];
    }
  }

  /** A uniform float in [0, 1) with 32 random bits. */
  nextFloat(): number {
    return this.nextUint32() / TWO32;
  }
}

/** Domain tags of the streams this package draws, so that no two purposes share numbers. */
export const STREAM_SHUFFLE = 0x53485546; // 'SHUF'
export const STREAM_SPLIT = 0x53504c54; // 'SPLT'

/** A permutation of [0, n) by Fisher-Yates on the Philox stream (seed, epoch, 0, domain). */
export function permutation(n: number, seed: number, epoch = 0, domain = STREAM_SHUFFLE): Uint32Array {
  if (!Number.isSafeInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`n: expected an integer in [0, 2^32), got ${describe(n)}`);
  if (!Number.isSafeInteger(epoch) || epoch < 0 || epoch > 0xffffffff)
    throw new RangeError(`epoch: expected an integer in [0, 2^32), got ${describe(epoch)}`);
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  const rng = new PhiloxStream(seed, epoch, 0, domain);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.nextBelow(i + 1);
    const t = out[i]; out[i] = out[j]; out[j] = t;
  }
  return out;
}
