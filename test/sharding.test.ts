// Sharded training equals one device (docs/SHARDING.md): k shards, each with its anchors
// against the gathered global batch, combined by their counted anchors, with the contrast
// rows' gradients summed back to their owners.
import { describe, expect, it } from 'vitest';
import { supconForward } from '../dist/index.js';
import type { SupconOptions } from '../dist/index.js';
import { randomLabels, randomNormal, rng } from './reference';

interface Shard { first: number; n: number }

/** k contiguous shards of n samples, sizes as even as they go (odd n gives unequal ones). */
function shards(n: number, k: number): Shard[] {
  const out: Shard[] = [];
  for (let s = 0, first = 0; s < k; s++) {
    const size = Math.floor(n / k) + (s < n % k ? 1 : 0);
    out.push({ first, n: size });
    first += size;
  }
  return out;
}

function sharded(
  x: Float32Array, n: number, v: number, d: number, labels: Int32Array | null, mask: Float32Array | null,
  k: number, options: SupconOptions,
): { loss: number; grad: Float32Array } {
  const parts = shards(n, k);
  // What each shard contributes to the all-gather: its own rows, view-major.
  const offsets = parts.map((_, s) => parts.slice(0, s).reduce((acc, p) => acc + p.n * v, 0));
  const M = n * v;
  const gathered = new Float32Array(M * d);
  const gatheredSample = new Int32Array(M);
  parts.forEach((p, s) => {
    for (let view = 0; view < v; view++)
      for (let i = 0; i < p.n; i++) {
        const c = offsets[s] + view * p.n + i;
        gathered.set(x.subarray(((p.first + i) * v + view) * d, ((p.first + i) * v + view + 1) * d), c * d);
        gatheredSample[c] = p.first + i;
      }
  });
  const gatheredLabels = labels ? Int32Array.from(gatheredSample, (sample) => labels[sample]) : null;
  // Each shard: its forward pass against the gathered rows.
  const forwards = parts.map((p, s) => {
    const xs = x.slice(p.first * v * d, (p.first + p.n) * v * d);
    const positions = new Int32Array(p.n * v);
    for (let i = 0; i < p.n; i++) for (let view = 0; view < v; view++) positions[i * v + view] = offsets[s] + view * p.n + i;
    const shardMask = mask
      ? Float32Array.from({ length: p.n * M }, (_, e) => mask[(p.first + Math.floor(e / M)) * n + gatheredSample[e % M]])
      : undefined;
    return supconForward({ data: xs, shape: [p.n, v, d] }, labels ? labels.slice(p.first, p.first + p.n) : null, {
      ...options, mask: shardMask, contrast: { features: { data: gathered, shape: [M, d] }, labels: gatheredLabels, positions },
    });
  });
  // All-reduce of the counts; the loss is the counted-weighted mean of the shard losses.
  const total = forwards.reduce((acc, f) => acc + f.counted, 0);
  const loss = total > 0 ? forwards.reduce((acc, f) => acc + f.loss * f.counted, 0) / total : 0;
  // Each shard's backward scaled by its share; the contrast gradients reduced (summed) and
  // scattered to the rows' owners.
  const grad = new Float32Array(n * v * d);
  const reduced = new Float64Array(M * d);
  forwards.forEach((f, s) => {
    const { grad: gs, contrastGrad } = f.gradients(total > 0 ? f.counted / total : 0);
    grad.set(gs, parts[s].first * v * d);
    for (let e = 0; e < M * d; e++) reduced[e] += contrastGrad![e];
    f.dispose();
  });
  for (let c = 0; c < M; c++) {
    const s = parts.findIndex((p, q) => c >= offsets[q] && c < offsets[q] + p.n * v);
    const local = c - offsets[s], view = Math.floor(local / parts[s].n), i = local % parts[s].n;
    for (let kk = 0; kk < d; kk++) grad[((parts[s].first + i) * v + view) * d + kk] += reduced[c * d + kk];
  }
  return { loss, grad };
}

describe('sharding equals one device', () => {
  it.each([1, 2, 3, 5])('k = %i shards, every option, odd sizes: loss and gradient within 1e-5', (k) => {
    const random = rng(100 + k);
    let t = 0;
    let worstLoss = 0, worstGrad = 0;
    for (const contrastMode of ['all', 'one'] as const)
      for (const variant of ['out', 'in'] as const)
        for (const denominator of ['all', 'onePositive', 'onlyNegatives'] as const)
          for (const kind of ['labels', 'none', 'weights'] as const) {
            const n = [23, 17, 11][t % 3], v = [2, 3, 1][t % 3], d = [7, 16, 33][t % 3];
            const x = randomNormal(n * v * d, random, 0.5);
            const labels = kind === 'labels' ? randomLabels(n, 4, random) : null;
            const mask = kind === 'weights' ? Float32Array.from({ length: n * n }, () => (random() < 0.6 ? 0 : 0.5 + 2 * random())) : null;
            const options: SupconOptions = {
              contrastMode, variant, denominator, temperature: [0.1, 0.5, 0.07][t % 3], baseTemperature: 0.07,
              normalize: t % 2 === 0, excludeAnchorsWithoutPositives: t % 4 === 1,
            };
            const one = supconForward({ data: x, shape: [n, v, d] }, labels, { ...options, mask: mask ?? undefined });
            const single = { loss: one.loss, grad: one.backward() };
            one.dispose();
            const split = sharded(x, n, v, d, labels, mask, k, options);
            const lossErr = Math.abs(split.loss - single.loss) / Math.max(Math.abs(single.loss), 1e-30);
            let diff = 0, ref = 0;
            for (let e = 0; e < single.grad.length; e++) {
              diff = Math.max(diff, Math.abs(split.grad[e] - single.grad[e]));
              ref = Math.max(ref, Math.abs(single.grad[e]));
            }
            expect(single.loss).not.toBe(0);
            expect(ref).toBeGreaterThan(0);
            worstLoss = Math.max(worstLoss, lossErr);
            worstGrad = Math.max(worstGrad, diff / ref);
            t++;
          }
    expect(worstLoss).toBeLessThanOrEqual(1e-5);
    expect(worstGrad).toBeLessThanOrEqual(1e-5);
  });
});
