// Augmentations: every deterministic op against float64 references of torchvision's
// formulas (test/augment-reference.ts), Philox against Random123's known answers, the
// pipelines' determinism and draws, CPU kernel sets and threads, errors, and CUDA vs CPU
// where a GPU is present.
import { afterAll, describe, expect, it } from 'vitest';
import {
  applyAugmentOps, augment, backendInfo, devices, drawAugmentOps, philox4x32, pipelines, setCpuKernels, Tensor,
} from '../dist/index.js';
import type { AugmentArray, AugmentOp, AugmentPipeline } from '../dist/index.js';
import {
  at, autoContrastRef, blurRef, brightnessRef, contrastRef, equalizeRef, grayscaleRef, hueRef, image, Img, invertRef,
  maxAbsDiff, philoxRef, posterizeRef, resizedCropRef, sampleRef, saturationRef, sharpnessRef, solarizeRef,
} from './augment-reference';
import { rng } from './reference';

const kernels = backendInfo().cpuKernelsAvailable;
afterAll(() => setCpuKernels(kernels[0]));

function randomBytes(count: number, seed: number): Uint8Array {
  const r = rng(seed);
  return Uint8Array.from({ length: count }, () => Math.floor(r() * 256));
}
function randomFloats(count: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: count }, () => r());
}
/** Image i of a batch [n, C, H, W] (or view v of [n, V, C, H, W]) as a reference image. */
function slice(data: ArrayLike<number>, c: number, h: number, w: number, index: number, scale = 1): Img {
  const size = c * h * w;
  return image(c, h, w, Array.prototype.slice.call(data, index * size, (index + 1) * size), scale);
}
function ops(data: Float32Array | Uint8Array, shape: number[], list: AugmentOp[], options = {}): Float32Array {
  return (applyAugmentOps({ data, shape }, list, options) as AugmentArray).data;
}

describe('Philox4x32-10', () => {
  it("matches Random123's known-answer vectors", () => {
    const kat: [number[], number[], number[]][] = [
      [[0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]],
      [[0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]],
      [[0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0], [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]],
    ];
    for (const [c, k, want] of kat) {
      expect(philoxRef(c, k)).toEqual(want);
      expect(Array.from(philox4x32(c, k))).toEqual(want);
    }
  });

  it('matches the BigInt reference on random counters and keys', () => {
    const r = rng(5);
    for (let t = 0; t < 50; t++) {
      const c = [0, 1, 2, 3].map(() => Math.floor(r() * 2 ** 32));
      const k = [0, 1].map(() => Math.floor(r() * 2 ** 32));
      expect(Array.from(philox4x32(c, k))).toEqual(philoxRef(c, k));
    }
  });
});

