// Optimizer steps against steps computed by hand (float64) from the formulas in
// docs/LAYERS.md, and the learning-rate schedules.
import { describe, expect, it } from 'vitest';
import { nn, Tensor } from '../dist/index.js';
import { maxRelDiff } from './nn-reference';
import { randomNormal, rng } from './reference';

const { Parameter } = nn;
type P = InstanceType<typeof Parameter>;

function setup(shape: number[], seed: number) {
  const random = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const p0 = randomNormal(n, random);
  const grads = [randomNormal(n, random), randomNormal(n, random), randomNormal(n, random)];
  const p = new Parameter(Tensor.from(p0, shape));
  return { p, p0: Float64Array.from(p0), grads, n };
}

function runSteps(p: P, opt: InstanceType<typeof nn.Optimizer>, grads: Float32Array[]) {
  for (const g of grads) {
    p.grad?.dispose();
    p.grad = Tensor.from(g, p.shape.slice());
    opt.step();
  }
  return p.value.dataSync();
}

const norm = (x: ArrayLike<number>) => Math.sqrt(Array.from(x).reduce((s, v) => s + v * v, 0));

describe('optimizers', () => {
  it.each([
    ['plain', { lr: 0.1 }],
    ['momentum + weight decay', { lr: 0.05, momentum: 0.9, weightDecay: 0.01 }],
    ['dampening', { lr: 0.05, momentum: 0.8, dampening: 0.3 }],
    ['Nesterov', { lr: 0.05, momentum: 0.9, weightDecay: 1e-3, nesterov: true }],
  ])('SGD (%s) follows PyTorch step by step', (_l, o: { lr: number; momentum?: number; dampening?: number; weightDecay?: number; nesterov?: boolean }) => {
    const { p, p0, grads, n } = setup([3, 5], 1);
    const opt = new nn.SGD([p], o);
    const got = runSteps(p, opt, grads);
    const mu = o.momentum ?? 0, damp = o.dampening ?? 0, wd = o.weightDecay ?? 0;
    const want = Float64Array.from(p0), buf = new Float64Array(n);
    grads.forEach((g, t) => {
      for (let i = 0; i < n; i++) {
        let d = g[i] + wd * want[i];
        if (mu > 0) {
          buf[i] = t === 0 ? d : mu * buf[i] + (1 - damp) * d;
          d = o.nesterov ? d + mu * buf[i] : buf[i];
        }
        want[i] -= o.lr * d;
      }
    });
    expect(maxRelDiff(got, want)).toBeLessThan(1e-6);
    opt.dispose();
    p.dispose();
  });

  it('LARS scales by the trust ratio, and excludes biases / BatchNorm parameters', () => {
    const w = setup([4, 6], 2), b = setup([6], 3);
    const o = { lr: 0.3, momentum: 0.9, weightDecay: 1e-4, trustCoefficient: 0.02 };
    const opt = new nn.LARS([['layer.weight', w.p], ['layer.bias', b.p]] as [string, P][], o);
    for (let t = 0; t < 3; t++) {
      for (const s of [w, b]) {
        s.p.grad?.dispose();
        s.p.grad = Tensor.from(s.grads[t], s.p.shape.slice());
      }
      opt.step();
    }
    for (const [s, adapt] of [[w, true], [b, false]] as const) {
      const want = Float64Array.from(s.p0), buf = new Float64Array(s.n);
      for (const g of s.grads) {
        const wd = adapt ? o.weightDecay : 0;
        const scale = adapt ? (o.trustCoefficient * norm(want)) / (norm(g) + o.weightDecay * norm(want) + 1e-8) : 1;
        for (let i = 0; i < s.n; i++) {
          buf[i] = o.momentum * buf[i] + scale * (g[i] + wd * want[i]);
          want[i] -= o.lr * buf[i];
        }
      }
      expect(maxRelDiff(s.p.value.dataSync(), want), adapt ? 'weight' : 'bias').toBeLessThan(1e-6);
    }
    opt.dispose();
  });

  it('AdamW follows PyTorch (decoupled decay, bias correction)', () => {
    const { p, p0, grads, n } = setup([7], 4);
    const o = { lr: 0.01, betas: [0.8, 0.95] as [number, number], eps: 1e-6, weightDecay: 0.1 };
    const opt = new nn.AdamW([p], o);
    const got = runSteps(p, opt, grads);
    const want = Float64Array.from(p0), m = new Float64Array(n), v = new Float64Array(n);
    grads.forEach((g, t) => {
      const bc1 = 1 - 0.8 ** (t + 1), bc2 = 1 - 0.95 ** (t + 1);
      for (let i = 0; i < n; i++) {
        want[i] *= 1 - o.lr * o.weightDecay;
        m[i] = 0.8 * m[i] + 0.2 * g[i];
        v[i] = 0.95 * v[i] + 0.05 * g[i] * g[i];
        want[i] -= (o.lr / bc1) * m[i] / (Math.sqrt(v[i]) / Math.sqrt(bc2) + o.eps);
      }
    });
    expect(maxRelDiff(got, want)).toBeLessThan(1e-6);
    opt.dispose();
    p.dispose();
  });

  it.each([0, 0.9])('RMSProp (momentum %f) follows PyTorch', (momentum) => {
    const { p, p0, grads, n } = setup([2, 9], 5);
    const o = { lr: 0.01, alpha: 0.9, eps: 1e-8, weightDecay: 0.05, momentum };
    const opt = new nn.RMSProp([p], o);
    const got = runSteps(p, opt, grads);
    const want = Float64Array.from(p0), sq = new Float64Array(n), buf = new Float64Array(n);
    for (const g of grads)
      for (let i = 0; i < n; i++) {
        const d = g[i] + o.weightDecay * want[i];
        sq[i] = o.alpha * sq[i] + (1 - o.alpha) * d * d;
        const step = d / (Math.sqrt(sq[i]) + o.eps);
        if (momentum > 0) {
          buf[i] = momentum * buf[i] + step;
          want[i] -= o.lr * buf[i];
        } else want[i] -= o.lr * step;
      }
    expect(maxRelDiff(got, want)).toBeLessThan(1e-6);
    opt.dispose();
    p.dispose();
  });

  it('skips parameters without a gradient and checks options', () => {
    const { p, p0 } = setup([3], 6);
    const opt = new nn.SGD([p], { lr: 1 });
    opt.step();
    expect(maxRelDiff(p.value.dataSync(), p0)).toBe(0);
    expect(() => new nn.SGD([p], { lr: -1 })).toThrow(/options.lr: expected a finite number in \[0, Infinity\], got -1/);
    expect(() => new nn.SGD([p], { lr: 1, momentm: 0.9 } as never)).toThrow(/unknown option 'momentm'/);
    expect(() => new nn.SGD([p], { lr: 1, nesterov: true })).toThrow(/Nesterov momentum needs momentum > 0/);
    expect(() => new nn.AdamW([p], { betas: [0.9, 1] })).toThrow(/options.betas: expected two numbers in \[0, 1\)/);
    expect(() => new nn.SGD([{}] as never, { lr: 1 })).toThrow(/params\[0\]: expected a Parameter/);
    p.dispose();
  });
});

