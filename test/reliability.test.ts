// Reliability regressions (docs/RELIABILITY.md): arguments read once before any pointer is
// taken, finite inputs that give finite outputs (or a RangeError), no hangs, no leaks on
// error, errors that name the argument. Each test fails on the code before its fix.
import v8 from 'node:v8';
import { describe, expect, it } from 'vitest';
import {
  applyAugmentOps, augment, batchCount, batches, drawAugmentOps, emptyCache, gemm, knnNeighbours, knnPredict, memory, nn,
  parseIdx, pipelines, readCifar, supconForward, supconLoss, Tensor,
} from '../dist/index.js';
import { native } from '../dist/lib/native.js';
import { randomLabels, randomNormal, referenceLoss, rng } from './reference';
import { l2NormalizeRef } from './nn-reference';

const { ops, SGD, Linear, serializeSafetensors } = nn;

function images(n: number, c: number, h: number, w: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n * c * h * w }, () => r());
}

describe('arguments are read into plain values before any pointer is taken', () => {
  it('a getter of an op that disposes the input tensor: a RangeError, not stale pixels', () => {
    const before = memory().numTensors;
    const img = Tensor.from(images(2, 3, 9, 7, 1), [2, 3, 9, 7]);
    const op = { op: 'brightness', get factor() { img.dispose(); return 1.3; } };
    expect(() => applyAugmentOps(img, [op as never], { output: 'array' })).toThrow(/images: the tensor has been disposed/);
    expect(memory().numTensors).toBe(before);
  });

  it('a getter that detaches the input array: a RangeError naming images', () => {
    const data = images(2, 1, 8, 8, 2);
    const op = { op: 'gaussianBlur', kernelSize: 3, get sigma() { structuredClone(data.buffer, { transfer: [data.buffer] }); return 1; } };
    expect(() => applyAugmentOps({ data, shape: [2, 1, 8, 8] }, [op as never])).toThrow(RangeError);
    expect(data.length).toBe(0);
  });

  it('a getter in the transform options that disposes the output tensor', () => {
    const img = images(1, 3, 6, 6, 3);
    const out = Tensor.zeros<'float32'>([1, 1, 3, 6, 6]);
    const opts = { get fill() { out.dispose(); return 0; } };
    expect(() => native.augmentOps(img, { dtype: 'float32', n: 1, channels: 3, height: 6, width: 6, outHeight: 6, outWidth: 6 },
      [{ op: 'invert' }], opts, out.storage)).toThrow(/out: the tensor has been disposed/);
  });

  it('loss options whose getter disposes the features: a RangeError', () => {
    const t = Tensor.from(randomNormal(4 * 2 * 3, rng(4)), [4, 2, 3]);
    const opts = { get temperature() { t.dispose(); return 0.1; } };
    expect(() => native.lossForward(t.storage, 4, 2, 3, null, null, opts as never)).toThrow(/features: the tensor has been disposed/);
  });

  it('kNN training rows detached before the search: a RangeError, not a read of freed memory', () => {
    const train = randomNormal(10 * 4, rng(5)), test = randomNormal(3 * 4, rng(6));
    structuredClone(train.buffer, { transfer: [train.buffer] });
    expect(() => native.nn.knnTopK(train, test, new Int32Array(6), new Float32Array(6), 10, 3, 4, 2, 1)).toThrow(/train: expected at least 40 floats, got 0/);
  });

  it('a storage is recognised without running JavaScript (no Symbol.hasInstance, no proxy trap)', () => {
    const t = Tensor.zeros<'float32'>([4]);
    let trapped = 0;
    const proxy = new Proxy(t.storage, { getPrototypeOf: (target) => { trapped++; return Reflect.getPrototypeOf(target); } });
    expect(() => native.nn.fill(proxy, 4, 1)).toThrow(TypeError);
    expect(trapped).toBe(0);
    t.dispose();
  });

  it('a shape is read once: a Proxy that answers differently on a second read cannot pass', () => {
    const reads = new Map<PropertyKey, number>();
    const shape = new Proxy([2, 3], {
      get(target, key, receiver) {
        const k = reads.get(key) ?? 0;
        reads.set(key, k + 1);
        // Valid the first time, hostile after: [-2, -3], then [0.5, 12] for the data path.
        if (typeof key === 'string' && /^\d+$/.test(key) && k > 0) return -Reflect.get(target, key, receiver);
        return Reflect.get(target, key, receiver);
      },
    });
    const t = Tensor.zeros(shape);
    expect(t.shape).toEqual([2, 3]);
    expect(t.size).toBe(6);
    t.dispose();
    let n = 0;
    const lying = new Proxy([3, 2], { get: (target, key, r) => (key === '0' && n++ > 0 ? 0.5 : Reflect.get(target, key, r)) });
    const u = Tensor.from(new Float32Array(6), lying);
    expect(u.shape).toEqual([3, 2]);
    u.dispose();
  });
});

