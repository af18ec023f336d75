// float64 references of the augmentation formulas, written from torchvision's definitions
// (docs/AUGMENT.md names each), independent of the native code. Images are one image's
// planes [C][H][W] as a Float64Array.

export interface Img {
  c: number;
  h: number;
  w: number;
  d: Float64Array;
}

export function image(c: number, h: number, w: number, d: ArrayLike<number>, scale = 1): Img {
  return { c, h, w, d: Float64Array.from(d, (x) => x * scale) };
}

export const at = (im: Img, c: number, y: number, x: number) => im.d[(c * im.h + y) * im.w + x];
const clamp01 = (x: number) => Math.min(1, Math.max(0, x));
const map = (im: Img, f: (x: number, c: number, i: number) => number): Img => ({
  ...im,
  d: im.d.map((x, i) => f(x, Math.floor(i / (im.h * im.w)), i % (im.h * im.w))),
});

/** Philox4x32-10 on BigInt words (Salmon et al. 2011). */
export function philoxRef(counter: number[], key: number[]): number[] {
  const M = 0xffffffffn;
  let c = counter.map(BigInt), k = key.map(BigInt);
  for (let r = 0; r < 10; r++) {
    const p0 = 0xd2511f53n * c[0], p1 = 0xcd9e8d57n * c[2];
    c = [(p1 >> 32n) ^ c[1] ^ k[0], p1 & M, (p0 >> 32n) ^ c[3] ^ k[1], p0 & M];
    k = [(k[0] + 0x9e3779b9n) & M, (k[1] + 0xbb67ae85n) & M];
  }
  return c.map(Number);
}

/** F.resized_crop (bilinear, align_corners=False, upsampling) then optionally F.hflip. */
export function resizedCropRef(im: Img, top: number, left: number, ch: number, cw: number, oh: number, ow: number, flip: boolean): Img {
  const out = new Float64Array(im.c * oh * ow);
  const src = (d: number, inSize: number, outSize: number) => {
    const s = Math.max(0, (inSize / outSize) * (d + 0.5) - 0.5);
    const i0 = Math.min(Math.floor(s), inSize - 1);
    return { i0, i1: Math.min(i0 + 1, inSize - 1), t: s - i0 };
  };
  for (let c = 0; c < im.c; c++)
    for (let y = 0; y < oh; y++)
      for (let x = 0; x < ow; x++) {
        const sy = src(y, ch, oh), sx = src(flip ? ow - 1 - x : x, cw, ow);
        const v = (yy: number, xx: number) => at(im, c, top + yy, left + xx);
        out[(c * oh + y) * ow + x] =
          (1 - sy.t) * ((1 - sx.t) * v(sy.i0, sx.i0) + sx.t * v(sy.i0, sx.i1)) +
          sy.t * ((1 - sx.t) * v(sy.i1, sx.i0) + sx.t * v(sy.i1, sx.i1));
      }
  return { c: im.c, h: oh, w: ow, d: out };
}

const gray = (im: Img, i: number) =>
  im.c === 3 ? 0.2989 * im.d[i] + 0.587 * im.d[im.h * im.w + i] + 0.114 * im.d[2 * im.h * im.w + i] : im.d[i];
const blend = (a: number, b: number, f: number) => clamp01(f * a + (1 - f) * b);

export const brightnessRef = (im: Img, f: number) => map(im, (x) => blend(x, 0, f));

export function contrastRef(im: Img, f: number): Img {
  let s = 0;
  for (let i = 0; i < im.h * im.w; i++) s += gray(im, i);
  const mean = s / (im.h * im.w);
  return map(im, (x) => blend(x, mean, f));
}

export const saturationRef = (im: Img, f: number) => (im.c === 1 ? im : map(im, (x, _c, i) => blend(x, gray(im, i), f)));
export const grayscaleRef = (im: Img) => (im.c === 1 ? im : map(im, (_x, _c, i) => gray(im, i)));
export const solarizeRef = (im: Img, t: number) => map(im, (x) => (x >= t ? 1 - x : x));
export const invertRef = (im: Img) => map(im, (x) => 1 - x);

/** adjust_hue: torchvision's _rgb2hsv, shift mod 1, _hsv2rgb. */
export function hueRef(im: Img, shift: number): Img {
  if (im.c === 1) return im;
  const hw = im.h * im.w;
  const out = new Float64Array(im.d.length);
  for (let i = 0; i < hw; i++) {
    const r = im.d[i], g = im.d[hw + i], b = im.d[2 * hw + i];
    const maxc = Math.max(r, g, b), minc = Math.min(r, g, b);
    const cr = maxc - minc;
    const s = cr / (maxc === minc ? 1 : maxc);
    const crd = maxc === minc ? 1 : cr;
    const rc = (maxc - r) / crd, gc = (maxc - g) / crd, bc = (maxc - b) / crd;
    let h = maxc === r ? bc - gc : maxc === g ? 2 + rc - bc : 4 + gc - rc;
    h = (h / 6 + 1) % 1;
    h = (((h + shift) % 1) + 1) % 1;
    const v = maxc;
    const k = Math.floor(h * 6) % 6, f = h * 6 - Math.floor(h * 6);
    const p = clamp01(v * (1 - s)), q = clamp01(v * (1 - s * f)), t = clamp01(v * (1 - s * (1 - f)));
    const rgb = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][k];
    out[i] = rgb[0];
    out[hw + i] = rgb[1];
    out[2 * hw + i] = rgb[2];
  }
  return { ...im, d: out };
}

