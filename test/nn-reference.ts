// Float64 references for the layer kernels, straight from the definitions, and central
// finite differences. Independent of the native code.

export type Arr = ArrayLike<number>;

/** C = alpha op(A) op(B) + beta C (row-major, strides), in float64; returns the new C. */
export function gemmRef(
  ta: boolean, tb: boolean, M: number, N: number, K: number, alpha: number,
  A: Arr, lda: number, B: Arr, ldb: number, beta: number, C: Arr, ldc: number,
): Float64Array {
  const out = Float64Array.from(C);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += (ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
      out[i * ldc + j] = alpha * s + (beta === 0 ? 0 : beta * C[i * ldc + j]);
    }
  return out;
}

export function linearRef(x: Arr, w: Arr, b: Arr | null, N: number, inF: number, outF: number): Float64Array {
  const y = new Float64Array(N * outF);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < outF; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < inF; i++) s += x[n * inF + i] * w[o * inF + i];
      y[n * outF + o] = s;
    }
  return y;
}

export interface ConvShape {
  N: number; C: number; H: number; W: number; K: number; R: number; S: number;
  stride: [number, number]; pad: [number, number];
}

export function convOut(d: ConvShape): [number, number] {
  return [Math.floor((d.H + 2 * d.pad[0] - d.R) / d.stride[0]) + 1, Math.floor((d.W + 2 * d.pad[1] - d.S) / d.stride[1]) + 1];
}

export function conv2dRef(x: Arr, w: Arr, b: Arr | null, d: ConvShape): Float64Array {
  const [P, Q] = convOut(d);
  const y = new Float64Array(d.N * d.K * P * Q);
  for (let n = 0; n < d.N; n++)
    for (let k = 0; k < d.K; k++)
      for (let p = 0; p < P; p++)
        for (let q = 0; q < Q; q++) {
          let s = b ? b[k] : 0;
          for (let c = 0; c < d.C; c++)
            for (let r = 0; r < d.R; r++)
              for (let t = 0; t < d.S; t++) {
                const h = p * d.stride[0] - d.pad[0] + r, ww = q * d.stride[1] - d.pad[1] + t;
                if (h < 0 || h >= d.H || ww < 0 || ww >= d.W) continue;
                s += x[((n * d.C + c) * d.H + h) * d.W + ww] * w[((k * d.C + c) * d.R + r) * d.S + t];
              }
          y[((n * d.K + k) * P + p) * Q + q] = s;
        }
  return y;
}

/**
 * The gradients of conv2dRef for an upstream gradient dy [N, K, P, Q], by brute force in
 * float64: dx[n, c, h, w] = sum over k, r, s of w[k, c, r, s] dy[n, k, p, q] (the adjoint)
 * and dw[k, c, r, s] = sum over n, p, q of dy[n, k, p, q] x[n, c, h, w], where h = p
 * stride - pad + r and w = q stride - pad + s.
 */
export function conv2dBackwardRef(x: Arr, w: Arr, dy: Arr, d: ConvShape): { dx: Float64Array; dw: Float64Array } {
  const [P, Q] = convOut(d);
  const dx = new Float64Array(d.N * d.C * d.H * d.W), dw = new Float64Array(d.K * d.C * d.R * d.S);
  for (let n = 0; n < d.N; n++)
    for (let k = 0; k < d.K; k++)
      for (let p = 0; p < P; p++)
        for (let q = 0; q < Q; q++) {
          const g = dy[((n * d.K + k) * P + p) * Q + q];
          for (let c = 0; c < d.C; c++)
            for (let r = 0; r < d.R; r++)
              for (let t = 0; t < d.S; t++) {
                const h = p * d.stride[0] - d.pad[0] + r, ww = q * d.stride[1] - d.pad[1] + t;
                if (h < 0 || h >= d.H || ww < 0 || ww >= d.W) continue;
                const xi = ((n * d.C + c) * d.H + h) * d.W + ww, wi = ((k * d.C + c) * d.R + r) * d.S + t;
                dx[xi] += g * w[wi];
                dw[wi] += g * x[xi];
              }
        }
  return { dx, dw };
}

