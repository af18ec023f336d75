// kNN neighbours and accuracy against a float64 brute force written here, on every CPU
// kernel set, with sizes that are not multiples of any tile.
import { afterAll, describe, expect, it } from 'vitest';
import { backendInfo, cudaStatus, knnAccuracy, knnNeighbours, knnPredict, setCpuKernels } from '../dist/index.js';
import { randomNormal, rng } from './reference';

const kernels = backendInfo().cpuKernelsAvailable;
afterAll(() => setCpuKernels(kernels[0]));

function bruteNeighbours(train: Float32Array, test: Float32Array, d: number, k: number) {
  const nTr = train.length / d, nTe = test.length / d;
  const norm = (x: Float32Array, i: number) => Math.sqrt(Array.from(x.subarray(i * d, (i + 1) * d)).reduce((s, v) => s + v * v, 0));
  const trN = Array.from({ length: nTr }, (_, j) => norm(train, j));
  const out: { index: number[]; sim: number[] }[] = [];
  for (let i = 0; i < nTe; i++) {
    const ni = norm(test, i);
    const all = Array.from({ length: nTr }, (_, j) => {
      let s = 0;
      for (let c = 0; c < d; c++) s += test[i * d + c] * train[j * d + c];
      return { j, s: s / (ni * trN[j]) };
    }).sort((a, b) => b.s - a.s || a.j - b.j).slice(0, k);
    out.push({ index: all.map((a) => a.j), sim: all.map((a) => a.s) });
  }
  return out;
}

function bruteVote(nb: { index: number[]; sim: number[] }[], labels: Int32Array, classes: number, vote: 'weighted' | 'majority', t: number) {
  return nb.map(({ index, sim }) => {
    const score = new Array(classes).fill(0);
    index.forEach((j, q) => (score[labels[j]] += vote === 'weighted' ? Math.exp(sim[q] / t) : 1));
    return score.indexOf(Math.max(...score));
  });
}

describe.each(kernels)('kernels %s', (kernel) => {
  it.each([
    [157, 41, 19, 13], [1100, 37, 33, 200], [45, 5, 2, 45], [600, 17, 128, 1], [33, 1, 7, 5],
  ])('neighbours match float64 brute force: nTrain=%i nTest=%i d=%i k=%i', (nTr, nTe, d, k) => {
    setCpuKernels(kernel);
    const r = rng(nTr + 7 * nTe + 31 * d);
    const train = randomNormal(nTr * d, r, 1), test = randomNormal(nTe * d, r, 1);
    const got = knnNeighbours({ data: train, dim: d }, { data: test, dim: d }, k);
    const want = bruteNeighbours(train, test, d, k);
    expect(got.index.length).toBe(nTe * k);
    for (let i = 0; i < nTe; i++) {
      for (let q = 0; q < k; q++) {
        expect(Math.abs(got.similarity[i * k + q] - want[i].sim[q])).toBeLessThan(2e-6);
        expect(got.index[i * k + q]).toBe(want[i].index[q]);
      }
    }
  });

  it('votes: weighted and majority predictions equal the brute-force votes', () => {
    setCpuKernels(kernel);
    const r = rng(99);
    const nTr = 700, nTe = 90, d = 24, classes = 7;
    const centers = randomNormal(classes * d, r, 1);
    const make = (n: number) => {
      const labels = Int32Array.from({ length: n }, () => Math.floor(r() * classes));
      const data = randomNormal(n * d, r, 1.2);
      labels.forEach((l, i) => { for (let c = 0; c < d; c++) data[i * d + c] += centers[l * d + c]; });
      return { data, dim: d, labels };
    };
    const train = make(nTr), test = make(nTe);
    for (const [vote, k, t] of [['weighted', 200, 0.1], ['weighted', 20, 0.5], ['majority', 15, 0.1], ['majority', 1, 0.1]] as const) {
      const want = bruteVote(bruteNeighbours(train.data, test.data, d, k), train.labels, classes, vote, t);
      const got = Array.from(knnPredict(train, test, { k, vote, temperature: t }));
      expect(got).toEqual(want);
      const acc = knnAccuracy(train, test, { k, vote, temperature: t });
      expect(acc).toBe(want.filter((p, i) => p === test.labels[i]).length / nTe);
      expect(acc).toBeGreaterThan(0.5); // clustered data: kNN works
    }
  });
});

