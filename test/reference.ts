// A naive float64 SupCon loss straight from the definitions (docs/LOSS.md), with its
// analytic gradient: materialises the B x B logits. Independent of the native code.

export interface RefOptions {
  temperature?: number;
  baseTemperature?: number;
  contrastMode?: 'all' | 'one';
  variant?: 'out' | 'in';
  denominator?: 'all' | 'onePositive' | 'onlyNegatives';
  normalize?: boolean;
  excludeAnchorsWithoutPositives?: boolean;
}

function logSumExp(xs: number[]): number {
  if (xs.length === 0) return -Infinity;
  const m = Math.max(...xs);
  let s = 0;
  for (const x of xs) s += Math.exp(x - m);
  return m + Math.log(s);
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const softplus = (x: number) => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));

/** The options with their defaults; B rows and A anchors. */
function settings(opts: RefOptions, n: number, v: number) {
  const B = n * v;
  return {
    tau: opts.temperature ?? 0.07,
    base: opts.baseTemperature ?? 0.07,
    den: opts.denominator ?? 'all',
    variant: opts.variant ?? 'out',
    B,
    A: (opts.contrastMode ?? 'all') === 'all' ? B : n,
  };
}

/** Features x as [n, v, d] row-major. */
export function referenceLoss(
  x: ArrayLike<number>,
  n: number,
  v: number,
  d: number,
  labels: ArrayLike<number> | null,
  mask: ArrayLike<number> | null,
  opts: RefOptions = {},
): { loss: number; grad: Float64Array } {
  const { tau, base, den, variant, B, A } = settings(opts, n, v);
  // Row r = view * n + sample.
  const z: number[][] = [];
  const norms: number[] = [];
  for (let r = 0; r < B; r++) {
    const s = r % n, view = Math.floor(r / n);
    const row = Array.from({ length: d }, (_, k) => x[(s * v + view) * d + k]);
    const norm = opts.normalize ? Math.max(Math.hypot(...row), 1e-12) : 1;
    norms.push(norm);
    z.push(row.map((e) => e / norm));
  }
  const isPos = (i: number, j: number): boolean => {
    if (i === j) return false;
    const a = i % n, b = j % n;
    if (mask) return mask[a * n + b] !== 0;
    if (labels) return labels[a] === labels[b];
    return a === b;
  };
  const S = z.map((zi) => z.map((zj) => zi.reduce((acc, e, k) => acc + e * zj[k], 0) / tau));
  const G = S.map(() => new Float64Array(B));
  let sum = 0;
  let counted = 0;
  for (let i = 0; i < A; i++) {
    const pos: number[] = [];
    const dens: number[] = [];
    for (let j = 0; j < B; j++) {
      if (j === i) continue;
      if (isPos(i, j)) pos.push(j);
      if (den === 'all' || !isPos(i, j)) dens.push(j);
    }
    const np = pos.length;
    if (np === 0) continue;
    if (dens.length === 0) {
      if (den === 'onePositive') counted++;
      continue;
    }
    counted++;
    const a = logSumExp(dens.map((j) => S[i][j]));
    const denGrad = (w: number) => { for (const j of dens) G[i][j] += w * Math.exp(S[i][j] - a); };
    if (den === 'onePositive') {
      if (variant === 'out') {
        for (const p of pos) {
          sum += softplus(a - S[i][p]) / np;
          const sg = sigmoid(a - S[i][p]);
          G[i][p] -= sg / np;
          denGrad(sg / np);
        }
      } else {
        // log Q with Q = sum_p sigmoid(s_ip - a), through log sigmoid(x) = -softplus(-x):
        // Q itself underflows when the positives are far below the negatives.
        const logSg = pos.map((p) => -softplus(a - S[i][p]));
        const logQ = logSumExp(logSg);
        sum += Math.log(np) - logQ;
        pos.forEach((p, q) => {
          const ds = Math.exp(logSg[q] - logQ) * sigmoid(a - S[i][p]); // sigma'(x) / Q
          G[i][p] -= ds;
          denGrad(ds);
        });
      }
    } else if (variant === 'out') {
      sum += a - pos.reduce((s, p) => s + S[i][p], 0) / np;
      denGrad(1);
      for (const p of pos) G[i][p] -= 1 / np;
    } else {
      const b = logSumExp(pos.map((p) => S[i][p]));
      sum += a - b + Math.log(np);
      denGrad(1);
      for (const p of pos) G[i][p] -= Math.exp(S[i][p] - b);
    }
  }
  const count = opts.excludeAnchorsWithoutPositives ? counted : A;
  const grad = new Float64Array(B * d);
  if (count === 0) return { loss: 0, grad };
  const scale = tau / base;
  const dz = z.map(() => new Float64Array(d));
  for (let i = 0; i < A; i++)
    for (let j = 0; j < B; j++) {
      const g = (G[i][j] * scale) / count / tau;
      if (g === 0) continue;
      for (let k = 0; k < d; k++) {
        dz[i][k] += g * z[j][k];
        dz[j][k] += g * z[i][k];
      }
    }
  for (let r = 0; r < B; r++) {
    const s = r % n, view = Math.floor(r / n);
    let dot = 0;
    if (opts.normalize && norms[r] > 1e-12) for (let k = 0; k < d; k++) dot += z[r][k] * dz[r][k];
    for (let k = 0; k < d; k++)
      grad[(s * v + view) * d + k] = (dz[r][k] - (opts.normalize ? z[r][k] * dot : 0)) / norms[r];
  }
  return { loss: (scale * sum) / count, grad };
}