describe('finite input gives finite output, or a RangeError that says why', () => {
  it('knnNeighbours: rows of norm below 3e-39 rank as the float64 cosine says', () => {
    const d = 6, r = rng(11);
    const train = randomNormal(20 * d, r);
    for (let k = 0; k < d; k++) train[3 * d + k] *= 1e-40; // tiny but non-zero (denormal) row
    const test = Float32Array.from(train.subarray(3 * d, 4 * d)); // the same direction, also tiny
    const nb = knnNeighbours({ data: train, dim: d }, { data: test, dim: d }, 5);
    for (const s of nb.similarity) expect(Number.isFinite(s) && Math.abs(s) <= 1 + 1e-6).toBe(true);
    expect(nb.index[0]).toBe(3);
    expect(nb.similarity[0]).toBeCloseTo(1, 4);
    const labels = Int32Array.from({ length: 20 }, (_, i) => i % 4);
    expect(knnPredict({ data: train, dim: d, labels }, { data: test, dim: d }, { k: 1 })[0]).toBe(labels[3]);
  });

  it('applyAugmentOps gaussianBlur: sigma below the pipeline range is a RangeError; at its bounds, finite pixels', () => {
    const data = images(2, 3, 10, 10, 12);
    for (const sigma of [1e-46, 1e-300, 5e-7])
      expect(() => applyAugmentOps({ data, shape: [2, 3, 10, 10] }, [{ op: 'gaussianBlur', kernelSize: 5, sigma }]))
        .toThrow(/ops\[0\]\.sigma: expected a number in \[1e-6, 1e6\]/);
    const out = applyAugmentOps({ data, shape: [2, 3, 10, 10] }, [{ op: 'gaussianBlur', kernelSize: 5, sigma: 1e-6 }]) as { data: Float32Array };
    // A kernel that narrow is the identity.
    out.data.forEach((x, i) => expect(x).toBeCloseTo(data[i], 6));
  });

  it('l2Normalize: an eps that is 0 in float32 is a RangeError; rows near the float32 maximum normalise', () => {
    const x = Tensor.from(new Float32Array([0, 0, 0, 3e38, 3e38, -3e38, 1e-45, 0, 0]), [3, 3]);
    expect(() => ops.l2Normalize(x, 5e-324)).toThrow(/eps: expected a finite number > 0/);
    expect(() => native.nn.l2NormalizeForward(x.storage, x.storage, x.storage, 1, 3, 5e-324)).toThrow(/eps: expected a number in/);
    const y = ops.l2Normalize(x);
    const want = l2NormalizeRef(Array.from(x.dataSync()), 3, 3);
    const got = y.value.dataSync();
    got.forEach((v, i) => expect(v).toBeCloseTo(want[i], 6));
    expect(got[3]).toBeCloseTo(1 / Math.sqrt(3), 6); // not 0 (an Infinity norm)
    y.value.dispose();
    x.dispose();
  });

  it('gemm: an alpha or beta past the float32 range is a RangeError, not [Infinity, NaN]', () => {
    const A = new Float32Array([1, 0, 0, 1]), B = new Float32Array([1, 2, 0, 0]), C = new Float32Array(4);
    expect(() => gemm(2, 2, 2, A, B, C, { alpha: 1e300 })).toThrow(/alpha: expected a finite number that float32 can hold/);
    expect(() => gemm(2, 2, 2, A, B, C, { beta: -1e39 })).toThrow(/beta: expected a finite number that float32 can hold/);
    expect(() => native.nn.fill(Tensor.zeros([2]).storage, 2, 1e300)).toThrow(/value: expected a finite number/);
    const small = new Float32Array([1e-38, 2e-38, 0, 0]);
    gemm(2, 2, 2, A, small, C, { alpha: 3e38 });
    expect(C[0]).toBeCloseTo(3, 5);
    expect(C[1]).toBeCloseTo(6, 5);
  });

  // Scaled so that the largest feature is `top` (3e38: next to the float32 maximum, where a
  // float32 sum of squares overflowed and the loss fell to log(B - 1) with a zero gradient).
  it.each([1, 3e38, 1e-9])('supconLoss with normalize is scale-invariant on the CPU (largest feature %s)', (top) => {
    const n = 8, v = 2, d = 16, r = rng(13);
    const base = randomNormal(n * v * d, r);
    const labels = randomLabels(n, 3, r);
    const scale = top / Math.max(...base.map(Math.abs));
    const x = Float32Array.from(base, (t) => t * scale);
    expect(x.every(Number.isFinite)).toBe(true);
    const opts = { temperature: 0.1, normalize: true };
    const got = supconLoss({ data: x, shape: [n, v, d] }, labels, opts);
    const want = referenceLoss(base, n, v, d, labels, null, opts);
    expect(got.loss).toBeCloseTo(want.loss, 4);
    const g = got.grad as Float32Array;
    const peak = Math.max(...want.grad.map(Math.abs));
    // d loss / d (s x) = (d loss / d x) / s.
    g.forEach((gk, k) => expect(Math.abs(gk * scale - want.grad[k])).toBeLessThan(2e-3 * peak));
    expect(g.some((gk) => gk !== 0)).toBe(true);
  });
});

