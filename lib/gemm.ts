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
  /**
   * For CUDA tensors: 'fp32' (default, exact), 'tf32' or 'bf16' (tensor cores, fp32
   * accumulation). The CPU computes in fp32.
   */
  precision?: 'fp32' | 'tf32' | 'bf16';
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

const onGpu = (x: unknown) => x instanceof Tensor && x.device === 'cuda';

/**
 * C [M, N] = alpha op(A) op(B) + beta C, op(A) [M, K], op(B) [K, N]; C is updated in place.
 * With CUDA tensors (all three) it runs on the GPU.
 */
export function gemm(M: number, N: number, K: number, A: Matrix, B: Matrix, C: Matrix, options: GemmOptions = {}): void {
  checkOptionNames(options, ['transA', 'transB', 'alpha', 'beta', 'lda', 'ldb', 'ldc', 'threads', 'precision'], 'options');
  // Sizes first: the default leading dimensions below compute with them.
  for (const [x, name] of [[M, 'M'], [N, 'N'], [K, 'K']] as const)
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0)
      throw (typeof x === 'number' ? RangeError : TypeError)(`${name}: expected an integer >= 0, got ${describe(x)}`);
  const ta = options.transA ?? false, tb = options.transB ?? false;
  const lda = options.lda ?? Math.max(1, ta ? M : K), ldb = options.ldb ?? Math.max(1, tb ? K : N), ldc = options.ldc ?? Math.max(1, N);
  if (onGpu(A) || onGpu(B) || onGpu(C)) {
    for (const [x, name] of [[A, 'A'], [B, 'B'], [C, 'C']] as const)
      if (!onGpu(x)) throw new RangeError(`${name}: expected a float32 tensor on 'cuda' like the other operands, got ${describe(x)}`);
    native.cudaGemm(ta, tb, M, N, K, options.alpha ?? 1, (A as Tensor).storage, lda, (B as Tensor).storage, ldb,
      options.beta ?? 0, (C as Tensor).storage, ldc, options.precision);
    return;
  }
  if ((options.precision ?? 'fp32') !== 'fp32')
    throw new RangeError(`options.precision: '${options.precision}' runs on GPU tensor cores; the CPU computes in 'fp32'`);
  native.nn.gemm(ta, tb, M, N, K, options.alpha ?? 1, source(A, 'A'), lda, source(B, 'B'), ldb, options.beta ?? 0,
    source(C, 'C'), ldc, options.threads);
}

/** The FMA throughput of this machine, measured: GFLOP/s on `threads` threads over about `seconds`. */
export function fmaPeakGflops(threads: number, seconds = 0.2): number {
  return native.nn.fmaPeak(threads, seconds);
}