/** Deterministic pseudo-random numbers (mulberry32), so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomNormal(count: number, random: () => number, scale = 1): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const u = Math.max(random(), 1e-12), w = random();
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * w);
  }
  return out;
}

export function randomLabels(n: number, classes: number, random: () => number): Int32Array {
  return Int32Array.from({ length: n }, () => Math.floor(random() * classes) - 3);
}

/** max |a - b| relative to max |b| (plus a floor). */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / Math.max(den, 1e-30);
}

/**
 * The contrast set of docs/LOSS.md ("The contrast set", "Weighted masks"): anchors from x
 * [n, v, d], contrast rows from contrast.x [m, d] (after the own rows with withAnchors).
 * `contrast` null: the own rows are the contrast set (the plain loss), so a weighted
 * [n, n] mask can be checked too. Float64, materialising, written from the definitions.
 */
export interface RefContrast {
  x: ArrayLike<number>;
  m: number;
  labels?: ArrayLike<number> | null;
  positions?: ArrayLike<number> | null;
  withAnchors?: boolean;
}

export function referenceContrastLoss(
  x: ArrayLike<number>, n: number, v: number, d: number, labels: ArrayLike<number> | null, mask: ArrayLike<number> | null,
  contrast: RefContrast | null, opts: RefOptions = {},
): { loss: number; grad: Float64Array; contrastGrad: Float64Array } {
  const { tau, base, den, variant, B, A } = settings(opts, n, v);
  const withAnchors = contrast === null || (contrast.withAnchors ?? false);
  const m = contrast?.m ?? 0;
  const own = withAnchors ? B : 0;
  const M = own + m;
  const unit = (row: number[]) => {
    const norm = opts.normalize ? Math.max(Math.hypot(...row), 1e-12) : 1;
    return { z: row.map((e) => e / norm), norm };
  };
  // Anchor rows r = view * n + sample; contrast rows: the own rows (withAnchors), then x.
  const anchors = Array.from({ length: B }, (_, r) =>
    unit(Array.from({ length: d }, (_, k) => x[((r % n) * v + Math.floor(r / n)) * d + k])));
  const extra = Array.from({ length: m }, (_, e) => unit(Array.from({ length: d }, (_, k) => contrast!.x[e * d + k])));
  const C = [...(withAnchors ? anchors : []), ...extra];
  const self = (r: number): number => {
    if (withAnchors) return r;
    const p = contrast!.positions;
    return p ? p[(r % n) * v + Math.floor(r / n)] : -1;
  };
  // SimCLR: the sample whose row a contrast row is.
  const ownerSample = new Map<number, number>();
  for (let r = 0; r < B; r++) if (self(r) >= 0) ownerSample.set(self(r), r % n);
  const weight = (i: number, j: number): number => {
    const a = i % n;
    if (mask) {
      const columns = (withAnchors ? n : 0) + m;
      const col = withAnchors && j < B ? j % n : (withAnchors ? n : 0) + j - own;
      return mask[a * columns + col];
    }
    if (labels) {
      const lab = j < own ? labels[j % n] : contrast!.labels![j - own];
      return labels[a] === lab ? 1 : 0;
    }
    return ownerSample.get(j) === a ? 1 : 0;
  };
  const dot = (p: number[], q: number[]) => p.reduce((acc, e, k) => acc + e * q[k], 0);
  const G = Array.from({ length: A }, () => new Float64Array(M));
  const S = Array.from({ length: A }, (_, i) => C.map((c) => dot(anchors[i].z, c.z) / tau));
  let sum = 0;
  let counted = 0;
  for (let i = 0; i < A; i++) {
    const pos: number[] = [], w: number[] = [], dens: number[] = [];
    for (let j = 0; j < M; j++) {
      if (j === self(i)) continue;
      const wij = weight(i, j);
      if (wij > 0) { pos.push(j); w.push(wij); }
      if (den === 'all' || wij === 0) dens.push(j);
    }
    if (pos.length === 0) continue;
    if (dens.length === 0) {
      if (den === 'onePositive') counted++;
      continue;
    }
    counted++;
    const np = w.reduce((s, e) => s + e, 0);
    const s = S[i];
    const a = logSumExp(dens.map((j) => s[j]));
    const denGrad = (g: number) => { for (const j of dens) G[i][j] += g * Math.exp(s[j] - a); };
    if (den === 'onePositive') {
      if (variant === 'out') {
        pos.forEach((p, q) => {
          sum += (w[q] * softplus(a - s[p])) / np;
          const sg = (w[q] * sigmoid(a - s[p])) / np;
          G[i][p] -= sg;
          denGrad(sg);
        });
      } else {
        const logTerms = pos.map((p, q) => Math.log(w[q]) - softplus(a - s[p]));
        const logQ = logSumExp(logTerms);
        sum += Math.log(np) - logQ;
        pos.forEach((p, q) => {
          const ds = Math.exp(logTerms[q] - logQ) * sigmoid(a - s[p]);
          G[i][p] -= ds;
          denGrad(ds);
        });
      }
    } else if (variant === 'out') {
      sum += a - pos.reduce((acc, p, q) => acc + w[q] * s[p], 0) / np;
      denGrad(1);
      pos.forEach((p, q) => { G[i][p] -= w[q] / np; });
    } else {
      const b = logSumExp(pos.map((p, q) => Math.log(w[q]) + s[p]));
      sum += a - b + Math.log(np);
      denGrad(1);
      pos.forEach((p, q) => { G[i][p] -= Math.exp(Math.log(w[q]) + s[p] - b); });
    }
  }
  const count = opts.excludeAnchorsWithoutPositives ? counted : A;
  const grad = new Float64Array(B * d);
  const contrastGrad = new Float64Array(m * d);
  if (count === 0) return { loss: 0, grad, contrastGrad };
  const scale = tau / base;
  const dA = anchors.map(() => new Float64Array(d));
  const dC = C.map(() => new Float64Array(d));
  for (let i = 0; i < A; i++)
    for (let j = 0; j < M; j++) {
      const g = (G[i][j] * scale) / count / tau;
      if (g === 0) continue;
      for (let k = 0; k < d; k++) {
        dA[i][k] += g * C[j].z[k];
        dC[j][k] += g * anchors[i].z[k];
      }
    }
  const back = (row: { z: number[]; norm: number }, dz: ArrayLike<number>, out: Float64Array, at: number) => {
    let dt = 0;
    if (opts.normalize && row.norm > 1e-12) for (let k = 0; k < d; k++) dt += row.z[k] * dz[k];
    for (let k = 0; k < d; k++) out[at + k] = (dz[k] - (opts.normalize ? row.z[k] * dt : 0)) / row.norm;
  };
  for (let r = 0; r < B; r++) {
    const dz = dA[r].map((e, k) => e + (r < own ? dC[r][k] : 0));
    back(anchors[r], dz, grad, ((r % n) * v + Math.floor(r / n)) * d);
  }
  for (let e = 0; e < m; e++) back(extra[e], dC[own + e], contrastGrad, e * d);
  return { loss: (scale * sum) / count, grad, contrastGrad };
}
