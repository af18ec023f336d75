// The Promise-returning variants: the same bits as the synchronous calls, the event loop
// free while they run, inputs safe against dispose() and detached buffers, errors that
// reject with the synchronous call's class and message, no leak.
import { describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import {
  applyAugmentOps, applyAugmentOpsAsync, augment, augmentAsync, memory, pipelines, supconForward, supconForwardAsync,
  supconLoss, supconLossAsync, Tensor,
} from '../dist/index.js';
import type { AugmentArray, SupconOptions } from '../dist/index.js';
import { native } from '../dist/lib/native.js';
import { randomLabels, randomNormal, referenceLoss, rng } from './reference';

const sameBits = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((x, i) => Object.is(x, b[i]));

/** Timer ticks (every `everyMs`) while `work` runs, and how long it took. */
async function ticksDuring(work: () => unknown, everyMs = 10): Promise<{ ticks: number; ms: number }> {
  let ticks = 0;
  const timer = setInterval(() => ticks++, everyMs);
  const t0 = performance.now();
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return { ticks, ms: performance.now() - t0 };
}

/** Gives the event loop a few turns, so that finished work is settled. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('supconLossAsync / supconForwardAsync / backwardAsync', () => {
  it('give the same bits as the synchronous calls on random inputs of odd sizes, and match the float64 reference', async () => {
    const random = rng(5);
    const cases: [number, number, number, 'labels' | 'simclr' | 'mask', SupconOptions][] = [
      [37, 3, 19, 'labels', { temperature: 0.1, normalize: true }],
      [1, 2, 5, 'simclr', {}],
      [53, 2, 33, 'mask', { contrastMode: 'one', variant: 'in', denominator: 'onePositive' }],
      [29, 4, 7, 'labels', { denominator: 'onlyNegatives', excludeAnchorsWithoutPositives: true, threads: 3 }],
    ];
    for (const [n, v, d, kind, options] of cases) {
      const x = randomNormal(n * v * d, random);
      const labels = kind === 'labels' ? randomLabels(n, 5, random) : null;
      const mask = kind === 'mask' ? Uint8Array.from({ length: n * n }, (_, k) => (k % (n + 1) === 0 || random() < 0.2 ? 1 : 0)) : undefined;
      const o = { ...options, ...(mask ? { mask } : {}) };
      const sync = supconLoss({ data: x, shape: [n, v, d] }, labels, o);
      const async = await supconLossAsync({ data: x, shape: [n, v, d] }, labels, o);
      expect(Object.is(async.loss, sync.loss)).toBe(true);
      expect(sameBits(async.grad, sync.grad)).toBe(true);
      const ref = referenceLoss(x, n, v, d, labels, mask ?? null, o);
      expect(Math.abs(async.loss - ref.loss)).toBeLessThanOrEqual(1e-5 * Math.abs(ref.loss) + 1e-7);
      // Tensor features: a Tensor gradient, the same bits.
      const t = Tensor.from(x, [n, v, d]);
      const tr = await supconLossAsync(t, labels, o);
      expect(sameBits(tr.grad.dataSync(), sync.grad)).toBe(true);
      tr.grad.dispose();
      t.dispose();
      // Forward, then two backward passes with other gradLoss values.
      const f = await supconForwardAsync({ data: x, shape: [n, v, d] }, labels, o);
      const g = supconForward({ data: x, shape: [n, v, d] }, labels, o);
      expect(sameBits(await f.backwardAsync(-2.5), g.backward(-2.5))).toBe(true);
      f.dispose();
      g.dispose();
    }
  });

  it('keep the event loop free: a timer ticks while an n = 8192 loss runs (0 ticks for the synchronous call)', async () => {
    const n = 8192, v = 2, d = 64;
    const random = rng(2);
    const x = randomNormal(n * v * d, random);
    const labels = randomLabels(n, 100, random);
    const sync = await ticksDuring(() => supconLoss({ data: x, shape: [n, v, d] }, labels, { normalize: true }));
    const async = await ticksDuring(() => supconLossAsync({ data: x, shape: [n, v, d] }, labels, { normalize: true }));
    console.log(`loss at B = ${n * v}, d = ${d}: synchronous ${sync.ms.toFixed(0)} ms, ${sync.ticks} ticks of a 10 ms timer; ` +
      `asynchronous ${async.ms.toFixed(0)} ms, ${async.ticks} ticks`);
    expect(sync.ticks).toBe(0);
    // A 10 ms timer over a pass of at least 100 ms: a free loop ticks most times.
    expect(async.ms).toBeGreaterThan(100);
    expect(async.ticks).toBeGreaterThanOrEqual(Math.min(5, Math.floor(async.ms / 40)));
  });

  it('a tensor disposed while the pass runs is freed when it ends; the result is unchanged', async () => {
    const n = 301, v = 2, d = 24;
    const x = randomNormal(n * v * d, rng(3));
    const sync = supconLoss({ data: x, shape: [n, v, d] }, null, {});
    const before = memory();
    const t = Tensor.from(x, [n, v, d]);
    const pending = supconLossAsync(t, null, {});
    t.dispose();
    expect(t.isDisposed).toBe(true);
    expect(() => t.dataSync()).toThrow(RangeError);
    const r = await pending;
    expect(Object.is(r.loss, sync.loss)).toBe(true);
    expect(sameBits(r.grad.dataSync(), sync.grad)).toBe(true);
    r.grad.dispose();
    expect(memory().numTensors).toBe(before.numTensors);
    expect(memory().cpu.bytes).toBe(before.cpu.bytes);
    expect(memory().cpu.storages).toBe(before.cpu.storages);
  });

  it('a forward result disposed while its backward pass runs: the pass keeps its state', async () => {
    const n = 257, v = 2, d = 40;
    const x = randomNormal(n * v * d, rng(4));
    const want = supconLoss({ data: x, shape: [n, v, d] }, null, {}).grad;
    const f = await supconForwardAsync({ data: x, shape: [n, v, d] }, null, {});
    const pending = f.backwardAsync(1);
    f.dispose();
    expect(sameBits(await pending, want)).toBe(true);
    await expect(f.backwardAsync(1)).rejects.toThrow(new RangeError('context: the forward result has been disposed'));
  });

  it('typed-array features are copied: detaching the buffer while the pass runs changes nothing', async () => {
    const n = 211, v = 2, d = 16;
    const x = randomNormal(n * v * d, rng(6));
    const sync = supconLoss({ data: x, shape: [n, v, d] }, null, {});
    const copy = x.slice();
    const pending = supconLossAsync({ data: copy, shape: [n, v, d] }, null, {});
    structuredClone(copy.buffer, { transfer: [copy.buffer] });
    expect(copy.length).toBe(0);
    const r = await pending;
    expect(Object.is(r.loss, sync.loss)).toBe(true);
    expect(sameBits(r.grad, sync.grad)).toBe(true);
  });

  it('bad input rejects (never throws) with the synchronous call\'s class and message', async () => {
    const x = new Float32Array(24);
    const cases: [unknown, unknown, unknown][] = [
      [{ data: x, shape: [4, 2, 3] }, new Int32Array(3), {}],
      [{ data: x, shape: [4, 2, 3] }, null, { temperature: -1 }],
      [{ data: new Float64Array(24), shape: [4, 2, 3] }, null, {}],
      [{ data: x.map((_, i) => (i === 5 ? NaN : 0)), shape: [4, 2, 3] }, null, {}],
      [{ data: x, shape: [4, 2, 3] }, null, { contrastMode: 'none' }],
    ];
    for (const [features, labels, options] of cases) {
      let thrown: unknown;
      try {
        supconLoss(features as never, labels as never, options as never);
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toBeInstanceOf(Error);
      let promise: Promise<unknown> | undefined;
      expect(() => { promise = supconLossAsync(features as never, labels as never, options as never); }).not.toThrow();
      const rejected = await promise!.then(() => null, (e: unknown) => e);
      expect(rejected).toBeInstanceOf((thrown as Error).constructor);
      expect((rejected as Error).message).toBe((thrown as Error).message);
    }
    // The raw addon checks again, and rejects too.
    const raw = native.lossForwardAsync(x, -1, 2, 3, null, null, {} as never);
    expect(raw).toBeInstanceOf(Promise);
    await expect(raw).rejects.toThrow(new RangeError('n: expected an integer in [1, 1099511627776], got number -1'));
    await expect(native.lossBackwardAsync({} as never, 1, x)).rejects.toThrow(TypeError);
    // A gradient that overflows float32 is found on the pool and rejects as the sync call throws.
    const huge = new Float32Array([-1.401298464324817e-45, 1e-7, 3.4028234663852886e38, -1, 1e-39, 3e38]);
    const f = await supconForwardAsync({ data: huge, shape: [1, 3, 2] }, null, { temperature: 1 });
    expect(() => supconForward({ data: huge, shape: [1, 3, 2] }, null, { temperature: 1 }).backward(1)).toThrow(/features: the gradient overflowed float32 at index \d+/);
    await expect(f.backwardAsync(1)).rejects.toThrow(/^features: the gradient overflowed float32 at index \d+/);
    f.dispose();
  });

  it('many concurrent calls each give their own synchronous result; nothing leaks', async () => {
    const before = memory();
    const random = rng(8);
    const inputs = Array.from({ length: 24 }, (_, k) => {
      const n = 20 + k * 7, v = 1 + (k % 3), d = 3 + (k % 11);
      return { n, v, d, x: randomNormal(n * v * d, random), labels: k % 4 === 0 ? null : randomLabels(n, 4, random), tensor: k % 2 === 0 };
    });
    const results = await Promise.all(inputs.map((c) => {
      const features = c.tensor ? Tensor.from(c.x, [c.n, c.v, c.d]) : { data: c.x, shape: [c.n, c.v, c.d] };
      return supconLossAsync(features, c.labels, { normalize: true }).finally(() => { if (features instanceof Tensor) features.dispose(); });
    }));
    results.forEach((r, k) => {
      const c = inputs[k];
      const want = supconLoss({ data: c.x, shape: [c.n, c.v, c.d] }, c.labels, { normalize: true });
      expect(Object.is(r.loss, want.loss)).toBe(true);
      const grad = r.grad instanceof Tensor ? r.grad.dataSync() : r.grad;
      expect(sameBits(grad, want.grad)).toBe(true);
      if (r.grad instanceof Tensor) r.grad.dispose();
    });
    // Rejected calls free what they allocated too.
    const nan = Array.from({ length: 8 }, () => Tensor.from(new Float32Array(24).fill(NaN), [4, 2, 3]));
    const failures = await Promise.allSettled(nan.map((t) => supconLossAsync(t, null)));
    expect(failures.every((f) => f.status === 'rejected' && f.reason instanceof RangeError)).toBe(true);
    for (const t of nan) t.dispose();
    await settle();
    expect(memory().numTensors).toBe(before.numTensors);
    expect(memory().cpu.bytes).toBe(before.cpu.bytes);
  });
});

describe('augmentAsync / applyAugmentOpsAsync', () => {
  const pipeline = { ...pipelines.simAugment({ size: 13 }), normalize: { mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] } };
  const images = (n: number, c: number, h: number, w: number, seed: number) => {
    const random = rng(seed);
    return Uint8Array.from({ length: n * c * h * w }, () => Math.floor(random() * 256));
  };

  it('give the same bits as augment and applyAugmentOps (typed arrays, tensors, uint8 and float32, out)', async () => {
    const data = images(7, 3, 17, 15, 1);
    const floats = Float32Array.from(data, (x) => x / 255);
    for (const input of [{ data, shape: [7, 3, 17, 15] }, { data: floats, shape: [7, 3, 17, 15] }]) {
      const o = { seed: 99, epoch: 3, views: 3, threads: 2 };
      const sync = augment(input, pipeline, o) as AugmentArray;
      const async = (await augmentAsync(input, pipeline, o)) as AugmentArray;
      expect(async.shape).toEqual(sync.shape);
      expect(sameBits(async.data, sync.data)).toBe(true);
      const out = new Float32Array(sync.data.length);
      expect((await augmentAsync(input, pipeline, { ...o, out })).data).toBe(out);
      expect(sameBits(out, sync.data)).toBe(true);
    }
    const t = Tensor.from(data, [7, 3, 17, 15], { dtype: 'uint8' });
    const select = Int32Array.from([6, 0, 0, 3]);
    const sync = augment(t, pipeline, { seed: 1, select }) as Tensor<'float32'>;
    const async = (await augmentAsync(t, pipeline, { seed: 1, select })) as Tensor<'float32'>;
    expect(sameBits(async.dataSync(), sync.dataSync())).toBe(true);
    const ops = [{ op: 'resizedCrop', top: 2, left: 1, height: 11, width: 9 }, { op: 'rotate', angle: 17, interpolation: 'bilinear' },
      { op: 'posterize', bits: 3 }, { op: 'gaussianBlur', kernelSize: 3, sigma: 0.7 }] as const;
    const opsSync = applyAugmentOps(t, ops, { size: [9, 11] }) as Tensor<'float32'>;
    const opsAsync = (await applyAugmentOpsAsync(t, ops, { size: [9, 11] })) as Tensor<'float32'>;
    expect(sameBits(opsAsync.dataSync(), opsSync.dataSync())).toBe(true);
    for (const x of [t, sync, async, opsSync, opsAsync]) x.dispose();
  });

  it('an input or output tensor disposed while the work runs is freed when it ends', async () => {
    const data = images(64, 3, 32, 32, 2);
    const want = augment({ data, shape: [64, 3, 32, 32] }, pipeline, { seed: 4 }) as AugmentArray;
    await settle();
    const before = memory();
    const t = Tensor.from(data, [64, 3, 32, 32], { dtype: 'uint8' });
    const out = Tensor.zeros<'float32'>(want.shape);
    const pending = augmentAsync(t, pipeline, { seed: 4, out });
    t.dispose();
    const result = await pending;
    expect(result).toBe(out);
    expect(sameBits(out.dataSync(), want.data)).toBe(true);
    out.dispose();
    // Disposed during the work: the memory stays valid while the work writes, then goes.
    const out2 = Tensor.zeros<'float32'>(want.shape);
    const pending2 = augmentAsync({ data, shape: [64, 3, 32, 32] }, pipeline, { seed: 4, out: out2 });
    out2.dispose();
    await pending2;
    expect(memory().numTensors).toBe(before.numTensors);
    expect(memory().cpu.bytes).toBe(before.cpu.bytes);
    expect(memory().cpu.storages).toBe(before.cpu.storages);
  });

  it('a Float32Array out detached while the work runs rejects with a RangeError naming it; a detached input does not matter', async () => {
    const data = images(16, 3, 20, 20, 3);
    const want = augment({ data, shape: [16, 3, 20, 20] }, pipeline, { seed: 2 }) as AugmentArray;
    const out = new Float32Array(want.data.length);
    const pending = augmentAsync({ data, shape: [16, 3, 20, 20] }, pipeline, { seed: 2, out });
    structuredClone(out.buffer, { transfer: [out.buffer] });
    await expect(pending).rejects.toThrow(/^out: the array was detached or shrunk while the work ran/);
    const input = data.slice();
    const pending2 = augmentAsync({ data: input, shape: [16, 3, 20, 20] }, pipeline, { seed: 2 });
    structuredClone(input.buffer, { transfer: [input.buffer] });
    expect(sameBits(((await pending2) as AugmentArray).data, want.data)).toBe(true);
  });

  it('bad input rejects with the synchronous call\'s error', async () => {
    const input = { data: new Uint8Array(2 * 3 * 4 * 4), shape: [2, 3, 4, 4] };
    const bad: [unknown, unknown][] = [[input, { flip: 2 }], [{ data: new Float32Array(96).fill(2), shape: [2, 3, 4, 4] }, {}], [input, { blur: { kernelSize: 4 } }]];
    for (const [images, p] of bad) {
      const thrown = (() => { try { augment(images as never, p as never); } catch (e) { return e as Error; } return null; })();
      expect(thrown).toBeInstanceOf(Error);
      await expect(augmentAsync(images as never, p as never)).rejects.toThrow(thrown!);
      await expect(augmentAsync(images as never, p as never)).rejects.toBeInstanceOf(thrown!.constructor);
    }
    await expect(native.augmentPipelineAsync(input.data, { n: -1 }, {}, undefined, new Float32Array(1))).rejects.toThrow(RangeError);
  });

  it('keeps the event loop free while a large batch is augmented', async () => {
    const data = images(256, 3, 96, 96, 5);
    const input = { data, shape: [256, 3, 96, 96] };
    const big = { ...pipeline, size: 96 };
    const sync = await ticksDuring(() => augment(input, big, { seed: 1, views: 4 }));
    const async = await ticksDuring(() => augmentAsync(input, big, { seed: 1, views: 4 }));
    console.log(`augment of 256 images x 4 views at 96x96: synchronous ${sync.ms.toFixed(0)} ms, ${sync.ticks} ticks; asynchronous ${async.ms.toFixed(0)} ms, ${async.ticks} ticks`);
    expect(sync.ticks).toBe(0);
    if (async.ms > 60) expect(async.ticks).toBeGreaterThan(0);
  });
});

describe('the addon in a worker thread', () => {
  it('loads there with its own instance data and computes the same loss as here, while this thread computes too', async () => {
    const n = 97, v = 2, d = 21;
    const x = randomNormal(n * v * d, rng(12));
    const labels = randomLabels(n, 3, rng(13));
    const here = supconLoss({ data: x, shape: [n, v, d] }, labels, { normalize: true });
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const { supconLoss, supconLossAsync, Tensor, memory } = require(workerData.lib);
      const { x, labels, shape } = workerData;
      const a = supconLoss({ data: x, shape }, labels, { normalize: true });
      supconLossAsync(Tensor.from(x, shape), labels, { normalize: true }).then((b) => {
        parentPort.postMessage({ loss: a.loss, grad: a.grad, asyncLoss: b.loss, asyncGrad: b.grad.dataSync(), tensors: memory().numTensors });
      });`;
    const lib = new URL('../dist/index.js', import.meta.url).pathname;
    const runs = Array.from({ length: 3 }, () => new Promise<{ loss: number; grad: Float32Array; asyncLoss: number; asyncGrad: Float32Array }>((resolve, reject) => {
      const w = new Worker(code, { eval: true, workerData: { lib, x, labels, shape: [n, v, d] } });
      w.once('message', resolve);
      w.once('error', reject);
    }));
    // This thread works at the same time (the CPU thread pool and the host allocator are shared).
    const concurrent = await Promise.all(Array.from({ length: 4 }, () => supconLossAsync({ data: x, shape: [n, v, d] }, labels, { normalize: true })));
    for (const r of [...(await Promise.all(runs)).flatMap((m) => [{ loss: m.loss, grad: m.grad }, { loss: m.asyncLoss, grad: m.asyncGrad }]), ...concurrent]) {
      expect(Object.is(r.loss, here.loss)).toBe(true);
      expect(sameBits(r.grad, here.grad)).toBe(true);
    }
  });
});