describe.each(kernels)('deterministic ops (kernels %s)', (kernel) => {
  const setup = () => setCpuKernels(kernel);

  it.each([
    [3, 13, 17, 11, 19, false], [3, 32, 32, 32, 32, true], [1, 9, 8, 28, 28, true], [3, 5, 7, 16, 9, false],
  ])('resizedCrop + hflip matches the bilinear reference (C=%i %ix%i -> %ix%i, flip %s)', (c, h, w, oh, ow, flip) => {
    setup();
    const r = rng(h * 100 + w);
    for (const dtype of ['uint8', 'float32'] as const) {
      const n = 3;
      const data = dtype === 'uint8' ? randomBytes(n * c * h * w, h + w) : randomFloats(n * c * h * w, h * w);
      const top = Math.floor(r() * h / 2), left = Math.floor(r() * w / 2);
      const ch = 1 + Math.floor(r() * (h - top)), cw = 1 + Math.floor(r() * (w - left));
      const list: AugmentOp[] = [{ op: 'resizedCrop', top, left, height: ch, width: cw }, ...(flip ? [{ op: 'hflip' } as const] : [])];
      const out = ops(data, [n, c, h, w], list, { size: [oh, ow] });
      for (let i = 0; i < n; i++) {
        const ref = resizedCropRef(slice(data, c, h, w, i, dtype === 'uint8' ? 1 / 255 : 1), top, left, ch, cw, oh, ow, flip);
        expect(maxAbsDiff(slice(out, c, oh, ow, i).d, ref.d)).toBeLessThan(2e-6);
      }
    }
  });

  const colourCases: [string, AugmentOp, (im: Img) => Img, number][] = [
    ['brightness', { op: 'brightness', factor: 1.37 }, (im) => brightnessRef(im, 1.37), 1e-6],
    ['brightness < 1', { op: 'brightness', factor: 0.61 }, (im) => brightnessRef(im, 0.61), 1e-6],
    ['contrast', { op: 'contrast', factor: 1.29 }, (im) => contrastRef(im, 1.29), 2e-6],
    ['contrast < 1', { op: 'contrast', factor: 0.35 }, (im) => contrastRef(im, 0.35), 2e-6],
    ['saturation', { op: 'saturation', factor: 1.6 }, (im) => saturationRef(im, 1.6), 2e-6],
    ['saturation 0', { op: 'saturation', factor: 0 }, (im) => saturationRef(im, 0), 2e-6],
    ['hue +', { op: 'hue', factor: 0.093 }, (im) => hueRef(im, 0.093), 1e-5],
    ['hue -', { op: 'hue', factor: -0.41 }, (im) => hueRef(im, -0.41), 1e-5],
    ['grayscale', { op: 'grayscale' }, grayscaleRef, 1e-6],
    ['solarize', { op: 'solarize', threshold: 0.42 }, (im) => solarizeRef(im, 0.42), 1e-7],
    ['invert', { op: 'invert' }, invertRef, 1e-7],
    ['autoContrast', { op: 'autoContrast' }, autoContrastRef, 2e-6],
    ['sharpness', { op: 'sharpness', factor: 1.8 }, (im) => sharpnessRef(im, 1.8), 2e-6],
    ['sharpness < 1', { op: 'sharpness', factor: 0.2 }, (im) => sharpnessRef(im, 0.2), 2e-6],
    ['gaussianBlur 3', { op: 'gaussianBlur', kernelSize: 3, sigma: 0.7 }, (im) => blurRef(im, 3, 0.7), 2e-6],
    ['gaussianBlur 7', { op: 'gaussianBlur', kernelSize: 7, sigma: 1.9 }, (im) => blurRef(im, 7, 1.9), 2e-6],
  ];

  it.each(colourCases)('%s matches the reference (float32 input, C = 3 and 1)', (_name, op, ref, tol) => {
    setup();
    for (const [c, h, w] of [[3, 11, 13], [1, 7, 19], [3, 32, 32]]) {
      const n = 2;
      const data = randomFloats(n * c * h * w, c * h * w);
      const out = ops(data, [n, c, h, w], [op]);
      for (let i = 0; i < n; i++) expect(maxAbsDiff(slice(out, c, h, w, i).d, ref(slice(data, c, h, w, i)).d)).toBeLessThan(tol);
    }
  });

  it.each([
    ['posterize 3', { op: 'posterize', bits: 3 } as AugmentOp, (im: Img) => posterizeRef(im, 3)],
    ['posterize 7', { op: 'posterize', bits: 7 } as AugmentOp, (im: Img) => posterizeRef(im, 7)],
    ['posterize 0', { op: 'posterize', bits: 0 } as AugmentOp, (im: Img) => posterizeRef(im, 0)],
    ['equalize', { op: 'equalize' } as AugmentOp, equalizeRef],
  ])('%s matches the reference on byte images', (_name, op, ref) => {
    setup();
    for (const [c, h, w] of [[3, 11, 13], [1, 16, 16], [3, 32, 32]]) {
      const n = 2;
      const data = randomBytes(n * c * h * w, c * h * w + 1);
      const out = ops(data, [n, c, h, w], [op]);
      for (let i = 0; i < n; i++) expect(maxAbsDiff(slice(out, c, h, w, i).d, ref(slice(data, c, h, w, i, 1 / 255)).d)).toBeLessThan(1e-6);
    }
  });

  it('equalize leaves a channel with one repeated value (step 0) unchanged', () => {
    setup();
    const data = new Uint8Array(3 * 8 * 8).fill(77);
    data.fill(200, 64, 128);
    expect(maxAbsDiff(ops(data, [1, 3, 8, 8], [{ op: 'equalize' }]), Float32Array.from(data, (x) => x / 255))).toBeLessThan(1e-7);
  });

  it('rotate by 90 degrees (nearest) permutes the pixels exactly', () => {
    setup();
    const n = 9, data = randomFloats(3 * n * n, 3);
    const out = ops(data, [1, 3, n, n], [{ op: 'rotate', angle: 90 }]);
    const im = slice(data, 3, n, n, 0), o = slice(out, 3, n, n, 0);
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) expect(at(o, c, y, x)).toBe(at(im, c, x, n - 1 - y));
  });

  it.each([
    ['nearest', null], ['bilinear', null], ['nearest', 0.3], ['bilinear', 0.3],
  ] as const)('rotate, shear, translate and scale match grid_sample (%s, fill %s)', (mode, fill) => {
    setup();
    const c = 3, h = 12, w = 15;
    const data = randomFloats(c * h * w, 77);
    const im = slice(data, c, h, w, 0);
    const centre = (x: number, y: number) => [x + 0.5 - w / 2, y + 0.5 - h / 2];
    const pixel = (cx: number, cy: number): [number, number] => [cx + w / 2 - 0.5, cy + h / 2 - 0.5];
    const a = (23 * Math.PI) / 180;
    const cases: [AugmentOp, (x: number, y: number) => [number, number]][] = [
      // counter-clockwise rotation: the output reads the source at R(a) (x, y), y down
      [{ op: 'rotate', angle: 23, interpolation: mode }, (x, y) => {
        const [cx, cy] = centre(x, y);
        return pixel(Math.cos(a) * cx - Math.sin(a) * cy, Math.sin(a) * cx + Math.cos(a) * cy);
      }],
      // RandAugment's ShearX(m): x' = x - m y about the top-left corner
      [{ op: 'shearX', factor: 0.27, interpolation: mode }, (x, y) => [x + 0.27 * (y + 0.5), y]],
      [{ op: 'shearY', factor: -0.19, interpolation: mode }, (x, y) => [x, y - 0.19 * (x + 0.5)]],
      [{ op: 'translateX', pixels: 4, interpolation: mode }, (x, y) => [x - 4, y]],
      [{ op: 'translateY', pixels: -3, interpolation: mode }, (x, y) => [x, y + 3]],
      [{ op: 'affine', angle: 0, translate: [0, 0], scale: 1.7, shear: [0, 0], interpolation: mode }, (x, y) => {
        const [cx, cy] = centre(x, y);
        return pixel(cx / 1.7, cy / 1.7);
      }],
      // F.affine's forward map M = T C R(a) S(s) SHy(sy) SHx(sx) C^-1 (SHx = [[1, -tan sx], [0, 1]],
      // SHy = [[1, 0], [-tan sy, 1]]), inverted numerically here; C is the centre given in pixels.
      [{ op: 'affine', angle: 17, translate: [2, -3], scale: 1.2, shear: [10, -7], center: [4, 5], interpolation: mode }, (x, y) => {
        const rad = Math.PI / 180, ang = 17 * rad, sx = 10 * rad, sy = -7 * rad;
        const mul = (a: number[], b: number[]) => [a[0] * b[0] + a[1] * b[2], a[0] * b[1] + a[1] * b[3], a[2] * b[0] + a[3] * b[2], a[2] * b[1] + a[3] * b[3]];
        const rss = mul(mul(mul([Math.cos(ang), -Math.sin(ang), Math.sin(ang), Math.cos(ang)], [1.2, 0, 0, 1.2]), [1, 0, -Math.tan(sy), 1]), [1, -Math.tan(sx), 0, 1]);
        const det = rss[0] * rss[3] - rss[1] * rss[2];
        const inv = [rss[3] / det, -rss[1] / det, -rss[2] / det, rss[0] / det];
        const [cx, cy] = centre(x, y);
        const [ox, oy] = [4 - w / 2, 5 - h / 2]; // the centre, in centred coordinates
        const dx = cx - 2 - ox, dy = cy + 3 - oy;
        return pixel(inv[0] * dx + inv[1] * dy + ox, inv[2] * dx + inv[3] * dy + oy);
      }],
    ];
    for (const [op, src] of cases) {
      // a brightness op first keeps the affine op off the crop pass
      const out = ops(data, [1, c, h, w], [{ op: 'brightness', factor: 1 }, op], { fill });
      const ref = sampleRef(im, src, mode, fill);
      expect(maxAbsDiff(out, ref.d), JSON.stringify(op)).toBeLessThan(2e-5);
    }
  });

  it('a map far outside the image (or overflowing to infinity) reads zeros, or the fill', () => {
    setup();
    // 6 x 6: centred x coordinates are +-0.5, +-1.5, +-2.5, so none of these maps lands inside
    const data = randomFloats(3 * 6 * 6, 9);
    for (const matrix of [[1, 0, 1e12, 0, 1, 0], [1e30, 0, 0, 0, 1, 0], [3e38, 0, 3e38, 0, 1, 0], [1, 0, 40, 0, 1, 0]])
      for (const mode of ['nearest', 'bilinear'] as const) {
        const list: AugmentOp[] = [{ op: 'invert' }, { op: 'affineMatrix', matrix, interpolation: mode }];
        expect(maxAbsDiff(ops(data, [1, 3, 6, 6], list), new Float32Array(108))).toBe(0);
        expect(maxAbsDiff(ops(data, [1, 3, 6, 6], list, { fill: 0.25 }), new Float32Array(108).fill(0.25))).toBeLessThan(1e-7);
      }
  });

  it('hflip after another op (an affine pass) equals the mirror image', () => {
    setup();
    const c = 3, h = 6, w = 7, data = randomFloats(c * h * w, 8);
    const out = slice(ops(data, [1, c, h, w], [{ op: 'invert' }, { op: 'hflip' }]), c, h, w, 0);
    const im = slice(data, c, h, w, 0);
    for (let ch = 0; ch < c; ch++)
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) expect(at(out, ch, y, x)).toBeCloseTo(1 - at(im, ch, y, w - 1 - x), 6);
  });

  it('normalize: (x - mean) / std per channel, after the ops', () => {
    setup();
    const data = randomBytes(2 * 3 * 5 * 6, 4);
    const mean = [0.4914, 0.4822, 0.4465], std = [0.2023, 0.1994, 0.201];
    const out = ops(data, [2, 3, 5, 6], [{ op: 'invert' }], { normalize: { mean, std } });
    for (let i = 0; i < out.length; i++) {
      const c = Math.floor(i / 30) % 3;
      expect(out[i]).toBeCloseTo((1 - data[i] / 255 - mean[c]) / std[c], 5);
    }
  });

  it('a chain of ops equals the references composed', () => {
    setup();
    const c = 3, h = 10, w = 9, data = randomBytes(c * h * w, 12);
    const list: AugmentOp[] = [
      { op: 'resizedCrop', top: 1, left: 2, height: 8, width: 6 }, { op: 'hflip' },
      { op: 'contrast', factor: 0.7 }, { op: 'hue', factor: 0.05 }, { op: 'brightness', factor: 1.2 },
      { op: 'saturation', factor: 1.3 }, { op: 'grayscale' }, { op: 'solarize', threshold: 0.6 },
    ];
    const out = ops(data, [1, c, h, w], list, { size: 16 });
    let ref = resizedCropRef(slice(data, c, h, w, 0, 1 / 255), 1, 2, 8, 6, 16, 16, true);
    ref = solarizeRef(grayscaleRef(saturationRef(brightnessRef(hueRef(contrastRef(ref, 0.7), 0.05), 1.2), 1.3)), 0.6);
    expect(maxAbsDiff(out, ref.d)).toBeLessThan(1e-5);
  });
});

