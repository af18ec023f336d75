// The loss against a contrast set (queue, global batch, reference set) and with weighted
// masks: the float64 reference of docs/LOSS.md, finite differences, identities, bad input.
import { afterAll, describe, expect, it } from 'vitest';
import { backendInfo, cudaStatus, setCpuKernels, sharedLabelWeights, supconForward, supconLoss, supconLossAsync, Tensor } from '../dist/index.js';
import type { ContrastSet, SupconOptions } from '../dist/index.js';
import { randomLabels, randomNormal, referenceContrastLoss, referenceLoss, relativeError, rng } from './reference';
import type { RefContrast } from './reference';

const kernels = backendInfo().cpuKernelsAvailable;
afterAll(() => setCpuKernels(kernels[0]));

type Form = 'queue' | 'global' | 'disjoint';
type LabelKind = 'labels' | 'none' | 'weights';

/** The features' own rows, view-major [B, d]. */
function ownRows(x: Float32Array, n: number, v: number, d: number): Float32Array {
  const out = new Float32Array(n * v * d);
  for (let r = 0; r < n * v; r++) out.set(x.subarray(((r % n) * v + Math.floor(r / n)) * d, ((r % n) * v + Math.floor(r / n) + 1) * d), r * d);
  return out;
}

function shuffled(count: number, random: () => number): number[] {
  const p = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

interface Problem {
  n: number; v: number; d: number; x: Float32Array; labels: Int32Array | null; mask: Float32Array | null;
  contrast: ContrastSet & { features: { data: Float32Array; shape: number[] } }; ref: RefContrast;
}

/**
 * queue: withAnchors plus `extra` rows; global: the own rows and `extra` others, shuffled,
 * with positions; disjoint: `extra` rows, no positions.
 */
function problem(form: Form, kind: LabelKind, n: number, v: number, d: number, extra: number, random: () => number): Problem {
  const B = n * v;
  const x = randomNormal(B * d, random, 0.5);
  const labels = kind === 'labels' ? randomLabels(n, 4, random) : null;
  const extraX = randomNormal(extra * d, random, 0.5);
  const extraLabels = randomLabels(extra, 4, random);
  let data: Float32Array, cLabels: Int32Array | null, positions: Int32Array | null = null;
  if (form === 'global') {
    const m = B + extra;
    const perm = shuffled(m, random); // row q of [own rows, extra] goes to perm[q]
    const own = ownRows(x, n, v, d);
    data = new Float32Array(m * d);
    cLabels = new Int32Array(m);
    for (let q = 0; q < m; q++) {
      data.set(q < B ? own.subarray(q * d, (q + 1) * d) : extraX.subarray((q - B) * d, (q - B + 1) * d), perm[q] * d);
      cLabels[perm[q]] = q < B ? (labels ? labels[q % n] : 0) : extraLabels[q - B];
    }
    positions = new Int32Array(B);
    for (let r = 0; r < B; r++) positions[(r % n) * v + Math.floor(r / n)] = perm[r];
  } else {
    data = extraX;
    cLabels = extraLabels;
  }
  const m = data.length / d;
  const withAnchors = form === 'queue';
  const columns = (withAnchors ? n : 0) + m;
  const mask = kind === 'weights'
    ? Float32Array.from({ length: n * columns }, () => (random() < 0.6 ? 0 : [0.5, 1, 2, 3.25][Math.floor(random() * 4)]))
    : null;
  const contrastLabels = labels ? cLabels : null;
  return {
    n, v, d, x, labels, mask,
    contrast: { features: { data, shape: [m, d] }, labels: contrastLabels, positions, withAnchors },
    ref: { x: data, m, labels: contrastLabels, positions, withAnchors },
  };
}

function maxRelative(a: ArrayLike<number>, b: ArrayLike<number>): { diff: number; ref: number } {
  let diff = 0, ref = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    ref = Math.max(ref, Math.abs(b[i]));
  }
  return { diff, ref };
}

