// Bad input: every case is a TypeError or RangeError that names the argument, and the
// process lives on. Calls straight into the addon are checked too: it must stand alone.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { memory, supconForward, supconLoss, Tensor } from '../dist/index.js';
import { randomNormal, rng } from './reference';

const require = createRequire(import.meta.url);
const addon = require('node-gyp-build')(new URL('..', import.meta.url).pathname);

const n = 6, v = 2, d = 4;
const x = randomNormal(n * v * d, rng(1));
const f = { data: x, shape: [n, v, d] };

function expectError(fn: () => unknown, kind: typeof TypeError | typeof RangeError, pattern: RegExp) {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ${kind.name} matching ${pattern}`).toBeInstanceOf(kind);
  expect((caught as Error).message).toMatch(pattern);
}

describe('supconLoss rejects bad input with a clear error', () => {
  it('features', () => {
    expectError(() => supconLoss(null as never), TypeError, /^features: expected a Tensor or/);
    expectError(() => supconLoss(x as never), TypeError, /^features: expected .* got Float32Array\(48\)/);
    expectError(() => supconLoss({ data: Array.from(x), shape: [n, v, d] } as never), TypeError, /^features\.data: expected a Float32Array, got an Array\(48\)/);
    expectError(() => supconLoss({ data: new Float64Array(48), shape: [n, v, d] } as never), TypeError, /features\.data: expected a Float32Array, got Float64Array\(48\)/);
    expectError(() => supconLoss({ data: x, shape: [n, v, 5] }), RangeError, /^features\.data: shape \[6, 2, 5\] needs 60 values, got 48/);
    expectError(() => supconLoss({ data: x, shape: [12, 4] }), RangeError, /^features\.shape: expected \[n, v, d\].*got \[12, 4\]/);
    expectError(() => supconLoss({ data: x, shape: [n, v, 2.5, 1.6] }), RangeError, /^features\.shape\[2\]: expected a non-negative integer, got number 2.5/);
    expectError(() => supconLoss({ data: x, shape: 'abc' as never }), TypeError, /^features\.shape: expected an array/);
    expectError(() => supconLoss({ data: new Float32Array(0), shape: [0, 2, 4] }), RangeError, /^features\.shape: expected positive dimensions/);
    const i32 = Tensor.from(new Int32Array(48), [n, v, d]);
    expectError(() => supconLoss(i32 as never), TypeError, /^features: expected a float32 tensor, got dtype 'int32'/);
    i32.dispose();
    expectError(() => supconLoss(i32 as never), TypeError, /^features: expected a float32 tensor/);
  });

  it('NaN or Inf in features', () => {
    const bad = x.slice();
    bad[13] = NaN;
    expectError(() => supconLoss({ data: bad, shape: [n, v, d] }), RangeError, /^features: expected finite values, got NaN at index 13 \(sample 1, view 1, dim 1\)/);
    bad[13] = -Infinity;
    expectError(() => supconLoss({ data: bad, shape: [n, v, d] }), RangeError, /^features: expected finite values, got Infinity at index 13/);
  });

  it('labels', () => {
    expectError(() => supconLoss(f, [0, 1, 2]), RangeError, /^labels: expected 6 labels \(one per sample\), got 3/);
    expectError(() => supconLoss(f, [0, 1, 2, 3, 4, 0.5]), RangeError, /^labels\[5\]: expected a 32-bit integer, got 0.5/);
    expectError(() => supconLoss(f, [0, 1, 2, 3, 4, 2 ** 40]), RangeError, /^labels\[5\]: expected a 32-bit integer/);
    expectError(() => supconLoss(f, [0, 1, 2, 3, 4, '5'] as never), TypeError, /^labels\[5\]: expected an integer, got string '5'/);
    expectError(() => supconLoss(f, new Float32Array(6) as never), TypeError, /^labels: expected an Int32Array, a number\[\] or null, got Float32Array\(6\)/);
    expectError(() => supconLoss(f, new Int32Array(7)), RangeError, /^labels: expected 6 labels/);
  });

  it('mask', () => {
    expectError(() => supconLoss(f, [0, 1, 2, 0, 1, 2], { mask: new Uint8Array(36) }), TypeError, /^labels: pass labels or options\.mask, not both/);
    expectError(() => supconLoss(f, null, { mask: new Uint8Array(35) }), RangeError, /^options\.mask: expected n \* n = 36 values, got 35/);
    expectError(() => supconLoss(f, null, { mask: new Array(36).fill(0.5) }), RangeError, /^options\.mask\[0\]: expected 0 or 1, got number 0.5/);
    expectError(() => supconLoss(f, null, { mask: 'x' as never }), TypeError, /^options\.mask: expected a Uint8Array/);
  });

  it('options', () => {
    expectError(() => supconLoss(f, null, { temperature: 0 }), RangeError, /^options\.temperature: expected a finite number > 0, got 0/);
    expectError(() => supconLoss(f, null, { temperature: -0.1 }), RangeError, /^options\.temperature: expected a finite number > 0/);
    expectError(() => supconLoss(f, null, { temperature: NaN }), RangeError, /^options\.temperature/);
    expectError(() => supconLoss(f, null, { temperature: '0.1' as never }), TypeError, /^options\.temperature: expected a number, got string '0.1'/);
    expectError(() => supconLoss(f, null, { baseTemperature: Infinity }), RangeError, /^options\.baseTemperature/);
    expectError(() => supconLoss(f, null, { contrastMode: 'some' as never }), RangeError, /^options\.contrastMode: expected one of 'all', 'one', got 'some'/);
    expectError(() => supconLoss(f, null, { variant: 3 as never }), TypeError, /^options\.variant: expected a string, got number 3/);
    expectError(() => supconLoss(f, null, { denominator: 'none' as never }), RangeError, /^options\.denominator: expected one of 'all', 'onePositive', 'onlyNegatives'/);
    expectError(() => supconLoss(f, null, { normalize: 1 as never }), TypeError, /^options\.normalize: expected a boolean, got number 1/);
    expectError(() => supconLoss(f, null, { threads: 0 }), RangeError, /^options\.threads: expected an integer in \[1, 1024\], got number 0/);
    expectError(() => supconLoss(f, null, { temprature: 0.1 } as never), TypeError, /^options: unknown option 'temprature'/);
    expectError(() => supconLoss(f, null, 5 as never), TypeError, /^options: expected an object, got number 5/);
    expectError(() => supconLoss(f, null, { device: 'tpu' as never }), RangeError, /^options\.device: expected one of 'auto', 'cpu', 'cuda', got 'tpu'/);
  });

  it('backward arguments', () => {
    const fwd = supconForward(f, null);
    expectError(() => fwd.backward(NaN), RangeError, /^gradLoss: expected a finite number, got NaN/);
    expectError(() => fwd.backward('1' as never), TypeError, /^gradLoss: expected a number/);
    fwd.dispose();
    fwd.dispose();
    expectError(() => fwd.backward(), RangeError, /the forward result has been disposed/);
  });

  it('logits that overflow float32 are an error, not a silent Inf', () => {
    const big = new Float32Array(n * v * d).fill(1e19);
    expectError(() => supconLoss({ data: big, shape: [n, v, d] }), RangeError, /^features: the loss overflowed float32/);
  });

  it('sizes too large to allocate', () => {
    // Past the addon's limit on one storage: refused before asking for memory.
    expectError(() => Tensor.zeros([2 ** 20, 2 ** 20, 2 ** 10]), RangeError, /^shape: \[1048576, 1048576, 1024\] needs 4503599627370496 bytes, more than the 70368744177664/);
    // Within the limit but more than the machine has: the allocation itself fails.
    expectError(() => Tensor.zeros([2 ** 20, 2 ** 20, 8]), RangeError, /^out of memory: the sizes asked for are too large to allocate/);
  });
});

describe('the addon itself checks every argument', () => {
  const opts = { temperature: 0.1, baseTemperature: 0.1, contrastMode: 'all', variant: 'out', denominator: 'all', normalize: false, excludeAnchorsWithoutPositives: false };
  it.each([
    ['a string as features', () => addon.lossForward('x', n, v, d, null, null, opts), TypeError, /^features: expected a Float32Array or a float32 tensor, got a string/],
    ['a short feature array', () => addon.lossForward(new Float32Array(47), n, v, d, null, null, opts), RangeError, /^features: expected a Float32Array of length 48, got length 47/],
    ['n not an integer', () => addon.lossForward(x, 1.5, v, d, null, null, opts), RangeError, /^n: expected an integer in \[1, /],
    ['d missing', () => addon.lossForward(x, n, v, undefined, null, null, opts), TypeError, /^d: expected a number, got undefined/],
    ['sizes whose product overflows', () => addon.lossForward(x, 2 ** 30, 2 ** 30, 2 ** 30, null, null, opts), RangeError, /^features: .* elements is more than the/],
    ['labels as Uint32Array', () => addon.lossForward(x, n, v, d, new Uint32Array(6), null, opts), TypeError, /^labels: expected an Int32Array, got Uint32Array\(6\)/],
    ['mask with a 2', () => addon.lossForward(x, n, v, d, null, new Uint8Array(36).fill(2), opts), RangeError, /^options\.mask: expected 0 or 1, got 2 at index 0/],
    ['labels and mask', () => addon.lossForward(x, n, v, d, new Int32Array(6), new Uint8Array(36), opts), TypeError, /^labels: pass labels or options\.mask, not both/],
    ['a bad enum', () => addon.lossForward(x, n, v, d, null, null, { ...opts, variant: 'sideways' }), RangeError, /^options\.variant: expected one of 'out', 'in', got 'sideways'/],
    ['a tiny temperature', () => addon.lossForward(x, n, v, d, null, null, { ...opts, temperature: 1e-9 }), RangeError, /^options\.temperature: expected temperatures >= 1e-6/],
    ['options not an object', () => addon.lossForward(x, n, v, d, null, null, 7), TypeError, /^options: expected an object, got number 7/],
    ['backward without a context', () => addon.lossBackward({}, 1, new Float32Array(48)), TypeError, /^context: expected the result of a forward pass, got an object/],
    ['a storage that is too small', () => addon.lossForward(new addon.Storage(16), n, v, d, null, null, opts), RangeError, /^features: expected storage of at least 192 bytes, got 16/],
    ['a storage whose zero flag is not a boolean', () => new addon.Storage(16, 'cpu', 1), TypeError, /^zero: expected a boolean or undefined, got number 1/],
    ['an unknown kernel set', () => addon.cpuKernels('sse9'), RangeError, /^kernels: expected one of 'avx512'|^kernels: expected one of/],
  ])('%s', (_name, fn, kind, pattern) => {
    expectError(fn as () => unknown, kind as typeof TypeError, pattern as RegExp);
  });

  it('a backward output of the wrong size', () => {
    const ctx = addon.lossForward(x, n, v, d, null, null, opts);
    expectError(() => addon.lossBackward(ctx, 1, new Float32Array(47)), RangeError, /^out: expected a Float32Array of length 48, got length 47/);
    ctx.dispose();
    expectError(() => addon.lossBackward(ctx, 1, new Float32Array(48)), RangeError, /^context: the loss context has been disposed/);
  });

  it('failing calls leak nothing', () => {
    const t = Tensor.from(x, [n, v, d]);
    const before = memory();
    for (let i = 0; i < 50; i++) expectError(() => supconLoss(t, [0, 1]), RangeError, /^labels: expected 6 labels/);
    for (let i = 0; i < 50; i++) expectError(() => addon.lossForward(t.storage, n, v, d, new Int32Array(6), new Uint8Array(36), opts), TypeError, /not both/);
    expect(memory()).toEqual(before);
    t.dispose();
  });
});