const byte = (x: number) => Math.floor(clamp01(x) * 255 + 0.5);

export const posterizeRef = (im: Img, bits: number) => map(im, (x) => (byte(x) & ((0xff << (8 - bits)) & 0xff)) / 255);

export function autoContrastRef(im: Img): Img {
  const hw = im.h * im.w;
  const lo: number[] = [], hi: number[] = [];
  for (let c = 0; c < im.c; c++) {
    const plane = im.d.subarray(c * hw, (c + 1) * hw);
    lo.push(Math.min(...plane));
    hi.push(Math.max(...plane));
  }
  return map(im, (x, c) => (hi[c] > lo[c] ? clamp01((x - lo[c]) / (hi[c] - lo[c])) : clamp01(x)));
}

/** equalize: torchvision's _scale_channel on byte values. */
export function equalizeRef(im: Img): Img {
  const hw = im.h * im.w;
  const out = new Float64Array(im.d);
  for (let c = 0; c < im.c; c++) {
    const hist = new Array(256).fill(0);
    for (let i = 0; i < hw; i++) hist[byte(im.d[c * hw + i])]++;
    const nonzero = hist.filter((h) => h !== 0);
    const step = Math.floor((nonzero.reduce((a, b) => a + b, 0) - nonzero[nonzero.length - 1]) / 255);
    if (step === 0) continue;
    const lut = [0];
    let cum = 0;
    for (let k = 0; k < 255; k++) {
      cum += hist[k];
      lut.push(Math.min(255, Math.floor((cum + Math.floor(step / 2)) / step)));
    }
    for (let i = 0; i < hw; i++) out[c * hw + i] = lut[byte(im.d[c * hw + i])] / 255;
  }
  return { ...im, d: out };
}

/** adjust_sharpness: 3x3 kernel [[1,1,1],[1,5,1],[1,1,1]] / 13 inside, the image on the border. */
export function sharpnessRef(im: Img, f: number): Img {
  return map(im, (x, c, i) => {
    const y = Math.floor(i / im.w), xx = i % im.w;
    if (im.w <= 2 || im.h <= 2) return x;
    let deg = x;
    if (y > 0 && y < im.h - 1 && xx > 0 && xx < im.w - 1) {
      let s = 0;
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) s += at(im, c, y + dy, xx + dx) * (dy === 0 && dx === 0 ? 5 : 1);
      deg = s / 13;
    }
    return blend(x, deg, f);
  });
}

/** gaussian_blur: 2-d kernel (outer product of the 1-d pdf), reflect padding. */
export function blurRef(im: Img, k: number, sigma: number): Img {
  const half = (k - 1) / 2;
  const pdf = Array.from({ length: k }, (_, t) => Math.exp(-0.5 * ((t - half) / sigma) ** 2));
  const sum = pdf.reduce((a, b) => a + b, 0);
  const w1 = pdf.map((p) => p / sum);
  const reflect = (i: number, n: number) => (i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i);
  return map(im, (_x, c, i) => {
    const y = Math.floor(i / im.w), x = i % im.w;
    let s = 0;
    for (let a = 0; a < k; a++)
      for (let b = 0; b < k; b++) s += w1[a] * w1[b] * at(im, c, reflect(y + a - half, im.h), reflect(x + b - half, im.w));
    return s;
  });
}

export const roundHalfEven = (x: number) => {
  const f = Math.floor(x), d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
};

/**
 * grid_sample(align_corners=False) of `im` where output pixel (x, y) reads source pixel
 * coordinates src(x, y); zero padding, then torchvision's fill path when fill is given.
 */
export function sampleRef(
  im: Img, src: (x: number, y: number) => [number, number], mode: 'nearest' | 'bilinear', fill: number | null = null,
): Img {
  return map(im, (_v, c, i) => {
    const y = Math.floor(i / im.w), x = i % im.w;
    const [sx, sy] = src(x, y);
    const inside = (xx: number, yy: number) => xx >= 0 && xx < im.w && yy >= 0 && yy < im.h;
    if (mode === 'nearest') {
      const ix = roundHalfEven(sx), iy = roundHalfEven(sy);
      if (inside(ix, iy)) return at(im, c, iy, ix);
      return fill ?? 0;
    }
    const x0 = Math.floor(sx), y0 = Math.floor(sy), ax = sx - x0, ay = sy - y0;
    let v = 0, mask = 0;
    for (const [xx, yy, wt] of [[x0, y0, (1 - ax) * (1 - ay)], [x0 + 1, y0, ax * (1 - ay)], [x0, y0 + 1, (1 - ax) * ay], [x0 + 1, y0 + 1, ax * ay]]) {
      if (inside(xx, yy)) {
        v += wt * at(im, c, yy, xx);
        mask += wt;
      }
    }
    return fill === null ? v : v * mask + (1 - mask) * fill;
  });
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