function checkProblem(p: Problem, options: SupconOptions) {
  const ref = referenceContrastLoss(p.x, p.n, p.v, p.d, p.labels, p.mask, p.ref, options);
  const out = supconLoss({ data: p.x, shape: [p.n, p.v, p.d] }, p.labels, { ...options, mask: p.mask ?? undefined, contrast: p.contrast });
  expect(Math.abs(out.loss - ref.loss)).toBeLessThanOrEqual(1e-5 * Math.abs(ref.loss) + 1e-7);
  const g = maxRelative(out.grad, ref.grad);
  expect(g.diff).toBeLessThanOrEqual(1e-4 * g.ref + 1e-5);
  expect(out.contrastGrad).toBeInstanceOf(Float32Array);
  const c = maxRelative(out.contrastGrad!, ref.contrastGrad);
  expect(c.diff).toBeLessThanOrEqual(1e-4 * c.ref + 1e-5);
  return { out, ref };
}

describe.each(kernels)('contrast set, kernels %s', (kernel) => {
  it.each(['queue', 'global', 'disjoint'] as const)('the %s form matches the float64 reference for every option', (form) => {
    setCpuKernels(kernel);
    const random = rng(form.length * 97 + 3);
    let k = 0, nonTrivial = 0, cases = 0;
    for (const contrastMode of ['all', 'one'] as const)
      for (const variant of ['out', 'in'] as const)
        for (const denominator of ['all', 'onePositive', 'onlyNegatives'] as const)
          for (const kind of ['labels', 'none', 'weights'] as const) {
            const n = 7 + (k % 5), v = 1 + (k % 3), d = [1, 3, 17, 33][k % 4], extra = [5, 29, 3, 61][k % 4];
            const p = problem(form, kind, n, v, d, extra, random);
            const { ref } = checkProblem(p, {
              contrastMode, variant, denominator,
              temperature: [0.07, 0.1, 0.5][k % 3],
              normalize: k % 2 === 0,
              excludeAnchorsWithoutPositives: k % 4 === 1,
            });
            if (form === 'disjoint' && kind === 'none') {
              // No labels and no positions: no contrast row is anyone's positive.
              expect(ref.loss).toBe(0);
            } else {
              cases++;
              // (With d = 1 and normalize the exact gradient is 0.)
              if (ref.loss !== 0 && (d === 1 || ref.contrastGrad.some((e) => e !== 0))) nonTrivial++;
            }
            k++;
          }
    // The cases exercise real positives and contrast gradients, not zeros.
    expect(nonTrivial).toBeGreaterThan(cases / 2);
  });

  it('a weighted [n, n] mask matches the float64 reference for every option', () => {
    setCpuKernels(kernel);
    const random = rng(41);
    let k = 0;
    for (const contrastMode of ['all', 'one'] as const)
      for (const variant of ['out', 'in'] as const)
        for (const denominator of ['all', 'onePositive', 'onlyNegatives'] as const) {
          const n = 9 + k, v = 1 + (k % 3), d = [3, 17, 8][k % 3];
          const x = randomNormal(n * v * d, random, 0.5);
          const mask = Float32Array.from({ length: n * n }, () => (random() < 0.5 ? 0 : 0.25 + 3 * random()));
          const options = { contrastMode, variant, denominator, normalize: k % 2 === 1, temperature: 0.2, excludeAnchorsWithoutPositives: k % 3 === 0 };
          const ref = referenceContrastLoss(x, n, v, d, null, mask, null, options);
          const out = supconLoss({ data: x, shape: [n, v, d] }, null, { ...options, mask });
          expect(Math.abs(out.loss - ref.loss)).toBeLessThanOrEqual(1e-5 * Math.abs(ref.loss) + 1e-7);
          const g = maxRelative(out.grad, ref.grad);
          expect(g.ref).toBeGreaterThan(0);
          expect(g.diff).toBeLessThanOrEqual(1e-4 * g.ref + 1e-5);
          k++;
        }
  });
});