const presets: [string, AugmentPipeline][] = [
  ['simAugment', pipelines.simAugment()],
  ['simclr', pipelines.simclr({ size: 32, blur: true })],
  ['autoAugment cifar10', pipelines.autoAugment({ policy: 'cifar10' })],
  ['autoAugment imagenet', pipelines.autoAugment({ policy: 'imagenet' })],
  ['randAugment', pipelines.randAugment({ ops: 3, magnitude: 12 })],
  ['stackedRandAugment', pipelines.stackedRandAugment()],
  ['solarize + bilinear RandAugment', {
    crop: { scale: [0.3, 1] }, flip: 0.5, randAugment: { ops: 2, magnitude: 9, interpolation: 'bilinear' },
    solarize: { threshold: 0.5, p: 0.5 }, fill: 0.5,
  }],
];

describe('pipelines', () => {
  const n = 12, c = 3, h = 32, w = 32;
  const data = randomBytes(n * c * h * w, 99);
  const run = (p: AugmentPipeline, o = {}) => augment({ data, shape: [n, c, h, w] }, p, { seed: 7, ...o }) as AugmentArray;

  it.each(presets)('%s: the same seed gives the same views, the two views differ, outputs in [0, 1]', (_name, p) => {
    const a = run(p), b = run(p);
    expect(a.shape).toEqual([n, 2, c, h, w]);
    expect(Buffer.from(a.data.buffer).equals(Buffer.from(b.data.buffer))).toBe(true);
    const view = c * h * w;
    for (let i = 0; i < n; i++) {
      const v0 = a.data.subarray((2 * i) * view, (2 * i + 1) * view), v1 = a.data.subarray((2 * i + 1) * view, (2 * i + 2) * view);
      expect(maxAbsDiff(v0, v1)).toBeGreaterThan(1e-3);
    }
    // bilinear weights summing to 1 + ulp may overshoot [0, 1] by float rounding
    for (const x of a.data) expect(x >= -1e-6 && x <= 1 + 1e-6).toBe(true);
    expect(maxAbsDiff(run(p, { seed: 8 }).data, a.data)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(run(p, { epoch: 1 }).data, a.data)).toBeGreaterThan(1e-3);
  });

  it.each(presets)('%s: each view equals applyAugmentOps with its drawn ops', (_name, p) => {
    const out = run(p, { views: 3 });
    const drawn = drawAugmentOps([n, c, h, w], p, { seed: 7, views: 3 });
    const view = c * h * w;
    for (let i = 0; i < n; i++)
      for (let v = 0; v < 3; v++) {
        const one = ops(data.subarray(i * view, (i + 1) * view), [1, c, h, w], drawn[i][v], { fill: p.fill ?? null });
        expect(maxAbsDiff(one, out.data.subarray((3 * i + v) * view, (3 * i + v + 1) * view))).toBe(0);
      }
  });

  it('the streams are keyed by dataset index, not batch position', () => {
    const p = pipelines.simAugment();
    const perm = [5, 0, 11, 3, 8, 1, 2, 4, 6, 7, 9, 10];
    const view = c * h * w;
    const permuted = new Uint8Array(data.length);
    perm.forEach((src, dst) => permuted.set(data.subarray(src * view, (src + 1) * view), dst * view));
    const a = run(p);
    const b = augment({ data: permuted, shape: [n, c, h, w] }, p, { seed: 7, indices: perm }) as AugmentArray;
    perm.forEach((src, dst) => {
      expect(maxAbsDiff(b.data.subarray(dst * 2 * view, (dst + 1) * 2 * view), a.data.subarray(src * 2 * view, (src + 1) * 2 * view))).toBe(0);
    });
  });

  it('threads do not change a bit; uint8 and float32 inputs agree; bigint seeds work', () => {
    const p = pipelines.stackedRandAugment();
    const one = run(p, { threads: 1 }), two = run(p, { threads: 2 });
    expect(Buffer.from(one.data.buffer).equals(Buffer.from(two.data.buffer))).toBe(true);
    const f = augment({ data: Float32Array.from(data, (x) => x / 255), shape: [n, c, h, w] }, p, { seed: 7 }) as AugmentArray;
    // Posterize/Equalize quantise to bytes: a float rounding at a byte boundary moves one level.
    let off = 0;
    for (let i = 0; i < f.data.length; i++) if (Math.abs(f.data[i] - one.data[i]) > 1e-5) off++;
    expect(off).toBeLessThanOrEqual(f.data.length * 1e-3);
    expect(maxAbsDiff(run(p, { seed: 7n }).data, one.data)).toBe(0);
    expect(maxAbsDiff(run(p, { seed: (1n << 63n) + 7n }).data, one.data)).toBeGreaterThan(1e-3);
  });

  it('every CPU kernel set gives the same views up to float rounding', () => {
    const p = pipelines.simclr({ size: 32, blur: true });
    setCpuKernels(kernels[kernels.length - 1]);
    const base = run(p);
    for (const k of kernels) {
      setCpuKernels(k);
      expect(maxAbsDiff(run(p).data, base.data)).toBeLessThan(1e-5);
    }
    setCpuKernels(kernels[0]);
  });

  it('options.out: the views are written there and it is returned', () => {
    const p = pipelines.simAugment();
    const fresh = run(p);
    const out = new Float32Array(fresh.data.length).fill(Number.NaN);
    const again = augment({ data, shape: [n, c, h, w] }, p, { seed: 7, out }) as AugmentArray;
    expect(again.data).toBe(out);
    expect(maxAbsDiff(out, fresh.data)).toBe(0);
    const t = Tensor.zeros<'float32'>([n, 2, c, h, w]);
    expect(augment({ data, shape: [n, c, h, w] }, p, { seed: 7, out: t })).toBe(t);
    expect(maxAbsDiff(t.dataSync(), fresh.data)).toBe(0);
    t.dispose();
    expect(() => augment({ data, shape: [n, c, h, w] }, p, { out: new Float32Array(5) })).toThrow(/options\.out: expected 73728 values \(\[12, 2, 3, 32, 32\]\), got 5/);
    const f = new Float32Array(n * c * h * w).fill(0.5);
    expect(() => applyAugmentOps({ data: f, shape: [n, c, h, w] }, [{ op: 'invert' }], { out: f })).toThrow(/options\.out: expected memory apart from the images/);
  });

  it('Tensor in, Tensor out; 1-channel images; resizing to another size', () => {
    const t = Tensor.from(data, [n, c, h, w], { dtype: 'uint8' });
    const out = augment(t, pipelines.simAugment({ size: [24, 20] }), { seed: 1 }) as Tensor<'float32'>;
    expect(out).toBeInstanceOf(Tensor);
    expect(out.shape).toEqual([n, 2, c, 24, 20]);
    out.dispose();
    t.dispose();
    const gray = augment({ data: data.subarray(0, n * 28 * 28), shape: [n, 1, 28, 28] }, pipelines.simAugment(), { seed: 1 }) as AugmentArray;
    expect(gray.shape).toEqual([n, 2, 1, 28, 28]);
    for (const x of gray.data) expect(x >= -1e-6 && x <= 1 + 1e-6).toBe(true);
  });
});

