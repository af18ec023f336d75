// The CUDA path. On a machine without a usable GPU the GPU tests skip, and say why; what
// must hold there (clear errors, the CPU fallback) is tested everywhere.
import { describe, expect, it } from 'vitest';
import {
  augment, augmentAsync, backendInfo, cudaStatus, gemm, memory, pipelines, supconForward, supconLoss, supconLossAsync, Tensor,
} from '../dist/index.js';
import { randomLabels, randomNormal, relativeError, rng } from './reference';

const status = cudaStatus();
if (!status.usable) console.warn(`GPU tests skipped: ${status.reason}`);

describe('without a usable GPU', () => {
  it.skipIf(status.usable)('auto falls back to the CPU; cuda, device tensors and tensor-core precisions say why not', () => {
    const x = randomNormal(4 * 2 * 3, rng(1));
    const r = supconForward({ data: x, shape: [4, 2, 3] }, [0, 1, 0, 1]);
    expect(r.device).toBe('cpu');
    r.dispose();
    expect(() => supconLoss({ data: x, shape: [4, 2, 3] }, null, { device: 'cuda' })).toThrow(`options.device: 'cuda' was asked for, but ${status.reason}`);
    expect(() => Tensor.zeros([3], { device: 'cuda' })).toThrow(/^device: 'cuda' is not available: /);
    expect(() => supconLoss({ data: x, shape: [4, 2, 3] }, null, { precision: 'bf16' })).toThrow(/^options\.precision: 'bf16' runs on GPU tensor cores, but the loss runs on the CPU/);
    expect(backendInfo().cudaUsable).toBe(false);
    expect(backendInfo().devices).toEqual([]);
    expect(() => gemm(2, 2, 2, new Float32Array(4), new Float32Array(4), new Float32Array(4), { precision: 'tf32' }))
      .toThrow(/^options\.precision: 'tf32' runs on GPU tensor cores; the CPU computes in 'fp32'/);
  });
});

describe('device selection', () => {
  it('SUPCON_DEVICE=cpu forces the CPU and a bad value is an error', () => {
    const x = randomNormal(4 * 2 * 3, rng(2));
    const saved = process.env.SUPCON_DEVICE;
    try {
      process.env.SUPCON_DEVICE = 'cpu';
      const r = supconForward({ data: x, shape: [4, 2, 3] }, null, { device: 'auto' });
      expect(r.device).toBe('cpu');
      r.dispose();
      process.env.SUPCON_DEVICE = 'gpu';
      expect(() => supconLoss({ data: x, shape: [4, 2, 3] })).toThrow(/^SUPCON_DEVICE: expected 'cpu', 'cuda' or 'auto', got 'gpu'/);
    } finally {
      if (saved === undefined) delete process.env.SUPCON_DEVICE;
      else process.env.SUPCON_DEVICE = saved;
    }
  });
});

