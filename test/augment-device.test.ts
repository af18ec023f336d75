// Picking a batch out of a whole image set by position (options.select), on the CPU and on
// a data set kept on the GPU: the views come out on the device and match the CPU's.
import { describe, expect, it } from 'vitest';
import { augment, cudaStatus, memory, pipelines, Tensor, tidy } from '../dist/index.js';
import type { AugmentArray } from '../dist/index.js';
import { rng } from './reference';

function randomBytes(count: number, seed: number): Uint8Array {
  const r = rng(seed);
  return Uint8Array.from({ length: count }, () => Math.floor(r() * 256));
}

const N = 23, C = 3, H = 20, W = 18;
const images = randomBytes(N * C * H * W, 1);
const select = Int32Array.from([4, 0, 22, 4, 17, 9, 11]);  // repeats allowed
const gathered = new Uint8Array(select.length * C * H * W);
select.forEach((p, i) => gathered.set(images.subarray(p * C * H * W, (p + 1) * C * H * W), i * C * H * W));
const pipeline = pipelines.simAugment({ size: 16 });

describe('options.select', () => {
  it('augments the selected images, keyed by their positions: the same as augmenting a gathered copy', () => {
    const picked = augment({ data: images, shape: [N, C, H, W] }, pipeline, { select, seed: 5, epoch: 2 }) as AugmentArray;
    const copy = augment({ data: gathered, shape: [select.length, C, H, W] }, pipeline, { indices: select, seed: 5, epoch: 2 }) as AugmentArray;
    expect(picked.shape).toEqual([select.length, 2, C, 16, 16]);
    expect(Array.from(picked.data)).toEqual(Array.from(copy.data));
  });

  it('refuses positions outside the images, naming the option', () => {
    expect(() => augment({ data: images, shape: [N, C, H, W] }, pipeline, { select: [0, N] })).toThrow(RangeError);
    expect(() => augment({ data: images, shape: [N, C, H, W] }, pipeline, { select: [0, N] })).toThrow(/^options\.select\[1\]: expected an image position in \[0, 23\), got number 23/);
    expect(() => augment({ data: images, shape: [N, C, H, W] }, pipeline, { select: 'all' as never })).toThrow(TypeError);
  });
});

describe.skipIf(!cudaStatus().usable)('a data set on the GPU', () => {
  it('gives device views equal to the CPU views, with nothing but the positions crossing to the device', () => {
    tidy(() => {
      const onDevice = Tensor.from(images, [N, C, H, W], { dtype: 'uint8', device: 'cuda' });
      const cpu = augment({ data: images, shape: [N, C, H, W] }, pipeline, { select, seed: 8, device: 'cpu' }) as AugmentArray;
      const views = augment(onDevice, pipeline, { select, seed: 8, device: 'cuda' }) as InstanceType<typeof Tensor>;
      expect(views.device).toBe('cuda');
      expect(views.shape).toEqual([select.length, 2, C, 16, 16]);
      const got = views.dataSync() as Float32Array;
      let worst = 0;
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - cpu.data[i]));
      expect(worst).toBeLessThanOrEqual(1e-4);
    });
  });

  it('refuses device images without the CUDA device, and float32 device images', () => {
    tidy(() => {
      const onDevice = Tensor.from(images, [N, C, H, W], { dtype: 'uint8', device: 'cuda' });
      expect(() => augment(onDevice, pipeline, { device: 'cpu' })).toThrow(/^images: a tensor on 'cuda' needs options\.device 'cuda'/);
      const floats = Tensor.from(Float32Array.from(images, (v) => v / 255), [N, C, H, W], { device: 'cuda' });
      expect(() => augment(floats, pipeline, { device: 'cuda' })).toThrow(/^images: images on 'cuda' must be uint8/);
      const before = memory().cuda.bytes;
      expect(() => augment(onDevice, pipeline, { device: 'cuda', select: [N + 3] })).toThrow(RangeError);
      expect(memory().cuda.bytes).toBe(before);
    });
  });
});