describe('drawn parameters', () => {
  const n = 400, shape = [n, 3, 32, 32];

  it('SimAugment: crop box, flip, jitter and grayscale frequencies and ranges as torchvision draws them', () => {
    const drawn = drawAugmentOps(shape, pipelines.simAugment(), { seed: 3 }).flat();
    let flips = 0, jitters = 0, grays = 0;
    const orders = new Set<string>();
    for (const list of drawn) {
      const crop = list[0] as { op: string; height: number; width: number; top: number; left: number };
      expect(crop.op).toBe('resizedCrop');
      const area = crop.height * crop.width;
      // w, h = round(sqrt(A * r)), round(sqrt(A / r)) for A in [0.2, 1] * 1024
      expect(area).toBeGreaterThanOrEqual(0.2 * 1024 - 2 * Math.sqrt(1024) - 1);
      expect(crop.top + crop.height).toBeLessThanOrEqual(32);
      expect(crop.left + crop.width).toBeLessThanOrEqual(32);
      const rest = list.slice(1) as { op: string; factor?: number }[];
      if (rest[0]?.op === 'hflip') {
        flips++;
        rest.shift();
      }
      const jit = rest.filter((o) => ['brightness', 'contrast', 'saturation', 'hue'].includes(o.op));
      if (jit.length > 0) {
        jitters++;
        expect(jit.length).toBe(4);
        orders.add(jit.map((o) => o.op[0]).join(''));
        for (const o of jit) {
          if (o.op === 'hue') expect(Math.abs(o.factor!)).toBeLessThanOrEqual(0.1 + 1e-7);
          else expect(o.factor! >= 0.6 - 1e-7 && o.factor! <= 1.4 + 1e-7).toBe(true);
        }
      }
      if (rest.some((o) => o.op === 'grayscale')) grays++;
      expect(rest[rest.length - 1]?.op === 'grayscale' || !rest.some((o) => o.op === 'grayscale')).toBe(true);
    }
    const m = drawn.length;
    // binomial: 4 standard deviations
    const near = (count: number, p: number) => expect(Math.abs(count - m * p)).toBeLessThan(4 * Math.sqrt(m * p * (1 - p)));
    near(flips, 0.5);
    near(jitters, 0.8);
    near(grays, 0.2);
    expect(orders.size).toBe(24);
  });

  it('RandAugment: N ops with torchvision magnitudes for M', () => {
    const drawn = drawAugmentOps(shape, pipelines.randAugment({ ops: 2, magnitude: 9 }), { seed: 4 }).flat();
    const kinds = new Set<string>();
    for (const list of drawn) {
      const rest = list.slice(1).filter((o) => o.op !== 'hflip') as { op: string; factor?: number; bits?: number; threshold?: number; matrix?: number[] }[];
      expect(rest.length).toBeLessThanOrEqual(2);
      for (const o of rest) {
        kinds.add(o.op);
        if (['brightness', 'saturation', 'contrast', 'sharpness'].includes(o.op))
          expect(Math.abs(Math.abs(o.factor! - 1) - 0.27)).toBeLessThan(1e-6);
        if (o.op === 'posterize') expect(o.bits).toBe(7); // 8 - round(9 / 7.5)
        if (o.op === 'solarize') expect(o.threshold).toBeCloseTo(0.7, 6);
        if (o.op === 'affineMatrix') {
          const m = o.matrix!;
          const rot = Math.abs(Math.abs(m[1]) - Math.sin((9 * Math.PI) / 180)) < 1e-6; // 30 * 9 / 30 degrees
          const shear = Math.abs(Math.abs(m[1]) - 0.09) < 1e-6 || Math.abs(Math.abs(m[3]) - 0.09) < 1e-6;
          const shift = Math.abs(Math.abs(m[2]) - 4) < 1e-6 || Math.abs(Math.abs(m[5]) - 4) < 1e-6; // int(150/331 * 32 * 0.3)
          expect(rot || shear || shift, JSON.stringify(m)).toBe(true);
        }
      }
    }
    for (const k of ['brightness', 'saturation', 'contrast', 'sharpness', 'posterize', 'solarize', 'autoContrast', 'equalize', 'affineMatrix'])
      expect(kinds.has(k)).toBe(true);
  });

  it('AutoAugment: ops and magnitudes of the 10-bin space, Invert included', () => {
    for (const policy of ['cifar10', 'imagenet'] as const) {
      const drawn = drawAugmentOps(shape, pipelines.autoAugment({ policy }), { seed: 5 }).flat();
      const kinds = new Set<string>();
      for (const list of drawn) {
        const rest = list.slice(1).filter((o) => o.op !== 'hflip') as { op: string; bits?: number; threshold?: number }[];
        expect(rest.length).toBeLessThanOrEqual(2);
        for (const o of rest) {
          kinds.add(o.op);
          if (o.op === 'posterize') expect([4, 5, 6, 7, 8]).toContain(o.bits);
          if (o.op === 'solarize') expect(Math.abs(o.threshold! * 9 - Math.round(o.threshold! * 9))).toBeLessThan(1e-5);
        }
      }
      expect(kinds.has('invert')).toBe(true);
      expect(kinds.has('equalize')).toBe(true);
    }
  });
});