describe('knn', () => {
  it('same bits for any thread count; duplicates rank by index', () => {
    const r = rng(5);
    const d = 9, train = randomNormal(2000 * d, r, 1), test = randomNormal(70 * d, r, 1);
    train.copyWithin(40 * d, 1500 * d, 1501 * d); // row 40 = row 1500
    test.set(train.subarray(1500 * d, 1501 * d), 3 * d);
    const one = knnNeighbours({ data: train, dim: d }, { data: test, dim: d }, 50, 1);
    const two = knnNeighbours({ data: train, dim: d }, { data: test, dim: d }, 50, 2);
    expect(Buffer.from(one.index.buffer).equals(Buffer.from(two.index.buffer))).toBe(true);
    expect(Buffer.from(one.similarity.buffer).equals(Buffer.from(two.similarity.buffer))).toBe(true);
    expect([one.index[3 * 50], one.index[3 * 50 + 1]]).toEqual([40, 1500]);
    expect(one.similarity[3 * 50]).toBeCloseTo(1, 6);
  });

  it('bad input names the argument', () => {
    const d = 3, train = { data: Float32Array.of(1, 0, 0, 0, 1, 0), dim: d, labels: [0, 1] };
    const test = { data: Float32Array.of(1, 1, 0), dim: d, labels: [1] };
    expect(() => knnNeighbours(train, test, 3)).toThrow(/k: expected an integer in \[1, 2\] \(the training rows\), got number 3/);
    expect(() => knnNeighbours(train, { data: Float32Array.of(1, 2), dim: 2 }, 1)).toThrow(/test.dim: expected the training dim 3, got 2/);
    expect(() => knnNeighbours(train, { data: Float32Array.of(1, 2), dim: 3 }, 1)).toThrow(/test.data: expected a positive multiple of dim = 3 values, got 2/);
    expect(() => knnNeighbours(train, { data: Float32Array.of(0, 0, 0), dim: 3 }, 1)).toThrow(/test: row 0 is all zeros/);
    expect(() => knnNeighbours({ data: Float32Array.of(1, 0, 0, NaN, 1, 0), dim: 3 }, test, 1)).toThrow(/train: row 1 holds a non-finite value/);
    expect(() => knnAccuracy({ ...train, labels: [0] }, test)).toThrow(/train.labels: expected 2 labels \(one per row\), got 1/);
    expect(() => knnAccuracy({ ...train, labels: [0, -1] }, test)).toThrow(/train.labels\[1\]: expected a non-negative integer, got -1/);
    expect(() => knnAccuracy(train, test, { vote: 'best' as never })).toThrow(/options.vote: expected one of 'weighted', 'majority', got 'best'/);
    expect(() => knnAccuracy(train, test, { temperature: 0 })).toThrow(/options.temperature: expected a finite number > 0/);
    expect(() => knnAccuracy(train, test, { kk: 3 } as never)).toThrow(/unknown option 'kk'/);
    expect(() => knnAccuracy(train, { data: [1, 2, 3] as never, dim: 3, labels: [0] })).toThrow(TypeError);
    expect(knnAccuracy(train, test, { k: 1 })).toBe(0); // equal similarity: the lower index (label 0) wins
  });
});

// On a GPU, or on the emulated device (`npm run test:cuda-emulated`); skipped without either.
describe.skipIf(!cudaStatus().usable)('knn on CUDA', () => {
  it.each([
    [157, 41, 19, 13], [1100, 37, 33, 200], [45, 5, 2, 45], [600, 17, 128, 1], [300, 9, 7, 300],
  ])('the same neighbours and similarities as the CPU, bit for bit: nTrain=%i nTest=%i d=%i k=%i', (nTr, nTe, d, k) => {
    const r = rng(nTr + 7 * nTe + 31 * d + 1);
    const train = randomNormal(nTr * d, r, 1), test = randomNormal(nTe * d, r, 1);
    const cpu = knnNeighbours({ data: train, dim: d }, { data: test, dim: d }, k);
    const gpu = knnNeighbours({ data: train, dim: d }, { data: test, dim: d }, k, undefined, 'cuda');
    expect(Array.from(gpu.index)).toEqual(Array.from(cpu.index));
    expect(Buffer.from(gpu.similarity.buffer).equals(Buffer.from(cpu.similarity.buffer))).toBe(true);
    const want = bruteNeighbours(train, test, d, k);
    for (let q = 0; q < k; q++) expect(Math.abs(gpu.similarity[q] - want[0].sim[q])).toBeLessThan(2e-6);
  });

  it('ties (duplicate rows, equal similarities) rank by lower index, as on the CPU', () => {
    const r = rng(8);
    const d = 5, train = randomNormal(900 * d, r, 1), test = randomNormal(11 * d, r, 1);
    for (const [to, from] of [[40, 700], [41, 700], [600, 700], [5, 3]]) train.copyWithin(to * d, from * d, (from + 1) * d);
    test.set(train.subarray(700 * d, 701 * d), 2 * d);
    // Scaled copies: the same cosine similarity from different rows.
    for (let c = 0; c < d; c++) train[899 * d + c] = 2 * train[3 * d + c];
    const cpu = knnNeighbours({ data: train, dim: d }, { data: test, dim: d }, 3);
    const gpu = knnNeighbours({ data: train, dim: d }, { data: test, dim: d }, 3, undefined, 'cuda');
    expect(Array.from(gpu.index)).toEqual(Array.from(cpu.index));
    expect(Array.from(gpu.index.subarray(2 * 3, 3 * 3))).toEqual([40, 41, 600]);
  });

  it('the monitor votes the same on both devices; bad rows and k past 2,048 are clear errors', () => {
    const r = rng(12);
    const d = 16, train = { data: randomNormal(2100 * d, r, 1), dim: d, labels: Int32Array.from({ length: 2100 }, (_, i) => i % 5) };
    const test = { data: randomNormal(23 * d, r, 1), dim: d, labels: Int32Array.from({ length: 23 }, (_, i) => i % 5) };
    expect(knnAccuracy(train, test, { k: 50, device: 'cuda' })).toBe(knnAccuracy(train, test, { k: 50 }));
    const zero = { data: new Float32Array(test.data), dim: d };
    zero.data.fill(0, 7 * d, 8 * d);
    expect(() => knnNeighbours(train, zero, 3, undefined, 'cuda')).toThrow(/test: row 7 is all zeros/);
    const bad = { data: new Float32Array(train.data), dim: d };
    bad.data[5 * d + 2] = Infinity;
    bad.data.fill(0, 9 * d, 10 * d);
    expect(() => knnNeighbours(bad, test, 3, undefined, 'cuda')).toThrow(/train: row 5 holds a non-finite value/);
    expect(() => knnNeighbours(train, test, 2049, undefined, 'cuda')).toThrow(/k: expected at most 2048 neighbours on CUDA, got 2049/);
    expect(() => knnNeighbours(train, test, 3, undefined, 'gpu' as never)).toThrow(/device: expected one of 'cpu', 'cuda', got 'gpu'/);
  });
});
