// The CPU loss against the float64 reference, finite differences and the identities of
// docs/LOSS.md, on random inputs of odd sizes, for every CPU kernel set this machine has.
import { afterAll, describe, expect, it } from 'vitest';
import { backendInfo, setCpuKernels, supconBackward, supconForward, supconLoss, Tensor } from '../dist/index.js';
import type { SupconOptions } from '../dist/index.js';
import { randomLabels, randomNormal, referenceLoss, relativeError, rng } from './reference';

const kernels = backendInfo().cpuKernelsAvailable;
const best = kernels[0];
afterAll(() => setCpuKernels(best));

type Labels = Int32Array | null;

function check(
  n: number, v: number, d: number, labels: Labels, options: SupconOptions & { mask?: Uint8Array },
  x: Float32Array,
) {
  const ref = referenceLoss(x, n, v, d, labels, options.mask ?? null, options);
  const { loss, grad } = supconLoss({ data: x, shape: [n, v, d] }, labels, options);
  // The batch-only kernel's fixed shift (docs/LOSS.md, "The symmetric triangle") costs the
  // exactness of exp(0) at a row's largest logit: a loss of 0 comes out within a few 1e-7.
  expect(Math.abs(loss - ref.loss)).toBeLessThanOrEqual(1e-5 * Math.abs(ref.loss) + 1e-6);
  expect(grad.length).toBe(n * v * d);
  // Relative to the largest gradient entry; where the exact gradient is 0 (d = 1 with
  // normalisation, say) float32 rounding leaves ~1e-7.
  let maxDiff = 0, maxRef = 0;
  for (let i = 0; i < grad.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(grad[i] - ref.grad[i]));
    maxRef = Math.max(maxRef, Math.abs(ref.grad[i]));
  }
  expect(maxDiff).toBeLessThanOrEqual(1e-4 * maxRef + 1e-5);
  return { loss, grad, ref };
}

describe.each(kernels)('kernels %s', (kernel) => {
  it('matches the float64 reference for every option combination', () => {
    setCpuKernels(kernel);
    const random = rng(11);
    let k = 0;
    for (const contrastMode of ['all', 'one'] as const)
      for (const variant of ['out', 'in'] as const)
        for (const denominator of ['all', 'onePositive', 'onlyNegatives'] as const)
          for (const labelKind of ['labels', 'none', 'mask'] as const) {
            const n = 13 + (k % 5), v = 1 + (k % 3), d = [1, 3, 17, 33][k % 4];
            const x = randomNormal(n * v * d, random, 0.5);
            const labels = labelKind === 'labels' ? randomLabels(n, 4, random) : null;
            const mask = labelKind === 'mask' ? Uint8Array.from({ length: n * n }, () => (random() < 0.3 ? 1 : 0)) : undefined;
            check(n, v, d, labels, {
              contrastMode, variant, denominator, mask,
              temperature: [0.07, 0.1, 0.5][k % 3],
              normalize: k % 2 === 0,
              excludeAnchorsWithoutPositives: k % 4 === 1,
            }, x);
            k++;
          }
  });

  it.each([
    [37, 2, 1], [37, 2, 3], [29, 2, 128], [5, 2, 2048], [41, 1, 7], [19, 4, 9], [1, 2, 5], [1, 1, 4],
  ])('matches the reference at n=%i v=%i d=%i', (n, v, d) => {
    setCpuKernels(kernel);
    const random = rng(n * 1000 + v * 10 + d);
    const x = randomNormal(n * v * d, random);
    check(n, v, d, randomLabels(n, 5, random), { normalize: true, temperature: 0.1 }, x);
    check(n, v, d, null, { temperature: 0.2 }, randomNormal(n * v * d, random, 0.3));
  });
});