describe('weighted masks', () => {
  it('0/1 weights give the same bits as a Uint8Array mask; the weighted reference with 0/1 is the plain reference', () => {
    const random = rng(8);
    const n = 13, v = 2, d = 9;
    const x = randomNormal(n * v * d, random);
    const flags = Uint8Array.from({ length: n * n }, () => (random() < 0.3 ? 1 : 0));
    for (const variant of ['out', 'in'] as const) {
      const a = supconLoss({ data: x, shape: [n, v, d] }, null, { mask: flags, variant, temperature: 0.3 });
      const b = supconLoss({ data: x, shape: [n, v, d] }, null, { mask: Float32Array.from(flags), variant, temperature: 0.3 });
      expect(b.loss).toBe(a.loss);
      expect(b.grad).toEqual(a.grad);
      const plain = referenceLoss(x, n, v, d, null, flags, { variant, temperature: 0.3 });
      const weighted = referenceContrastLoss(x, n, v, d, null, flags, null, { variant, temperature: 0.3 });
      expect(Math.abs(weighted.loss - plain.loss)).toBeLessThan(1e-12 * Math.abs(plain.loss));
      expect(relativeError(weighted.grad, plain.grad)).toBeLessThan(1e-12);
    }
  });

  it('multi-hot labels: weights = shared labels, against the reference built from the label sets', () => {
    const random = rng(12);
    const n = 11, v = 2, d = 6;
    const sets = Array.from({ length: n }, () => [0, 1, 2, 3, 4].filter(() => random() < 0.4));
    const weights = sharedLabelWeights(sets);
    for (let a = 0; a < n; a++)
      for (let b = 0; b < n; b++)
        expect(weights[a * n + b]).toBe(sets[a].filter((c) => sets[b].includes(c)).length);
    expect(Math.max(...weights)).toBeGreaterThan(1);
    const x = randomNormal(n * v * d, random);
    const ref = referenceContrastLoss(x, n, v, d, null, weights, null, { temperature: 0.5 });
    const out = supconLoss({ data: x, shape: [n, v, d] }, null, { mask: weights, temperature: 0.5 });
    expect(Math.abs(out.loss - ref.loss)).toBeLessThanOrEqual(1e-5 * Math.abs(ref.loss));
    // Doubling every weight changes nothing ('out' and 'in' are weighted means).
    const doubled = supconLoss({ data: x, shape: [n, v, d] }, null, { mask: weights.map((w) => 2 * w), temperature: 0.5 });
    expect(Math.abs(doubled.loss - out.loss)).toBeLessThan(1e-5 * Math.abs(out.loss));
  });
});