describe('errors', () => {
  const data = randomBytes(2 * 3 * 8 * 8, 1);
  const good = { data, shape: [2, 3, 8, 8] };
  const cases: [string, () => unknown, RegExp, ErrorConstructor][] = [
    ['rank', () => augment({ data, shape: [6, 8, 8] }, pipelines.simAugment()), /images\.shape: expected \[n, C, H, W\]/, RangeError],
    ['channels', () => augment({ data: data.subarray(0, 2 * 2 * 64), shape: [2, 2, 8, 8] }, pipelines.simAugment()), /1 or 3 channels/, RangeError],
    ['length', () => augment({ data, shape: [3, 3, 8, 8] }, pipelines.simAugment()), /images\.data: shape .* needs 576 values, got 384/, RangeError],
    ['dtype', () => augment({ data: new Int32Array(384) as unknown as Uint8Array, shape: [2, 3, 8, 8] }, pipelines.simAugment()), /images\.data: expected a Uint8Array or a Float32Array, got Int32Array/, TypeError],
    ['int32 tensor', () => augment(Tensor.from(new Int32Array(384), [2, 3, 8, 8]) as never, pipelines.simAugment()), /uint8 or float32 tensor, got dtype 'int32'/, TypeError],
    ['NaN', () => augment({ data: new Float32Array(384).fill(Number.NaN), shape: [2, 3, 8, 8] }, pipelines.simAugment()), /images: expected float32 values in \[0, 1\] .*got NaN at index 0/, RangeError],
    ['float range', () => augment({ data: new Float32Array(384).fill(0.5).fill(1.5, 200, 201), shape: [2, 3, 8, 8] }, pipelines.simAugment()), /images: expected float32 values in \[0, 1\] \(pass uint8 images as a Uint8Array\), got 1\.5.* at index 200 \(image 1\)/, RangeError],
    ['scale', () => augment(good, { crop: { scale: [0.2, 1.5] } }), /pipeline\.crop\.scale: expected \[lo, hi\] with 0 <= lo <= hi <= 1/, RangeError],
    ['probability', () => augment(good, { flip: 1.5 }), /pipeline\.flip: expected a probability in \[0, 1\], got 1\.5/, RangeError],
    ['hue', () => augment(good, { colorJitter: { hue: 0.7 } }), /pipeline\.colorJitter\.hue: expected a number in \[0, 0\.5\], got 0\.7/, RangeError],
    ['negative jitter', () => augment(good, { colorJitter: { brightness: -1 } }), /pipeline\.colorJitter\.brightness/, RangeError],
    ['even kernel', () => augment(good, { blur: { kernelSize: 4 } }), /pipeline\.blur\.kernelSize: expected an odd integer/, RangeError],
    ['kernel too large', () => augment(good, { blur: { kernelSize: 17 } }), /reflect padding of 8 needs an output larger than that, got 8x8/, RangeError],
    ['magnitude', () => augment(good, { randAugment: { magnitude: 31 } }), /pipeline\.randAugment\.magnitude: expected an integer in \[0, 30\], got number 31/, RangeError],
    ['both auto', () => augment(good, { randAugment: {}, autoAugment: { policy: 'cifar10' } }), /pass randAugment or autoAugment, not both/, TypeError],
    ['policy', () => augment(good, { autoAugment: { policy: 'svhn' as never } }), /pipeline\.autoAugment\.policy: expected one of 'imagenet', 'cifar10', got 'svhn'/, RangeError],
    ['unknown key', () => augment(good, { flips: 0.5 } as never), /pipeline: unknown option 'flips'/, TypeError],
    ['normalize length', () => augment(good, { normalize: { mean: [0.5], std: [0.5] } }), /normalize\.mean: expected 3 numbers, got 1/, RangeError],
    ['normalize std', () => augment(good, { normalize: { mean: [0, 0, 0], std: [1, 0, 1] } }), /normalize\.std\[1\]: expected a number > 0/, RangeError],
    ['seed', () => augment(good, {}, { seed: -1 }), /options\.seed: expected a safe integer >= 0, got -1/, RangeError],
    ['views', () => augment(good, {}, { views: 0 }), /options\.views: expected an integer in \[1, 64\], got number 0/, RangeError],
    ['indices', () => augment(good, {}, { indices: [1] }), /options\.indices: expected 2 indices/, RangeError],
    ['size', () => augment({ ...good }, { size: 0 }), /pipeline\.size: expected a positive integer/, RangeError],
    ['unknown op', () => applyAugmentOps(good, [{ op: 'blur' } as never]), /ops\[0\]\.op: expected one of 'resizedCrop'/, RangeError],
    ['crop bounds', () => applyAugmentOps(good, [{ op: 'resizedCrop', top: 2, left: 0, height: 7, width: 8 }]), /ops\[0\]\.height: expected an integer in \[1, 6\], got number 7/, RangeError],
    ['crop position', () => applyAugmentOps(good, [{ op: 'invert' }, { op: 'resizedCrop', top: 0, left: 0, height: 4, width: 4 }]), /ops\[1\]: 'resizedCrop' must be the first operation/, RangeError],
    ['posterize bits', () => applyAugmentOps(good, [{ op: 'posterize', bits: 9 }]), /ops\[0\]\.bits: expected an integer in \[0, 8\], got number 9/, RangeError],
    ['op factor', () => applyAugmentOps(good, [{ op: 'brightness', factor: -0.5 }]), /ops\[0\]\.factor: expected a number >= 0/, RangeError],
    ['op hue', () => applyAugmentOps(good, [{ op: 'hue', factor: 0.6 }]), /ops\[0\]\.factor: expected a hue shift in \[-0\.5, 0\.5\]/, RangeError],
    ['op missing field', () => applyAugmentOps(good, [{ op: 'solarize' } as never]), /ops\[0\]\.threshold: expected a number, got undefined/, TypeError],
    ['interpolation', () => applyAugmentOps(good, [{ op: 'rotate', angle: 3, interpolation: 'cubic' as never }]), /ops\[0\]\.interpolation: expected 'nearest' or 'bilinear', got 'cubic'/, RangeError],
    ['too many ops', () => applyAugmentOps(good, Array.from({ length: 25 }, () => ({ op: 'invert' as const }))), /ops: expected at most 24 operations/, RangeError],
  ];
  it.each(cases)('%s', (_name, fn, message, kind) => {
    expect(fn).toThrow(kind);
    expect(fn).toThrow(message);
  });

  it("device 'cuda' without a GPU says why", () => {
    if (devices().length > 0) return;
    expect(() => augment(good, pipelines.simAugment(), { device: 'cuda' })).toThrow(/options\.device: 'cuda' was asked for, but/);
  });
});

