// Every layer op, forward against a float64 reference and backward against central finite
// differences of that reference, on random odd sizes, for every CPU kernel set.
import { afterAll, describe, expect, it } from 'vitest';
import { backendInfo, nn, setCpuKernels, Tensor, tidy } from '../dist/index.js';
import {
  batchNormRef, conv2dBackwardRef, conv2dRef, ConvShape, convOut, crossEntropyRef, dot, finiteDifferences, l2NormalizeRef, linearRef,
  maxPoolRef, maxRelDiff,
} from './nn-reference';
import { randomNormal, referenceLoss, rng } from './reference';
import { native } from '../dist/lib/native.js';
import { createRequire } from 'node:module';

const kernels = backendInfo().cpuKernelsAvailable;
afterAll(() => setCpuKernels(kernels[0]));
const { Parameter, ops } = nn;

interface Input {
  data: Float32Array;
  shape: number[];
}

/**
 * Runs op on parameters made from the inputs, checks its output against ref, then seeds
 * the output gradient with random weights R and checks every input's gradient against
 * finite differences of sum(R * ref(inputs)) in float64.
 */
function check(
  inputs: Input[], op: (ps: InstanceType<typeof Parameter>[]) => InstanceType<typeof nn.Variable>,
  ref: (xs: Float64Array[]) => ArrayLike<number>, seed: number, tol = { fwd: 2e-5, grad: 2e-4 },
) {
  tidy(() => {
    const ps = inputs.map((x) => new Parameter(Tensor.from(x.data, x.shape)));
    const y = op(ps);
    const xs = inputs.map((x) => Float64Array.from(x.data));
    const want = ref(xs);
    expect(y.size).toBe(want.length);
    expect(maxRelDiff(y.value.dataSync(), want)).toBeLessThan(tol.fwd);
    const R = randomNormal(y.size, rng(seed));
    y.backward(Tensor.from(R, y.shape.slice()));
    inputs.forEach((_, i) => {
      const fd = finiteDifferences((v) => dot(ref(v), R), xs, i);
      expect(maxRelDiff(ps[i].grad!.dataSync(), fd), `input ${i}`).toBeLessThan(tol.grad);
    });
    for (const p of ps) p.dispose();
  });
}

/** Every pass of the convolution d takes the Winograd path (so the test exercises it). */
function expectWinograd(d: ConvShape) {
  const desc = { N: d.N, C: d.C, H: d.H, W: d.W, K: d.K, R: d.R, S: d.S, strideH: d.stride[0], strideW: d.stride[1], padH: d.pad[0], padW: d.pad[1] };
  expect((['forward', 'data', 'weights'] as const).map((p) => native.nn.conv2dAlgorithm(desc, p))).toEqual(['winograd', 'winograd', 'winograd']);
}

function input(shape: number[], random: () => number, scale = 1): Input {
  return { data: randomNormal(shape.reduce((a, b) => a * b, 1), random, scale), shape };
}