describe('gradients by finite differences', () => {
  it('the reference gradients (anchors and contrast rows) equal central differences of the reference loss', () => {
    const random = rng(21);
    const n = 4, v = 2, d = 3;
    const optionSets: SupconOptions[] = [
      { normalize: true }, { variant: 'in', temperature: 0.3 }, { denominator: 'onePositive', normalize: true },
      { denominator: 'onePositive', variant: 'in' }, { denominator: 'onlyNegatives', contrastMode: 'one' },
    ];
    let t = 0;
    for (const options of optionSets)
      for (const form of ['queue', 'global', 'disjoint'] as const) {
        const kind = form === 'disjoint' ? (['labels', 'weights'] as const)[t++ % 2] : (['labels', 'weights', 'none'] as const)[t++ % 3];
        const p = problem(form, kind, n, v, d, 5, random);
        const ref = referenceContrastLoss(p.x, n, v, d, p.labels, p.mask, p.ref, options);
        const lossAt = (x: ArrayLike<number>, cx: ArrayLike<number>) =>
          referenceContrastLoss(x, n, v, d, p.labels, p.mask, { ...p.ref, x: cx }, options).loss;
        const h = 1e-6;
        const xd = Float64Array.from(p.x), cd = Float64Array.from(p.ref.x);
        for (let e = 0; e < xd.length; e++) {
          const xp = Float64Array.from(xd); xp[e] += h;
          const xm = Float64Array.from(xd); xm[e] -= h;
          const fd = (lossAt(xp, cd) - lossAt(xm, cd)) / (2 * h);
          expect(Math.abs(fd - ref.grad[e])).toBeLessThan(1e-6 * Math.max(1, Math.abs(fd)));
        }
        for (let e = 0; e < cd.length; e++) {
          const cp = Float64Array.from(cd); cp[e] += h;
          const cm = Float64Array.from(cd); cm[e] -= h;
          const fd = (lossAt(xd, cp) - lossAt(xd, cm)) / (2 * h);
          expect(Math.abs(fd - ref.contrastGrad[e])).toBeLessThan(1e-6 * Math.max(1, Math.abs(fd)));
        }
        expect(ref.contrastGrad.some((e) => e !== 0)).toBe(true);
      }
  });

  it('the native gradients match directional finite differences of the native loss', () => {
    const random = rng(22);
    const n = 17, v = 2, d = 16;
    for (const form of ['queue', 'global', 'disjoint'] as const) {
      const p = problem(form, 'labels', n, v, d, 40, random);
      const options = { normalize: true, temperature: 0.5 };
      const lossAt = (x: Float32Array, cx: Float32Array) => supconLoss({ data: x, shape: [n, v, d] }, p.labels, {
        ...options, contrast: { ...p.contrast, features: { data: cx, shape: p.contrast.features.shape }, gradient: false },
      }).loss;
      const { grad, contrastGrad } = supconLoss({ data: p.x, shape: [n, v, d] }, p.labels, { ...options, contrast: p.contrast });
      const cx = p.contrast.features.data;
      for (let t = 0; t < 3; t++) {
        const u = randomNormal(p.x.length, random), w = randomNormal(cx.length, random);
        const h = 1e-2;
        const fd = (lossAt(p.x.map((e, i) => e + h * u[i]), cx.map((e, i) => e + h * w[i])) -
          lossAt(p.x.map((e, i) => e - h * u[i]), cx.map((e, i) => e - h * w[i]))) / (2 * h);
        const an = grad.reduce((s, g, i) => s + g * u[i], 0) + contrastGrad!.reduce((s, g, i) => s + g * w[i], 0);
        expect(Math.abs(fd - an)).toBeLessThan(2e-3 * Math.max(1, Math.abs(an)));
      }
    }
  });
});