describe('gradient', () => {
  it('the reference gradient equals central finite differences of the reference loss', () => {
    const random = rng(5);
    const n = 7, v = 2, d = 3;
    for (const options of [
      { normalize: true }, { variant: 'in' as const, temperature: 0.3 }, { denominator: 'onePositive' as const, normalize: true },
      { denominator: 'onePositive' as const, variant: 'in' as const }, { denominator: 'onlyNegatives' as const, contrastMode: 'one' as const },
    ]) {
      const x = randomNormal(n * v * d, random, 0.5);
      const labels = randomLabels(n, 3, random);
      const ref = referenceLoss(x, n, v, d, labels, null, options);
      const h = 1e-6;
      const xd = Float64Array.from(x);
      for (let e = 0; e < x.length; e++) {
        const xp = Float64Array.from(xd); xp[e] += h;
        const xm = Float64Array.from(xd); xm[e] -= h;
        const fd = (referenceLoss(xp, n, v, d, labels, null, options).loss - referenceLoss(xm, n, v, d, labels, null, options).loss) / (2 * h);
        expect(Math.abs(fd - ref.grad[e])).toBeLessThan(1e-6 * Math.max(1, Math.abs(fd)));
      }
    }
  });

  it('the native gradient matches directional finite differences of the native loss', () => {
    const random = rng(6);
    const n = 23, v = 2, d = 16;
    const x = randomNormal(n * v * d, random);
    const labels = randomLabels(n, 4, random);
    const options = { normalize: true, temperature: 0.5 };
    const { grad } = supconLoss({ data: x, shape: [n, v, d] }, labels, options);
    for (let t = 0; t < 5; t++) {
      const u = randomNormal(x.length, random);
      const h = 1e-2;
      const xp = x.map((e, i) => e + h * u[i]);
      const xm = x.map((e, i) => e - h * u[i]);
      const fd = (supconLoss({ data: xp, shape: [n, v, d] }, labels, options).loss -
        supconLoss({ data: xm, shape: [n, v, d] }, labels, options).loss) / (2 * h);
      const an = grad.reduce((s, g, i) => s + g * u[i], 0);
      expect(Math.abs(fd - an)).toBeLessThan(2e-3 * Math.max(1, Math.abs(an)));
    }
  });

  it('separate forward and backward equal the combined call, and gradLoss scales the gradient', () => {
    const random = rng(7);
    const n = 11, v = 2, d = 5;
    const x = randomNormal(n * v * d, random);
    const labels = randomLabels(n, 3, random);
    const combined = supconLoss({ data: x, shape: [n, v, d] }, labels);
    const fwd = supconForward({ data: x, shape: [n, v, d] }, labels);
    expect(fwd.loss).toBe(combined.loss);
    expect(fwd.bytes).toBeGreaterThan(0);
    const g1 = supconBackward(fwd);
    expect(g1).toEqual(combined.grad);
    const g3 = fwd.backward(-2.5);
    for (let i = 0; i < g1.length; i++) expect(g3[i]).toBeCloseTo(-2.5 * g1[i], 5);
    fwd.dispose();
    expect(() => fwd.backward()).toThrow(RangeError);
  });
});

describe('identities', () => {
  const random = rng(99);
  const n = 17, v = 2, d = 8;
  const x = randomNormal(n * v * d, random);
  const f = { data: x, shape: [n, v, d] };

  it('labels null == labels 0..n-1 == mask I', () => {
    const none = supconLoss(f, null);
    const ids = supconLoss(f, Int32Array.from({ length: n }, (_, i) => i));
    const eye = supconLoss(f, null, { mask: Uint8Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 1 : 0)) });
    expect(ids.loss).toBe(none.loss);
    expect(eye.loss).toBe(none.loss);
    expect(ids.grad).toEqual(none.grad);
    expect(eye.grad).toEqual(none.grad);
  });

  it('identical features give scale * log(B - 1)', () => {
    const row = randomNormal(d, random);
    const same = new Float32Array(n * v * d).map((_, i) => row[i % d]);
    for (const base of [0.07, 0.2]) {
      const { loss } = supconLoss({ data: same, shape: [n, v, d] }, randomLabels(n, 3, random), { temperature: 0.1, baseTemperature: base });
      expect(loss).toBeCloseTo((0.1 / base) * Math.log(n * v - 1), 5);
    }
  });

  it('L_in <= L_out, with equality when every anchor has one positive', () => {
    const labels = randomLabels(n, 3, random);
    const out = supconLoss(f, labels, { variant: 'out' }).loss;
    const inn = supconLoss(f, labels, { variant: 'in' }).loss;
    expect(inn).toBeLessThanOrEqual(out);
    expect(inn).toBeLessThan(out - 1e-3);
    const simOut = supconLoss(f, null, { variant: 'out' });
    const simIn = supconLoss(f, null, { variant: 'in' });
    expect(simIn.loss).toBeCloseTo(simOut.loss, 5);
    expect(relativeError(simIn.grad, simOut.grad)).toBeLessThan(1e-5);
  });

  it('loss(tau, base) = (tau / base) * loss(tau, base = tau)', () => {
    const labels = randomLabels(n, 4, random);
    const a = supconLoss(f, labels, { temperature: 0.3, baseTemperature: 0.07 }).loss;
    const b = supconLoss(f, labels, { temperature: 0.3, baseTemperature: 0.3 }).loss;
    expect(a).toBeCloseTo((0.3 / 0.07) * b, 5);
  });

  it('the diagonal of the similarity matrix never matters', () => {
    // With one view, a sample's own mask entry only pairs the row with itself.
    const m1 = randomNormal(n * d, random);
    const mask = Uint8Array.from({ length: n * n }, () => (random() < 0.3 ? 1 : 0));
    const withDiag = mask.slice(), withoutDiag = mask.slice();
    for (let i = 0; i < n; i++) { withDiag[i * n + i] = 1; withoutDiag[i * n + i] = 0; }
    const a = supconLoss({ data: m1, shape: [n, 1, d] }, null, { mask: withDiag });
    const b = supconLoss({ data: m1, shape: [n, 1, d] }, null, { mask: withoutDiag });
    expect(a.loss).toBe(b.loss);
    expect(a.grad).toEqual(b.grad);
  });

  it('is invariant to permuting samples and views', () => {
    const labels = randomLabels(n, 4, random);
    const base = supconLoss(f, labels, { normalize: true });
    const perm = Array.from({ length: n }, (_, i) => i).sort(() => random() - 0.5);
    const xp = new Float32Array(x.length);
    const lp = new Int32Array(n);
    perm.forEach((src, dst) => {
      lp[dst] = labels[src];
      // also swap the two views
      for (let view = 0; view < v; view++)
        xp.set(x.subarray((src * v + view) * d, (src * v + view + 1) * d), (dst * v + (v - 1 - view)) * d);
    });
    const permuted = supconLoss({ data: xp, shape: [n, v, d] }, lp, { normalize: true });
    expect(permuted.loss).toBeCloseTo(base.loss, 5);
    perm.forEach((src, dst) => {
      for (let view = 0; view < v; view++)
        for (let k = 0; k < d; k++)
          expect(permuted.grad[(dst * v + (v - 1 - view)) * d + k]).toBeCloseTo(base.grad[(src * v + view) * d + k], 5);
    });
  });
});