describe.each(kernels)('ops with kernels %s', (kernel) => {
  it('linear, with and without bias', () => {
    setCpuKernels(kernel);
    const random = rng(1);
    for (const [N, inF, outF] of [[1, 1, 1], [7, 5, 3], [13, 33, 17]]) {
      check([input([N, inF], random), input([outF, inF], random), input([outF], random)],
        ([x, w, b]) => ops.linear(x, w, b), ([x, w, b]) => linearRef(x, w, b, N, inF, outF), N);
      check([input([N, inF], random), input([outF, inF], random)],
        ([x, w]) => ops.linear(x, w), ([x, w]) => linearRef(x, w, null, N, inF, outF), N + 1);
    }
  });

  it.each([
    ['3x3 stride 1 pad 1', { N: 2, C: 3, H: 7, W: 5, K: 4, R: 3, S: 3, stride: [1, 1], pad: [1, 1] }],
    ['3x3 stride 2 pad 1', { N: 3, C: 2, H: 9, W: 7, K: 5, R: 3, S: 3, stride: [2, 2], pad: [1, 1] }],
    ['1x1 stride 1', { N: 2, C: 5, H: 3, W: 7, K: 3, R: 1, S: 1, stride: [1, 1], pad: [0, 0] }],
    ['1x1 stride 2', { N: 3, C: 4, H: 7, W: 5, K: 6, R: 1, S: 1, stride: [2, 2], pad: [0, 0] }],
    ['5x3 stride [2, 1] pad [2, 0]', { N: 1, C: 2, H: 8, W: 6, K: 3, R: 5, S: 3, stride: [2, 1], pad: [2, 0] }],
    ['7x7 stride 2 pad 3', { N: 2, C: 3, H: 9, W: 11, K: 2, R: 7, S: 7, stride: [2, 2], pad: [3, 3] }],
    ['3x3 on 1x1 images, 5 images (grouped GEMM)', { N: 5, C: 3, H: 1, W: 1, K: 4, R: 3, S: 3, stride: [1, 1], pad: [1, 1] }],
    ['3x3 with 31 channels (C R S = 279: two K slices of the GEMM)', { N: 2, C: 31, H: 5, W: 6, K: 3, R: 3, S: 3, stride: [1, 1], pad: [1, 1] }],
    ['3x3 stride 2 on 3 x 64 (im2col runs of 31 and 32: two vector blocks, one cut)', { N: 1, C: 4, H: 3, W: 64, K: 3, R: 3, S: 3, stride: [2, 2], pad: [1, 1] }],
    ['3x3 stride 2 with 32 channels (the weight gradient\'s taps channels-last)', { N: 2, C: 32, H: 5, W: 6, K: 3, R: 3, S: 3, stride: [2, 2], pad: [1, 1] }],
    ['1x1 stride 2 with 48 channels (taps channels-last with AVX2 panels, not AVX-512 ones)', { N: 2, C: 48, H: 3, W: 5, K: 2, R: 1, S: 1, stride: [2, 2], pad: [0, 0] }],
  ] as [string, ConvShape][])('conv2d %s', (_label, d) => {
    setCpuKernels(kernel);
    const random = rng(d.N * 100 + d.H);
    const opts = { stride: d.stride, padding: d.pad };
    check([input([d.N, d.C, d.H, d.W], random), input([d.K, d.C, d.R, d.S], random), input([d.K], random)],
      ([x, w, b]) => ops.conv2d(x, w, b, opts), ([x, w, b]) => conv2dRef(x, w, b, d), 3);
    check([input([d.N, d.C, d.H, d.W], random), input([d.K, d.C, d.R, d.S], random)],
      ([x, w]) => ops.conv2d(x, w, null, opts), ([x, w]) => conv2dRef(x, w, null, d), 4);
    expect(convOut(d)[0]).toBeGreaterThan(0);
  });

  it('conv2d weight gradients over chunks of images do not depend on what earlier calls left behind', () => {
    setCpuKernels(kernel);
    const random = rng(16);
    const shape = (N: number): ConvShape => ({ N, C: 1, H: 16, W: 16, K: 2, R: 3, S: 3, stride: [1, 1], pad: [1, 1] });
    // 8 images: four chunks of partial sums; then 5 images: three chunks (the 4th is empty).
    for (const N of [8, 5]) {
      const d = shape(N);
      check([input([N, 1, 16, 16], random), input([2, 1, 3, 3], random)],
        ([x, w]) => ops.conv2d(x, w, null, { padding: 1 }), ([x, w]) => conv2dRef(x, w, null, d), N);
    }
  });

  it.each([
    ['3x3 stride 1 on 21 x 21', { N: 2, C: 7, H: 21, W: 21, K: 5, R: 3, S: 3, stride: [1, 1], pad: [1, 1] }],
    ['3x3 stride 2 on 35 x 33', { N: 2, C: 7, H: 35, W: 33, K: 3, R: 3, S: 3, stride: [2, 2], pad: [1, 1] }],
  ] as [string, ConvShape][])('conv2d weight gradient, %s: P Q > 256 (two pixel slices of the GEMM), C R S = 63 (a zero padding column)', (_label, d) => {
    // The weight gradient's operand is the transposed im2col matrix written in the GEMM's packed layout.
    setCpuKernels(kernel);
    const random = rng(d.H * 10 + d.stride[0]);
    const x = input([d.N, d.C, d.H, d.W], random), w = input([d.K, d.C, d.R, d.S], random);
    tidy(() => {
      const wp = new Parameter(Tensor.from(w.data, w.shape));
      const y = ops.conv2d(Tensor.from(x.data, x.shape), wp, null, { stride: d.stride, padding: d.pad });
      const xs = [Float64Array.from(x.data), Float64Array.from(w.data)];
      const R = randomNormal(y.size, random);
      y.backward(Tensor.from(R, y.shape.slice()));
      const fd = finiteDifferences((v) => dot(conv2dRef(v[0], v[1], null, d), R), xs, 1);
      expect(maxRelDiff(wp.grad!.dataSync(), fd)).toBeLessThan(2e-4);
      wp.dispose();
    });
  });

  it.each([
    ['3x3 stride 2, 32 channels on 35 x 33 (one image a group: two chunks of images)', { N: 2, C: 32, H: 35, W: 33, K: 5, R: 3, S: 3, stride: [2, 2], pad: [1, 1] }],
    ['3x3 stride 2, 64 channels on 7 x 9, 23 images (five images a group, four chunks)', { N: 23, C: 64, H: 7, W: 9, K: 3, R: 3, S: 3, stride: [2, 2], pad: [1, 1] }],
    ['1x1 stride 2, 32 channels on 16 x 16, 3 images', { N: 3, C: 32, H: 16, W: 16, K: 4, R: 1, S: 1, stride: [2, 2], pad: [0, 0] }],
  ] as [string, ConvShape][])('conv2d weight gradient with the taps channels-last against a float64 sum, %s', (_label, d) => {
    setCpuKernels(kernel);
    const random = rng(d.C * 7 + d.N);
    const x = input([d.N, d.C, d.H, d.W], random), w = input([d.K, d.C, d.R, d.S], random);
    const [P, Q] = convOut(d);
    const g = randomNormal(d.N * d.K * P * Q, random);
    tidy(() => {
      const wp = new Parameter(Tensor.from(w.data, w.shape));
      const y = ops.conv2d(Tensor.from(x.data, x.shape), wp, null, { stride: d.stride, padding: d.pad });
      y.backward(Tensor.from(g, y.shape.slice()));
      expect(maxRelDiff(wp.grad!.dataSync(), conv2dBackwardRef(x.data, w.data, g, d).dw)).toBeLessThan(2e-5);
      wp.dispose();
    });
  });

  it('conv2dAlgorithm names the path each pass takes', () => {
    const desc = (C: number, K: number, R: number, stride: number, pad: number) =>
      ({ N: 2, C, H: 9, W: 9, K, R, S: R, strideH: stride, strideW: stride, padH: pad, padW: pad });
    const passes = (d: ReturnType<typeof desc>) => (['forward', 'data', 'weights'] as const).map((p) => native.nn.conv2dAlgorithm(d, p));
    expect(passes(desc(16, 16, 3, 1, 1))).toEqual(['winograd', 'winograd', 'winograd']);
    expect(passes(desc(15, 64, 3, 1, 1))).toEqual(['im2col-gemm', 'im2col-gemm', 'im2col-gemm']);
    expect(passes(desc(64, 64, 3, 2, 1))).toEqual(['im2col-gemm', 'im2col-gemm', 'im2col-gemm']);
    expect(passes(desc(64, 64, 3, 1, 0))).toEqual(['im2col-gemm', 'im2col-gemm', 'im2col-gemm']);
    // At most 32 taps: direct for the forward pass and the weights, the GEMM for the data gradient.
    expect(passes(desc(3, 64, 3, 1, 1))).toEqual(['direct', 'im2col-gemm', 'direct']);
    expect(passes(desc(32, 8, 1, 2, 0))).toEqual(['direct', 'im2col-gemm', 'direct']);
    expect(passes(desc(33, 8, 1, 2, 0))).toEqual(['im2col-gemm', 'im2col-gemm', 'im2col-gemm']);
    expect(() => native.nn.conv2dAlgorithm(desc(3, 3, 3, 1, 1), 'backward' as 'data')).toThrow(/pass: expected 'forward', 'data' or 'weights', got 'backward'/);
  });

  it.each([
    ['odd sizes (tiles cut by the edges), bias', { N: 1, C: 16, H: 5, W: 3, K: 16, R: 3, S: 3, stride: [1, 1], pad: [1, 1] }],
    ['2 x 2 images', { N: 3, C: 17, H: 2, W: 2, K: 16, R: 3, S: 3, stride: [1, 1], pad: [1, 1] }],
  ] as [string, ConvShape][])('conv2d through Winograd F(2x2, 3x3) (3x3, stride 1, pad 1, C and K >= 16): %s', (_label, d) => {
    setCpuKernels(kernel);
    expectWinograd(d);
    const random = rng(d.C * 10 + d.H);
    const opts = { stride: d.stride, padding: d.pad };
    check([input([d.N, d.C, d.H, d.W], random), input([d.K, d.C, d.R, d.S], random), input([d.K], random)],
      ([x, w, b]) => ops.conv2d(x, w, b, opts), ([x, w, b]) => conv2dRef(x, w, b, d), 5);
  });

  it.each([
    ['several tile blocks (441 tiles an image; 882 tiles: four blocks of the weight gradient)', { N: 2, C: 40, H: 41, W: 41, K: 24, R: 3, S: 3, stride: [1, 1], pad: [1, 1] }],
    ['C = 260 (two channel slices of the GEMM), odd width', { N: 2, C: 260, H: 6, W: 5, K: 16, R: 3, S: 3, stride: [1, 1], pad: [1, 1] }],
    ['rows of 31 and of 32 pixels (a vector of 16 tiles whose patches reach past the right edge)', { N: 2, C: 16, H: 5, W: 31, K: 17, R: 3, S: 3, stride: [1, 1], pad: [1, 1] }],
    ['rows of 32 pixels, 3 images', { N: 3, C: 16, H: 4, W: 32, K: 16, R: 3, S: 3, stride: [1, 1], pad: [1, 1] }],
  ] as [string, ConvShape][])('conv2d through Winograd, %s: forward, data and weight gradients against float64 references', (_label, d) => {
    setCpuKernels(kernel);
    expectWinograd(d);
    const random = rng(d.C + d.H);
    const x = input([d.N, d.C, d.H, d.W], random), w = input([d.K, d.C, d.R, d.S], random), b = input([d.K], random);
    const [P, Q] = convOut(d);
    const dy = randomNormal(d.N * d.K * P * Q, random);
    const { dx: dxRef, dw: dwRef } = conv2dBackwardRef(x.data, w.data, dy, d);
    tidy(() => {
      const xp = new Parameter(Tensor.from(x.data, x.shape)), wp = new Parameter(Tensor.from(w.data, w.shape));
      const y = ops.conv2d(xp, wp, Tensor.from(b.data, b.shape), { padding: 1 });
      expect(maxRelDiff(y.value.dataSync(), conv2dRef(Float64Array.from(x.data), Float64Array.from(w.data), Float64Array.from(b.data), d))).toBeLessThan(2e-5);
      y.backward(Tensor.from(dy, y.shape.slice()));
      expect(maxRelDiff(xp.grad!.dataSync(), dxRef)).toBeLessThan(2e-5);
      expect(maxRelDiff(wp.grad!.dataSync(), dwRef)).toBeLessThan(2e-5);
      xp.dispose();
      wp.dispose();
    });
  });

  it('conv2d on a 70 x 70 image (P Q = 4900: more columns than one GEMM block)', () => {
    setCpuKernels(kernel);
    const random = rng(71);
    const d: ConvShape = { N: 1, C: 1, H: 70, W: 70, K: 2, R: 3, S: 3, stride: [1, 1], pad: [1, 1] };
    const x = input([1, 1, 70, 70], random), w = input([2, 1, 3, 3], random);
    tidy(() => {
      const wp = new Parameter(Tensor.from(w.data, w.shape));
      const y = ops.conv2d(Tensor.from(x.data, x.shape), wp, null, { padding: 1 });
      const xs = [Float64Array.from(x.data), Float64Array.from(w.data)];
      expect(maxRelDiff(y.value.dataSync(), conv2dRef(xs[0], xs[1], null, d))).toBeLessThan(2e-5);
      const R = randomNormal(y.size, random);
      y.backward(Tensor.from(R, y.shape.slice()));
      const fd = finiteDifferences((v) => dot(conv2dRef(v[0], v[1], null, d), R), xs, 1);
      expect(maxRelDiff(wp.grad!.dataSync(), fd)).toBeLessThan(2e-4);
      wp.dispose();
    });
  });

  it('batch norm with a fused ReLU: the bits of relu(batchNorm(x)) and their gradients, training and evaluation', () => {
    setCpuKernels(kernel);
    const random = rng(25);
    for (const shape of [[9, 5], [4, 3, 5, 7], [3, 2, 1031]]) {
      const C = shape[1];
      for (const training of [true, false]) {
        const x = input(shape, random), g = input([C], random), b = input([C], random, 0.5), dy = input(shape, random);
        const run = (fused: boolean) => tidy(() => {
          const ps = [x, g, b].map((t) => new Parameter(Tensor.from(t.data, t.shape)));
          const rm = Tensor.from(new Float32Array(C).fill(0.25), [C]), rv = Tensor.from(new Float32Array(C).fill(1.5), [C]);
          const opts = { training, momentum: 0.3 };
          const y = fused ? ops.batchNorm(ps[0], ps[1], ps[2], rm, rv, { ...opts, relu: true }) : ops.relu(ops.batchNorm(ps[0], ps[1], ps[2], rm, rv, opts));
          y.backward(Tensor.from(dy.data, dy.shape));
          const out = [y.value.dataSync(), ...ps.map((p) => p.grad!.dataSync()), rm.dataSync(), rv.dataSync()];
          for (const p of ps) p.dispose();
          rm.dispose();
          rv.dispose();
          return out;
        });
        const fused = run(true), unfused = run(false);
        // Both signs of the output, so the mask is exercised.
        expect(fused[0].some((v) => v === 0) && fused[0].some((v) => v > 0)).toBe(true);
        fused.forEach((t, i) => expect(Buffer.from(t.buffer).equals(Buffer.from(unfused[i].buffer)), `${shape} training ${training} output ${i}`).toBe(true));
      }
    }
  });

  it('the batch norm bindings check the fused ReLU arguments', () => {
    const desc = { N: 2, C: 3, L: 4, eps: 1e-5, momentum: 0.1 };
    const f = (n: number) => Tensor.from(randomNormal(n, rng(n)), [n]).storage;
    const [x, g, b, sm, si, dy, dx, y] = [24, 3, 3, 3, 3, 24, 24, 24].map(f);
    expect(() => native.nn.batchNormForward({ ...desc, relu: 1 as unknown as boolean }, true, x, g, b, null, null, y, sm, si))
      .toThrow(/desc\.relu: expected a boolean, got number 1/);
    expect(() => native.nn.batchNormBackward({ ...desc, relu: true }, true, x, g, sm, si, dy, dx, null, null, 1))
      .toThrow(/y: expected a float32 tensor, got undefined/);
    expect(() => native.nn.batchNormBackward({ ...desc, relu: true }, true, x, g, sm, si, dy, dx, null, null, 1, f(23)))
      .toThrow(RangeError);
    expect(() => native.nn.batchNormBackward(desc, true, x, g, sm, si, dy, dx, null, null, 1, y))
      .toThrow(/y: only a fused ReLU \(desc\.relu\) takes the forward output/);
    expect(() => ops.batchNorm(Tensor.zeros([2, 3]), Tensor.zeros([3]), Tensor.zeros([3]), null, null, { training: true, relu: 'yes' as unknown as boolean }))
      .toThrow(/options\.relu: expected a boolean, got string 'yes'/);
  });

  it('a Sequential runs batch norm + ReLU as one op', () => {
    setCpuKernels(kernel);
    // The profile's table lives in the CommonJS module the library itself loads.
    const { profileOps } = createRequire(import.meta.url)('../dist/lib/nn/profile.js') as typeof import('../dist/lib/nn/profile.js');
    const model = new nn.Sequential(new nn.Conv2d(2, 3, 3, { padding: 1, seed: 1 }), new nn.BatchNorm2d(3), new nn.ReLU());
    const x = Tensor.from(randomNormal(2 * 2 * 5 * 5, rng(26)), [2, 2, 5, 5]);
    const { result, ops: timed } = profileOps(() => tidy(() => {
      const y = model.forward(x);
      y.backward(Tensor.from(randomNormal(y.size, rng(27)), y.shape.slice()));
      return y.value.dataSync();
    }));
    expect(timed.filter((o) => o.kind === 'relu')).toEqual([]);
    expect(timed.filter((o) => o.kind === 'batch norm').map((o) => o.calls)).toEqual([2]);
    expect(result.every((v) => v >= 0)).toBe(true);
    model.dispose();
    x.dispose();
  });

  it('batch norm in training mode (1d and 2d), with running statistics as PyTorch', () => {
    setCpuKernels(kernel);
    const random = rng(5);
    for (const shape of [[7, 3], [5, 4, 3, 3], [3, 2, 11]]) {
      const [N, C] = shape, L = shape.slice(2).reduce((a, b) => a * b, 1);
      const rm = Tensor.from(new Float32Array(C).fill(0.5), [C]), rv = Tensor.from(new Float32Array(C).fill(2), [C]);
      const x = input(shape, random, 2);
      for (let i = 0; i < x.data.length; i++) x.data[i] += 3;  // a mean far from 0
      check([x, input([C], random), input([C], random)],
        ([xv, g, b]) => ops.batchNorm(xv, g, b, rm, rv, { training: true, momentum: 0.2 }),
        ([xv, g, b]) => batchNormRef(xv, g, b, N, C, L, 1e-5, null).y, 6, { fwd: 5e-5, grad: 5e-4 });
      const { mean, variance } = batchNormRef(Float64Array.from(x.data), new Float64Array(C).fill(1), new Float64Array(C), N, C, L, 1e-5, null);
      const m = N * L;
      expect(maxRelDiff(rm.dataSync(), Array.from(mean, (v) => 0.8 * 0.5 + 0.2 * v))).toBeLessThan(1e-5);
      expect(maxRelDiff(rv.dataSync(), Array.from(variance, (v) => 0.8 * 2 + 0.2 * v * m / (m - 1)))).toBeLessThan(1e-5);
      rm.dispose();
      rv.dispose();
    }
  });

  it('batch norm in evaluation mode uses the running statistics', () => {
    setCpuKernels(kernel);
    const random = rng(6);
    const [N, C, L] = [5, 3, 4];
    const mean = Float32Array.from([0.5, -1, 2]), variance = Float32Array.from([1.5, 0.25, 3]);
    const rm = Tensor.from(mean, [C]), rv = Tensor.from(variance, [C]);
    check([input([N, C, L], random), input([C], random), input([C], random)],
      ([x, g, b]) => ops.batchNorm(x, g, b, rm, rv, { training: false }),
      ([x, g, b]) => batchNormRef(x, g, b, N, C, L, 1e-5, { mean, variance }).y, 7);
    expect(Array.from(rm.dataSync())).toEqual(Array.from(mean));
    rm.dispose();
    rv.dispose();
  });

  it('relu, add (a variable used twice accumulates), reshape and flatten', () => {
    setCpuKernels(kernel);
    const random = rng(8);
    check([input([5, 7, 3], random)], ([x]) => ops.relu(x), ([x]) => x.map((v) => Math.max(v, 0)), 9);
    check([input([4, 9], random), input([4, 9], random)],
      ([a, b]) => ops.add(ops.add(a, b), a), ([a, b]) => a.map((v, i) => 2 * v + b[i]), 10);
    check([input([3, 2, 5], random)], ([x]) => ops.flatten(ops.relu(x)), ([x]) => x.map((v) => Math.max(v, 0)), 11);
    check([input([6, 5], random)], ([x]) => ops.reshape(x, [3, -1]), ([x]) => x.slice(), 12);
  });

  it('max pooling (3x3 stride 2 pad 1, 2x2 stride 2) and global average pooling', () => {
    setCpuKernels(kernel);
    const random = rng(13);
    check([input([2, 3, 9, 7], random)], ([x]) => ops.maxPool2d(x, { kernelSize: 3, stride: 2, padding: 1 }),
      ([x]) => maxPoolRef(x, 2, 3, 9, 7, 3, 3, [2, 2], [1, 1]), 14);
    check([input([1, 2, 6, 5], random)], ([x]) => ops.maxPool2d(x, { kernelSize: 2 }),
      ([x]) => maxPoolRef(x, 1, 2, 6, 5, 2, 2, [2, 2], [0, 0]), 15);
    check([input([3, 5, 4, 3], random)], ([x]) => ops.globalAvgPool(x), ([x]) => {
      const y = new Float64Array(15);
      for (let p = 0; p < 15; p++) for (let l = 0; l < 12; l++) y[p] += x[p * 12 + l] / 12;
      return y;
    }, 16);
  });

  it('L2 normalisation and softmax cross-entropy', () => {
    setCpuKernels(kernel);
    const random = rng(17);
    check([input([7, 5], random)], ([x]) => ops.l2Normalize(x), ([x]) => l2NormalizeRef(x, 7, 5), 18);
    const labels = Int32Array.from([0, 4, 2, 2, 1, 3, 0, 4, 1]);
    check([input([9, 5], random, 3)], ([z]) => ops.crossEntropy(z, labels), ([z]) => [crossEntropyRef(z, labels, 9, 5)], 19);
  });
});