describe('no hangs: work proportional to the size, or a RangeError past a limit', () => {
  it('arraySync of a shape with no values but 2^31 sub-arrays is a RangeError', () => {
    const t = Tensor.zeros([2 ** 31, 0]);
    expect(() => t.arraySync()).toThrow(/arraySync: shape \[2147483648, 0\] needs more than/);
    t.dispose();
    const u = Tensor.zeros([3, 0, 2]);
    expect(u.arraySync()).toEqual([[], [], []]);
    u.dispose();
  });

  it('drawAugmentOps refuses more than MAX_DRAWN_PROGRAMS op lists at once, and slices of indices agree', () => {
    const p = pipelines.simclr({ size: 16 });
    const t0 = Date.now();
    expect(() => drawAugmentOps([1e6, 3, 16, 16], p)).toThrow(/more than the 65536 drawAugmentOps returns in one call/);
    expect(Date.now() - t0).toBeLessThan(1000);
    const all = drawAugmentOps([6, 3, 16, 16], p, { seed: 9 });
    const tail = drawAugmentOps([2, 3, 16, 16], p, { seed: 9, indices: [4, 5] });
    expect(tail).toEqual(all.slice(4));
  });
});

describe('batches(set, options, startBatch)', () => {
  const set = { images: new Uint8Array(10 * 4), shape: [10, 1, 2, 2] as [number, number, number, number], labels: Int32Array.from({ length: 10 }, (_, i) => i), numClasses: 10, classNames: null };
  it.each([-2, 1.5, NaN, 5, '1'])('refuses startBatch %s with a RangeError', (start) => {
    expect(() => [...batches(set, { batchSize: 3 }, start as number)]).toThrow(/startBatch: expected an integer in \[0, 4\]/);
  });
  it('resuming at b yields the tail of the full epoch; at the end, nothing', () => {
    const opts = { batchSize: 3, seed: 4, epoch: 2 };
    const full = [...batches(set, opts)].map((b) => Array.from(b.indices));
    expect(full.length).toBe(batchCount(10, 3));
    for (let b = 0; b <= full.length; b++) expect([...batches(set, opts, b)].map((x) => Array.from(x.indices))).toEqual(full.slice(b));
  });
});

