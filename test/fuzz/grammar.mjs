// The fuzzer's grammar: for call i of seed s, a deterministic random call of one exported
// function or class (or one raw addon function), built from valid, boundary and hostile
// values: wrong types, NaN / Infinity, negative, huge and fractional sizes, lying lengths,
// detached buffers, SharedArrayBuffers, throwing getters, getters that dispose or detach
// what the call is using, proxies. Each call says whether its numeric inputs were all finite
// and which outputs must then be finite (the oracle of "finite in, finite out").
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const lib = require(path.join(root, 'dist', 'index.js'));
const { native } = require(path.join(root, 'dist', 'lib', 'native.js'));
const { Tensor, nn } = lib;

/** splitmix64 of (seed, index): call i depends only on them, so it replays alone. */
export function rngFor(seed, index) {
  let s = (BigInt.asUintN(64, BigInt(seed) * 0x9e3779b97f4a7c15n) ^ BigInt(index)) & 0xffffffffffffffffn;
  const next64 = () => {
    s = (s + 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
    let z = s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn;
    return z ^ (z >> 31n);
  };
  // Two 32-bit words per draw from a small xorshift seeded by splitmix (BigInt is slow).
  let a = Number(next64() & 0xffffffffn) | 1, b = Number(next64() & 0xffffffffn) | 1;
  const u32 = () => {
    a ^= a << 13; a ^= a >>> 17; a ^= a << 5;
    b ^= b << 15; b ^= b >>> 11; b ^= b << 3;
    return (a + b) >>> 0;
  };
  const r = {
    float: () => u32() / 4294967296,
    int: (lo, hi) => lo + Math.floor(r.float() * (hi - lo + 1)),
    pick: (xs) => xs[Math.floor(r.float() * xs.length)],
    chance: (p) => r.float() < p,
  };
  return r;
}

// Sizes past every limit (2^47, 2^53) but no huge valid ones: a valid 2^31-element tensor is
// seconds of honest work, which would read as a hang. Valid sizes stay small.
const HOSTILE_NUMBERS = [NaN, Infinity, -Infinity, -1, -0, 0, 0.5, 1.5, -2.5, 2 ** 47, 2 ** 53, 2 ** 53 + 2, 1e300, -1e300,
  5e-324, 1e-46, 3.5e38, Number.MAX_VALUE, -(2 ** 31), 0.01];
const BOUNDARY_FLOATS = [0, -0, 1, -1, 3e38, -3e38, 3.4028234663852886e38, 1e-45, -1e-45, 1.1754943508222875e-38, 1e-39, 1e-30,
  1e19, 65504, 1e-7];

/** Per-call context: what to dispose afterwards, and the flags of the oracle. */
export class Context {
  constructor(r) {
    this.r = r;
    this.tensors = [];
    this.arrays = [];
    this.finite = true; // every numeric input finite (cleared when a generator injects NaN / Infinity)
    this.hostile = false;
  }
  track(t) { this.tensors.push(t); return t; }
  cleanup() {
    for (const t of this.tensors) try { t.dispose(); } catch { /* already gone */ }
    this.tensors.length = 0;
  }
}

function detached(ctor, n) {
  const a = new ctor(n);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
}

/** A value of any other type, or a hostile object. */
export function hostile(ctx) {
  const r = ctx.r;
  ctx.hostile = true;
  const victim = () => r.pick([...ctx.tensors, ...ctx.arrays, null]);
  switch (r.int(0, 13)) {
    case 0: { const x = r.pick(HOSTILE_NUMBERS); if (!Number.isFinite(x)) ctx.finite = false; return x; }
    case 1: return r.pick([undefined, null, true, false, '', 'cpu', 'x'.repeat(r.int(1, 50)), 10n, Symbol('s')]);
    case 2: return r.pick([{}, [], [1, 2, 3], () => 1, new Date(0), new Map(), /x/]);
    case 3: return r.pick([new Float64Array(r.int(0, 9)), new Int8Array(r.int(0, 9)), new Uint32Array(r.int(0, 9)), new ArrayBuffer(8), Buffer.alloc(4)]);
    case 4: return detached(r.pick([Float32Array, Int32Array, Uint8Array]), r.int(0, 64));
    case 5: return new (r.pick([Float32Array, Int32Array, Uint8Array]))(new SharedArrayBuffer(4 * r.int(0, 32)));
    case 6: return new Proxy([1, 2, 3], { get: (t, k, rc) => (k === 'length' ? 1e9 : Reflect.get(t, k, rc)) }); // lying length
    case 7: return { length: r.pick([1e9, -1, 2 ** 32, NaN]) };
    case 8: return new Proxy({}, { get() { throw new Error('fuzz: throwing getter'); } });
    case 9: {
      // A getter that disposes a tensor (or detaches an array) of the same call, then answers.
      const v = victim();
      return new Proxy({}, {
        get(_, key) {
          if (v instanceof Tensor) v.dispose();
          else if (ArrayBuffer.isView(v) && !(v.buffer instanceof SharedArrayBuffer) && v.buffer.byteLength > 0)
            structuredClone(v.buffer, { transfer: [v.buffer] });
          return key === Symbol.toPrimitive ? undefined : r.pick([1, 0.5, 'nearest', true, undefined]);
        },
      });
    }
    case 10: { const t = ctx.track(Tensor.zeros([r.int(1, 4)], { dtype: r.pick(['float32', 'int32', 'uint8']) })); t.dispose(); return t; }
    case 11: return new Proxy([2, 3], { get: (t, k, rc) => (typeof k === 'string' && /^\d+$/.test(k) ? r.pick([2, -2, 0.5, 2 ** 53, NaN]) : Reflect.get(t, k, rc)) });
    case 12: return Object.create(null);
    default: return new Proxy(function () {}, {});
  }
}

/**
 * `obj` behind a Proxy whose first property read disposes a tensor of the same call (or
 * detaches one of its arrays), then answers truthfully: the getter that runs while native
 * code holds a pointer.
 */
export function treacherous(ctx, obj) {
  const r = ctx.r;
  const victim = r.pick([...ctx.tensors, ...ctx.arrays].filter((v) => v instanceof Tensor || (ArrayBuffer.isView(v) && !(v.buffer instanceof SharedArrayBuffer))));
  if (victim === undefined) return obj;
  ctx.hostile = true;
  let armed = r.int(0, 3); // which read springs it
  return new Proxy(obj, {
    get(target, key, receiver) {
      if (armed-- === 0) {
        if (victim instanceof Tensor) victim.dispose();
        else if (victim.buffer.byteLength > 0) structuredClone(victim.buffer, { transfer: [victim.buffer] });
      }
      return Reflect.get(target, key, receiver);
    },
  });
}

/** `valid` most of the time, a hostile value with probability p. */
export function maybe(ctx, valid, p = 0.08) {
  return ctx.r.chance(p) ? hostile(ctx) : valid;
}

function floats(ctx, n, scale = 1) {
  const r = ctx.r;
  const out = new Float32Array(n);
  const mode = r.int(0, 9);
  for (let i = 0; i < n; i++) {
    if (mode === 0) out[i] = r.pick(BOUNDARY_FLOATS) * (r.chance(0.5) ? 1 : -1);
    else if (mode === 1 && r.chance(0.05)) out[i] = r.pick([NaN, Infinity, -Infinity]);
    else out[i] = (r.float() * 2 - 1) * scale;
  }
  if (mode === 1) ctx.finite = ctx.finite && out.every(Number.isFinite);
  ctx.arrays.push(out);
  return out;
}

function unitFloats(ctx, n) {
  const out = Float32Array.from({ length: n }, () => ctx.r.float());
  ctx.arrays.push(out);
  return out;
}

function bytes(ctx, n) {
  const out = Uint8Array.from({ length: n }, () => ctx.r.int(0, 255));
  ctx.arrays.push(out);
  return out;
}

function size(ctx, lo = 1, hi = 6) {
  return maybe(ctx, ctx.r.int(lo, hi), 0.05);
}

/** x when it is a number, else NaN: the grammar's own arithmetic must not run a hostile value's valueOf. */
const asNumber = (x) => (typeof x === 'number' ? x : NaN);

function floatTensor(ctx, shape, scale = 1) {
  const n = shape.reduce((p, s) => p * s, 1);
  return ctx.track(Tensor.from(floats(ctx, n, scale), shape));
}

/** A storage for raw addon calls: live, too small, disposed, or of the wrong kind. */
function storageArg(ctx, floatsNeeded) {
  const r = ctx.r;
  switch (r.int(0, 9)) {
    case 0: return hostile(ctx);
    case 1: return floats(ctx, Math.max(0, floatsNeeded + r.int(-2, 2)));
    case 2: { const t = ctx.track(Tensor.zeros([Math.max(1, floatsNeeded)])); t.dispose(); return t.isDisposed ? hostile(ctx) : t.storage; }
    case 3: return ctx.track(Tensor.zeros([Math.max(1, floatsNeeded - r.int(1, 3))])).storage;
    default: return ctx.track(Tensor.from(floats(ctx, Math.max(1, floatsNeeded)), [Math.max(1, floatsNeeded)])).storage;
  }
}

function options(ctx, entries) {
  const o = {};
  for (const [k, gen] of entries) if (ctx.r.chance(0.5)) o[k] = maybe(ctx, gen());
  if (ctx.r.chance(0.03)) o[`unknown${ctx.r.int(0, 9)}`] = 1;
  if (ctx.r.chance(0.1)) return treacherous(ctx, o);
  return ctx.r.chance(0.04) ? hostile(ctx) : o;
}

const allFinite = (x) => (ArrayBuffer.isView(x) ? Array.prototype.every.call(x, (v) => typeof v === 'bigint' || Number.isFinite(v)) : Number.isFinite(x));

function imagesInput(ctx, n, c, h, w) {
  const r = ctx.r;
  const count = n * c * h * w;
  if (r.chance(0.4)) return { data: bytes(ctx, count), shape: [n, c, h, w] };
  if (r.chance(0.5)) return { data: unitFloats(ctx, count), shape: [n, c, h, w] };
  return ctx.track(r.chance(0.5) ? Tensor.from(bytes(ctx, count), [n, c, h, w]) : Tensor.from(unitFloats(ctx, count), [n, c, h, w]));
}

function pipeline(ctx) {
  const r = ctx.r;
  const preset = r.pick(['simAugment', 'simclr', 'autoAugment', 'randAugment', 'stackedRandAugment', 'custom']);
  const sizeOpt = r.chance(0.5) ? r.int(4, 12) : [r.int(4, 12), r.int(4, 12)];
  if (preset !== 'custom') {
    try { return lib.pipelines[preset]({ size: maybe(ctx, sizeOpt), ...(r.chance(0.3) ? { blur: r.chance(0.5) } : {}) }); } catch { return {}; }
  }
  return options(ctx, [
    ['size', () => sizeOpt],
    ['crop', () => ({ scale: [r.float() * 0.5, 0.5 + r.float() * 0.5], ratio: [0.75, 1.33] })],
    ['flip', () => r.float()],
    ['colorJitter', () => ({ brightness: r.float(), contrast: r.float(), saturation: r.float(), hue: r.float() * 0.5, p: r.float() })],
    ['grayscale', () => r.float()],
    ['randAugment', () => ({ ops: r.int(0, 3), magnitude: r.int(0, 30) })],
    ['blur', () => ({ kernelSize: r.pick([1, 3, 5]), sigma: [r.pick([1e-6, 0.1, 1e-46]), 2], p: r.float() })],
    ['solarize', () => ({ threshold: r.float(), p: r.float() })],
    ['normalize', () => ({ mean: [r.float(), r.float(), r.float()], std: [r.pick([0.2, 1e-46, 1e-30, 1]), 0.3, 0.3] })],
    ['fill', () => r.float()],
  ]);
}

function augmentOp(ctx, h, w) {
  const r = ctx.r;
  const interp = () => r.pick(['nearest', 'bilinear']);
  const op = r.pick(['resizedCrop', 'hflip', 'brightness', 'contrast', 'saturation', 'sharpness', 'hue', 'grayscale', 'invert',
    'autoContrast', 'equalize', 'solarize', 'posterize', 'gaussianBlur', 'rotate', 'affine', 'affineMatrix', 'shearX', 'shearY',
    'translateX', 'translateY']);
  const num = (lo, hi) => maybe(ctx, lo + r.float() * (hi - lo), 0.05);
  switch (op) {
    case 'resizedCrop': return { op, top: r.int(0, h - 1), left: r.int(0, w - 1), height: r.int(1, h), width: r.int(1, w) };
    case 'brightness': case 'contrast': case 'saturation': case 'sharpness': return { op, factor: num(0, 3) };
    case 'hue': return { op, factor: num(-0.5, 0.5) };
    case 'solarize': return { op, threshold: num(0, 1) };
    case 'posterize': return { op, bits: maybe(ctx, r.int(0, 8)) };
    case 'gaussianBlur': return { op, kernelSize: r.pick([1, 3, 5]), sigma: maybe(ctx, r.pick([1e-6, 0.1, 1, 1e6, 1e-46, 1e-300]), 0.05) };
    case 'rotate': return { op, angle: num(-360, 360), ...(r.chance(0.3) ? { center: [num(0, w), num(0, h)] } : {}), interpolation: interp() };
    case 'affine': return { op, angle: num(-90, 90), translate: [num(-w, w), num(-h, h)], scale: num(0.1, 3), shear: [num(-60, 60), num(-60, 60)], interpolation: interp() };
    case 'affineMatrix': return { op, matrix: Array.from({ length: 6 }, () => maybe(ctx, r.pick([r.float() * 4 - 2, 1e30, -1e30, 3e38, 1e-40]), 0.05)), interpolation: interp() };
    case 'shearX': case 'shearY': return { op, factor: num(-2, 2), interpolation: interp() };
    case 'translateX': case 'translateY': return { op, pixels: num(-w, w), interpolation: interp() };
    default: return { op };
  }
}

function variableOf(ctx, shape, scale = 1) {
  const t = floatTensor(ctx, shape, scale);
  if (ctx.r.chance(0.5)) {
    const p = new nn.Parameter(t);
    ctx.tensors.push({ dispose: () => p.dispose() });
    return p;
  }
  return t;
}

function tinyModule(ctx) {
  const r = ctx.r;
  const inF = r.int(1, 6), outF = r.int(1, 6);
  const m = r.pick([
    () => new nn.Linear(inF, outF, maybe(ctx, { bias: r.chance(0.5) }, 0.05)),
    () => new nn.MLP(inF, maybe(ctx, [r.int(1, 6)], 0.05), outF),
    () => new nn.Sequential(new nn.Linear(inF, outF), new nn.ReLU(), new nn.L2Normalize()),
  ])();
  ctx.tensors.push({ dispose: () => m.dispose() });
  return { m, inF, outF };
}

/** The targets: [name, weight, (ctx) => { call, finiteOutputs? }]. */
const targets = [
  ['Tensor', 6, (ctx) => {
    const r = ctx.r;
    const shape = Array.from({ length: r.int(0, 3) }, () => r.int(0, 5));
    const n = shape.reduce((p, s) => p * s, 1);
    return () => {
      const t = ctx.track(r.chance(0.5)
        ? Tensor.from(maybe(ctx, r.chance(0.5) ? floats(ctx, n) : Array.from({ length: n }, () => r.int(-5, 5))), maybe(ctx, shape), maybe(ctx, r.chance(0.5) ? {} : { dtype: r.pick(['float32', 'int32', 'uint8', 'float64']) }))
        : Tensor.zeros(maybe(ctx, shape, 0.15), maybe(ctx, {}, 0.05)));
      t.dataSync();
      if (r.chance(0.3)) t.arraySync();
      if (r.chance(0.2)) ctx.track(t.to(maybe(ctx, 'cpu')));
      lib.memory();
      if (r.chance(0.1)) lib.emptyCache();
      if (r.chance(0.2)) lib.tidy(() => lib.keep(ctx.track(Tensor.zeros([1]))));
    };
  }],
  ['supconLoss', 8, (ctx) => {
    const r = ctx.r;
    const n = size(ctx, 1, 9), v = size(ctx, 1, 3), d = size(ctx, 1, 17);
    const scale = r.pick([1, 1, 10, 1e-20, 1e18, 3e38]);
    const nvd = asNumber(n) * asNumber(v) * asNumber(d);
    const count = Number.isSafeInteger(nvd) && nvd > 0 && nvd < 1e5 ? nvd : 12;
    const data = floats(ctx, count, scale);
    const features = r.chance(0.2) ? ctx.track(Tensor.from(data, [count])) : { data: maybe(ctx, data, 0.03), shape: maybe(ctx, [n, v, d], 0.05) };
    const labels = r.chance(0.3) ? null : maybe(ctx, r.chance(0.5) ? Int32Array.from({ length: Number.isSafeInteger(n) && n > 0 ? Math.min(n, 64) : 3 }, () => r.int(0, 3)) : Array.from({ length: 3 }, () => r.int(-1, 3)));
    const opts = options(ctx, [
      ['temperature', () => r.pick([0.07, 0.5, 1e-6, 100])], ['baseTemperature', () => r.pick([0.07, 1])],
      ['contrastMode', () => r.pick(['all', 'one'])], ['variant', () => r.pick(['out', 'in'])],
      ['denominator', () => r.pick(['all', 'onePositive', 'onlyNegatives'])], ['normalize', () => r.chance(0.5)],
      ['excludeAnchorsWithoutPositives', () => r.chance(0.5)], ['threads', () => r.int(1, 3)],
    ]);
    if (r.chance(0.25)) return async () => {
      // The Promise variants, with the features tensor or the forward result disposed while pending.
      const pending = r.chance(0.5) ? lib.supconLossAsync(features, labels, opts) : lib.supconForwardAsync(features, labels, opts).then(async (f) => {
        ctx.tensors.push({ dispose: () => f.dispose() });
        const grad = f.backwardAsync(maybe(ctx, r.pick([1, 0.5, -2])));
        if (r.chance(0.3)) f.dispose();
        return { loss: f.loss, grad: await grad };
      });
      if (features instanceof Tensor && r.chance(0.3)) features.dispose();
      const out = await pending;
      if (out.grad instanceof Tensor) ctx.track(out.grad);
      return [out.loss, out.grad instanceof Tensor ? out.grad.dataSync() : out.grad];
    };
    if (r.chance(0.4)) return () => {
      const f = lib.supconForward(features, labels, opts);
      ctx.tensors.push({ dispose: () => f.dispose() });
      const g = lib.supconBackward(f, maybe(ctx, r.pick([1, 0.5, -2])));
      if (g instanceof Tensor) ctx.track(g);
      return [f.loss, g instanceof Tensor ? g.dataSync() : g];
    };
    return () => { const out = lib.supconLoss(features, labels, opts); if (out.grad instanceof Tensor) ctx.track(out.grad); return [out.loss, out.grad instanceof Tensor ? out.grad.dataSync() : out.grad]; };
  }],
  ['knn', 5, (ctx) => {
    const r = ctx.r;
    const d = size(ctx, 1, 9), nTr = r.int(1, 30), nTe = r.int(1, 10);
    const dd = Number.isSafeInteger(d) && d > 0 && d < 100 ? d : 3;
    const train = floats(ctx, nTr * dd, r.pick([1, 1e-39, 1e38])), test = floats(ctx, nTe * dd, r.pick([1, 1e-39, 1e38]));
    const labels = Int32Array.from({ length: nTr }, () => r.int(0, 4));
    const which = r.int(0, 2);
    if (which === 0) return () => { const nb = lib.knnNeighbours(maybe(ctx, { data: train, dim: d }), { data: test, dim: dd }, maybe(ctx, r.int(1, nTr)), maybe(ctx, undefined, 0.05)); return [nb.similarity]; };
    if (which === 1) return () => [Float32Array.from(lib.knnPredict({ data: train, dim: dd, labels: maybe(ctx, labels) }, maybe(ctx, { data: test, dim: dd }), options(ctx, [['k', () => r.int(1, 40)], ['vote', () => r.pick(['weighted', 'majority'])], ['temperature', () => r.pick([0.1, 1e-300, 5])]])))];
    return () => [lib.knnAccuracy({ data: train, dim: dd, labels }, { data: test, dim: dd, labels: labels.subarray(0, nTe).length === nTe ? labels.subarray(0, nTe) : Int32Array.from({ length: nTe }) }, options(ctx, [['k', () => r.int(1, 40)]]))];
  }],
  ['gemm', 4, (ctx) => {
    const r = ctx.r;
    const M = size(ctx, 0, 7), N = size(ctx, 0, 7), K = size(ctx, 0, 7);
    const cap = (x) => (Number.isSafeInteger(x) && x >= 0 && x < 64 ? x : 2);
    const A = floats(ctx, Math.max(0, cap(M) * cap(K) + r.int(-1, 1) * (r.chance(0.1) ? 1 : 0))), B = floats(ctx, cap(K) * cap(N)), C = floats(ctx, cap(M) * cap(N));
    const opts = options(ctx, [['transA', () => r.chance(0.5)], ['transB', () => r.chance(0.5)], ['alpha', () => r.pick([1, -2, 1e300, 3e38])], ['beta', () => r.pick([0, 1, 0.5])], ['lda', () => r.int(0, 9)], ['threads', () => r.int(1, 2)]]);
    return () => lib.gemm(M, N, K, A, B, C, opts);
  }],
  ['augment', 6, (ctx) => {
    const r = ctx.r;
    const n = r.int(0, 3), c = r.pick([1, 3]), h = r.int(1, 10), w = r.int(1, 10);
    const images = maybe(ctx, imagesInput(ctx, n, c, h, w), 0.05);
    const which = r.int(0, 2);
    const later = r.chance(0.3); // the Promise variant
    if (which === 0) return async () => {
      const out = await (later ? lib.augmentAsync : lib.augment)(images, pipeline(ctx), options(ctx, [['seed', () => r.pick([0, 7, 2 ** 53, 123n])], ['epoch', () => r.int(0, 3)], ['views', () => r.int(1, 3)], ['threads', () => r.int(1, 2)], ['output', () => r.pick(['array', 'tensor'])]]));
      return [out instanceof Tensor ? ctx.track(out).dataSync() : out.data];
    };
    if (which === 1) return async () => {
      const list = Array.from({ length: r.int(0, 4) }, () => (r.chance(0.15) ? treacherous(ctx, augmentOp(ctx, h, w)) : augmentOp(ctx, h, w)));
      const out = await (later ? lib.applyAugmentOpsAsync : lib.applyAugmentOps)(images, maybe(ctx, list, 0.03), options(ctx, [['size', () => [r.int(1, 9), r.int(1, 9)]], ['threads', () => r.int(1, 2)], ['output', () => r.pick(['array', 'tensor'])], ['fill', () => r.float()]]));
      return [out instanceof Tensor ? ctx.track(out).dataSync() : out.data];
    };
    return () => { const ops = lib.drawAugmentOps(maybe(ctx, [r.pick([n, 1e6, 70000]), c, h, w], 0.1), pipeline(ctx), options(ctx, [['seed', () => r.int(0, 9)], ['views', () => r.int(1, 4)]])); return [Float32Array.from(JSON.stringify(ops).match(/-?\d+(\.\d+)?(e[-+]?\d+)?/g) ?? [], Number)]; };
  }],
  ['philox', 2, (ctx) => {
    const r = ctx.r;
    return r.pick([
      () => lib.philox4x32(maybe(ctx, [r.int(0, 9), 0, 0, 0]), maybe(ctx, [1, 2])),
      // n is not drawn from the hostile numbers: 2^31 is a valid size whose permutation takes 8 GB.
      () => lib.permutation(r.chance(0.1) ? r.pick([-1, 0.5, NaN, 2 ** 32, 'x', null]) : r.int(0, 100), maybe(ctx, r.int(0, 9)), maybe(ctx, r.int(0, 3))),
      () => { const s = new lib.PhiloxStream(maybe(ctx, r.int(0, 9)), r.int(0, 9)); for (const k of Object.getOwnPropertyNames(Object.getPrototypeOf(s))) if (k !== 'constructor' && typeof s[k] === 'function') s[k](maybe(ctx, r.int(0, 9))); },
    ]);
  }],
  ['data', 4, (ctx) => {
    const r = ctx.r;
    const n = r.int(1, 12);
    const set = { images: bytes(ctx, n * 4), shape: [n, 1, 2, 2], labels: Int32Array.from({ length: n }, () => r.int(0, 3)), numClasses: 4, classNames: null };
    return r.pick([
      () => { for (const b of lib.batches(maybe(ctx, set, 0.03), options(ctx, [['batchSize', () => r.int(1, 5)], ['shuffle', () => r.chance(0.5)], ['seed', () => r.int(0, 9)], ['dropLast', () => r.chance(0.5)]]), maybe(ctx, r.int(0, 4))) && b.images.length >= 0) break; },
      () => lib.batchCount(maybe(ctx, n), maybe(ctx, r.int(1, 4)), r.chance(0.5)),
      () => lib.gatherBatch(set, maybe(ctx, Uint32Array.from({ length: r.int(0, 5) }, () => r.int(0, n)))),
      () => lib.takeImages(set, maybe(ctx, [r.int(-1, n)])),
      () => lib.headImages(set, maybe(ctx, r.int(0, n + 2))),
      () => lib.parseIdx(maybe(ctx, r.chance(0.5) ? lib.encodeIdx([n, 2, 2], bytes(ctx, n * 4)).map((b) => (r.chance(0.05) ? r.int(0, 255) : b)) : bytes(ctx, r.int(0, 40))), maybe(ctx, 'fuzz.idx')),
      () => lib.encodeIdx(maybe(ctx, [n, 2]), maybe(ctx, bytes(ctx, n * 2))),
      () => { const f = scratchFile(ctx, r.chance(0.5) ? lib.encodeIdx([n], bytes(ctx, n)) : bytes(ctx, r.int(0, 30))); return lib.readIdx(maybe(ctx, f)); },
      () => lib.readIdxPair(maybe(ctx, scratchFile(ctx, bytes(ctx, 20))), scratchFile(ctx, bytes(ctx, 9))),
      () => lib.readCifar(maybe(ctx, { kind: r.pick(['cifar10', 'cifar100']), files: [scratchFile(ctx, bytes(ctx, r.pick([3073, 3074, 100, 0])))], classNamesFile: null, coarseNamesFile: null }), options(ctx, [['labels', () => r.pick(['fine', 'coarse'])]])),
      () => lib.loadFolder(maybe(ctx, scratchDir()), maybe(ctx, r.pick(['train', 'test']))),
      () => lib.loadImageSet(maybe(ctx, r.pick([scratchDir(), 'fashion-mnist-nope'])), maybe(ctx, 'train')),
    ]);
  }],
  ['nn.ops', 10, (ctx) => {
    const r = ctx.r;
    const N = r.int(1, 4), C = r.int(1, 3), H = r.int(1, 6), W = r.int(1, 6), D = r.int(1, 8);
    const scale = r.pick([1, 1, 1e-30, 1e30, 3e38]);
    const op = r.pick(['linear', 'conv2d', 'batchNorm', 'relu', 'add', 'reshape', 'flatten', 'maxPool2d', 'globalAvgPool', 'l2Normalize', 'crossEntropy', 'supcon']);
    if (process.env.SUPCON_FUZZ_TRACE) fs.writeSync(2, `  op ${op}\n`);
    const backward = (y) => { if (y && r.chance(0.5) && y.shape.length === 0) y.backward(); else if (y && r.chance(0.3)) nn.ops.supcon !== undefined; return y; };
    const go = () => {
      switch (op) {
        case 'linear': return nn.ops.linear(variableOf(ctx, [N, D], scale), maybe(ctx, variableOf(ctx, [C, D])), r.chance(0.5) ? null : variableOf(ctx, [C]));
        case 'conv2d': return nn.ops.conv2d(variableOf(ctx, [N, C, H, W], scale), maybe(ctx, variableOf(ctx, [r.int(1, 3), C, r.int(1, 3), r.int(1, 3)])), null, options(ctx, [['stride', () => r.int(1, 3)], ['padding', () => r.int(0, 2)]]));
        case 'batchNorm': return nn.ops.batchNorm(variableOf(ctx, [N + 1, C, H]), variableOf(ctx, [C]), variableOf(ctx, [C]), maybe(ctx, r.chance(0.5) ? null : floatTensor(ctx, [C])), r.chance(0.5) ? null : floatTensor(ctx, [C]), maybe(ctx, { training: r.chance(0.5), eps: r.pick([1e-5, 5e-324, 1e-46]), momentum: r.float() }));
        case 'relu': return nn.ops.relu(maybe(ctx, variableOf(ctx, [N, D])));
        case 'add': return nn.ops.add(variableOf(ctx, [N, D]), maybe(ctx, variableOf(ctx, [N, D])));
        case 'reshape': return nn.ops.reshape(variableOf(ctx, [N, D]), maybe(ctx, r.pick([[-1], [D, N], [N * D, 1], [-1, -1], [0.5, 2]])));
        case 'flatten': return nn.ops.flatten(variableOf(ctx, [N, C, H]));
        case 'maxPool2d': return nn.ops.maxPool2d(variableOf(ctx, [N, C, H, W]), maybe(ctx, { kernelSize: r.int(1, 3), stride: r.int(1, 2), padding: r.int(0, 1) }));
        case 'globalAvgPool': return nn.ops.globalAvgPool(variableOf(ctx, [N, C, H, W], scale));
        case 'l2Normalize': { const y = nn.ops.l2Normalize(variableOf(ctx, [N, D], scale), maybe(ctx, r.pick([1e-12, 1e-6, 1]), 0.2)); ctx.check = [y.value.dataSync()]; return y; }
        case 'crossEntropy': return nn.ops.crossEntropy(variableOf(ctx, [N, C]), maybe(ctx, Int32Array.from({ length: N }, () => r.int(0, C - 1))));
        default: return nn.ops.supcon(variableOf(ctx, [N * 2, D], scale), r.chance(0.5) ? null : Int32Array.from({ length: N }, () => r.int(0, 2)), maybe(ctx, { views: 2, normalize: r.chance(0.5) }));
      }
    };
    return () => {
      const y = go();
      if (y && typeof y.dispose === 'function') ctx.tensors.push(y);
      backward(y);
      return ctx.check;
    };
  }],
  ['nn.modules', 5, (ctx) => {
    const r = ctx.r;
    return () => {
      const { m, inF } = tinyModule(ctx);
      const y = m.forward(maybe(ctx, floatTensor(ctx, [r.int(2, 5), inF])));
      ctx.tensors.push(y);
      if (r.chance(0.3)) {
        const bytesOut = nn.moduleToSafetensors(m, maybe(ctx, r.chance(0.5) ? undefined : { a: 'b' }, 0.05));
        const damaged = r.chance(0.5) ? bytesOut.map((b) => (r.chance(0.01) ? r.int(0, 255) : b)) : bytesOut.subarray(0, r.int(0, bytesOut.length));
        nn.loadSafetensors(m, maybe(ctx, damaged, 0.05));
      }
      if (r.chance(0.2)) nn.parseSafetensors(maybe(ctx, bytes(ctx, r.int(0, 64))));
      if (r.chance(0.2)) nn.serializeSafetensors(maybe(ctx, [{ name: 'w', dtype: r.pick(['F32', 'I64', 'F16']), shape: [r.int(0, 3)], data: bytes(ctx, r.pick([0, 4, 8, 12])) }]));
      m.train(maybe(ctx, r.chance(0.5), 0.05));
    };
  }],
  ['nn.optim', 5, (ctx) => {
    const r = ctx.r;
    return () => {
      const { m, inF } = tinyModule(ctx);
      const kind = r.pick(['SGD', 'LARS', 'AdamW', 'RMSProp']);
      const o = options(ctx, [['lr', () => r.pick([0.1, 0, 1e30])], ['momentum', () => r.pick([0, 0.9, 1])], ['weightDecay', () => r.pick([0, 1e-4])], ['eps', () => r.pick([1e-8, 5e-324])], ['nesterov', () => r.chance(0.5)], ['beta1', () => r.pick([0.9, 1])]]);
      const opt = new nn[kind](maybe(ctx, m, 0.03), kind === 'SGD' || kind === 'LARS' ? { lr: 0.1, ...o } : o);
      ctx.tensors.push({ dispose: () => opt.dispose() });
      const y = m.forward(floatTensor(ctx, [3, inF]));
      ctx.tensors.push(y);
      const loss = nn.ops.crossEntropy(y, Int32Array.from({ length: 3 }, () => 0));
      ctx.tensors.push(loss);
      loss.backward();
      opt.step();
      const state = opt.stateDict();
      const junk = r.pick([null, 'x', { ...state, stepCount: -1 }, { ...state, slots: [['0.x', new Float32Array(2)]] }, { ...state, slots: state.slots.map(([k, d]) => [k, d.map(() => NaN)]) }, state]);
      opt.loadStateDict(maybe(ctx, junk, 0.05));
      if (r.chance(0.3)) (r.chance(0.5) ? nn.warmupCosine : nn.stepDecay)(maybe(ctx, { baseLr: r.pick([0.1, -1, NaN]), totalSteps: r.int(0, 9), warmupSteps: r.int(0, 3), milestones: [r.int(-1, 4)], gamma: 0.1 }))(maybe(ctx, r.int(-1, 12)));
    };
  }],
  ['misc', 3, (ctx) => {
    const r = ctx.r;
    return r.pick([
      () => lib.devices(), () => lib.backendInfo(), () => lib.cudaStatus(),
      () => lib.setCpuKernels(maybe(ctx, r.pick(lib.backendInfo().cpuKernelsAvailable), 0.2)),
      () => lib.fmaPeakGflops(maybe(ctx, r.int(1, 2), 0.1), maybe(ctx, 0.001, 0.2) === 0.001 ? 0.001 : r.pick([-1, NaN, 1e9, 'x'])),
      () => lib.registerTrainer(maybe(ctx, 'fuzz-' + r.int(0, 3), 0.3), maybe(ctx, () => ({}), 0.3)),
      () => new lib.SupconTrainer(hostile(ctx)),
      () => lib.linearEvaluation(maybe(ctx, { data: floats(ctx, 12), labels: Int32Array.from({ length: 4 }, () => r.int(0, 1)) }), { data: floats(ctx, 6), labels: Int32Array.from({ length: 2 }) }, maybe(ctx, { dim: 3, classes: 2, epochs: 1, seed: 1 })),
      () => { const e = lib.makeEncoder(maybe(ctx, r.pick(['convnet', 'mlp', 'nope']), 0.1), maybe(ctx, [1, 6, 6], 0.1), 1); ctx.tensors.push(e); },
      () => new lib.SupconForward(hostile(ctx), hostile(ctx)),
      () => lib.tidy(maybe(ctx, () => ctx.track(Tensor.zeros([2])), 0.3)),
      () => lib.keep(hostile(ctx)),
    ]);
  }],
  ['native', 14, (ctx) => {
    // The addon is callable on its own: every raw function with positional arguments from the grammar.
    const r = ctx.r;
    const k = r.int(1, 40);
    const i = () => maybe(ctx, r.int(0, 8), 0.15);
    const f = () => maybe(ctx, r.pick([1, 0.5, -1, 0, 1e-5]), 0.1);
    const s = () => storageArg(ctx, k);
    // A backward pass's overwrite flag (write a fresh dx instead of adding into it).
    const ow = () => maybe(ctx, r.chance(0.5), 0.15);
    const desc = () => maybe(ctx, { N: i(), C: i(), H: i(), W: i(), K: i(), R: i(), S: i(), strideH: i(), strideW: i(), padH: i(), padW: i(), L: i(), eps: f(), momentum: f() }, 0.1);
    const opt = () => maybe(ctx, { lr: f(), momentum: f(), dampening: f(), weightDecay: f(), nesterov: r.chance(0.5), firstStep: r.chance(0.5), trustCoefficient: f(), eps: f(), adapt: r.chance(0.5), beta1: f(), beta2: f(), step: i(), alpha: f() }, 0.1);
    const spec = () => (r.chance(0.15) ? (x) => treacherous(ctx, x) : (x) => x)(maybe(ctx, { dtype: r.pick(['uint8', 'float32']), n: i(), channels: r.pick([1, 3, 2]), height: i(), width: i(), outHeight: i(), outWidth: i(), views: i(), seedLow: i(), seedHigh: i(), epoch: i() }, 0.1));
    const calls = [
      () => native.nn.gemm(r.chance(0.5), r.chance(0.5), i(), i(), i(), f(), s(), i(), s(), i(), f(), s(), i()),
      () => native.nn.linearForward(s(), s(), r.chance(0.5) ? null : s(), s(), i(), i(), i()),
      () => native.nn.linearBackward(s(), s(), s(), s(), null, s(), i(), i(), i(), undefined, undefined, ow()),
      () => native.nn.conv2dForward(desc(), s(), s(), null, s()),
      () => native.nn.conv2dBackward(desc(), s(), s(), s(), s(), s(), null, undefined, undefined, ow()),
      () => native.nn.batchNormForward(desc(), r.chance(0.5), s(), s(), s(), s(), s(), s(), s(), s()),
      () => native.nn.batchNormBackward(desc(), r.chance(0.5), s(), s(), s(), s(), s(), s(), s(), s(), undefined, r.chance(0.5) ? s() : undefined, ow()),
      () => native.nn.reluForward(s(), s(), i()), () => native.nn.reluBackward(s(), s(), s(), i(), undefined, ow()),
      () => native.nn.add(s(), s(), s(), i()), () => native.nn.addInto(s(), s(), i()), () => native.nn.copyFloats(s(), s(), i()),
      () => native.nn.fill(s(), i(), f()),
      () => native.nn.maxPool2dForward(desc(), s(), s(), storageArg(ctx, k)), () => native.nn.maxPool2dBackward(desc(), s(), s(), s()),
      () => native.nn.globalAvgPoolForward(s(), s(), i(), i()), () => native.nn.globalAvgPoolBackward(s(), s(), i(), i()),
      () => native.nn.l2NormalizeForward(s(), s(), s(), i(), i(), f()), () => native.nn.l2NormalizeBackward(s(), s(), s(), s(), i(), i(), f()),
      () => native.nn.crossEntropyForward(s(), maybe(ctx, Int32Array.from({ length: 4 }, () => r.int(-1, 4))), i(), i()),
      () => native.nn.crossEntropyBackward(s(), maybe(ctx, Int32Array.from({ length: 4 }, () => r.int(-1, 4))), i(), i(), f(), s()),
      () => native.nn.fillNormal(s(), i(), f(), f(), i()), () => native.nn.fillUniform(s(), i(), f(), f(), i()),
      () => native.nn.sgdStep(s(), s(), s(), i(), opt()), () => native.nn.larsStep(s(), s(), s(), i(), opt()),
      () => native.nn.adamwStep(s(), s(), s(), s(), i(), opt()), () => native.nn.rmspropStep(s(), s(), s(), s(), i(), opt()),
      () => native.nn.l2Norm(s(), i()),
      () => { const c = native.lossForward(s(), i(), i(), i(), maybe(ctx, null, 0.2), maybe(ctx, null, 0.1), maybe(ctx, {}, 0.3)); ctx.tensors.push(c); native.lossBackward(maybe(ctx, c, 0.1), f(), s(), maybe(ctx, undefined, 0.2)); },
      () => native.lossUnfused(maybe(ctx, floats(ctx, k), 0.1), i(), i(), i(), null, f(), f(), floats(ctx, k)),
      () => { const c = native.lossForward(s(), i(), i(), i(), null, null, maybe(ctx, {}, 0.3)); ctx.tensors.push(c); native.lossValueInto(maybe(ctx, c, 0.2), s()); },
      () => native.nn.knnTopK(maybe(ctx, floats(ctx, k), 0.1), s(), maybe(ctx, new Int32Array(r.int(0, 20)), 0.2), s(), i(), i(), i(), i(), maybe(ctx, undefined, 0.2)),
      () => { const img = maybe(ctx, r.chance(0.5) ? bytes(ctx, k) : ctx.track(Tensor.from(bytes(ctx, k), [k])).storage, 0.2); return native.augmentOps(img, spec(), maybe(ctx, [treacherous(ctx, augmentOp(ctx, 4, 4))], 0.1), maybe(ctx, undefined, 0.2), s()); },
      () => native.augmentPipeline(maybe(ctx, bytes(ctx, k), 0.2), spec(), maybe(ctx, {}, 0.3), maybe(ctx, undefined, 0.2), s()),
      () => native.augmentDraw(spec(), maybe(ctx, { flip: 0.5, grayscale: 0, crop: null }, 0.3)),
      () => native.lossForwardAsync(s(), i(), i(), i(), maybe(ctx, null, 0.2), maybe(ctx, null, 0.1), maybe(ctx, {}, 0.3)).then((c) => {
        ctx.tensors.push(c);
        const pending = native.lossBackwardAsync(maybe(ctx, c, 0.1), f(), s(), maybe(ctx, undefined, 0.2));
        if (r.chance(0.3)) c.dispose();
        return pending;
      }),
      () => { const img = maybe(ctx, r.chance(0.5) ? bytes(ctx, k) : ctx.track(Tensor.from(bytes(ctx, k), [k])).storage, 0.2); const mine = r.chance(0.5) ? ctx.track(Tensor.zeros([r.int(1, 4) * 64])).storage : null; const p = native.augmentOpsAsync(img, spec(), maybe(ctx, [treacherous(ctx, augmentOp(ctx, 4, 4))], 0.1), maybe(ctx, undefined, 0.2), mine ?? s()); if (mine !== null && r.chance(0.5)) mine.dispose(); return p; },
      () => native.augmentPipelineAsync(maybe(ctx, bytes(ctx, k), 0.2), spec(), maybe(ctx, {}, 0.3), maybe(ctx, undefined, 0.2), s()),
      () => native.philox4x32(i(), i(), i(), i(), i(), i()),
      () => { const st = new native.Storage(maybe(ctx, r.int(0, 64), 0.2), maybe(ctx, undefined, 0.1), maybe(ctx, r.chance(0.5) ? false : undefined, 0.1)); ctx.tensors.push(st); st.write(maybe(ctx, floats(ctx, r.int(0, 20)), 0.2), i()); st.read(maybe(ctx, new Float32Array(r.int(0, 20)), 0.2), i()); },
      () => native.cpuKernels(maybe(ctx, undefined, 0.3)), () => native.memory(),
      () => native.cudaGemm(r.chance(0.5), r.chance(0.5), i(), i(), i(), f(), s(), i(), s(), i(), f(), s(), i()),
    ];
    return r.pick(calls);
  }],
];

const totalWeight = targets.reduce((s, t) => s + t[1], 0);

let scratch = null;
function scratchDir() {
  if (scratch === null) scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'supcon-fuzz-'));
  return scratch;
}
let files = 0;
function scratchFile(ctx, content) {
  const f = path.join(scratchDir(), `f${files++ % 8}${ctx.r.pick(['', '.gz', '-ubyte'])}`);
  fs.writeFileSync(f, content);
  return f;
}
export function removeScratch() {
  if (scratch !== null) fs.rmSync(scratch, { recursive: true, force: true });
}