describe('identities', () => {
  it('the own rows as the contrast set, at their own positions, reproduce the loss', () => {
    const random = rng(31);
    for (const [n, v, d] of [[13, 2, 7], [29, 3, 33], [6, 1, 5]]) {
      const x = randomNormal(n * v * d, random);
      const labels = randomLabels(n, 4, random);
      const B = n * v;
      const rowLabels = Int32Array.from({ length: B }, (_, r) => labels[r % n]);
      const positions = Int32Array.from({ length: B }, (_, i) => (i % v) * n + Math.floor(i / v));
      for (const options of [{}, { variant: 'in' as const, normalize: true }, { denominator: 'onePositive' as const, contrastMode: 'one' as const }]) {
        const plain = supconLoss({ data: x, shape: [n, v, d] }, labels, options);
        const viaContrast = supconLoss({ data: x, shape: [n, v, d] }, labels, {
          ...options, contrast: { features: { data: ownRows(x, n, v, d), shape: [B, d] }, labels: rowLabels, positions },
        });
        // The same pairs; the batch-only kernel visits each pair once (the triangle), the
        // contrast kernel each ordered pair, so the sums round apart.
        expect(Math.abs(viaContrast.loss - plain.loss)).toBeLessThanOrEqual(2e-6 * Math.abs(plain.loss));
        const summed = Float32Array.from(viaContrast.grad);
        for (let r = 0; r < B; r++)
          for (let k = 0; k < d; k++) summed[((r % n) * v + Math.floor(r / n)) * d + k] += viaContrast.contrastGrad![r * d + k];
        const g = maxRelative(summed, plain.grad);
        expect(g.diff).toBeLessThanOrEqual(1e-5 * g.ref);
        // withAnchors and no extra rows cannot be said (m >= 1); one extra row far away barely matters.
      }
    }
  });

  it('permuting the contrast rows (with their labels and positions) permutes the contrast gradient and keeps the rest', () => {
    const random = rng(32);
    const n = 11, v = 2, d = 9;
    const p = problem('global', 'labels', n, v, d, 23, random);
    const m = p.contrast.features.shape[0];
    const perm = shuffled(m, random);
    const data = new Float32Array(m * d), labels = new Int32Array(m);
    for (let c = 0; c < m; c++) {
      data.set(p.contrast.features.data.subarray(c * d, (c + 1) * d), perm[c] * d);
      labels[perm[c]] = (p.contrast.labels as Int32Array)[c];
    }
    const positions = Int32Array.from(p.contrast.positions as Int32Array, (q) => perm[q]);
    const a = supconLoss({ data: p.x, shape: [n, v, d] }, p.labels, { contrast: p.contrast, temperature: 0.2 });
    const b = supconLoss({ data: p.x, shape: [n, v, d] }, p.labels, {
      contrast: { features: { data, shape: [m, d] }, labels, positions }, temperature: 0.2,
    });
    expect(Math.abs(b.loss - a.loss)).toBeLessThan(1e-6 * Math.abs(a.loss));
    expect(relativeError(b.grad, a.grad)).toBeLessThan(1e-5);
    const back = new Float32Array(m * d);
    for (let c = 0; c < m; c++) back.set(b.contrastGrad!.subarray(perm[c] * d, (perm[c] + 1) * d), c * d);
    expect(relativeError(back, a.contrastGrad!)).toBeLessThan(1e-5);
  });

  it('gives the same bits for any thread count, and gradient: false leaves the anchors\' gradient as it is', () => {
    const random = rng(33);
    const n = 37, v = 2, d = 20;
    for (const form of ['queue', 'global', 'disjoint'] as const) {
      const p = problem(form, 'weights', n, v, d, 300, random);
      const run = (threads: number, gradient = true) => supconLoss({ data: p.x, shape: [n, v, d] }, null, {
        mask: p.mask!, contrast: { ...p.contrast, gradient }, threads, normalize: true, denominator: 'onePositive', variant: 'in',
      });
      const one = run(1);
      for (const threads of [2, 3, 8]) {
        const other = run(threads);
        expect(other.loss).toBe(one.loss);
        expect(other.grad).toEqual(one.grad);
        expect(other.contrastGrad).toEqual(one.contrastGrad);
      }
      const detached = run(2, false);
      expect(detached.contrastGrad).toBeUndefined();
      expect(detached.grad).toEqual(one.grad);
    }
  });
});