describe('a failing call frees what it allocated, at once', () => {
  it('batchNorm with a disposed running statistic: no tensors left behind', () => {
    const x = Tensor.from(randomNormal(4 * 3, rng(20)), [4, 3]);
    const w = Tensor.from(new Float32Array([1, 1, 1]), [3]), b = Tensor.zeros<'float32'>([3]);
    const rm = Tensor.zeros<'float32'>([3]), rv = Tensor.from(new Float32Array([1, 1, 1]), [3]);
    rm.dispose();
    const before = memory();
    for (let i = 0; i < 200; i++) expect(() => ops.batchNorm(x, w, b, rm, rv, { training: true })).toThrow(/tensor: it has been disposed/);
    const after = memory();
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.cpu.storages).toBe(before.cpu.storages);
    for (const t of [x, w, b, rv]) t.dispose();
  });

  it('ops whose kernel refuses a value dispose their outputs (l2Normalize, gemm-backed linear)', () => {
    const x = Tensor.from(randomNormal(6, rng(21)), [2, 3]);
    const before = memory().numTensors;
    for (let i = 0; i < 50; i++) expect(() => native.nn.l2NormalizeForward(x.storage, x.storage, x.storage, 2, 3, 1e-300)).toThrow(RangeError);
    expect(memory().numTensors).toBe(before);
    x.dispose();
  });

  it('Tensor.from on a SharedArrayBuffer-backed array works, and leaves nothing when it fails', () => {
    const shared = new Float32Array(new SharedArrayBuffer(4 * 5));
    shared.set([1, -2, 3.5, 0, 7]);
    const t = Tensor.from(shared, [5]);
    expect(Array.from(t.dataSync())).toEqual([1, -2, 3.5, 0, 7]);
    const out = new Float32Array(new SharedArrayBuffer(20));
    t.storage.read(out, 0);
    expect(Array.from(out)).toEqual([1, -2, 3.5, 0, 7]);
    t.dispose();
    const before = memory();
    for (let i = 0; i < 500; i++) expect(() => Tensor.from(shared, [2, 2])).toThrow(RangeError);
    expect(memory().numTensors).toBe(before.numTensors);
    expect(memory().cpu.storages).toBe(before.cpu.storages);
  });
});

describe('errors name the argument, what was expected and what came', () => {
  it('Tensor.from with an unknown dtype', () => {
    expect(() => Tensor.from([1, 2], [2], { dtype: 'float64' as never })).toThrow(/options.dtype: expected one of 'float32', 'int32', 'uint8', got string 'float64'/);
    expect(() => Tensor.from([1, 2], [2], null as never)).toThrow(/options: expected an object, got null/);
  });

  it('readCifar, parseIdx and serializeSafetensors with wrong argument types', () => {
    expect(() => readCifar(null as never)).toThrow(TypeError);
    expect(() => readCifar(null as never)).toThrow(/found: expected the result of findCifarFiles/);
    expect(() => readCifar({ kind: 'cifar11', files: [] } as never)).toThrow(/found.kind: expected 'cifar10' or 'cifar100'/);
    expect(() => readCifar({ kind: 'cifar10', files: [3] } as never)).toThrow(/found.files: expected a non-empty array of path strings/);
    expect(() => parseIdx('not bytes' as never, 'x')).toThrow(/bytes: expected a Uint8Array, got string/);
    expect(() => parseIdx(new Uint8Array(8), 7 as never)).toThrow(/file: expected a string/);
    expect(() => serializeSafetensors(null as never)).toThrow(/entries: expected an array/);
    expect(() => serializeSafetensors([{ name: 'a', dtype: 'F32', shape: [1], data: [1, 2, 3, 4] }] as never)).toThrow(/entries\[0\].data: expected a Uint8Array/);
    expect(() => serializeSafetensors([{ name: 'a', dtype: 'F16', shape: [1], data: new Uint8Array(2) }] as never)).toThrow(/entries\[0\].dtype/);
  });

  it('loadStateDict(junk) names the part of the state that is wrong, and changes nothing', () => {
    const layer = new Linear(3, 2);
    const opt = new SGD(layer, { lr: 0.1, momentum: 0.9 });
    const good = opt.stateDict();
    for (const [junk, message] of [
      [null, /state: expected \{ stepCount, lr, slots, counts \}/],
      ['x', /state: expected/],
      [{ ...good, stepCount: -1 }, /state.stepCount/],
      [{ ...good, lr: NaN }, /state.lr/],
      [{ ...good, slots: 3 }, /state.slots: expected an array/],
      [{ ...good, slots: [['0.momentum', [1, 2]]] }, /state.slots\[0\]: expected \[key, Float32Array\]/],
      [{ ...good, slots: [['0.momentum', new Float32Array(6).fill(NaN)]] }, /state.slots\[0\] \('0.momentum'\): value 0 is NaN/],
      [{ ...good, counts: [[0, -1]] }, /state.counts\[0\]/],
    ] as const)
      expect(() => opt.loadStateDict(junk as never)).toThrow(message);
    expect(opt.stepCount).toBe(good.stepCount);
    opt.dispose();
    layer.dispose();
  });
});