// SUPCON_FUZZ_SELF_TEST='crash:I,hang:J' turns calls I and J into an abort and an endless
// loop: the harness's own test (test/fuzz.test.ts) that crashes and hangs are caught.
const selfTest = new Map((process.env.SUPCON_FUZZ_SELF_TEST ?? '').split(',').filter(Boolean).map((e) => {
  const [kind, at] = e.split(':');
  return [Number(at), kind];
}));

/** Call i of `seed`: { name, run() -> outputs to check or undefined, ctx }. */
export function makeCall(seed, index) {
  const planted = selfTest.get(index);
  if (planted === 'crash') return { name: 'self-test', run: () => process.abort(), ctx: new Context(rngFor(seed, index)) };
  if (planted === 'hang') return { name: 'self-test', run: () => { for (;;); }, ctx: new Context(rngFor(seed, index)) };
  if (planted === 'nonfinite') { const ctx = new Context(rngFor(seed, index)); return { name: 'self-test', run: () => [new Float32Array([1, NaN])], ctx }; }
  const r = rngFor(seed, index);
  const ctx = new Context(r);
  let w = r.float() * totalWeight;
  let target = targets[0];
  for (const t of targets) {
    w -= t[1];
    if (w < 0) { target = t; break; }
  }
  if (process.env.SUPCON_FUZZ_TRACE) fs.writeSync(2, `call ${index}: ${target[0]}\n`);
  let run;
  try {
    run = target[2](ctx);
    if (process.env.SUPCON_FUZZ_TRACE) fs.writeSync(2, `  ${String(run).slice(0, 160)}\n`);
  } catch (e) {
    // Building the arguments threw (a hostile value met a helper): the call is that throw.
    run = () => { throw e; };
  }
  return { name: target[0], run, ctx };
}

export { allFinite, lib };
