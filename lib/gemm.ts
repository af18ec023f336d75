// Our SGEMM for JavaScript: C = alpha op(A) op(B) + beta C on row-major Float32Arrays or
// float32 tensors (the kernel behind Linear and Conv2d).
import { checkOptionNames, describe } from './check';
import { native } from './native';
import { Tensor } from './tensor';

export interface GemmOptions {
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  beta?: number;
  /** Row strides of the stored matrices (default: their widths). */
  lda?: number;
  ldb?: number;
  ldc?: number;
  threads?: number;
}

type Matrix = Float32Array | Tensor<'float32'>;

function source(x: unknown, name: string) {
  if (x instanceof Float32Array) return x;
  if (x instanceof Tensor && x.dtype === 'float32') {
    if (x.device !== 'cpu') throw new RangeError(`${name}: expected a tensor on the CPU, got one on '${x.device}'`);
    return x.storage;
  }
  throw new TypeError(`${name}: expected a Float32Array or a float32 Tensor, got ${describe(x)}`);
}

/** C [M, N] = alpha op(A) op(B) + beta C, op(A) [M, K], op(B) [K, N]; C is updated in place. */
export function gemm(M: number, N: number, K: number, A: Matrix, B: Matrix, C: Matrix, options: GemmOptions = {}): void {
  checkOptionNames(options, ['transA', 'transB', 'alpha', 'beta', 'lda', 'ldb', 'ldc', 'threads'], 'options');
  const ta = options.transA ?? false, tb = options.transB ?? false;
  native.nn.gemm(ta, tb, M, N, K, options.alpha ?? 1, source(A, 'A'), options.lda ?? Math.max(1, ta ? M : K),
    source(B, 'B'), options.ldb ?? Math.max(1, tb ? K : N), options.beta ?? 0, source(C, 'C'), options.ldc ?? Math.max(1, N), options.threads);
}

/** The FMA throughput of this machine, measured: GFLOP/s on `threads` threads over about `seconds`. */
export function fmaPeakGflops(threads: number, seconds = 0.2): number {
  return native.nn.fmaPeak(threads, seconds);
}