describe.skipIf(!status.usable)('on the GPU', () => {
  const n = 97, v = 2, d = 40;
  const x = randomNormal(n * v * d, rng(3));
  const labels = randomLabels(n, 5, rng(4));

  it.each([
    ['fp32', 1e-5], ['tf32', 2e-3], ['bf16', 2e-2],
  ] as const)('matches the CPU loss in %s', (precision, tol) => {
    const cpu = supconLoss({ data: x, shape: [n, v, d] }, labels, { device: 'cpu', normalize: true, temperature: 0.1 });
    const t = Tensor.from(x, [n, v, d], { device: 'cuda' });
    const gpu = supconLoss(t, labels, { normalize: true, temperature: 0.1, precision });
    expect(gpu.grad.device).toBe('cuda');
    expect(Math.abs(gpu.loss - cpu.loss) / cpu.loss).toBeLessThan(tol);
    expect(relativeError(gpu.grad.dataSync(), cpu.grad)).toBeLessThan(10 * tol);
    gpu.grad.dispose();
    t.dispose();
  });

  it('host arrays run on the GPU under auto, and memory is accounted and returned', () => {
    const before = memory().cuda.bytes;
    const r = supconForward({ data: x, shape: [n, v, d] }, labels);
    expect(r.device).toBe('cuda');
    expect(memory().cuda.bytes).toBeGreaterThan(before);
    const g = r.backward();
    expect(g).toBeInstanceOf(Float32Array);
    r.dispose();
    expect(memory().cuda.bytes).toBe(before);
  });

  it('running out of GPU memory is a RangeError, and nothing is lost', () => {
    const total = backendInfo().devices[0].totalMemory;
    const before = memory().cuda.bytes;
    // Twice the device's memory, in a shape the tensor accepts (float32 elements).
    const elements = Math.ceil((2 * total) / 4 / 1024);
    expect(() => Tensor.zeros([elements, 1024], { device: 'cuda' })).toThrow(RangeError);
    expect(() => Tensor.zeros([elements, 1024], { device: 'cuda' })).toThrow(/out of GPU memory/);
    expect(memory().cuda.bytes).toBe(before);
    const t = Tensor.from(x, [n, v, d], { device: 'cuda' });
    const r = supconLoss(t, labels);
    expect(r.loss).toBeGreaterThan(0);
    r.grad.dispose();
    t.dispose();
  });

  it('the Promise variants run at once on CUDA tensors (queued on the stream) and match the synchronous calls', async () => {
    const t = Tensor.from(x, [n, v, d], { device: 'cuda' });
    const sync = supconLoss(t, labels, { normalize: true });
    const later = await supconLossAsync(t, labels, { normalize: true });
    expect(later.grad.device).toBe('cuda');
    expect(Math.abs(later.loss - sync.loss)).toBeLessThanOrEqual(1e-6 * Math.abs(sync.loss));
    expect(relativeError(later.grad.dataSync(), sync.grad.dataSync())).toBeLessThan(1e-6);
    const images = Tensor.from(Uint8Array.from({ length: 4 * 3 * 9 * 9 }, (_, i) => (i * 13) % 256), [4, 3, 9, 9], { dtype: 'uint8', device: 'cuda' });
    const pipeline = pipelines.simAugment({ size: 9 });
    const a = augment(images, pipeline, { seed: 2, device: 'cuda' }) as Tensor<'float32'>;
    const b = (await augmentAsync(images, pipeline, { seed: 2, device: 'cuda' })) as Tensor<'float32'>;
    expect(b.device).toBe('cuda');
    expect(relativeError(b.dataSync(), a.dataSync())).toBeLessThan(1e-6);
    for (const r of [sync.grad, later.grad, t, images, a, b]) r.dispose();
  });

  it('refuses a backward pass after its features were disposed', () => {
    const t = Tensor.from(x, [n, v, d], { device: 'cuda' });
    const r = supconForward(t, labels);
    t.dispose();
    expect(() => r.backward()).toThrow(/^features: the features tensor was disposed before the backward pass/);
    r.dispose();
  });
});

describe.skipIf(!status.usable)('GEMM on the GPU', () => {
  it.each([['fp32', 1e-5], ['tf32', 2e-3], ['bf16', 2e-2]] as const)('matches the CPU GEMM in %s, transposes and strides included', (precision, tol) => {
    const random = rng(9);
    const M = 70, N = 45, K = 131, ldc = N + 2;
    for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]]) {
      const a = randomNormal(M * K, random), b = randomNormal(K * N, random), c = randomNormal(M * ldc, random);
      const want = c.slice();
      gemm(M, N, K, a, b, want, { transA, transB, alpha: 1.5, beta: -0.5, ldc });
      const [A, B, C] = [a, b, c].map((x) => Tensor.from(x, [x.length], { device: 'cuda' }));
      gemm(M, N, K, A, B, C, { transA, transB, alpha: 1.5, beta: -0.5, ldc, precision });
      const got = C.dataSync();
      for (let m = 0; m < M; m++) for (let n = N; n < ldc; n++) expect(got[m * ldc + n]).toBe(c[m * ldc + n]);
      expect(relativeError(got, want)).toBeLessThan(10 * tol);
      expect(() => gemm(M, N, K, A, b, C)).toThrow(/^B: expected a float32 tensor on 'cuda'/);
      for (const t of [A, B, C]) t.dispose();
    }
  });
});