describe('memory a long run keeps is bounded (docs/RELIABILITY.md, the soak)', () => {
  it("a loop of loss and augment calls leaves nothing in V8's old generation (no object spread on the call path)", () => {
    // Objects built by object spread were allocated in the old generation: 1.4 KB a loss call
    // that only a full collection frees, 37 MB of RSS in a 20,000-call soak.
    const features = { data: randomNormal(8 * 2 * 16, rng(31)), shape: [8, 2, 16] };
    const labels = Int32Array.from({ length: 8 }, (_, i) => i % 3);
    const data = images(2, 3, 8, 8, 32);
    const pipeline = pipelines.simclr({ size: 8 });
    const oldSpace = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!.space_used_size;
    const calls = (k: number) => {
      for (let i = 0; i < k; i++) {
        supconLoss(features, labels, { temperature: 0.1, normalize: true, threads: 1 });
        const f = supconForward(features, null, { threads: 1 });
        f.dispose();
        augment({ data, shape: [2, 3, 8, 8] }, pipeline, { seed: i, threads: 1 });
      }
    };
    calls(300); // the warm-up: the functions optimised, their feedback in place
    const before = oldSpace();
    calls(3000);
    expect(oldSpace() - before).toBeLessThan(1.5 * 2 ** 20);
  });

  it('the host cache keeps at most twice the peak of live bytes (64 MB floor), not every size seen once', () => {
    // 300 distinct sizes of about 1 MB, one live at a time: 300 MB freed in all. After
    // emptyCache() the peak is what is live now plus one of them.
    emptyCache();
    for (let i = 0; i < 300; i++) Tensor.zeros([262144 + 16 * i]).dispose();
    const m = memory();
    expect(m.cpu.cachedBytes).toBeLessThanOrEqual(Math.max(64 * 2 ** 20, 2 * (m.cpu.bytes + 4 * (262144 + 16 * 300))));
  });

  it("the loss's scratch comes from the host cache: a second call of the same size allocates nothing new", () => {
    // Its two dozen 2-64 KB buffers came from malloc, and fragmented glibc's heap between
    // V8's small objects (12-18 MB of RSS in some runs of a loop that never yields).
    const features = { data: randomNormal(256 * 2 * 128, rng(33)), shape: [256, 2, 128] };
    const labels = randomLabels(256, 10, rng(34));
    const reference = supconLoss(features, labels, { temperature: 0.1, normalize: true, threads: 2 });
    emptyCache();
    supconLoss(features, labels, { temperature: 0.1, normalize: true, threads: 2 });
    const cached = memory().cpu.cachedBytes;
    expect(cached).toBeGreaterThan(256 * 2 * 128 * 4); // at least the normalised rows' copy
    for (let i = 0; i < 5; i++) {
      const r = supconLoss(features, labels, { temperature: 0.1, normalize: true, threads: 2 });
      expect(r.loss).toBe(reference.loss); // reused blocks start zeroed: the same bits
      expect(r.grad).toEqual(reference.grad);
    }
    expect(memory().cpu.cachedBytes).toBe(cached);
  });

  it('dispose() frees the native object too: a disposed handle waits for no finalizer', () => {
    // Node-API runs a wrapped object's finalizer only at a later turn of the event loop: a
    // loop that never yields kept about 200 bytes for every tensor it had disposed (21.8 MB
    // of RSS over the 20,000-call forward soak). A handle without its native object reads as
    // disposed, holds 0 bytes, has no device, and every call refuses it.
    const t = Tensor.from(Float32Array.of(1, 2, 3), [3]);
    const storage = t.storage as unknown as { bytes: number; device: string | null; disposed: boolean; write(a: Float32Array, o: number): void; dispose(): void };
    expect([storage.bytes, storage.device, storage.disposed]).toEqual([12, 'cpu', false]);
    t.dispose();
    expect([storage.bytes, storage.device, storage.disposed]).toEqual([0, null, true]);
    expect(() => storage.write(new Float32Array(1), 0)).toThrow(RangeError);
    expect(() => native.lossForward(storage as never, 1, 1, 3, null, null, {})).toThrow(/^features: the tensor has been disposed/);
    storage.dispose(); // twice: nothing
    const write = Object.getPrototypeOf(storage).write as (this: unknown, a: Float32Array, o: number) => void;
    expect(() => write.call({}, new Float32Array(1), 0)).toThrow(TypeError);
    const context = native.lossForward(randomNormal(4 * 2 * 3, rng(35)), 4, 2, 3, Int32Array.of(0, 1, 0, 1), null, { temperature: 0.5 });
    expect([context.device, context.disposed]).toEqual(['cpu', false]);
    context.dispose();
    expect([context.bytes, context.device, context.disposed, context.loss]).toEqual([0, null, true, undefined]);
    expect(() => native.lossBackward(context, 1, new Float32Array(24))).toThrow(/context: the loss context has been disposed/);
    context.dispose();
  });

  it('a step that frees and allocates the same sizes still reuses its blocks', () => {
    const sizes = [3_000_000, 1_000_003, 777_777];
    const first = sizes.map((n) => Tensor.zeros([n]));
    for (const t of first) t.dispose();
    const cached = memory().cpu.cachedBytes;
    expect(cached).toBeGreaterThanOrEqual(sizes.reduce((s, n) => s + 4 * n, 0));
    const again = sizes.map((n) => Tensor.zeros([n]));
    expect(memory().cpu.cachedBytes).toBeLessThanOrEqual(cached - sizes.reduce((s, n) => s + 4 * n, 0) + 64 * 3);
    expect(again.every((t) => t.dataSync().every((x) => x === 0))).toBe(true); // reused blocks are zeroed
    for (const t of again) t.dispose();
  });
});