describe('supcon as the last layer', () => {
  it('matches the float64 loss and its gradient for [n, v, d] and [n * v, d] features', () => {
    const random = rng(20);
    const [n, v, d] = [6, 2, 5];
    const labels = Int32Array.from([0, 1, 0, 2, 1, 0]);
    const x = input([n, v, d], random, 0.5);
    const options = { temperature: 0.5, baseTemperature: 0.5 };
    check([x], ([f]) => ops.supcon(ops.l2Normalize(ops.reshape(f, [n * v, d])), labels, { ...options, views: v }),
      ([f]) => [referenceLoss(f, n, v, d, labels, null, { ...options, normalize: true }).loss], 21, { fwd: 1e-5, grad: 1e-4 });
    check([x], ([f]) => ops.supcon(f, labels, options), ([f]) => [referenceLoss(f, n, v, d, labels, null, options).loss], 22,
      { fwd: 1e-5, grad: 1e-4 });
  });
});

describe('supcon leaves its inputs alone', () => {
  it('a [n, v, d] features tensor of the caller survives the loss and its graph', () => {
    const x = Tensor.from(randomNormal(4 * 2 * 3, rng(23)), [4, 2, 3]);
    const w = new Parameter(Tensor.from(randomNormal(9, rng(24)), [3, 3]));
    tidy(() => {
      const z = ops.reshape(ops.linear(ops.reshape(x, [8, 3]), w), [4, 2, 3]);
      ops.supcon(z, [0, 1, 0, 1], { temperature: 0.5 }).backward();
      expect(z.value.isDisposed).toBe(false);
    });
    expect(x.isDisposed).toBe(false);
    expect(w.grad!.dataSync().some((g) => g !== 0)).toBe(true);
    x.dispose();
    w.dispose();
  });
});