describe('bad input', () => {
  const n = 4, v = 2, d = 3, m = 5;
  const x = { data: randomNormal(n * v * d, rng(1)), shape: [n, v, d] };
  const cx = { data: randomNormal(m * d, rng(2)), shape: [m, d] };
  const labels = Int32Array.of(0, 1, 0, 1);
  const cl = Int32Array.of(0, 1, 2, 0, 1);
  const cases: [string, () => unknown, ErrorConstructor, RegExp][] = [
    ['m = 0', () => supconLoss(x, labels, { contrast: { features: { data: new Float32Array(0), shape: [0, d] }, labels: [] } }), RangeError, /^options\.contrast\.features\.shape: expected at least one contrast row \(m >= 1\), got m = 0/],
    ['a d that differs', () => supconLoss(x, labels, { contrast: { features: { data: new Float32Array(10), shape: [5, 2] }, labels: cl } }), RangeError, /^options\.contrast\.features\.shape: expected \[m, 3\]/],
    ['a position out of range', () => supconLoss(x, labels, { contrast: { features: cx, labels: cl, positions: [0, 1, 2, 3, 4, 5, -1, -1] } }), RangeError, /^options\.contrast\.positions\[5\]: expected -1 or a contrast row in \[0, 5\), got number 5/],
    ['a position below -1', () => supconLoss(x, labels, { contrast: { features: cx, labels: cl, positions: [-2, 1, 2, 3, 4, -1, -1, -1] } }), RangeError, /^options\.contrast\.positions\[0\]: expected -1 or a contrast row/],
    ['a repeated position', () => supconLoss(x, labels, { contrast: { features: cx, labels: cl, positions: [0, 1, 2, 1, -1, -1, -1, -1] } }), RangeError, /^options\.contrast\.positions: expected each contrast row at most once, got row 1 at indices 1 and 3/],
    ['positions of the wrong length', () => supconLoss(x, labels, { contrast: { features: cx, labels: cl, positions: [0, 1] } }), RangeError, /^options\.contrast\.positions: expected n \* v = 8 positions \(one per anchor row\), got 2/],
    ['contrast labels of the wrong length', () => supconLoss(x, labels, { contrast: { features: cx, labels: [0, 1] } }), RangeError, /^options\.contrast\.labels: expected 5 labels \(one per contrast row\), got 2/],
    ['contrast labels missing', () => supconLoss(x, labels, { contrast: { features: cx } }), TypeError, /^options\.contrast\.labels: expected 5 labels \(the anchors have labels\), got undefined/],
    ['contrast labels without anchor labels', () => supconLoss(x, null, { contrast: { features: cx, labels: cl } }), TypeError, /^options\.contrast\.labels: contrast labels need labels for the anchors too/],
    ['a mask of the wrong shape', () => supconLoss(x, null, { mask: new Float32Array(n * n), contrast: { features: cx } }), RangeError, /^options\.mask: expected n \* m = 20 values, got 16/],
    ['a withAnchors mask of the wrong shape', () => supconLoss(x, null, { mask: new Float32Array(n * m), contrast: { features: cx, withAnchors: true } }), RangeError, /^options\.mask: expected n \* \(n \+ m\) = 36 values, got 20/],
    ['a negative weight', () => supconLoss(x, null, { mask: Float32Array.from({ length: 16 }, (_, i) => (i === 6 ? -0.5 : 1)) }), RangeError, /^options\.mask\[6\]: expected a finite weight >= 0, got number -0\.5 \(row 1, column 2\)/],
    ['a NaN weight', () => supconLoss(x, null, { mask: Float32Array.from({ length: 20 }, (_, i) => (i === 3 ? NaN : 1)), contrast: { features: cx } }), RangeError, /^options\.mask\[3\]: expected a finite weight >= 0, got number NaN \(row 0, column 3\)/],
    ['positions with withAnchors', () => supconLoss(x, labels, { contrast: { features: cx, labels: cl, withAnchors: true, positions: new Int32Array(8).fill(-1) } }), TypeError, /^options\.contrast\.positions: withAnchors places the anchors first/],
    ['an unknown contrast field', () => supconLoss(x, labels, { contrast: { features: cx, labels: cl, weights: 1 } as never }), TypeError, /^options\.contrast/],
    ['contrast features not an object', () => supconLoss(x, labels, { contrast: { features: 3 } as never }), TypeError, /^options\.contrast\.features: expected a Tensor or \{ data: Float32Array, shape: \[m, d\] \}, got number 3/],
    ['NaN in the contrast features', () => supconLoss(x, labels, { contrast: { features: { data: Float32Array.from(cx.data, (e, i) => (i === 4 ? NaN : e)), shape: [m, d] }, labels: cl } }), RangeError, /^options\.contrast\.features: expected finite values, got NaN at index 4 \(row 1, dim 1\)/],
  ];
  it.each(cases)('%s', (_name, f, type, message) => {
    let error: unknown;
    try { f(); } catch (e) { error = e; }
    expect(error).toBeInstanceOf(type);
    expect((error as Error).message).toMatch(message);
  });

  it('the addon checks the contrast set on its own too', async () => {
    const { native } = await import('../dist/lib/native.js');
    const opts = { temperature: 0.1, baseTemperature: 0.1, contrastMode: 'all', variant: 'out', denominator: 'all', normalize: false, excludeAnchorsWithoutPositives: false };
    const contrast = { features: cx.data, m, labels: cl, positions: null, withAnchors: false, gradient: true };
    const expectThrow = (f: () => unknown, type: ErrorConstructor, message: RegExp) => {
      let error: unknown;
      try { f(); } catch (e) { error = e; }
      expect(error).toBeInstanceOf(type);
      expect((error as Error).message).toMatch(message);
    };
    expectThrow(() => native.lossForward(x.data, n, v, d, labels, null, { ...opts, contrast: { ...contrast, m: 0 } }), RangeError, /^options\.contrast\.m: expected at least one contrast row, got 0/);
    expectThrow(() => native.lossForward(x.data, n, v, d, labels, null, { ...opts, contrast: { ...contrast, positions: Int32Array.of(0, 0, -1, -1, -1, -1, -1, -1) } }), RangeError, /^options\.contrast\.positions: expected each contrast row at most once/);
    expectThrow(() => native.lossForward(x.data, n, v, d, labels, null, { ...opts, contrast: { ...contrast, positions: Int32Array.of(7, -1, -1, -1, -1, -1, -1, -1) } }), RangeError, /^options\.contrast\.positions: expected -1 or a contrast row in \[0, 5\), got 7 at index 0/);
    expectThrow(() => native.lossForward(x.data, n, v, d, labels, null, { ...opts, contrast: { ...contrast, labels: new Int32Array(2) } }), RangeError, /^options\.contrast\.labels: expected an Int32Array of length 5, got length 2/);
    expectThrow(() => native.lossForward(x.data, n, v, d, null, Float32Array.of(1, NaN, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1), opts), RangeError, /^options\.mask: expected finite weights >= 0, got NaN at index 1 \(row 0, column 1\)/);
    expectThrow(() => native.lossForward(x.data, n, v, d, labels, null, { ...opts, contrast: { ...contrast, features: new Float32Array(3) } }), RangeError, /^options\.contrast\.features: expected a Float32Array of length 15, got length 3/);
    const ctx = native.lossForward(x.data, n, v, d, labels, null, opts);
    expectThrow(() => native.lossBackward(ctx, 1, new Float32Array(n * v * d), { contrastOut: new Float32Array(15) }), TypeError, /^options\.contrastOut: the forward pass has no contrast set/);
    ctx.dispose();
  });
});