describe('fuzzer findings', () => {
  it('a SupCon gradient that overflows float32 is a RangeError, not Infinity (the loss itself fits)', () => {
    // Found by the fuzzer (seed 3, call 7093): one sample, three views of two dims, values
    // at the float32 boundary. The loss is finite; the gradient was [Infinity, Infinity, ...].
    const x = new Float32Array([-1.401298464324817e-45, 1e-7, 3.4028234663852886e38, -1, 1e-39, 3e38]);
    const forward = supconForward({ data: x, shape: [1, 3, 2] }, null, { temperature: 1 });
    expect(Number.isFinite(forward.loss)).toBe(true);
    expect(() => forward.backward(1)).toThrow(/features: the gradient overflowed float32 at index \d+/);
    forward.dispose();
    // The same features, normalised: finite everywhere.
    const { loss, grad } = supconLoss({ data: x, shape: [1, 3, 2] }, null, { temperature: 1, normalize: true });
    expect(Number.isFinite(loss) && (grad as Float32Array).every(Number.isFinite)).toBe(true);
  });

  it('l2Norm of values past 1e19 (LARS trust ratios) is finite and exact', () => {
    const x = Tensor.from(new Float32Array([3e38, -3e38, 1e20, 0]), [4]);
    const want = Math.hypot(Math.fround(3e38), Math.fround(3e38), Math.fround(1e20));
    expect(native.nn.l2Norm(x.storage, 4) / want).toBeCloseTo(1, 6);
    x.dispose();
  });

  it('a normalisation std that is 0 in float32, or overflows (x - mean) / std, is refused', () => {
    const data = images(1, 3, 4, 4, 30);
    for (const std of [1e-46, 1e-39])
      expect(() => applyAugmentOps({ data, shape: [1, 3, 4, 4] }, [], { normalize: { mean: [0.5, 0.5, 0.5], std: [std, 1, 1] } }))
        .toThrow(/normalize.std\[0\]: .* is too small/);
    const ok = applyAugmentOps({ data, shape: [1, 3, 4, 4] }, [], { normalize: { mean: [0.5, 0.5, 0.5], std: [1e-30, 1, 1] } }) as { data: Float32Array };
    expect(ok.data.every(Number.isFinite)).toBe(true);
  });

  it('lying lengths fail at once instead of being walked: gemm sizes, MLP, reshape, takeImages, loadFolder', () => {
    const lying = new Proxy([1, 2, 3], { get: (t, k, r) => (k === 'length' ? 1e9 : Reflect.get(t, k, r)) });
    const t0 = Date.now();
    expect(() => gemm(lying as never, 1, 1, new Float32Array(1), new Float32Array(1), new Float32Array(1))).toThrow(/M: expected an integer >= 0/);
    expect(() => new nn.MLP(3, lying as never, 2)).toThrow(/hiddenDims: expected at most 1024 elements/);
    const x = Tensor.zeros<'float32'>([2, 3]);
    expect(() => ops.reshape(x, lying as never)).toThrow(/shape: expected at most 64 elements/);
    x.dispose();
    expect(() => Tensor.from(lying as never)).toThrow(/data\[3\]: expected a number, got undefined/);
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});