describe('autograd', () => {
  it('accumulates parameter gradients across backward calls until zeroGrad', () => {
    tidy(() => {
      const w = new Parameter(Tensor.from([1, 2, 3], [1, 3]));
      const x = Tensor.from([1, 1, 1, 2, 0, -1], [2, 3]);
      ops.crossEntropy(ops.linear(x, w), [0, 0]).backward();
      const once = w.grad!.dataSync();
      ops.crossEntropy(ops.linear(x, w), [0, 0]).backward();
      expect(Array.from(w.grad!.dataSync())).toEqual(Array.from(once, (g) => 2 * g));
      w.zeroGrad();
      expect(Array.from(w.grad!.dataSync())).toEqual([0, 0, 0]);
    });
  });

  it('records nothing under noGrad and explains a backward without a graph', () => {
    tidy(() => {
      const w = new Parameter(Tensor.from([1, 2], [1, 2]));
      const y = nn.noGrad(() => ops.linear(Tensor.from([1, 1], [1, 2]), w));
      expect(() => y.backward()).toThrow(/not computed from anything that requires a gradient/);
      const z = ops.linear(Tensor.from([1, 1, 2, 2], [2, 2]), w);
      expect(() => z.backward()).toThrow(/pass the gradient for a variable of shape \[2, 1\]/);
    });
  });

  it('frees the graph: intermediates are disposed by tidy and no tensors leak', async () => {
    const { memory } = await import('../dist/index.js');
    const model = new nn.Sequential(new nn.Linear(4, 8, { seed: 1 }), new nn.BatchNorm1d(8), new nn.ReLU(), new nn.Linear(8, 3, { seed: 2 }));
    const x = Tensor.from(randomNormal(20, rng(3)), [5, 4]);
    model.zeroGrad();
    const before = memory().numTensors;
    for (let i = 0; i < 3; i++) tidy(() => ops.crossEntropy(model.forward(x), [0, 1, 2, 0, 1]).backward());
    expect(memory().numTensors).toBe(before);
    model.dispose();
    x.dispose();
  });
});