const gpu = devices().length > 0;
// Solarize, Posterize, Equalize and AutoContrast (of a nearly flat channel) are
// discontinuous: there a last-bit difference may move a value far, on any two backends.
const THRESHOLDING = ['solarize', 'posterize', 'equalize', 'autoContrast'];

describe.skipIf(!gpu)('CUDA vs CPU (needs a GPU)', () => {
  it.each(presets)('%s: same views on both devices', (_name, p) => {
    const n = 64, c = 3, h = 32, w = 32, view = c * h * w;
    const data = randomBytes(n * c * h * w, 5);
    const cpu = augment({ data, shape: [n, c, h, w] }, p, { seed: 11, device: 'cpu' }) as AugmentArray;
    const cuda = augment({ data, shape: [n, c, h, w] }, p, { seed: 11, device: 'cuda' }) as AugmentArray;
    const drawn = drawAugmentOps([n, c, h, w], p, { seed: 11 }).flat();
    let worst = 0, off = 0, thresholded = 0;
    drawn.forEach((list, k) => {
      const jumps = list.some((o) => THRESHOLDING.includes(o.op));
      if (jumps) thresholded += view;
      for (let i = k * view; i < (k + 1) * view; i++) {
        const d = Math.abs(cpu.data[i] - cuda.data[i]);
        expect(Number.isFinite(cuda.data[i])).toBe(true);
        if (jumps) off += d > 1e-4 ? 1 : 0;
        else worst = Math.max(worst, d);
      }
    });
    expect(worst).toBeLessThanOrEqual(1e-4);
    expect(off).toBeLessThanOrEqual(thresholded * 0.01);
  });
});