describe('edge cases', () => {
  const random = rng(123);

  it('anchors without positives count as zeros, or are excluded', () => {
    const n = 9, v = 1, d = 4;
    const x = randomNormal(n * v * d, random);
    const labels = Int32Array.from([0, 0, 1, 2, 3, 4, 5, 1, 6]); // 4 of 9 anchors have a positive
    const counted = supconLoss({ data: x, shape: [n, v, d] }, labels);
    const excluded = supconLoss({ data: x, shape: [n, v, d] }, labels, { excludeAnchorsWithoutPositives: true });
    expect(excluded.loss).toBeCloseTo((counted.loss * 9) / 4, 5);
    const ref = referenceLoss(x, n, v, d, labels, null, { excludeAnchorsWithoutPositives: true });
    expect(excluded.loss).toBeCloseTo(ref.loss, 5);
    // No positives anywhere: loss 0 and zero gradient, excluded or not.
    const alone = supconLoss({ data: x, shape: [n, v, d] }, null);
    expect(alone.loss).toBe(0);
    expect(alone.grad.every((g) => g === 0)).toBe(true);
    expect(supconLoss({ data: x, shape: [n, v, d] }, null, { excludeAnchorsWithoutPositives: true }).loss).toBe(0);
  });

  it('all labels equal (no negatives)', () => {
    const n = 12, v = 2, d = 6;
    const x = randomNormal(n * v * d, random);
    const labels = new Int32Array(n).fill(7);
    for (const denominator of ['all', 'onePositive', 'onlyNegatives'] as const)
      for (const variant of ['out', 'in'] as const)
        check(n, v, d, labels, { denominator, variant, normalize: true }, x);
    expect(supconLoss({ data: x, shape: [n, v, d] }, labels, { denominator: 'onlyNegatives' }).loss).toBe(0);
  });

  it('n = 1 and v = 1', () => {
    const x = randomNormal(2 * 5, random);
    const one = supconLoss({ data: x, shape: [1, 2, 5] }, null, { normalize: true });
    expect(one.loss).toBeCloseTo(0, 6); // one other row, and it is the positive
    const single = supconLoss({ data: x.subarray(0, 5), shape: [1, 1, 5] }, [3]);
    expect(single.loss).toBe(0);
    expect(single.grad.every((g) => g === 0)).toBe(true);
  });

  it('large norms and temperature 0.01 stay finite', () => {
    const n = 31, v = 2, d = 16;
    const x = randomNormal(n * v * d, random, 100);
    for (const normalize of [true, false]) {
      const { loss, grad } = supconLoss({ data: x, shape: [n, v, d] }, randomLabels(n, 3, random), { temperature: 0.01, normalize });
      expect(Number.isFinite(loss)).toBe(true);
      expect(grad.every(Number.isFinite)).toBe(true);
    }
  });

  it("'in' with 'onePositive' stays finite when the positives are far below the negatives", () => {
    // Samples 0 and 1 share a label but point in opposite directions; the negatives align
    // with sample 0. sigmoid(s_ip - a) underflows float32 (and float64) here: log Q must not.
    const d = 4, n = 6;
    const x = new Float32Array(n * d);
    const rows = [[30, 0, 0, 0], [-30, 1, 0, 0], [29, 2, 0, 0], [28, -2, 1, 0], [27, 0, -1, 1], [26, 1, 1, -1]];
    rows.forEach((r, i) => x.set(r, i * d));
    const labels = [0, 0, 1, 2, 3, 4];
    for (const temperature of [0.1, 0.01]) {
      const options = { variant: 'in' as const, denominator: 'onePositive' as const, temperature };
      const ref = referenceLoss(x, n, 1, d, labels, null, options);
      const { loss, grad } = supconLoss({ data: x, shape: [n, 1, d] }, labels, options);
      expect(Number.isFinite(ref.loss)).toBe(true);
      expect(ref.loss).toBeGreaterThan(100);
      expect(Math.abs(loss - ref.loss)).toBeLessThanOrEqual(1e-5 * ref.loss);
      expect(grad.every(Number.isFinite)).toBe(true);
      expect(relativeError(grad, ref.grad)).toBeLessThan(1e-4);
    }
  });

  it('extra trailing dimensions are flattened into d', () => {
    const x = randomNormal(5 * 2 * 12, random);
    const a = supconLoss({ data: x, shape: [5, 2, 3, 4] }, [0, 1, 0, 1, 2]);
    const b = supconLoss({ data: x, shape: [5, 2, 12] }, [0, 1, 0, 1, 2]);
    expect(a.loss).toBe(b.loss);
  });
});