describe('bad shapes give clear errors', () => {
  it('names the argument, what was expected and what came', () => {
    tidy(() => {
      const w = Tensor.zeros([4, 3]);
      expect(() => ops.linear(Tensor.zeros([2, 5]), w)).toThrow(/x: expected \[N, 3\] \(the weight's in features\), got \[2, 5\]/);
      expect(() => ops.linear(Tensor.zeros([2, 3]), w, Tensor.zeros([3]))).toThrow(/bias: expected shape \[4\], got \[3\]/);
      expect(() => ops.conv2d(Tensor.zeros([1, 2, 5, 5]), Tensor.zeros([4, 3, 3, 3]))).toThrow(/x: expected \[N, 3, H, W\]/);
      expect(() => ops.conv2d(Tensor.zeros([1, 3, 2, 2]), Tensor.zeros([4, 3, 3, 3]))).toThrow(/smaller than the kernel/);
      expect(() => ops.conv2d(Tensor.zeros([1, 3, 5, 5]), Tensor.zeros([4, 3, 3, 3]), null, { stride: 0 })).toThrow(/options.stride: expected an integer >= 1/);
      expect(() => ops.batchNorm(Tensor.zeros([1, 3]), Tensor.zeros([3]), Tensor.zeros([3]), null, null, { training: true })).toThrow(/more than one value per channel/);
      expect(() => ops.maxPool2d(Tensor.zeros([1, 1, 4, 4]), { kernelSize: 2, padding: 2 })).toThrow(/at most half the kernel size/);
      expect(() => ops.crossEntropy(Tensor.zeros([2, 3]), [0, 3])).toThrow(/labels: expected class indices in \[0, 3\), got 3 at index 1/);
      expect(() => ops.reshape(Tensor.zeros([2, 3]), [4, -1])).toThrow(/does not hold the 6 values/);
      expect(() => ops.relu([1, 2] as never)).toThrow(/x: expected a Variable or a float32 Tensor, got an Array\(2\)/);
      expect(() => new nn.Linear(3, 4).forward(Tensor.zeros([2, 2]))).toThrow(RangeError);
      expect(() => new nn.BatchNorm2d(3).forward(Tensor.zeros([2, 3]))).toThrow(/expected BatchNorm2d input of rank 4, got shape \[2, 3\]/);
    });
  });
});

describe('the native layer checks what reaches it', () => {
  it('rejects short storages, bad descriptors and bad indices without crashing', async () => {
    const { native } = await import('../dist/lib/native.js');
    const f = (n: number) => Tensor.zeros([n]);
    const desc = { N: 1, C: 2, H: 4, W: 4, K: 3, R: 3, S: 3, strideH: 1, strideW: 1, padH: 1, padW: 1 };
    tidy(() => {
      expect(() => native.nn.conv2dForward(desc, f(31).storage, f(54).storage, null, f(48).storage))
        .toThrow(/x: expected storage of at least 128 bytes, got 124/);
      expect(() => native.nn.conv2dForward({ ...desc, padH: 3 }, f(32).storage, f(54).storage, null, f(48).storage))
        .toThrow(/desc.padH: expected an integer in \[0, 2\]/);
      expect(() => native.nn.conv2dForward({ ...desc, K: undefined } as never, f(32).storage, f(54).storage, null, f(48).storage))
        .toThrow(/desc.K: expected a number, got undefined/);
      const pool = { N: 1, C: 1, H: 2, W: 2, R: 2, S: 2, strideH: 2, strideW: 2, padH: 0, padW: 0 };
      const idx = Tensor.from(Int32Array.from([4]), [1], { dtype: 'int32' });
      expect(() => native.nn.maxPool2dBackward(pool, idx.storage, f(1).storage, f(4).storage))
        .toThrow(/indices: expected each output's position inside its window \(as maxPool2dForward writes them\), got 4 at index 0/);
      // In the image but outside the output's window: refused too.
      const outside = { ...pool, H: 4, W: 4 };
      const idx2 = Tensor.from(Int32Array.from([0, 0, 0, 0]), [4], { dtype: 'int32' });
      expect(() => native.nn.maxPool2dBackward(outside, idx2.storage, f(4).storage, f(16).storage))
        .toThrow(/inside its window .*got 0 at index 1/);
      expect(() => native.nn.batchNormForward({ N: 2, C: 1, L: 1, eps: 0, momentum: 0.1 }, true, f(2).storage, f(1).storage,
        f(1).storage, null, null, f(2).storage, f(1).storage, f(1).storage)).toThrow(/desc.eps: expected a finite number > 0/);
      expect(() => native.nn.adamwStep(f(2).storage, f(2).storage, f(2).storage, f(2).storage, 2,
        { lr: 1, beta1: 1, beta2: 0.9, eps: 1e-8, weightDecay: 0, step: 1 })).toThrow(/expected betas in \[0, 1\)/);
      const disposed = f(4);
      const s = disposed.storage;
      disposed.dispose();
      expect(() => native.nn.reluForward(s, f(4).storage, 4)).toThrow(/x: the tensor has been disposed/);
    });
  });
});

// A gradient that a backward kernel makes fresh (no other consumer wrote it yet) is not
// cleared first: the kernel writes it (overwrite), and the next consumer adds into it.
describe('fresh gradients: written, not cleared and added into', () => {
  it.each(kernels)('a chain of ops whose intermediates all take both paths, against finite differences (kernels %s)', (kernel) => {
    setCpuKernels(kernel);
    const random = rng(41);
    const N = 3, C = 2, H = 9, W = 7, K = 5;
    const d1: ConvShape = { N, C, H, W, K, R: 3, S: 3, stride: [2, 2], pad: [1, 1] };
    const [P, Q] = convOut(d1);
    const d2: ConvShape = { N, C: K, H: P, W: Q, K, R: 3, S: 3, stride: [1, 1], pad: [1, 1] };
    const L = P * Q, F = K * L, O = 4;
    const relu = (v: Float64Array) => v.map((e) => Math.max(e, 0));
    const ref = ([x, w1, g, b, w2, w3, b3]: Float64Array[]) => {
      const h2 = relu(batchNormRef(conv2dRef(x, w1, null, d1), g, b, N, K, L, 1e-5, null).y);
      const h3 = conv2dRef(h2, w2, null, d2);
      return linearRef(relu(h3.map((e, i) => e + h2[i])), w3, b3, N, F, O);
    };
    check(
      [input([N, C, H, W], random), input([K, C, 3, 3], random, 0.5), input([K], random), input([K], random),
        input([K, K, 3, 3], random, 0.3), input([O, F], random, 0.2), input([O], random)],
      ([x, w1, g, b, w2, w3, b3]) => {
        // h2 feeds both the second convolution and the sum: its gradient is written by one
        // and added into by the other.
        const h2 = ops.batchNorm(ops.conv2d(x, w1, null, { stride: 2, padding: 1 }), g, b, null, null, { training: true, relu: true });
        const h4 = ops.relu(ops.add(ops.conv2d(h2, w2, null, { padding: 1 }), h2));
        return ops.linear(ops.reshape(h4, [N, F]), w3, b3);
      },
      ref, 43);
  });

  // Each kernel's overwrite flag against the same call adding into zeros (the same values;
  // -0 and +0 taken as equal), and without it, adding into what dx holds.
  const nan = (n: number) => Tensor.from(new Float32Array(n).fill(NaN), [n]);
  const same = (a: Float32Array, b: Float32Array) => expect(Array.from(a, (v) => v + 0)).toEqual(Array.from(b, (v) => v + 0));
  function overwriteMatches(n: number, run: (dx: Tensor, overwrite: boolean | undefined) => void) {
    tidy(() => {
      const zero = Tensor.zeros([n]);
      run(zero, false);
      const written = nan(n);
      run(written, true);
      same(written.dataSync(), zero.dataSync());
      const base = randomNormal(n, rng(n));
      const added = Tensor.from(base, [n]);
      run(added, undefined);
      const g = zero.dataSync(), got = added.dataSync();
      for (let i = 0; i < n; i++) expect(Math.abs(got[i] - (base[i] + g[i]))).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(base[i] + g[i])));
    });
  }
  const t = (n: number, seed: number) => Tensor.from(randomNormal(n, rng(seed)), [n]);

  it.each(kernels)('conv2dBackward: im2col (plain and taps channels-last) and Winograd data paths (kernels %s)', (kernel) => {
    setCpuKernels(kernel);
    for (const d of [
      { N: 3, C: 2, H: 9, W: 7, K: 5, R: 3, S: 3, strideH: 2, strideW: 2, padH: 1, padW: 1 },
      { N: 3, C: 32, H: 9, W: 7, K: 5, R: 3, S: 3, strideH: 2, strideW: 2, padH: 1, padW: 1 },
      { N: 2, C: 16, H: 5, W: 7, K: 17, R: 3, S: 3, strideH: 1, strideW: 1, padH: 1, padW: 1 },
    ]) {
      const P = Math.floor((d.H + 2 * d.padH - d.R) / d.strideH) + 1, Q = Math.floor((d.W + 2 * d.padW - d.S) / d.strideW) + 1;
      tidy(() => {
        const x = t(d.N * d.C * d.H * d.W, 1), w = t(d.K * d.C * d.R * d.S, 2), dy = t(d.N * d.K * P * Q, 3);
        overwriteMatches(d.N * d.C * d.H * d.W, (dx, o) => native.nn.conv2dBackward(d, x.storage, w.storage, dy.storage, dx.storage, null, null, 2, 'fp32', o));
      });
    }
  });

  it.each(kernels)('linearBackward, batchNormBackward (fused ReLU or not, training or not), reluBackward (kernels %s)', (kernel) => {
    setCpuKernels(kernel);
    tidy(() => {
      const [N, inF, outF] = [7, 33, 5];
      const x = t(N * inF, 4), w = t(outF * inF, 5), dy = t(N * outF, 6);
      overwriteMatches(N * inF, (dx, o) => native.nn.linearBackward(x.storage, w.storage, dy.storage, dx.storage, null, null, N, inF, outF, 2, 'fp32', o));
      const [bn, C, L] = [3, 4, 19];
      const n = bn * C * L;
      const bx = t(n, 7), g = t(C, 8), b = t(C, 9), by = Tensor.zeros([n]), sm = Tensor.zeros([C]), si = Tensor.zeros([C]), bdy = t(n, 10);
      for (const relu of [false, true])
        for (const training of [true, false]) {
          const desc = { N: bn, C, L, eps: 1e-5, momentum: 0.1, relu };
          const rm = t(C, 11), rv = Tensor.from(new Float32Array(C).fill(1.5), [C]);
          native.nn.batchNormForward(desc, training, bx.storage, g.storage, b.storage, rm.storage, rv.storage, by.storage, sm.storage, si.storage);
          overwriteMatches(n, (dx, o) => native.nn.batchNormBackward(desc, training, bx.storage, g.storage, sm.storage, si.storage, bdy.storage,
            dx.storage, null, null, 2, relu ? by.storage : null, o));
        }
      const ry = t(n, 12);
      overwriteMatches(n, (dx, o) => native.nn.reluBackward(ry.storage, bdy.storage, dx.storage, n, 2, o));
    });
  });

  it('the flag is a boolean', () => {
    tidy(() => {
      const f = (n: number) => Tensor.zeros([n]).storage;
      expect(() => native.nn.reluBackward(f(4), f(4), f(4), 4, 1, 1 as unknown as boolean))
        .toThrow(/^overwrite: expected a boolean or undefined, got number 1/);
      expect(() => native.nn.linearBackward(f(6), f(6), f(4), f(6), null, null, 2, 3, 2, 1, 'fp32', 'yes' as unknown as boolean))
        .toThrow(/^overwrite: expected a boolean or undefined, got/);
    });
  });
});