describe('schedules', () => {
  it('linear warm-up then cosine', () => {
    const f = nn.warmupCosine({ baseLr: 0.5, warmupSteps: 10, totalSteps: 110, warmupStartLr: 0.05, minLr: 0.01 });
    expect(f(0)).toBeCloseTo(0.05, 12);
    expect(f(5)).toBeCloseTo(0.05 + 0.45 * 0.5, 12);
    expect(f(10)).toBeCloseTo(0.5, 12);
    expect(f(60)).toBeCloseTo(0.01 + 0.49 * 0.5, 12);
    expect(f(85)).toBeCloseTo(0.01 + 0.49 * 0.5 * (1 + Math.cos(Math.PI * 0.75)), 12);
    expect(f(110)).toBeCloseTo(0.01, 12);
    expect(f(500)).toBeCloseTo(0.01, 12);
  });

  it('step decay, by period and by milestones', () => {
    const a = nn.stepDecay({ baseLr: 1, stepSize: 30, gamma: 0.5 });
    expect([a(0), a(29), a(30), a(61)]).toEqual([1, 1, 0.5, 0.25]);
    const b = nn.stepDecay({ baseLr: 0.1, stepSize: [5, 8] });
    expect([b(4), b(5), b(8)].map((x) => +x.toPrecision(12))).toEqual([0.1, 0.01, 0.001]);
    expect(() => nn.stepDecay({ baseLr: 1, stepSize: 0 })).toThrow(/options.stepSize: expected a positive integer/);
  });
});