describe('the Promise variants with a contrast set', () => {
  it.each(['queue', 'global', 'disjoint'] as const)('%s: supconLossAsync gives supconLoss\'s bits, the contrast rows copied while the pass runs', async (form) => {
    const p = problem(form, 'labels', 7, 2, 5, 9, rng(form.length + 40));
    const opts = { temperature: 0.2, normalize: true, contrast: p.contrast };
    const sync = supconLoss({ data: p.x, shape: [p.n, p.v, p.d] }, p.labels, opts);
    const pending = supconLossAsync({ data: p.x, shape: [p.n, p.v, p.d] }, p.labels, opts);
    p.contrast.features.data.fill(7); // after the call: the pass reads its copy
    const got = await pending;
    expect(got.loss).toBe(sync.loss);
    expect(Buffer.from(got.grad.buffer).equals(Buffer.from(sync.grad.buffer))).toBe(true);
    expect(Buffer.from(got.contrastGrad!.buffer).equals(Buffer.from(sync.contrastGrad!.buffer))).toBe(true);
  });
});

const cuda = cudaStatus();

describe('a contrast set without a GPU', () => {
  it.skipIf(cuda.usable)("device 'cuda' says why it cannot run", () => {
    const p = problem('queue', 'labels', 5, 2, 3, 4, rng(5));
    expect(() => supconLoss({ data: p.x, shape: [5, 2, 3] }, p.labels, { device: 'cuda', contrast: p.contrast }))
      .toThrow(/^options\.device: 'cuda' was asked for, but /);
  });
});