/** Batch norm of x [N, C, L]; training uses the batch statistics (biased variance). */
export function batchNormRef(
  x: Arr, g: Arr, b: Arr, N: number, C: number, L: number, eps: number,
  stats: { mean: Arr; variance: Arr } | null,
): { y: Float64Array; mean: Float64Array; variance: Float64Array } {
  const y = new Float64Array(N * C * L), mean = new Float64Array(C), variance = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let m = 0, v = 0;
    if (stats) {
      m = stats.mean[c];
      v = stats.variance[c];
    } else {
      for (let n = 0; n < N; n++) for (let l = 0; l < L; l++) m += x[(n * C + c) * L + l];
      m /= N * L;
      for (let n = 0; n < N; n++) for (let l = 0; l < L; l++) v += (x[(n * C + c) * L + l] - m) ** 2;
      v /= N * L;
    }
    mean[c] = m;
    variance[c] = v;
    for (let n = 0; n < N; n++)
      for (let l = 0; l < L; l++) {
        const i = (n * C + c) * L + l;
        y[i] = ((x[i] - m) / Math.sqrt(v + eps)) * g[c] + b[c];
      }
  }
  return { y, mean, variance };
}

export function maxPoolRef(x: Arr, N: number, C: number, H: number, W: number, R: number, S: number,
  stride: [number, number], pad: [number, number]): Float64Array {
  const P = Math.floor((H + 2 * pad[0] - R) / stride[0]) + 1, Q = Math.floor((W + 2 * pad[1] - S) / stride[1]) + 1;
  const y = new Float64Array(N * C * P * Q);
  for (let nc = 0; nc < N * C; nc++)
    for (let p = 0; p < P; p++)
      for (let q = 0; q < Q; q++) {
        let best = -Infinity;
        for (let r = 0; r < R; r++)
          for (let s = 0; s < S; s++) {
            const h = p * stride[0] - pad[0] + r, w = q * stride[1] - pad[1] + s;
            if (h >= 0 && h < H && w >= 0 && w < W) best = Math.max(best, x[(nc * H + h) * W + w]);
          }
        y[(nc * P + p) * Q + q] = best;
      }
  return y;
}

export function crossEntropyRef(z: Arr, labels: Arr, rows: number, classes: number): number {
  let total = 0;
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let k = 0; k < classes; k++) m = Math.max(m, z[r * classes + k]);
    let s = 0;
    for (let k = 0; k < classes; k++) s += Math.exp(z[r * classes + k] - m);
    total += m + Math.log(s) - z[r * classes + labels[r]];
  }
  return total / rows;
}

export function l2NormalizeRef(x: Arr, rows: number, dim: number, eps = 1e-12): Float64Array {
  const y = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let k = 0; k < dim; k++) s += x[r * dim + k] ** 2;
    const den = Math.max(Math.sqrt(s), eps);
    for (let k = 0; k < dim; k++) y[r * dim + k] = x[r * dim + k] / den;
  }
  return y;
}

export function dot(a: Arr, b: Arr): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * Central differences of f at inputs[which]: d f / d inputs[which][e] for every e, in
 * float64 (f reads the arrays it is given).
 */
export function finiteDifferences(f: (inputs: Float64Array[]) => number, inputs: Float64Array[], which: number, h = 1e-6): Float64Array {
  const x = inputs[which];
  const g = new Float64Array(x.length);
  for (let e = 0; e < x.length; e++) {
    const keep = x[e];
    x[e] = keep + h;
    const up = f(inputs);
    x[e] = keep - h;
    const down = f(inputs);
    x[e] = keep;
    g[e] = (up - down) / (2 * h);
  }
  return g;
}

/** max |a - b| / (max |b| + floor). */
export function maxRelDiff(a: Arr, b: Arr, floor = 1e-6): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let d = 0, m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / (m + floor);
}