// Without a contrast set or a mask, for contrastMode 'all' and the denominators 'all' and
// 'onlyNegatives', the kernel visits each pair of row blocks once (docs/LOSS.md, "The
// symmetric triangle") when every logit fits its fixed shift (2 max|z|^2 / tau <= 64).
describe.each(kernels)('the symmetric triangle, kernels %s', (kernel) => {
  it('matches the reference over many row blocks and tiles, odd sizes, every variant', () => {
    setCpuKernels(kernel);
    const random = rng(41);
    for (const [n, v, d] of [[263, 2, 33], [72, 2, 16], [73, 2, 5], [97, 3, 128]]) {
      const x = randomNormal(n * v * d, random);
      const labels = randomLabels(n, 7, random);
      for (const variant of ['out', 'in'] as const)
        for (const denominator of ['all', 'onlyNegatives'] as const)
          check(n, v, d, labels, { normalize: true, temperature: 0.1, variant, denominator }, x);
      check(n, v, d, null, { normalize: true, temperature: 0.2 }, x);
      // Unnormalised rows of norm about 0.5: logits within the shift without normalize.
      check(n, v, d, labels, { temperature: 0.1 }, randomNormal(n * v * d, random, 0.5 / Math.sqrt(d)));
    }
  });

  it('matches the reference on both sides of the shift limit (tau = 2 / 64)', () => {
    setCpuKernels(kernel);
    const random = rng(42);
    const n = 150, v = 2, d = 24;
    const x = randomNormal(n * v * d, random);
    const labels = randomLabels(n, 5, random);
    const inside = check(n, v, d, labels, { normalize: true, temperature: 0.0316 }, x);
    const outside = check(n, v, d, labels, { normalize: true, temperature: 0.0312 }, x);
    expect(Math.abs(inside.loss - outside.loss)).toBeLessThan(0.05 * inside.loss);
  });

  it('gives the same bits for any thread count', () => {
    setCpuKernels(kernel);
    const random = rng(43);
    const n = 301, v = 2, d = 64;
    const x = randomNormal(n * v * d, random);
    const labels = randomLabels(n, 10, random);
    for (const variant of ['out', 'in'] as const) {
      const a = supconLoss({ data: x, shape: [n, v, d] }, labels, { normalize: true, variant, threads: 1 });
      for (const threads of [2, 3, 7]) {
        const b = supconLoss({ data: x, shape: [n, v, d] }, labels, { normalize: true, variant, threads });
        expect(b.loss).toBe(a.loss);
        expect(b.grad).toEqual(a.grad);
      }
    }
  });
});