// On the GPU (in CI, the emulated one of `npm run test:cuda-emulated`): the same loss and
// both gradients as the CPU, for each form, kind of positives and option; the case table
// (bench/cuda-cases.ts) checks the precisions and larger sizes.
describe.skipIf(!cuda.usable)('a contrast set on CUDA', () => {
  it.each(['queue', 'global', 'disjoint'] as const)('the %s form gives the CPU\'s loss and both gradients', (form) => {
    const random = rng(form.length * 31 + 7);
    let k = 0;
    for (const kind of ['labels', 'none', 'weights'] as const)
      for (const [contrastMode, variant, denominator] of [['all', 'out', 'all'], ['one', 'in', 'onePositive'], ['all', 'in', 'onlyNegatives'], ['one', 'out', 'onePositive']] as const) {
        const n = 9 + (k % 4), v = 1 + (k % 3), d = [3, 17, 64, 129][k % 4], extra = [70, 5, 33, 11][k % 4];
        const p = problem(form, kind, n, v, d, extra, random);
        const options: SupconOptions = {
          contrastMode, variant, denominator, temperature: [0.1, 0.5, 0.2][k % 3], normalize: k % 2 === 0,
          excludeAnchorsWithoutPositives: k % 3 === 1, mask: p.mask ?? undefined, contrast: p.contrast,
        };
        const cpu = supconLoss({ data: p.x, shape: [n, v, d] }, p.labels, { ...options, device: 'cpu' });
        const gpu = supconLoss({ data: p.x, shape: [n, v, d] }, p.labels, { ...options, device: 'cuda' });
        expect(Math.abs(gpu.loss - cpu.loss), `case ${k}`).toBeLessThanOrEqual(1e-5 * Math.abs(cpu.loss) + 1e-6);
        expect(relativeError(gpu.grad, cpu.grad), `case ${k}`).toBeLessThan(1e-4);
        expect(relativeError(gpu.contrastGrad!, cpu.contrastGrad!), `case ${k}`).toBeLessThan(1e-4);
        k++;
      }
  });

  it('takes CUDA tensors for both sets, returns the contrast gradient, and honours gradient: false', () => {
    const random = rng(77);
    const n = 12, v = 2, d = 32;
    const p = problem('queue', 'labels', n, v, d, 40, random);
    const x = Tensor.from(p.x, [n, v, d], { device: 'cuda' });
    const cx = Tensor.from(p.contrast.features.data, p.contrast.features.shape, { device: 'cuda' });
    try {
      const cpu = supconForward({ data: p.x, shape: [n, v, d] }, p.labels, { device: 'cpu', normalize: true, contrast: p.contrast });
      const gpu = supconForward(x, p.labels, { normalize: true, contrast: { ...p.contrast, features: cx } });
      expect(gpu.device).toBe('cuda');
      const want = cpu.gradients();
      const got = gpu.gradients();
      expect(Math.abs(gpu.loss - cpu.loss)).toBeLessThanOrEqual(1e-5 * Math.abs(cpu.loss));
      expect(relativeError((got.grad as Tensor<'float32'>).dataSync() as Float32Array, want.grad as Float32Array)).toBeLessThan(1e-4);
      expect(relativeError(got.contrastGrad!, want.contrastGrad!)).toBeLessThan(1e-4);
      (got.grad as Tensor<'float32'>).dispose();
      cpu.dispose();
      gpu.dispose();
      const none = supconForward(x, p.labels, { normalize: true, contrast: { ...p.contrast, features: cx, gradient: false } });
      const g = none.gradients();
      expect(g.contrastGrad).toBeNull();
      expect(relativeError((g.grad as Tensor<'float32'>).dataSync() as Float32Array, want.grad as Float32Array)).toBeLessThan(1e-4);
      (g.grad as Tensor<'float32'>).dispose();
      none.dispose();
      expect(() => supconLoss({ data: p.x, shape: [n, v, d] }, p.labels, { device: 'cpu', contrast: { ...p.contrast, features: cx } }))
        .toThrow(/^options\.contrast\.features: a CUDA tensor, but the loss runs on the CPU/);
    } finally {
      x.dispose();
      cx.dispose();
    }
  });
});
