// Wall time of the native calls by kind of layer op, for the training benchmark's
// breakdown. Off by default: an op then pays one null check.
import type { Conv2dDesc } from './ops';
import { native } from '../native';

export type OpKind =
  | 'conv forward' | 'conv backward data' | 'conv backward weights' | 'batch norm' | 'relu' | 'pooling'
  | 'linear' | 'add' | 'copy' | 'normalize' | 'loss' | 'optimizer' | 'zero grad';

/** One kind of op at one shape: calls, their total milliseconds and multiply-add flops. */
export interface OpTiming {
  kind: OpKind;
  /** The shape for convolutions ('N C HxW -> K PxQ RxS /stride'), else ''. */
  shape: string;
  calls: number;
  ms: number;
  /** 2 * multiply-adds of a convolution's product as a direct convolution counts them (0 for the other kinds). */
  flops: number;
  /** A convolution's algorithm on the CPU ('winograd', 'direct' or 'im2col-gemm'), else ''. */
  algorithm: string;
}

let table: Map<string, OpTiming> | null = null;

/** @internal Whether ops are being timed (an op may then split a call to time its parts). */
export function profiling(): boolean {
  return table !== null;
}

/** @internal Runs fn and, while profiling, adds its wall time to (kind, the convolution's shape). */
export function timed<T>(kind: OpKind, fn: () => T, conv?: Conv2dDesc): T {
  if (table === null) return fn();
  const t0 = performance.now();
  const out = fn();
  const ms = performance.now() - t0;
  const shape = conv === undefined ? '' : convShape(conv);
  const key = `${kind}|${shape}`;
  const pass = kind === 'conv forward' ? 'forward' : kind === 'conv backward data' ? 'data' : 'weights';
  const row = table.get(key) ?? { kind, shape, calls: 0, ms: 0, flops: 0, algorithm: conv === undefined ? '' : native.nn.conv2dAlgorithm(conv, pass) };
  row.calls++;
  row.ms += ms;
  if (conv !== undefined) row.flops += convFlops(conv);
  table.set(key, row);
  return out;
}

function convShape(d: Conv2dDesc): string {
  const P = Math.floor((d.H + 2 * d.padH - d.R) / d.strideH) + 1, Q = Math.floor((d.W + 2 * d.padW - d.S) / d.strideW) + 1;
  return `${d.N} ${d.C} ${d.H}x${d.W} -> ${d.K} ${P}x${Q} ${d.R}x${d.S} /${d.strideH}`;
}

/** 2 N K C R S P Q: the products of one pass (forward, backward data or backward weights). */
export function convFlops(d: Conv2dDesc): number {
  const P = Math.floor((d.H + 2 * d.padH - d.R) / d.strideH) + 1, Q = Math.floor((d.W + 2 * d.padW - d.S) / d.strideW) + 1;
  return 2 * d.N * d.K * d.C * d.R * d.S * P * Q;
}

/** @internal Times the native calls of fn by kind (not re-entrant); the rows in order of first use. */
export function profileOps<T>(fn: () => T): { result: T; ops: OpTiming[] } {
  if (table !== null) throw new Error('profileOps: already profiling');
  table = new Map();
  try {
    const result = fn();
    return { result, ops: [...table.values()] };
  } finally {
    table = null;
  }
}
