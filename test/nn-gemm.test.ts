// Our SGEMM against a float64 brute-force product: odd sizes, every transpose, alpha and
// beta, strided rows, every CPU kernel set; thread-count independence; argument errors.
import { afterAll, describe, expect, it } from 'vitest';
import { backendInfo, fmaPeakGflops, gemm, setCpuKernels, Tensor } from '../dist/index.js';
import { gemmRef, maxRelDiff } from './nn-reference';
import { randomNormal, rng } from './reference';

const kernels = backendInfo().cpuKernelsAvailable;
afterAll(() => setCpuKernels(kernels[0]));

function run(ta: boolean, tb: boolean, M: number, N: number, K: number, alpha: number, beta: number, pad: number, seed: number, threads?: number) {
  const random = rng(seed);
  const lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + 2 * pad, ldc = N + pad;
  const A = randomNormal((ta ? K : M) * lda, random), B = randomNormal((tb ? N : K) * ldb, random);
  const C = randomNormal(M * ldc, random);
  const want = gemmRef(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  const got = C.slice();
  gemm(M, N, K, A, B, got, { transA: ta, transB: tb, alpha, beta, lda, ldb, ldc, threads });
  return { got, want, ldc };
}

describe.each(kernels)('gemm with kernels %s', (kernel) => {
  it('matches float64 on odd sizes, all transposes, alpha and beta', () => {
    setCpuKernels(kernel);
    let seed = 1;
    // K = 16 and 48: the packs' vector blocks end exactly at a panel's end (the last row of a
    // narrow panel is then stored short); M = 14 and 28: whole AVX-512 row panels.
    for (const [M, N, K] of [[1, 1, 1], [7, 5, 3], [33, 1, 17], [1, 33, 129], [129, 70, 33], [30, 129, 300], [15, 33, 257],
      [14, 17, 16], [28, 40, 48]])
      for (const ta of [false, true])
        for (const tb of [false, true]) {
          const alpha = [1, 0.7, -1.3][seed % 3], beta = [0, 1, -0.5][seed % 3];
          const { got, want } = run(ta, tb, M, N, K, alpha, beta, seed % 2 === 0 ? 0 : 3, seed++);
          // float32 sums of K products: error ~ sqrt(K) eps relative to the largest entry.
          expect(maxRelDiff(got, want)).toBeLessThan(2e-6 * Math.sqrt(K) + 1e-6);
        }
  });

  it('leaves the padding columns of C alone', () => {
    setCpuKernels(kernel);
    const { got, want, ldc } = run(false, true, 19, 21, 40, 1, 0.5, 5, 77);
    for (let i = 0; i < 19; i++)
      for (let j = 21; j < ldc; j++) expect(got[i * ldc + j]).toBe(want[i * ldc + j]);
  });
});

describe('gemm', () => {
  it('is exact for small integers and handles a row count past one packed block (M > 4096)', () => {
    const M = 4100, N = 3, K = 5;
    const A = Float32Array.from({ length: M * K }, (_, i) => (i % 7) - 3);
    const B = Float32Array.from({ length: K * N }, (_, i) => (i % 5) - 2);
    const C = new Float32Array(M * N);
    gemm(M, N, K, A, B, C);
    const want = gemmRef(false, false, M, N, K, 1, A, K, B, N, 0, C, N);
    expect(Array.from(C)).toEqual(Array.from(want));
  });

  it('splits operands larger than one packed chunk (2^24 floats) into chunks of rows or columns', () => {
    const big = (1 << 21) + 37, K = 8;
    const small = Float32Array.from({ length: K * 3 }, (_, i) => (i % 5) - 2);
    const tall = Float32Array.from({ length: big * K }, (_, i) => (i % 7) - 3);
    // A [big, K] (rows in chunks), B [K, 3].
    const C1 = new Float32Array(big * 3);
    gemm(big, 3, K, tall, small, C1);
    expect(Array.from(C1)).toEqual(Array.from(gemmRef(false, false, big, 3, K, 1, tall, K, small, 3, 0, C1, 3)));
    // A [3, K], B^T stored [big, K] (columns in chunks), with beta.
    const C2 = Float32Array.from({ length: 3 * big }, (_, i) => i % 3);
    const want = gemmRef(false, true, 3, big, K, 1, small, K, tall, K, 2, C2, big);
    gemm(3, big, K, small, tall, C2, { transB: true, beta: 2 });
    expect(Array.from(C2)).toEqual(Array.from(want));
  });

  it('beta = 0 never reads C (NaN there is overwritten)', () => {
    const random = rng(3);
    const A = randomNormal(9 * 11, random), B = randomNormal(11 * 13, random);
    const C = new Float32Array(9 * 13).fill(NaN);
    gemm(9, 13, 11, A, B, C, { beta: 0 });
    expect(C.every(Number.isFinite)).toBe(true);
    expect(maxRelDiff(C, gemmRef(false, false, 9, 13, 11, 1, A, 11, B, 13, 0, C, 13))).toBeLessThan(1e-5);
  });

  it('K = 0 scales C by beta; alpha = 0 too', () => {
    const C = Float32Array.from([1, 2, 3, 4]);
    gemm(2, 2, 0, new Float32Array(0), new Float32Array(0), C, { beta: 3 });
    expect(Array.from(C)).toEqual([3, 6, 9, 12]);
    gemm(2, 2, 1, Float32Array.from([1, 1]), Float32Array.from([1, 1]), C, { alpha: 0, beta: 0 });
    expect(Array.from(C)).toEqual([0, 0, 0, 0]);
  });

  it('gives the same bits on 1 and 2 threads (large enough to split)', () => {
    const a = run(true, false, 300, 257, 311, 1, 0.25, 1, 9, 1).got;
    const b = run(true, false, 300, 257, 311, 1, 0.25, 1, 9, 2).got;
    expect(Array.from(a)).toEqual(Array.from(b));
  });

  it('works on tensors', () => {
    const A = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]), B = Tensor.from([1, 0, 0, 1, 1, 1], [3, 2]);
    const C = Tensor.zeros([2, 2]);
    gemm(2, 2, 3, A, B, C);
    expect(Array.from(C.dataSync())).toEqual([4, 5, 10, 11]);
    for (const t of [A, B, C]) t.dispose();
  });

  it('rejects bad arguments with clear errors', () => {
    const A = new Float32Array(6), B = new Float32Array(6), C = new Float32Array(4);
    expect(() => gemm(2, 2, 3, A, B, new Float32Array(3))).toThrow(/C: expected at least 4 floats, got 3/);
    expect(() => gemm(2, 2, 4, A, B, C)).toThrow(/A: expected at least 8 floats, got 6/);
    expect(() => gemm(2, 2, 3, A, B, C, { lda: 2 })).toThrow(RangeError);
    expect(() => gemm(2, 2, 3, [1] as unknown as Float32Array, B, C)).toThrow(/A: expected a Float32Array or a float32 Tensor/);
    expect(() => gemm(2, 2, 3, A, B, C, { alpha: NaN })).toThrow(/alpha: expected a finite number/);
    expect(() => gemm(-1, 2, 3, A, B, C)).toThrow(/M: expected an integer/);
    expect(() => gemm(2, 2, 3, A, B, C, { transpose: true } as never)).toThrow(/unknown option 'transpose'/);
  });

  it('measures a positive FMA peak', () => {
    expect(fmaPeakGflops(1, 0.05)).toBeGreaterThan(1);
  });
});