describe.skipIf(!gpu)('CUDA vs CPU, op by op (needs a GPU)', () => {
  const list: AugmentOp[] = [
    { op: 'brightness', factor: 1.3 }, { op: 'contrast', factor: 0.6 }, { op: 'saturation', factor: 1.7 },
    { op: 'hue', factor: -0.2 }, { op: 'grayscale' }, { op: 'solarize', threshold: 0.4 }, { op: 'posterize', bits: 3 },
    { op: 'invert' }, { op: 'autoContrast' }, { op: 'equalize' }, { op: 'sharpness', factor: 1.9 },
    { op: 'gaussianBlur', kernelSize: 5, sigma: 1.3 }, { op: 'rotate', angle: 17, interpolation: 'bilinear' },
    { op: 'shearX', factor: 0.2 }, { op: 'translateY', pixels: 5 }, { op: 'hflip' },
  ];
  it.each(list.map((op) => [op.op, op] as const))('%s', (_name, op) => {
    for (const [c, h, w] of [[3, 32, 32], [1, 28, 28], [3, 67, 45]]) {
      const n = 16;
      const data = randomBytes(n * c * h * w, h * w + c);
      for (const fill of [null, 0.4]) {
        const chain: AugmentOp[] = [{ op: 'resizedCrop', top: 2, left: 3, height: h - 5, width: w - 4 }, { op: 'invert' }, op];
        const cpu = (applyAugmentOps({ data, shape: [n, c, h, w] }, chain, { size: [h, w], fill, device: 'cpu' }) as AugmentArray).data;
        const cuda = (applyAugmentOps({ data, shape: [n, c, h, w] }, chain, { size: [h, w], fill, device: 'cuda' }) as AugmentArray).data;
        let off = 0, worst = 0;
        for (let i = 0; i < cpu.length; i++) {
          const d = Math.abs(cpu[i] - cuda[i]);
          if (!(d <= 1e-4)) off++;
          worst = Math.max(worst, Number.isNaN(d) ? Infinity : d);
        }
        // posterize / equalize: the resampled inputs agree to the last bit or so (the CPU
        // kernels contract to FMA), and a value on a rounding tie moves one byte level; for
        // equalize that shifts the histogram, and with it a few lookup-table levels.
        const jumps = op.op === 'posterize' || op.op === 'equalize';
        expect(off, `${op.op} C=${c} ${h}x${w} fill ${fill}`).toBeLessThanOrEqual(jumps ? cpu.length * 1e-2 : 0);
        // One byte level across a posterize step is a whole step of 2^(8 - bits) levels.
        const bound = op.op === 'posterize' ? 2 ** (8 - (op as { bits: number }).bits) / 255 : op.op === 'equalize' ? 8 / 255 : 0;
        expect(worst, `${op.op} C=${c} ${h}x${w} fill ${fill}`).toBeLessThanOrEqual(bound + 1e-4);
      }
    }
  });
});
if (!gpu) describe('CUDA vs CPU', () => it.skip(`skipped: no GPU (${backendInfo().noGpuReason || 'CPU-only build'})`, () => undefined));