describe('determinism and devices of input', () => {
  it('gives the same bits run to run and for any thread count', () => {
    const random = rng(3);
    const n = 301, v = 2, d = 64;
    const x = randomNormal(n * v * d, random);
    const labels = randomLabels(n, 10, random);
    const a = supconLoss({ data: x, shape: [n, v, d] }, labels, { threads: 1 });
    const b = supconLoss({ data: x, shape: [n, v, d] }, labels, { threads: 2 });
    const c = supconLoss({ data: x, shape: [n, v, d] }, labels, { threads: 7 });
    expect(b.loss).toBe(a.loss);
    expect(c.loss).toBe(a.loss);
    expect(b.grad).toEqual(a.grad);
    expect(c.grad).toEqual(a.grad);
  });

  it('takes a Tensor and returns a Tensor gradient', () => {
    const random = rng(4);
    const n = 8, v = 2, d = 5;
    const x = randomNormal(n * v * d, random);
    const t = Tensor.from(x, [n, v, d]);
    const fromTensor = supconLoss(t, [0, 1, 2, 0, 1, 2, 0, 1]);
    const plain = supconLoss({ data: x, shape: [n, v, d] }, [0, 1, 2, 0, 1, 2, 0, 1]);
    expect(fromTensor.loss).toBe(plain.loss);
    expect(fromTensor.grad).toBeInstanceOf(Tensor);
    expect(fromTensor.grad.shape).toEqual([n, v, d]);
    expect(fromTensor.grad.dataSync()).toEqual(plain.grad);
    fromTensor.grad.dispose();
    t.dispose();
  });
});

describe('the unfused benchmark peer', () => {
  it('agrees with the fused kernels and the reference', async () => {
    const { createRequire } = await import('node:module');
    const addon = createRequire(import.meta.url)('node-gyp-build')(new URL('..', import.meta.url).pathname);
    const random = rng(8);
    const n = 45, v = 2, d = 19;
    const x = randomNormal(n * v * d, random, 0.4);
    const labels = randomLabels(n, 6, random);
    const grad = new Float32Array(n * v * d);
    const loss = addon.lossUnfused(x, n, v, d, labels, 0.2, 0.07, grad);
    const ref = referenceLoss(x, n, v, d, labels, null, { temperature: 0.2 });
    expect(Math.abs(loss - ref.loss)).toBeLessThan(1e-5 * ref.loss);
    expect(relativeError(grad, ref.grad)).toBeLessThan(1e-4);
    const fused = supconLoss({ data: x, shape: [n, v, d] }, labels, { temperature: 0.2 });
    expect(Math.abs(fused.loss - loss)).toBeLessThan(1e-5 * loss);
    expect(() => addon.lossUnfused(x, n, v, d, labels, 0, 0.07, grad)).toThrow(/^temperature: expected a finite number > 0/);
  });
});

describe('random configurations', () => {
  it('match the reference across options, label kinds and feature scales up to large logits', () => {
    const random = rng(2024);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)];
    for (let k = 0; k < 120; k++) {
      const n = 2 + Math.floor(random() * 12), v = pick([1, 2, 3]), d = pick([1, 2, 5, 16]);
      const scale = pick([0.01, 0.3, 1, 5, 30]);
      const x = randomNormal(n * v * d, random, scale);
      const kind = pick(['labels', 'none', 'mask'] as const);
      const labels = kind === 'labels' ? randomLabels(n, 1 + Math.floor(random() * 4), random) : null;
      const mask = kind === 'mask' ? Uint8Array.from({ length: n * n }, () => (random() < 0.4 ? 1 : 0)) : undefined;
      const options = {
        temperature: pick([0.01, 0.07, 0.5, 2]), baseTemperature: pick([0.07, 1]),
        contrastMode: pick(['all', 'one'] as const), variant: pick(['out', 'in'] as const),
        denominator: pick(['all', 'onePositive', 'onlyNegatives'] as const), normalize: random() < 0.5,
        excludeAnchorsWithoutPositives: random() < 0.3, ...(mask ? { mask } : {}),
      };
      const ref = referenceLoss(x, n, v, d, labels, mask ?? null, options);
      const what = JSON.stringify({ k, n, v, d, scale, kind, ...options, mask: undefined });
      const { loss, grad } = supconLoss({ data: x, shape: [n, v, d] }, labels, options);
      expect(Number.isFinite(loss), what).toBe(true);
      expect(Math.abs(loss - ref.loss), what).toBeLessThanOrEqual(2e-5 * Math.abs(ref.loss) + 1e-6);
      let maxDiff = 0, maxRef = 0;
      for (let i = 0; i < grad.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(grad[i] - ref.grad[i]));
        maxRef = Math.max(maxRef, Math.abs(ref.grad[i]));
      }
      expect(maxDiff, what).toBeLessThanOrEqual(2e-4 * maxRef + 1e-5);
    }
  });
});
