// The GPU check: one command for a machine with an NVIDIA GPU (`npm run gpu:check`; no
// build there). Every CUDA path against the CPU path on the cases of bench/cuda-cases.ts
// (the loss, the GEMM, augmentation, the layers' nn ops), with guard values around the
// outputs; determinism; then forward + backward timed with CUDA events against a PyTorch
// peer on the same GPU, and a ResNet-18 convolution timed forward and backward.
// It prints its plan and an estimated time first, saves JSON and the log to $OUT (or
// bench/results/) after every case, and prints a table last.
//
//   --quick     a subset of the timings (about 2 minutes on an H200; the full run is
//               sized for at most 6)
//   --dry-run   the whole GPU path on the CPU (fp32, small timing sizes, wall clock)
//   --emulated  for the emulated CUDA backend (SUPCON_ADDON=.../supcon.node): the
//               CUDA-vs-CPU cases at small sizes, the timing entry points once at tiny
//               sizes, and every __global__ kernel of native/cuda/*.cu must have run; ends
//               with `emulated CUDA: K kernels, N cases, F failures`
//
// Without a GPU (and without --dry-run) it says so and checks only what the CPU can.
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { applyAugmentOps, augment, backendInfo, drawAugmentOps, gemm, supconForward, supconLoss, Tensor } from '../lib/index';
import type { AugmentArray, AugmentOp } from '../lib/index';
import { native } from '../lib/native';
import type { NativePoolDesc, NativeStorage } from '../lib/native';
import {
  AUGMENT_TOLERANCE, augmentCases, augmentWork, convOutput, gemmCases, gemmWork, GRADIENT_FACTOR, kernelBaseName, LOSS_FLOOR,
  contrastSizes, lossCases, lossLastBlockRows, lossWork, median, nnCases, normalizeSpec, PRECISIONS, relL2, sourceKernels, stored,
  THRESHOLDING_OPS, TOLERANCE,
} from './cuda-cases';
import type { AugmentCase, ConvDescOfCase, GemmCase, LossCase, NnCase, Precision, Scale, Work } from './cuda-cases';
import { table } from './results';
import { StepTiming, timePeerStep, timeResnetStep, timeTrainCommand, TrainRun } from './train-step';

const KNOWN_FLAGS = ['--dry-run', '--quick', '--emulated', '--train'];
const flags = process.argv.slice(2);
for (const f of flags) if (!KNOWN_FLAGS.includes(f)) throw new RangeError(`gpu-check: unknown argument '${f}' (expected ${KNOWN_FLAGS.join(', ')})`);
const dryRun = flags.includes('--dry-run');
const quick = flags.includes('--quick');
const emulated = flags.includes('--emulated');
const DEV = dryRun ? 'cpu' : 'cuda';
const scale: Scale = emulated ? 'small' : 'full';
const GUARD = 64;
const SENTINEL = 1234.5;
/** Seconds the whole run may take on an H200: what one GPU lease allows. */
const BUDGET_S = (quick ? 150 : 360) + (process.argv.includes('--train') ? 120 : 0);

/**
 * Assumed H200 rates, for the plan's estimate only (nothing here is measured): what these
 * kernels may reach, well below the peaks (67 TFLOP/s fp32 FMA, 495 and 989 TFLOP/s dense
 * tf32 and bf16, 4.8 TB/s HBM3e), as mma.sync kernels without asynchronous copies do;
 * the host side as a 16-core machine runs it. Each stage's real time is logged beside its
 * estimate, to correct these.
 */
const H200 = {
  tflops: { fp32: 20, tf32: 60, bf16: 100 } as Record<Precision, number>,
  scalarOpsPerS: 15e12,      // CUDA-core operations (about half the FP32 issue rate)
  hbmBytesPerS: 2.5e12,
  launchS: 20e-6,            // per kernel launch or synchronising copy
  launchesPerCase: 10,
  hostElementsPerS: 5e7,     // JavaScript generating, copying and comparing values
  cpuFlopsPerS: 1e11,        // the CPU reference (float32 SIMD, 16 threads)
  startupS: 3,               // node, the addon, the CUDA context
  torchStartS: 15,           // python3, import torch, the CUDA context
  torchCompileS: 40,         // one torch.compile of forward + backward
  torchPassesPerLogit: 40,   // bytes moved per logit by the eager formula, / 4 (fp32 B x B tensors)
};

const outDir = process.env.OUT ?? path.join(__dirname, '..', '..', 'bench', 'results');
const baseName = emulated ? 'cuda-emulated' : 'gpu-check';
mkdirSync(outDir, { recursive: true });
const started = performance.now();
const elapsedS = () => (performance.now() - started) / 1000;

/** The JSON result and the log, both on disk after every case. */
const report = {
  json: {} as Record<string, unknown>,
  logFile: path.join(outDir, `${baseName}.log`),
  say(line: string, toConsole = true): void {
    if (toConsole) console.log(line);
    appendFileSync(this.logFile, line + '\n');
  },
  save(): void {
    writeFileSync(path.join(outDir, `${baseName}.json`), JSON.stringify(this.json, null, 2) + '\n');
  },
};
writeFileSync(report.logFile, '');

const message = (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const gauss = (rnd: () => number) => Math.sqrt(-2 * Math.log(Math.max(rnd(), 1e-12))) * Math.cos(2 * Math.PI * rnd());

function normal(count: number, rnd: () => number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = gauss(rnd);
  return out;
}

function rms(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] ** 2;
  return Math.sqrt(s / Math.max(x.length, 1));
}

const allFinite = (x: ArrayLike<number>) => {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) return false;
  return true;
};

/** A guarded output buffer: GUARD sentinels, `count` values, GUARD sentinels. */
function guarded(count: number): Float32Array {
  return new Float32Array(count + 2 * GUARD).fill(SENTINEL);
}
function guardsIntact(all: Float32Array): boolean {
  for (let i = 0; i < GUARD; i++) if (all[i] !== SENTINEL || all[all.length - 1 - i] !== SENTINEL) return false;
  return true;
}

/**
 * SUPCON_GPU_CHECK_PLANT=<case id>:<value|nan|guard|throw> plants a fault in that case's
 * device result (for the check's own tests: each kind must be reported as a failure).
 */
const [plantId, plantKind] = (process.env.SUPCON_GPU_CHECK_PLANT ?? '').split(':');
/** `out[first, first + count)` is the result, `out[first + count]` a guard or padding value. */
function plant(id: string, out: Float32Array, first: number, count: number): void {
  if (id !== plantId) return;
  if (plantKind === 'value') out[first] += 1;
  else if (plantKind === 'nan') out[first] = NaN;
  else if (plantKind === 'guard') out[first + count] = 0;
  else if (plantKind === 'throw') throw new Error('planted error');
  else throw new RangeError(`SUPCON_GPU_CHECK_PLANT: expected <case id>:<value|nan|guard|throw>, got '${plantId}:${plantKind}'`);
}

interface RowBody { ok: boolean; summary: string; error?: string; [key: string]: unknown }
type Row = RowBody & { id: string };

/** Runs each case, catching its errors (a failure row with the message), saving after each. */
function runCases<C extends { id: string }>(stage: string, cases: readonly C[], check: (c: C) => RowBody, describe: (c: C) => string): Row[] {
  const rows: Row[] = [];
  report.json[stage] = rows;
  for (const c of cases) {
    report.say(`...  ${c.id}`, false);  // names the case in the log should the process die in it
    const t0 = performance.now();
    let row: Row;
    try {
      row = { id: c.id, ...check(c) };
    } catch (e) {
      row = { id: c.id, ok: false, summary: describe(c), error: message(e) };
    }
    row.ms = performance.now() - t0;
    rows.push(row);
    report.say(`${row.ok ? 'ok  ' : 'FAIL'} ${row.id} ${row.summary}${row.error ? `: ${row.error}` : ''}`, !row.ok);
    report.save();
  }
  return rows;
}

// ---------------------------------------------------------------------------------------
// The loss

/** A case's contrast set as the addon takes it, and the CPU reference's contrast-row gradient. */
interface ContrastInputs { data: Float32Array; m: number; labels: Int32Array | null; positions: Int32Array | null; withAnchors: boolean; gradient: boolean; refGrad: Float32Array | null }
interface LossInputs { seed: number; x: Float32Array; labels: Int32Array | null; mask: Float32Array | null; loss: number; grad: Float32Array; contrast: ContrastInputs | null }
let lossCache: LossInputs | null = null;

/** Rows of assorted lengths when normalising (the normalisation must undo them); else |z| near 1. */
function scaleRows(x: Float32Array, rows: number, d: number, normalize: boolean, rnd: () => number): void {
  for (let r = 0; r < rows; r++) {
    const f = normalize ? 0.5 + 2.5 * rnd() : 1 / Math.sqrt(d);
    for (let k = 0; k < d; k++) x[r * d + k] *= f;
  }
}

/** The contrast rows of a case (contrastSizes: m of them), their labels and the anchors' positions. */
function contrastInputs(c: LossCase, x: Float32Array, labels: Int32Array | null, rnd: () => number): Omit<ContrastInputs, 'refGrad'> | null {
  if (c.contrast === null) return null;
  const { n, v, d } = c, B = n * v, cc = c.contrast;
  const extraX = normal(cc.extra * d, rnd);
  scaleRows(extraX, cc.extra, d, c.options.normalize, rnd);
  const extraLabels = Int32Array.from({ length: cc.extra }, () => Math.floor(rnd() * Math.max(1, c.classes)));
  const { m } = contrastSizes(n, v, cc);
  let data = extraX, cLabels: Int32Array = extraLabels, positions: Int32Array | null = null;
  if (cc.form === 'global') {
    // The own rows (view-major) and the extra ones, shuffled: row q goes to perm[q].
    const perm = Array.from({ length: m }, (_, i) => i);
    for (let i = m - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [perm[i], perm[j]] = [perm[j], perm[i]];
    }
    data = new Float32Array(m * d);
    cLabels = new Int32Array(m);
    positions = new Int32Array(B);
    for (let q = 0; q < m; q++) {
      const own = q < B ? ((q % n) * v + Math.floor(q / n)) * d : 0;
      data.set(q < B ? x.subarray(own, own + d) : extraX.subarray((q - B) * d, (q - B + 1) * d), perm[q] * d);
      cLabels[perm[q]] = q < B ? (labels ? labels[q % n] : 0) : extraLabels[q - B];
      if (q < B) positions[(q % n) * v + Math.floor(q / n)] = perm[q];
    }
  }
  return { data, m, labels: labels ? cLabels : null, positions, withAnchors: cc.form === 'queue', gradient: cc.gradient };
}

/** The inputs of a case and the CPU reference (computed once for all precisions of a configuration). */
function lossInputs(c: LossCase): LossInputs {
  if (lossCache?.seed === c.seed) return lossCache;
  lossCache = null;
  const rnd = random(c.seed);
  const { n, v, d } = c;
  const x = normal(n * v * d, rnd);
  scaleRows(x, n * v, d, c.options.normalize, rnd);
  if (c.huge)
    for (let r = 0; r < n * v; r++) {
      // The row's largest magnitude at 1e38 to 3e38: its norm passes the float32 maximum.
      const row = x.subarray(r * d, (r + 1) * d);
      const peak = row.reduce((mx, e) => Math.max(mx, Math.abs(e)), 0);
      const f = (1e38 + 2e38 * rnd()) / peak;
      for (let k = 0; k < d; k++) row[k] = Math.fround(row[k] * f);
    }
  const labels = c.positives === 'labels' ? Int32Array.from({ length: n }, () => Math.floor(rnd() * c.classes)) : null;
  const contrast = contrastInputs(c, x, labels, rnd);
  const columns = contrast === null ? n : (contrast.withAnchors ? n : 0) + contrast.m;
  // Weights (docs/LOSS.md): 0 for most pairs, else 1 or another weight, so that 0/1 pairs and
  // weighted ones meet in every row.
  const mask = c.positives === 'mask' ? Float32Array.from({ length: n * columns }, () => (rnd() < 0.8 ? 0 : [1, 1, 0.5, 2.5][Math.floor(rnd() * 4)])) : null;
  const fwd = supconForward({ data: x, shape: [n, v, d] }, labels, {
    ...c.options, ...(mask ? { mask } : {}), device: 'cpu', ...(dryRun ? { threads: 1 } : {}),
    ...(contrast ? { contrast: { features: { data: contrast.data, shape: [contrast.m, d] }, labels: contrast.labels, positions: contrast.positions, withAnchors: contrast.withAnchors, gradient: contrast.gradient } } : {}),
  });
  let ref: { loss: number; grad: Float32Array; contrastGrad: Float32Array | null };
  try {
    const g = fwd.gradients();
    ref = { loss: fwd.loss, grad: g.grad as Float32Array, contrastGrad: g.contrastGrad };
  } finally {
    fwd.dispose();
  }
  if (!Number.isFinite(ref.loss) || !allFinite(ref.grad) || (ref.contrastGrad !== null && !allFinite(ref.contrastGrad))) throw new Error('the CPU reference is not finite');
  lossCache = { seed: c.seed, x, labels, mask, loss: ref.loss, grad: ref.grad, contrast: contrast ? { ...contrast, refGrad: ref.contrastGrad } : null };
  return lossCache;
}

/** g with each row times the norm of the same row of x (in float64). */
function timesRowNorm(g: ArrayLike<number>, x: Float32Array, d: number): Float64Array {
  const out = new Float64Array(g.length);
  for (let r = 0; r < g.length / d; r++) {
    let ss = 0;
    for (let k = 0; k < d; k++) ss += x[r * d + k] ** 2;
    for (let k = 0; k < d; k++) out[r * d + k] = g[r * d + k] * Math.sqrt(ss);
  }
  return out;
}

const describeLoss = (c: LossCase) =>
  `${c.precision} n=${c.n} v=${c.v} d=${c.d} ${c.positives} ${c.options.contrastMode}/${c.options.variant}/${c.options.denominator}` +
  `${c.options.normalize ? ' normalize' : ''}${c.options.excludeAnchorsWithoutPositives ? ' exclude' : ''} tau=${c.options.temperature}${c.huge ? ' rows near the float32 maximum' : ''}` +
  (c.contrast ? ` contrast ${c.contrast.form} m=${contrastSizes(c.n, c.v, c.contrast).m}${c.contrast.gradient ? ' with gradient' : ''}${c.contrast.hostRows ? ' (host rows)' : ''}` : '');

function checkLoss(c: LossCase): RowBody {
  const ref = lossInputs(c);
  const { n, v, d } = c;
  const count = n * v * d;
  const features = Tensor.from(ref.x, [n, v, d], { device: DEV });
  const out = new native.Storage((count + 2 * GUARD) * 4, DEV);
  const rc = ref.contrast;
  // The contrast rows from the host or from the device; their gradient back into either.
  const rows = rc === null || c.contrast?.hostRows ? null : Tensor.from(rc.data, [rc.m, d], { device: DEV });
  const contrastOut = rc === null || !rc.gradient ? null : c.contrast?.hostRows ? new Float32Array(rc.m * d) : new native.Storage(rc.m * d * 4, DEV);
  try {
    out.write(guarded(count), 0);
    const contrast = rc === null ? undefined : { features: rows ? rows.storage : rc.data, m: rc.m, labels: rc.labels, positions: rc.positions, withAnchors: rc.withAnchors, gradient: rc.gradient };
    const ctx = native.lossForward(features.storage, n, v, d, ref.labels, ref.mask, { ...c.options, device: DEV, precision: c.precision, contrast });
    let loss: number;
    // On the GPU, the loss written into device memory first (no read-back), then read: the
    // two must be the same float32.
    let deviceLossAgrees = true;
    try {
      if (DEV === 'cuda') {
        const scalar = new native.Storage(4, 'cuda');
        try {
          native.lossValueInto(ctx, scalar);
          const v = new Float32Array(1);
          scalar.read(v, 0);
          deviceLossAgrees = Object.is(v[0], Math.fround(ctx.loss));
        } finally {
          scalar.dispose();
        }
      }
      loss = ctx.loss;
      native.lossBackward(ctx, 1, out, { outOffset: GUARD, ...(contrastOut ? { contrastOut } : {}) });
    } finally {
      ctx.dispose();
    }
    const all = new Float32Array(count + 2 * GUARD);
    out.read(all, 0);
    plant(c.id, all, GUARD, count);
    const grad = all.subarray(GUARD, GUARD + count);
    let contrastGrad: Float32Array | null = null;
    if (contrastOut instanceof Float32Array) contrastGrad = contrastOut;
    else if (contrastOut !== null) {
      contrastGrad = new Float32Array(rc!.m * d);
      contrastOut.read(contrastGrad, 0);
    }
    const guards = guardsIntact(all);
    const finite = Number.isFinite(loss) && allFinite(grad) && (contrastGrad === null || allFinite(contrastGrad));
    const lossRelErr = Math.abs(loss - ref.loss) / Math.max(Math.abs(ref.loss), LOSS_FLOOR);
    // Huge rows have gradients near 1e-40 (1 / |x|): compared as g |x|, which is O(1).
    const gradRelErr = c.huge ? relL2(timesRowNorm(grad, ref.x, d), timesRowNorm(ref.grad, ref.x, d)) : relL2(grad, ref.grad);
    const contrastGradRelErr = contrastGrad !== null && rc?.refGrad ? relL2(contrastGrad, rc.refGrad) : 0;
    const tol = TOLERANCE[c.precision];
    const ok = guards && finite && deviceLossAgrees && lossRelErr <= tol && gradRelErr <= GRADIENT_FACTOR * tol && contrastGradRelErr <= GRADIENT_FACTOR * tol;
    return {
      ok, summary: `${describeLoss(c)}: loss err ${lossRelErr.toExponential(2)}, grad err ${gradRelErr.toExponential(2)}` +
        `${contrastGrad !== null ? `, contrast grad err ${contrastGradRelErr.toExponential(2)}` : ''}${guards ? '' : ', GUARDS OVERWRITTEN'}${finite ? '' : ', NOT FINITE'}` +
        `${deviceLossAgrees ? '' : ', THE LOSS IN DEVICE MEMORY DIFFERS'}`,
      precision: c.precision, n, v, d, positives: c.positives, options: c.options, contrast: c.contrast, lastBlockRows: lossLastBlockRows(c), covers: c.covers,
      loss, refLoss: ref.loss, lossRelErr, gradRelErr, contrastGradRelErr, refGradRms: rms(ref.grad), guardsIntact: guards, finite,
    };
  } finally {
    out.dispose();
    features.dispose();
    rows?.dispose();
    if (contrastOut instanceof native.Storage) contrastOut.dispose();
  }
}

// ---------------------------------------------------------------------------------------
// The GEMM

interface GemmInputs { seed: number; a: Float32Array; b: Float32Array; c0: Float32Array; want: Float64Array; lda: number; ldb: number; ldc: number }
let gemmCache: GemmInputs | null = null;

/**
 * A and B as stored (op(A) [M, K], op(B) [K, N], transposed or not), their padding NaN so
 * that a read outside a matrix shows; C [M, ldc] with sentinels in its padding columns and
 * GUARD more after it, NaN in C itself when beta = 0 (it must not be read). The reference
 * is computed here in float64, apart from both native GEMMs.
 */
function gemmInputs(c: GemmCase): GemmInputs {
  if (gemmCache?.seed === c.seed) return gemmCache;
  const rnd = random(c.seed);
  const sa = stored(c.M, c.K, c.transA, c.padA), sb = stored(c.K, c.N, c.transB, c.padB);
  const fill = (s: { rows: number; cols: number; ld: number }) => {
    const x = new Float32Array(Math.max(1, s.rows * s.ld)).fill(NaN);
    for (let r = 0; r < s.rows; r++) for (let k = 0; k < s.cols; k++) x[r * s.ld + k] = gauss(rnd);
    return x;
  };
  const a = fill(sa), b = fill(sb);
  const ldc = c.N + c.padC;
  const c0 = new Float32Array(c.M * ldc + GUARD).fill(SENTINEL);
  for (let m = 0; m < c.M; m++) for (let k = 0; k < c.N; k++) c0[m * ldc + k] = c.beta === 0 ? NaN : gauss(rnd);
  const A = (m: number, k: number) => (c.transA ? a[k * sa.ld + m] : a[m * sa.ld + k]);
  const B = (k: number, j: number) => (c.transB ? b[j * sb.ld + k] : b[k * sb.ld + j]);
  const want = new Float64Array(c.M * ldc);
  for (let m = 0; m < c.M; m++)
    for (let j = 0; j < c.N; j++) {
      let s = 0;
      for (let k = 0; k < c.K; k++) s += A(m, k) * B(k, j);
      want[m * ldc + j] = c.alpha * s + (c.beta === 0 ? 0 : c.beta * c0[m * ldc + j]);
    }
  gemmCache = { seed: c.seed, a, b, c0, want, lda: sa.ld, ldb: sb.ld, ldc };
  return gemmCache;
}

const describeGemm = (c: GemmCase) =>
  `${c.precision} ${c.M}x${c.N}x${c.K} tA=${c.transA} tB=${c.transB} pads ${c.padA}/${c.padB}/${c.padC} alpha=${c.alpha} beta=${c.beta}`;

function checkGemm(c: GemmCase): RowBody {
  const g = gemmInputs(c);
  const [A, B, C] = [g.a, g.b, g.c0].map((x) => Tensor.from(x, [x.length], { device: DEV }));
  try {
    gemm(c.M, c.N, c.K, A, B, C, { transA: c.transA, transB: c.transB, alpha: c.alpha, beta: c.beta, lda: g.lda, ldb: g.ldb, ldc: g.ldc, ...(DEV === 'cuda' ? { precision: c.precision } : {}) });
    const got = C.dataSync();
    plant(c.id, got, 0, c.M * g.ldc);
    const inside = (i: number) => i < c.M * g.ldc && i % g.ldc < c.N;
    let guards = true, finite = true;
    for (let i = 0; i < got.length; i++) {
      if (!inside(i)) guards &&= got[i] === SENTINEL;
      else finite &&= Number.isFinite(got[i]);
    }
    const relErr = relL2(got, g.want, inside);
    const ok = guards && finite && relErr <= GRADIENT_FACTOR * TOLERANCE[c.precision];
    return {
      ok, summary: `${describeGemm(c)}: err ${relErr.toExponential(2)}${guards ? '' : ', PADDING OR GUARDS OVERWRITTEN'}${finite ? '' : ', NOT FINITE'}`,
      precision: c.precision, M: c.M, N: c.N, K: c.K, transA: c.transA, transB: c.transB, lda: g.lda, ldb: g.ldb, ldc: g.ldc,
      alpha: c.alpha, beta: c.beta, relErr, guardsIntact: guards, finite,
    };
  } finally {
    for (const t of [A, B, C]) t.dispose();
  }
}

// ---------------------------------------------------------------------------------------
// Augmentation

/** Ops after which a last-bit difference may move a value far: thresholds, and nearest-neighbour sampling. */
function discontinuous(op: AugmentOp): boolean {
  if (THRESHOLDING_OPS.includes(op.op)) return true;
  const geometric = ['rotate', 'affine', 'affineMatrix', 'shearX', 'shearY', 'translateX', 'translateY'];
  return geometric.includes(op.op) && ((op as { interpolation?: string }).interpolation ?? 'nearest') === 'nearest';
}

const describeAugment = (c: AugmentCase) =>
  `${c.covers}${c.normalize ? ' +normalize' : ''}${c.fill !== null ? ` fill=${c.fill}` : ''}`;

function checkAugment(c: AugmentCase): RowBody {
  const img = c.image;
  const rnd = random(c.seed);
  const count = img.n * img.channels * img.height * img.width;
  const data = img.dtype === 'uint8' ? Uint8Array.from({ length: count }, () => Math.floor(rnd() * 256)) : Float32Array.from({ length: count }, () => rnd());
  const shape = [img.n, img.channels, img.height, img.width];
  const views = c.pipeline ? 2 : 1;
  const viewValues = img.channels * img.outHeight * img.outWidth;
  const total = img.n * views * viewValues;
  const normalize = c.normalize ? normalizeSpec(img.channels) : null;
  const all = guarded(total);
  const out = all.subarray(GUARD, GUARD + total);
  let want: Float32Array;
  let jumps: boolean[];
  if (c.pipeline) {
    const pipeline = { ...c.pipeline, normalize, fill: c.fill };
    const options = { seed: c.seed, views };
    want = (augment({ data, shape }, pipeline, { ...options, device: 'cpu', ...(dryRun ? { threads: 1 } : {}) }) as AugmentArray).data;
    augment({ data, shape }, pipeline, { ...options, device: DEV, out });
    jumps = drawAugmentOps(shape, pipeline, options).flat().map((list) => list.some(discontinuous));
  } else {
    const ops: AugmentOp[] = [{ op: 'resizedCrop', top: 2, left: 3, height: img.height - 5, width: img.width - 4 }, ...(c.ops ?? [])];
    const options = { size: [img.outHeight, img.outWidth] as [number, number], normalize, fill: c.fill };
    want = (applyAugmentOps({ data, shape }, ops, { ...options, device: 'cpu', ...(dryRun ? { threads: 1 } : {}) }) as AugmentArray).data;
    applyAugmentOps({ data, shape }, ops, { ...options, device: DEV, out });
    jumps = new Array<boolean>(img.n).fill(ops.some(discontinuous));
  }
  // Normalised values are scaled by 1 / std: so is the tolerance.
  const abs = AUGMENT_TOLERANCE.abs / (normalize ? Math.min(...normalize.std) : 1);
  let worst = 0, off = 0, jumpValues = 0;
  plant(c.id, all, GUARD, total);
  const finite = allFinite(out);
  jumps.forEach((jump, view) => {
    if (jump) jumpValues += viewValues;
    for (let i = view * viewValues; i < (view + 1) * viewValues; i++) {
      const e = Math.abs(out[i] - want[i]);
      if (jump) off += e > abs ? 1 : 0;
      else worst = Math.max(worst, Number.isNaN(e) ? Infinity : e);
    }
  });
  const guards = guardsIntact(all);
  const ok = guards && finite && worst <= abs && off <= AUGMENT_TOLERANCE.jumpShare * jumpValues;
  return {
    ok, summary: `${describeAugment(c)}: worst ${worst.toExponential(2)}${jumpValues ? `, ${off} of ${jumpValues} past a threshold` : ''}${guards ? '' : ', GUARDS OVERWRITTEN'}${finite ? '' : ', NOT FINITE'}`,
    image: img, ops: c.ops, pipeline: c.pipeline, normalize: c.normalize, fill: c.fill, worstAbsErr: worst, offValues: off, thresholdedValues: jumpValues, guardsIntact: guards, finite,
  };
}

// ---------------------------------------------------------------------------------------
// Layers: an nn op on CUDA against its CPU twin, generic over the rows of NN_OPS

type NnTensors = Record<string, NativeStorage | null>;
/** What an op's runner reads of a case. */
type NnCall = Pick<NnCase, 'op' | 'params' | 'precision'>;
/**
 * How each op of the layer cases runs: the one binding (native.nn.*) that picks the CPU
 * kernel or its CUDA twin by where the tensors are, with host storages for the twin and
 * device ones for the kernel. An op that returns a value (the cross-entropy) is compared too.
 */
interface NnOp {
  cpu(c: NnCall, t: NnTensors, threads?: number): number | void;
  cuda(c: NnCall, t: NnTensors): number | void;
}

const convDescOf = (c: NnCall) => c.params as unknown as ConvDescOfCase;
const dimsOf = (c: NnCall) => c.params as { N: number; inF: number; outF: number };
/** A backward case of a fresh gradient: dx is written (params.overwrite), not added into. */
const overwriteOf = (c: NnCall) => (c.params as { overwrite?: boolean }).overwrite === true;
/** A tensor by name; a missing one (an optional input or output the case leaves out) is null. */
const T = (t: NnTensors, name: string) => t[name] ?? null;
const need = (t: NnTensors, name: string) => {
  const s = t[name];
  if (!s) throw new Error(`the case has no tensor '${name}'`);
  return s;
};

const NN_OPS: Record<string, NnOp> = {
  conv2dForward: {
    cpu: (c, t, threads) => native.nn.conv2dForward(convDescOf(c), need(t, 'x'), need(t, 'w'), T(t, 'b'), need(t, 'y'), threads),
    cuda: (c, t) => native.nn.conv2dForward(convDescOf(c), need(t, 'x'), need(t, 'w'), T(t, 'b'), need(t, 'y'), undefined, c.precision),
  },
  conv2dBackward: {
    cpu: (c, t, threads) => native.nn.conv2dBackward(convDescOf(c), need(t, 'x'), need(t, 'w'), need(t, 'dy'), T(t, 'dx'), T(t, 'dw'), T(t, 'db'), threads,
      undefined, overwriteOf(c)),
    cuda: (c, t) => native.nn.conv2dBackward(convDescOf(c), need(t, 'x'), need(t, 'w'), need(t, 'dy'), T(t, 'dx'), T(t, 'dw'), T(t, 'db'), undefined,
      c.precision, overwriteOf(c)),
  },
  linearForward: {
    cpu: (c, t, threads) => { const d = dimsOf(c); native.nn.linearForward(need(t, 'x'), need(t, 'w'), T(t, 'b'), need(t, 'y'), d.N, d.inF, d.outF, threads); },
    cuda: (c, t) => { const d = dimsOf(c); native.nn.linearForward(need(t, 'x'), need(t, 'w'), T(t, 'b'), need(t, 'y'), d.N, d.inF, d.outF, undefined, c.precision); },
  },
  linearBackward: {
    cpu: (c, t, threads) => { const d = dimsOf(c); native.nn.linearBackward(need(t, 'x'), need(t, 'w'), need(t, 'dy'), T(t, 'dx'), T(t, 'dw'), T(t, 'db'), d.N, d.inF, d.outF, threads, undefined, overwriteOf(c)); },
    cuda: (c, t) => { const d = dimsOf(c); native.nn.linearBackward(need(t, 'x'), need(t, 'w'), need(t, 'dy'), T(t, 'dx'), T(t, 'dw'), T(t, 'db'), d.N, d.inF, d.outF, undefined, c.precision, overwriteOf(c)); },
  },
};

// The other layer ops: one binding each (native.nn), which runs the CPU kernel or its CUDA
// twin by where the tensors are; the same call serves both sides.
const P = (c: NnCall) => c.params as Record<string, number> & Record<string, boolean>;
const poolDescOf = (c: NnCall) => c.params as unknown as NativePoolDesc;
const bnDescOf = (c: NnCall) => { const p = P(c); return { N: p.N, C: p.C, L: p.L, eps: p.eps, momentum: p.momentum, relu: p.relu === true }; };
const both = (run: (c: NnCall, t: NnTensors, threads?: number) => number | void): NnOp => ({ cpu: run, cuda: (c, t) => run(c, t) });

const LAYER_OPS: Record<string, NnOp> = {
  reluForward: both((c, t, th) => native.nn.reluForward(need(t, 'x'), need(t, 'y'), P(c).n, th)),
  reluBackward: both((c, t, th) => native.nn.reluBackward(need(t, 'y'), need(t, 'dy'), need(t, 'dx'), P(c).n, th, overwriteOf(c))),
  add: both((c, t, th) => native.nn.add(need(t, 'a'), need(t, 'b'), need(t, 'y'), P(c).n, th)),
  addInto: both((c, t, th) => native.nn.addInto(need(t, 'y'), need(t, 'x'), P(c).n, th)),
  fill: both((c, t, th) => native.nn.fill(need(t, 'x'), P(c).n, P(c).value, th)),
  fillNormal: both((c, t, th) => native.nn.fillNormal(need(t, 'x'), P(c).n, P(c).mean, P(c).std, P(c).seed, th)),
  fillUniform: both((c, t, th) => native.nn.fillUniform(need(t, 'x'), P(c).n, P(c).low, P(c).high, P(c).seed, th)),
  maxPool2dForward: both((c, t, th) => native.nn.maxPool2dForward(poolDescOf(c), need(t, 'x'), need(t, 'y'), need(t, 'indices'), th)),
  maxPool2dBackward: both((c, t, th) => native.nn.maxPool2dBackward(poolDescOf(c), need(t, 'indices'), need(t, 'dy'), need(t, 'dx'), th)),
  globalAvgPoolForward: both((c, t, th) => native.nn.globalAvgPoolForward(need(t, 'x'), need(t, 'y'), P(c).planes, P(c).L, th)),
  globalAvgPoolBackward: both((c, t, th) => native.nn.globalAvgPoolBackward(need(t, 'dy'), need(t, 'dx'), P(c).planes, P(c).L, th)),
  batchNormForward: both((c, t, th) => native.nn.batchNormForward(bnDescOf(c), P(c).training, need(t, 'x'), need(t, 'gamma'), need(t, 'beta'),
    need(t, 'runningMean'), need(t, 'runningVar'), need(t, 'y'), need(t, 'saveMean'), need(t, 'saveInvStd'), th)),
  batchNormBackward: both((c, t, th) => native.nn.batchNormBackward(bnDescOf(c), P(c).training, need(t, 'x'), need(t, 'gamma'), need(t, 'saveMean'),
    need(t, 'saveInvStd'), need(t, 'dy'), T(t, 'dx'), T(t, 'dgamma'), T(t, 'dbeta'), th, T(t, 'y'), overwriteOf(c))),
  l2NormalizeForward: both((c, t, th) => native.nn.l2NormalizeForward(need(t, 'x'), need(t, 'y'), need(t, 'norms'), P(c).rows, P(c).dim, P(c).eps, th)),
  l2NormalizeBackward: both((c, t, th) => native.nn.l2NormalizeBackward(need(t, 'y'), need(t, 'norms'), need(t, 'dy'), need(t, 'dx'), P(c).rows, P(c).dim, P(c).eps, th)),
  crossEntropyForward: both((c, t, th) => native.nn.crossEntropyForward(need(t, 'logits'), need(t, 'labels'), P(c).rows, P(c).classes, th)),
  crossEntropyBackward: both((c, t, th) => native.nn.crossEntropyBackward(need(t, 'logits'), need(t, 'labels'), P(c).rows, P(c).classes, P(c).gradLoss, need(t, 'dlogits'), th)),
  sgdStep: both((c, t, th) => { const p = P(c); native.nn.sgdStep(need(t, 'param'), need(t, 'grad'), T(t, 'buffer'), p.n, { lr: p.lr, momentum: p.momentum, dampening: p.dampening, weightDecay: p.weightDecay, nesterov: p.nesterov, firstStep: p.firstStep }, th); }),
  larsStep: both((c, t, th) => { const p = P(c); native.nn.larsStep(need(t, 'param'), need(t, 'grad'), need(t, 'buffer'), p.n, { lr: p.lr, momentum: p.momentum, weightDecay: p.weightDecay, trustCoefficient: p.trustCoefficient, eps: p.eps, adapt: p.adapt }, th); }),
  adamwStep: both((c, t, th) => { const p = P(c); native.nn.adamwStep(need(t, 'param'), need(t, 'grad'), need(t, 'expAvg'), need(t, 'expAvgSq'), p.n, { lr: p.lr, beta1: p.beta1, beta2: p.beta2, eps: p.eps, weightDecay: p.weightDecay, step: p.step }, th); }),
  knnTopK: both((c, t, th) => { const p = P(c); native.nn.knnTopK(need(t, 'train'), need(t, 'test'), need(t, 'index'), need(t, 'similarity'), p.nTrain, p.nTest, p.d, p.k, th); }),
  rmspropStep: both((c, t, th) => { const p = P(c); native.nn.rmspropStep(need(t, 'param'), need(t, 'grad'), need(t, 'squareAvg'), T(t, 'buffer'), p.n, { lr: p.lr, alpha: p.alpha, eps: p.eps, weightDecay: p.weightDecay, momentum: p.momentum }, th); }),
};

Object.assign(NN_OPS, LAYER_OPS);

interface NnInputs { key: string; values: Record<string, Float32Array>; want: Record<string, Float32Array>; value: number | void }

/** Integers in [0, below) as int32 bits in a Float32Array (the storages take floats). */
function integersBelow(count: number, below: number, rnd: () => number): Float32Array {
  const out = new Float32Array(count);
  const asInt = new Int32Array(out.buffer);
  for (let i = 0; i < count; i++) asInt[i] = Math.floor(rnd() * below);
  return out;
}

/** For each output of a max pooling, a random input position inside its window and the image, as int32. */
function poolPositions(d: NativePoolDesc, rnd: () => number): Float32Array {
  const P = Math.floor((d.H + 2 * d.padH - d.R) / d.strideH) + 1, Q = Math.floor((d.W + 2 * d.padW - d.S) / d.strideW) + 1;
  const out = new Float32Array(d.N * d.C * P * Q);
  const asInt = new Int32Array(out.buffer);
  for (let e = 0; e < asInt.length; e++) {
    const pq = e % (P * Q), p = Math.floor(pq / Q), q = pq % Q;
    const h0 = Math.max(0, p * d.strideH - d.padH), h1 = Math.min(d.H, p * d.strideH - d.padH + d.R);
    const w0 = Math.max(0, q * d.strideW - d.padW), w1 = Math.min(d.W, q * d.strideW - d.padW + d.S);
    asInt[e] = (h0 + Math.floor(rnd() * (h1 - h0))) * d.W + w0 + Math.floor(rnd() * (w1 - w0));
  }
  return out;
}

/** The share of elements whose int32 bits differ. */
function int32Mismatch(a: Float32Array, b: Float32Array): number {
  const x = new Int32Array(a.buffer, a.byteOffset, a.length), y = new Int32Array(b.buffer, b.byteOffset, b.length);
  let off = 0;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) off++;
  return off / Math.max(x.length, 1);
}
let nnCache: NnInputs | null = null;

/**
 * A case's tensors (inputs normal times their scale; accumulating outputs random, the
 * others NaN) and the CPU twin's outputs, once for every precision.
 */
function nnInputs(c: NnCase): NnInputs {
  // Everything the CPU twin's run depends on but the precision: the cases of one shape in
  // each precision share it (a case that writes a fresh dx differs from its adding twin in
  // its params and in how dx starts).
  const key = `${c.seed}|${c.op}|${JSON.stringify(c.params)}|${c.tensors.map((t) => `${t.name}:${t.count}:${t.role}:${t.accumulate === true}`).join(',')}`;
  if (nnCache?.key === key) return nnCache;
  nnCache = null;
  const rnd = random(c.seed);
  const values: Record<string, Float32Array> = {};
  for (const t of c.tensors) {
    if (t.role === 'output' && !t.accumulate) values[t.name] = new Float32Array(t.count).fill(NaN);
    else if (t.int32Below !== undefined) values[t.name] = integersBelow(t.count, t.int32Below, rnd);
    else if (t.poolPositions) values[t.name] = poolPositions(c.params as unknown as NativePoolDesc, rnd);
    else if (t.positive) values[t.name] = normal(t.count, rnd).map((v) => 0.5 + Math.abs(v) * (t.scale ?? 1));
    else values[t.name] = normal(t.count, rnd).map((v) => v * (t.scale ?? 1));
  }
  const host = Object.fromEntries(c.tensors.map((t) => [t.name, Tensor.from(values[t.name], [t.count], { device: 'cpu' })]));
  try {
    const value = NN_OPS[c.op].cpu(c, Object.fromEntries(Object.entries(host).map(([k, v]) => [k, v.storage])), dryRun ? 1 : undefined);
    const want: Record<string, Float32Array> = {};
    for (const t of c.tensors.filter((x) => x.role === 'output')) {
      want[t.name] = host[t.name].dataSync() as Float32Array;
      if (!t.int32 && !allFinite(want[t.name])) throw new Error(`the CPU twin's ${t.name} is not finite`);
    }
    nnCache = { key, values, want, value };
    return nnCache;
  } finally {
    for (const v of Object.values(host)) v.dispose();
  }
}

const describeNn = (c: NnCase) => `${c.precision} ${c.op} ${c.covers}`;

/** One nn case: inputs on DEV, each output one GUARD region longer (sentinels that must survive). */
function checkNn(c: NnCase): RowBody {
  const op = NN_OPS[c.op];
  if (!op) throw new Error(`no runner for op '${c.op}'`);
  const ref = nnInputs(c);
  const storages: Record<string, NativeStorage> = {};
  try {
    for (const t of c.tensors) {
      if (t.role === 'input') {
        storages[t.name] = new native.Storage(t.count * 4, DEV);
        storages[t.name].write(ref.values[t.name], 0);
      } else {
        const all = new Float32Array(t.count + GUARD).fill(SENTINEL);
        all.set(ref.values[t.name]);
        storages[t.name] = new native.Storage(all.byteLength, DEV);
        storages[t.name].write(all, 0);
      }
    }
    // The dry run runs the CPU twin on both sides: one thread against all of them.
    const value = dryRun ? op.cpu(c, storages) : op.cuda(c, storages);
    const tol = GRADIENT_FACTOR * TOLERANCE[c.precision];
    let ok = true, guards = true, finite = true, first = true;
    const errors: Record<string, number> = {};
    if (typeof ref.value === 'number') {
      const err = typeof value === 'number' ? Math.abs(value - ref.value) / Math.max(Math.abs(ref.value), LOSS_FLOOR) : Infinity;
      errors.value = err;
      finite &&= typeof value === 'number' && Number.isFinite(value);
      ok &&= finite && err <= TOLERANCE[c.precision];
    }
    for (const t of c.tensors.filter((x) => x.role === 'output')) {
      const all = new Float32Array(t.count + GUARD);
      storages[t.name].read(all, 0);
      if (first) plant(c.id, all, 0, t.count);
      first = false;
      const got = all.subarray(0, t.count), want = ref.want[t.name], before = ref.values[t.name];
      let guard = true;
      for (let i = t.count; i < all.length; i++) guard &&= all[i] === SENTINEL;
      const fin = t.int32 ? true : allFinite(got);
      // Accumulating outputs: the increments are compared (what was there must be kept, once).
      // Integer outputs (positions) must be the same, every one.
      const err = t.int32
        ? int32Mismatch(got, want)
        : t.accumulate
          ? relL2(Float64Array.from(got, (g, i) => g - before[i]), Float64Array.from(want, (g, i) => g - before[i]))
          : relL2(got, want);
      errors[t.name] = err;
      guards &&= guard;
      finite &&= fin;
      ok &&= guard && fin && err <= tol;
    }
    const errText = Object.entries(errors).map(([k, v]) => `${k} err ${v.toExponential(2)}`).join(', ');
    return {
      ok, summary: `${describeNn(c)}: ${errText}${guards ? '' : ', GUARDS OVERWRITTEN'}${finite ? '' : ', NOT FINITE'}`,
      precision: c.precision, op: c.op, params: c.params, tensors: c.tensors.map((t) => `${t.name}[${t.count}]${t.role === 'output' ? (t.accumulate ? ' +=' : ' =') : ''}`),
      relErr: errors, tolerance: tol, guardsIntact: guards, finite, covers: c.covers,
    };
  } finally {
    for (const s of Object.values(storages)) s.dispose();
  }
}

// ---------------------------------------------------------------------------------------
// Determinism

function checkDeterminism(): Row[] {
  const n = scale === 'full' ? 513 : 129, v = 2, d = scale === 'full' ? 128 : 64;
  const labels = Int32Array.from({ length: n }, (_, i) => i % 10);
  const precision: Precision = dryRun ? 'fp32' : 'tf32';
  const sameBits = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((g, i) => Object.is(g, b[i]));
  const cases = [
    {
      id: 'determinism-repeat', run: (): RowBody => {
        const x = Tensor.from(normal(n * v * d, random(77)), [n, v, d], { device: DEV });
        try {
          const a = supconLoss(x, labels, { precision, normalize: true });
          const b = supconLoss(x, labels, { precision, normalize: true });
          const ga = a.grad.dataSync(), gb = b.grad.dataSync();  // one copy each
          a.grad.dispose();
          b.grad.dispose();
          const ok = Number.isFinite(a.loss) && allFinite(ga) && a.loss === b.loss && sameBits(ga, gb);
          return { ok, summary: `${precision} n=${n} v=${v} d=${d}: the same bits twice: ${ok}` };
        } finally {
          x.dispose();
        }
      },
    },
    {
      id: 'determinism-host-vs-device', run: (): RowBody => {
        const hx = normal(n * v * d, random(78));
        const host = supconLoss({ data: hx, shape: [n, v, d] }, labels, { device: DEV });
        const t = Tensor.from(hx, [n, v, d], { device: DEV });
        try {
          const dev = supconLoss(t, labels);
          const g = dev.grad.dataSync();
          dev.grad.dispose();
          const ok = Number.isFinite(host.loss) && allFinite(host.grad) && host.loss === dev.loss && sameBits(host.grad, g);
          return { ok, summary: `fp32 n=${n} v=${v} d=${d}: host arrays and ${DEV} tensors give the same bits: ${ok}` };
        } finally {
          t.dispose();
        }
      },
    },
    {
      id: 'determinism-contrast', run: (): RowBody => {
        // A queue of 3 n rows after the batch: both gradients, the same bits twice.
        const m = 3 * n;
        const x = Tensor.from(normal(n * v * d, random(79)), [n, v, d], { device: DEV });
        const contrast = { features: { data: normal(m * d, random(80)), shape: [m, d] }, labels: Int32Array.from({ length: m }, (_, i) => (i * 7) % 10), withAnchors: true };
        try {
          const a = supconLoss(x, labels, { precision, normalize: true, contrast });
          const b = supconLoss(x, labels, { precision, normalize: true, contrast });
          const ga = a.grad.dataSync(), gb = b.grad.dataSync();
          a.grad.dispose();
          b.grad.dispose();
          const ok = Number.isFinite(a.loss) && allFinite(ga) && allFinite(a.contrastGrad!) && a.loss === b.loss && sameBits(ga, gb) && sameBits(a.contrastGrad!, b.contrastGrad!);
          return { ok, summary: `${precision} n=${n} v=${v} d=${d} against a queue of m=${m}: the same bits twice, both gradients: ${ok}` };
        } finally {
          x.dispose();
        }
      },
    },
  ];
  return runCases('determinism', cases, (c) => c.run(), (c) => c.id);
}

// ---------------------------------------------------------------------------------------
// Timings

/** The dry run's stand-in for cudaTimeGemm: the CPU GEMM, timed by the wall clock after one warm-up. */
function wallClockGemm(size: number, repeats: number): number[] {
  const a = new Float32Array(size * size).fill(0.5), c = new Float32Array(size * size);
  gemm(size, size, size, a, a, c);
  return Array.from({ length: repeats }, () => {
    const t0 = performance.now();
    gemm(size, size, size, a, a, c);
    return performance.now() - t0;
  });
}

/** The dry run's stand-in for cudaTimeLoss: one untimed warm-up, then `repeats` timed CPU runs. */
function wallClockLoss(features: Tensor, labels: Int32Array, grad: Tensor, repeats: number) {
  const forwardMs: number[] = [], backwardMs: number[] = [];
  let loss = 0;
  for (let r = -1; r < repeats; r++) {
    const t0 = performance.now();
    const fwd = supconForward(features as Tensor<'float32'>, labels, { temperature: 0.1, baseTemperature: 0.07, device: 'cpu' });
    const t1 = performance.now();
    const g = fwd.backward();
    const t2 = performance.now();
    grad.storage.write(g.dataSync(), 0);  // as cudaTimeLoss leaves it
    g.dispose();
    loss = fwd.loss;
    fwd.dispose();
    if (r < 0) continue;
    forwardMs.push(t1 - t0);
    backwardMs.push(t2 - t1);
  }
  return { forwardMs, backwardMs, peakExtraBytes: 0, loss };
}

/** cudaTimeLoss (or its stand-in): one untimed warm-up, then `repeats` timed runs. */
function timeLoss(features: Tensor, n: number, d: number, labels: Int32Array, precision: Precision, grad: Tensor, repeats: number) {
  return dryRun
    ? wallClockLoss(features, labels, grad, repeats)
    : native.cudaTimeLoss(features.storage, n, 2, d, labels, { temperature: 0.1, baseTemperature: 0.07, precision }, grad.storage, repeats);
}

interface TimingRun { B: number; precision: Precision; repeats: number }

const TIMED_D = 128;

/** Sizes x precisions; B >= 2^20 in tf32 and bf16 only, with one timed repeat after the warm-up. */
function timingPlan(dry: boolean): TimingRun[] {
  const env = process.env.SUPCON_GPU_SIZES;
  const runs: TimingRun[] = [];
  const add = (B: number, precisions: readonly Precision[]) => {
    for (const precision of precisions) runs.push({ B, precision, repeats: B >= 1 << 20 ? 1 : 3 });
  };
  if (dry) for (const B of (env ?? '1024,2048').split(',').map(Number)) add(B, ['fp32']);
  else if (env !== undefined) for (const B of env.split(',').map(Number)) add(B, B >= 1 << 20 ? ['tf32', 'bf16'] : PRECISIONS);
  else if (quick) {
    add(32768, PRECISIONS);
    add(131072, PRECISIONS);
    add(1 << 20, ['tf32', 'bf16']);
  } else {
    for (const B of [8192, 32768, 131072]) add(B, PRECISIONS);
    add(1 << 20, ['tf32', 'bf16']);
  }
  for (const r of runs) if (!(Number.isInteger(r.B) && r.B >= 2 && r.B % 2 === 0)) throw new RangeError(`SUPCON_GPU_SIZES: expected even batch sizes >= 2, got ${r.B}`);
  return runs;
}

const modelFlops = (B: number, d: number) => 6 * B * B * d;
const timedWork = (B: number) => lossWork(B / 2, 2, TIMED_D, 'all', 'all');

interface TimingRow {
  B: number; d: number; precision: Precision; repeats: number; forwardMs: number; backwardMs: number; totalMs: number;
  tflops: number; peakExtraMB: number; loss: number;
}

function timeOurs(plan: TimingRun[], peerReserveS: number): { rows: TimingRow[]; failures: number } {
  const rows: TimingRow[] = [];
  const record: unknown[] = [];
  report.json.ours = record;
  let failures = 0;
  const slowdown: Partial<Record<Precision, number>> = {};  // measured / estimated time, so far
  for (const B of [...new Set(plan.map((r) => r.B))]) {
    const n = B / 2, d = TIMED_D;
    // Uniform values from a linear congruential generator (cheap enough for a million rows), normalised.
    const x = new Float32Array(n * 2 * d);
    let state = B >>> 0;
    for (let i = 0; i < x.length; i++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      x[i] = state / 4294967296 - 0.5;
    }
    for (let r = 0; r < B; r++) {
      let ss = 0;
      for (let k = 0; k < d; k++) ss += x[r * d + k] ** 2;
      for (let k = 0; k < d; k++) x[r * d + k] /= Math.sqrt(ss);
    }
    const labels = Int32Array.from({ length: n }, (_, i) => i % 100);
    let features: Tensor | null = null, grad: Tensor | null = null;
    try {
      features = Tensor.from(x, [n, 2, d], { device: DEV });
      grad = Tensor.zeros([n, 2, d], { device: DEV });
      for (const run of plan.filter((r) => r.B === B)) {
        const { precision, repeats } = run;
        const estimateS = gpuSeconds(timedWork(B), precision);
        const predictS = estimateS * (slowdown[precision] ?? 1) * (repeats + 1);
        if (!dryRun && elapsedS() + predictS + peerReserveS > BUDGET_S) {
          const why = `${predictS.toFixed(0)} s more would pass the ${BUDGET_S} s budget (${elapsedS().toFixed(0)} s spent)`;
          say(`ours B=${B} ${precision}: SKIPPED, ${why}`);
          record.push({ B, precision, skipped: why });
          report.save();
          continue;
        }
        try {
          const t = timeLoss(features, n, d, labels, precision, grad, repeats);
          const times = [...t.forwardMs, ...t.backwardMs];
          if (t.forwardMs.length !== repeats || t.backwardMs.length !== repeats || !times.every((ms) => Number.isFinite(ms) && ms >= 0) || !Number.isFinite(t.loss))
            throw new Error(`expected ${repeats} finite timings and a finite loss, got ${JSON.stringify(t)}`);
          const forwardMs = median(t.forwardMs), backwardMs = median(t.backwardMs);
          const totalMs = median(t.forwardMs.map((f, i) => f + t.backwardMs[i]));
          slowdown[precision] = totalMs / 1000 / estimateS;
          const row: TimingRow = {
            B, d, precision, repeats, forwardMs, backwardMs, totalMs, tflops: modelFlops(B, d) / totalMs / 1e9,
            peakExtraMB: t.peakExtraBytes / 2 ** 20, loss: t.loss,
          };
          rows.push(row);
          record.push({ ...row, forwardRuns: t.forwardMs, backwardRuns: t.backwardMs });
          say(`ours B=${B} ${precision}: forward ${forwardMs.toFixed(2)} ms, backward ${backwardMs.toFixed(2)} ms, ${row.tflops.toFixed(1)} TFLOP/s, +${row.peakExtraMB.toFixed(0)} MB, loss ${t.loss.toFixed(6)} (${repeats} timed after a warm-up)`);
        } catch (e) {
          failures++;
          record.push({ B, precision, error: message(e) });
          say(`FAIL ours B=${B} ${precision}: ${message(e)}`);
        }
        report.save();
      }
    } catch (e) {
      failures++;
      record.push({ B, error: message(e) });
      say(`FAIL ours B=${B}: ${message(e)}`);
      report.save();
    } finally {
      features?.dispose();
      grad?.dispose();
    }
  }
  return { rows, failures };
}

const GEMM_SIZE = dryRun ? 256 : 8192;

function timeGemms(precisions: readonly Precision[]): { rows: { precision: Precision; ms: number; tflops: number }[]; failures: number } {
  const rows: { precision: Precision; ms: number; tflops: number }[] = [];
  let failures = 0;
  report.json.gemm = rows;
  for (const precision of precisions) {
    try {
      const runs = dryRun ? wallClockGemm(GEMM_SIZE, 5) : native.cudaTimeGemm(GEMM_SIZE, GEMM_SIZE, GEMM_SIZE, precision, 5);
      if (runs.length !== 5 || !runs.every((ms) => Number.isFinite(ms) && ms >= 0)) throw new Error(`expected 5 finite timings, got ${JSON.stringify(runs)}`);
      const ms = median(runs);
      const tflops = (2 * GEMM_SIZE ** 3) / ms / 1e9;
      rows.push({ precision, ms, tflops });
      say(`ours GEMM ${GEMM_SIZE}^3 ${precision}: ${ms.toFixed(2)} ms, ${tflops.toFixed(3)} TFLOP/s`);
    } catch (e) {
      failures++;
      say(`FAIL ours GEMM ${precision}: ${message(e)}`);
    }
    report.save();
  }
  return { rows, failures };
}

/** The timed convolution: a ResNet-18 stage-1 3x3 layer (64 -> 64 channels at 32 x 32) at batch 256. */
const GPU_TIMED_CONV: ConvDescOfCase = { N: 256, C: 64, H: 32, W: 32, K: 64, R: 3, S: 3, strideH: 1, strideW: 1, padH: 1, padW: 1 };
const TIMED_CONV: ConvDescOfCase = dryRun ? { ...GPU_TIMED_CONV, N: 4, H: 16, W: 16 } : GPU_TIMED_CONV;
const CONV_REPEATS = 3;

const convLabel = (d: ConvDescOfCase) => `N=${d.N} ${d.C}->${d.K} ${d.H}x${d.W} ${d.R}x${d.S}`;
const convFlops = (d: ConvDescOfCase) => {
  const { P, Q } = convOutput(d);
  return 2 * d.N * P * Q * d.K * d.C * d.R * d.S;
};

/** Forward and backward (data and weights: twice the flops) at each precision, a warm-up and CONV_REPEATS runs each. */
function convTimingSeconds(d: ConvDescOfCase, precisions: readonly Precision[]): number {
  const { P, Q } = convOutput(d);
  const values = d.N * d.C * d.H * d.W + d.K * d.C * d.R * d.S + d.N * d.K * P * Q;
  const gpu = precisions.reduce((s, p) => s + (CONV_REPEATS + 1) * 3 * convFlops(d) / (H200.tflops[p] * 1e12), 0);
  return gpu + 2 * values / H200.hostElementsPerS + precisions.length * 2 * (CONV_REPEATS + 1) * H200.launchesPerCase * H200.launchS;
}

interface ConvTimingRow { precision: Precision; forwardMs: number; backwardMs: number; forwardTflops: number; backwardTflops: number; forwardRuns: number[]; backwardRuns: number[] }

/**
 * conv2d forward and backward (dx and dw, no bias) through the layer stage's runners, by the
 * wall clock around each call and a one-value read-back that waits for the stream (a few
 * microseconds on top of milliseconds); a warm-up first, then the median of CONV_REPEATS.
 */
function timeConvs(precisions: readonly Precision[], d: ConvDescOfCase = TIMED_CONV): { rows: ConvTimingRow[]; failures: number } {
  const rows: ConvTimingRow[] = [];
  const record: unknown[] = [];
  report.json.conv = record;
  let failures = 0;
  const { P, Q } = convOutput(d);
  const sizes = { x: d.N * d.C * d.H * d.W, w: d.K * d.C * d.R * d.S, y: d.N * d.K * P * Q };
  const storages: Record<string, NativeStorage> = {};
  try {
    let state = 12345;
    const fill = (count: number, scale: number) => {
      const v = new Float32Array(count);
      for (let i = 0; i < count; i++) {
        state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
        v[i] = (state / 4294967296 - 0.5) * scale;
      }
      return v;
    };
    const make = (name: string, count: number, scale: number) => {
      storages[name] = new native.Storage(count * 4, DEV);
      storages[name].write(fill(count, scale), 0);
    };
    make('x', sizes.x, 1);
    make('w', sizes.w, 1 / Math.sqrt(d.C * d.R * d.S));
    make('dy', sizes.y, 1);
    make('y', sizes.y, 0);
    make('dx', sizes.x, 0);
    make('dw', sizes.w, 0);
    const one = new Float32Array(1);
    const timed = (c: NnCall, t: NnTensors, wait: NativeStorage) => {
      const runs: number[] = [];
      for (let r = -1; r < CONV_REPEATS; r++) {
        const t0 = performance.now();
        if (dryRun) NN_OPS[c.op].cpu(c, t);
        else NN_OPS[c.op].cuda(c, t);
        wait.read(one, 0);
        if (r >= 0) runs.push(performance.now() - t0);
      }
      return runs;
    };
    for (const precision of precisions) {
      try {
        const base = { precision, params: { ...d } };
        const fwd = timed({ ...base, op: 'conv2dForward' }, { x: storages.x, w: storages.w, y: storages.y }, storages.y);
        const bwd = timed({ ...base, op: 'conv2dBackward' }, { x: storages.x, w: storages.w, dy: storages.dy, dx: storages.dx, dw: storages.dw }, storages.dw);
        const all = [...fwd, ...bwd];
        if (all.length !== 2 * CONV_REPEATS || !all.every((ms) => Number.isFinite(ms) && ms >= 0)) throw new Error(`expected ${2 * CONV_REPEATS} finite timings, got ${JSON.stringify(all)}`);
        const forwardMs = median(fwd), backwardMs = median(bwd);
        const row: ConvTimingRow = {
          precision, forwardMs, backwardMs, forwardTflops: convFlops(d) / forwardMs / 1e9, backwardTflops: (2 * convFlops(d)) / backwardMs / 1e9,
          forwardRuns: fwd, backwardRuns: bwd,
        };
        rows.push(row);
        record.push({ desc: d, ...row });
        say(`ours conv2d ${convLabel(d)} ${precision}: forward ${forwardMs.toFixed(2)} ms (${row.forwardTflops.toFixed(2)} TFLOP/s), backward data + weights ${backwardMs.toFixed(2)} ms (${row.backwardTflops.toFixed(2)} TFLOP/s)${dryRun ? ' (the CPU twin, wall clock)' : ''}`);
      } catch (e) {
        failures++;
        record.push({ desc: d, precision, error: message(e) });
        say(`FAIL ours conv2d ${precision}: ${message(e)}`);
      }
      report.save();
    }
  } catch (e) {
    failures++;
    record.push({ desc: d, error: message(e) });
    say(`FAIL ours conv2d: ${message(e)}`);
    report.save();
  } finally {
    for (const s of Object.values(storages)) s.dispose();
  }
  return { rows, failures };
}

interface PeerRow { B: number; d: number; mode: string; precision: string; ms?: number; loss?: number; peakExtraBytes?: number; error?: string }
interface PeerPlan { device: 'cuda' | 'cpu'; sizes: number[]; precisions: Precision[]; compileSizes: number[]; gemm: number }

/** The peer at our sizes up to 32768 (beyond, the eager formula's B x B tensors do not fit); on the CPU for a dry run. */
function peerPlan(plan: TimingRun[], dry: boolean): PeerPlan {
  const sizes = [...new Set(plan.map((r) => r.B))].filter((B) => B <= 32768);
  if (dry) return { device: 'cpu', sizes, precisions: ['fp32'], compileSizes: [], gemm: GEMM_SIZE };
  return { device: 'cuda', sizes, precisions: [...PRECISIONS], compileSizes: quick ? [] : sizes.filter((B) => B === Math.max(...sizes)), gemm: quick ? 0 : 8192 };
}

/** The Python that runs the peer: SUPCON_PYTHON, else python3. */
const PYTHON = process.env.SUPCON_PYTHON || 'python3';

function peerSeconds(p: PeerPlan): number {
  let s = H200.torchStartS;
  for (const B of p.sizes)
    for (const _ of p.precisions) {
      const modes = p.compileSizes.includes(B) ? 2 : 1;
      s += modes * 4 * ((H200.torchPassesPerLogit * 4 * B * B) / H200.hbmBytesPerS);
      if (modes === 2) s += H200.torchCompileS;
    }
  return s + (p.gemm > 0 ? 3 * 6 * ((2 * p.gemm ** 3) / (H200.tflops.fp32 * 1e12)) : 0);
}

function timePeer(p: PeerPlan, timeoutS: number): { available: boolean; reason: string; rows: PeerRow[]; torch?: string; gpu?: string; gemm: { precision: string; ms: number }[] } {
  const none = { rows: [] as PeerRow[], gemm: [] };
  if (p.sizes.length === 0) return { available: false, reason: 'no size at or below 32768 in the plan', ...none };
  const cuda = p.device === 'cuda';
  const probe = spawnSync(PYTHON, ['-c', `import torch; ${cuda ? 'assert torch.cuda.is_available(); ' : ''}print(torch.__version__)`], { encoding: 'utf8', timeout: 60_000 });
  if (probe.status !== 0) return { available: false, reason: `${PYTHON} with ${cuda ? 'CUDA-enabled ' : ''}torch is not available (SUPCON_PYTHON names another Python)`, ...none };
  const script = path.join(__dirname, '..', '..', 'bench', 'peers', 'torch_supcon.py');
  const args = [script, '--sizes', p.sizes.join(','), '--d', String(TIMED_D), '--repeats', '3', '--precisions', p.precisions.join(','),
    '--compile-sizes', p.compileSizes.join(','), '--gemm', String(p.gemm), '--device', p.device];
  const run = spawnSync(PYTHON, args, { encoding: 'utf8', maxBuffer: 1 << 26, timeout: Math.max(30, timeoutS) * 1000 });
  writeFileSync(path.join(outDir, 'torch-peer.log'), run.stderr ?? '');
  // One JSON object a line, as each result comes: what finished before a timeout is kept.
  const rows: PeerRow[] = [], gemmRows: { precision: string; ms: number }[] = [];
  let info: { torch?: string; gpu?: string } = {};
  for (const line of (run.stdout ?? '').split('\n')) {
    if (!line.startsWith('{')) continue;
    const o = JSON.parse(line);
    if (o.row) rows.push(o.row);
    else if (o.gemm) gemmRows.push(o.gemm);
    else if (o.torch) info = o;
  }
  const failed = run.error ? `stopped: ${run.error.message}` : run.status !== 0 ? `exit ${run.status}: ${(run.stderr ?? '').trim().split('\n').slice(-3).join(' ')}` : '';
  return { available: rows.length > 0, reason: failed, rows, torch: info.torch, gpu: info.gpu, gemm: gemmRows };
}

// ---------------------------------------------------------------------------------------
// The plan

interface Stage { name: string; count: number; seconds: number }

/** GPU seconds of some work: its matrix products or its memory traffic, whichever binds, and its scalar work. */
function gpuSeconds(w: Work, precision: Precision): number {
  return Math.max(w.flops / (H200.tflops[precision] * 1e12), w.bytes / H200.hbmBytesPerS) + w.scalarOps / H200.scalarOpsPerS;
}

function caseSeconds(w: Work, precision: Precision, referenceToo: boolean): number {
  const gpu = gpuSeconds(w, precision) + H200.launchesPerCase * H200.launchS;
  return gpu + w.hostElements / H200.hostElementsPerS + (referenceToo ? w.cpuFlops / H200.cpuFlopsPerS : 0);
}

function checkStages(loss: LossCase[], gemms: GemmCase[], augments: AugmentCase[], nn: NnCase[]): Stage[] {
  let seed = -1;
  const lossS = loss.reduce((s, c) => {
    const first = c.seed !== seed;
    seed = c.seed;
    return s + caseSeconds(lossWork(c.n, c.v, c.d, c.options.contrastMode, c.options.denominator, c.contrast), c.precision, first);
  }, 0);
  const gemmS = gemms.reduce((s, c) => s + caseSeconds(gemmWork(c), c.precision, true), 0);
  const augS = augments.reduce((s, c) => s + caseSeconds(augmentWork(c), 'fp32', true), 0);
  const nnS = nn.reduce((s, c) => s + caseSeconds(c.work, c.precision, true), 0);
  const det = lossWork(513, 2, 128, 'all', 'all');
  return [
    { name: 'loss, CUDA vs CPU', count: loss.length, seconds: lossS },
    { name: 'GEMM, CUDA vs CPU', count: gemms.length, seconds: gemmS },
    { name: 'augmentation, CUDA vs CPU', count: augments.length, seconds: augS },
    { name: 'layers (conv2d, linear), CUDA vs CPU', count: nn.length, seconds: nnS },
    { name: 'determinism', count: 3, seconds: 8 * caseSeconds(det, 'tf32', true) },
  ];
}

function timingStages(plan: TimingRun[], peer: PeerPlan): Stage[] {
  const hostS = (B: number) => (B * TIMED_D * 4) / H200.hostElementsPerS;
  const sizes = [...new Set(plan.map((r) => r.B))];
  const ours = plan.reduce((s, r) => s + (r.repeats + 1) * gpuSeconds(timedWork(r.B), r.precision), 0)
    + sizes.reduce((s, B) => s + hostS(B), 0);
  const gemmS = PRECISIONS.reduce((s, p) => s + 6 * ((2 * 8192 ** 3) / (H200.tflops[p] * 1e12)), 0);
  const stages = [
    { name: `timings: B in ${sizes.join(', ')}`, count: plan.length, seconds: ours },
    { name: 'GEMM timings, 8192^3', count: PRECISIONS.length, seconds: gemmS },
    { name: `conv2d timings, ${convLabel(GPU_TIMED_CONV)}`, count: PRECISIONS.length, seconds: convTimingSeconds(GPU_TIMED_CONV, PRECISIONS) },
  ];
  stages.push({ name: `training step: ResNet-18 at ${GPU_STEP.size}x${GPU_STEP.size}, batch ${GPU_STEP.batch}, ours and PyTorch's`, count: PRECISIONS.length, seconds: stepSeconds() });
  if (withTrainRun) stages.push({ name: 'the default `supcon train` on the GPU, end to end (--train)', count: 1, seconds: TRAIN_RUN_S });
  stages.push({ name: `PyTorch peer: B in ${peer.sizes.join(', ')}${peer.compileSizes.length ? `, torch.compile at ${peer.compileSizes.join(', ')}` : ', eager only'}`, count: peer.sizes.length * peer.precisions.length, seconds: peerSeconds(peer) });
  return stages;
}

// ---------------------------------------------------------------------------------------
// Training: a ResNet-18 step against PyTorch's, and the default run end to end

const GPU_STEP = { batch: 512, size: 32, steps: 5 };
const STEP = dryRun ? { batch: 4, size: 8, steps: 2 } : GPU_STEP;
/** --train: the default `supcon train` end to end too (about TRAIN_RUN_S more). */
const withTrainRun = process.argv.includes('--train');
/** The default run's expected time on an H200 (5 epochs of the ConvNet, the evaluation and the report). */
const TRAIN_RUN_S = 90;

/** A step's products: forward and backward of two views of every image through ResNet-18 at the size (0.56 GFLOP an image at 32x32). */
function stepSeconds(): number {
  const flops = 3 * 2 * 2 * GPU_STEP.batch * 0.56e9 * (GPU_STEP.size / 32) ** 2;
  const ours = PRECISIONS.reduce((s, p) => s + (GPU_STEP.steps + 1) * flops / (H200.tflops[p] * 1e12) + 2, 0);
  return ours + H200.torchStartS + 10;
}

interface TrainingFigures {
  steps: StepTiming[];
  peer: ReturnType<typeof timePeerStep>;
  run: TrainRun | { skipped: string };
  failures: number;
}

function trainingFigures(precisions: readonly Precision[]): TrainingFigures {
  const steps: StepTiming[] = [];
  let failures = 0;
  for (const precision of precisions) {
    try {
      const r = timeResnetStep(STEP.batch, STEP.size, STEP.steps, precision, DEV);
      steps.push(r);
      say(`ours ResNet-18 step ${precision}: ${r.ms.toFixed(1)} ms, ${r.imagesPerSecond.toFixed(0)} images/s (batch ${r.batch}, ${r.size}x${r.size}, 2 views), loss ${r.loss.toFixed(4)}`);
    } catch (e) {
      failures++;
      say(`FAIL ResNet-18 step ${precision}: ${(e as Error).message}`);
    }
  }
  const peer = timePeerStep(PYTHON, STEP.batch, STEP.size, STEP.steps, DEV, dryRun ? 120 : 90);
  if (!peer.available) say(`PyTorch step peer SKIPPED: ${peer.reason}`);
  for (const r of peer.rows)
    say(`torch ResNet-18 step ${r.precision}${r.channelsLast ? ' channels_last' : ''}: ${r.ms !== undefined ? `${r.ms.toFixed(1)} ms, ${r.imagesPerSecond?.toFixed(0)} images/s` : r.error}`);
  // The default run, with --train: on a dry run a slice of it on the CPU, to check the path;
  // on a GPU the whole run, when the budget leaves room for it.
  const left = BUDGET_S - elapsedS();
  let run: TrainingFigures['run'];
  if (!withTrainRun) run = { skipped: 'no --train' };
  else if (!dryRun && left < TRAIN_RUN_S + 30) run = { skipped: `${left.toFixed(0)} s of the budget left` };
  else {
    const args = dryRun ? ['--device', 'cpu', '--limit', '256', '--test-limit', '128', '--epochs', '1', '--linear-epochs', '1', '--batch', '64'] : ['--device', 'cuda'];
    run = timeTrainCommand(args, dryRun ? 300 : Math.floor(left - 20));
    if (!run.ok) failures++;
    say(run.ok
      ? `supcon train ${args.join(' ')}: ${run.seconds.toFixed(1)} s, linear evaluation ${(100 * (run.testAccuracy ?? NaN)).toFixed(2)}%, kNN ${(100 * (run.knnAccuracy ?? NaN)).toFixed(2)}%`
      : `FAIL supcon train ${args.join(' ')}: ${run.reason}`);
  }
  if ('skipped' in run) say(`the default supcon train SKIPPED: ${run.skipped}`);
  return { steps, peer, run, failures };
}

function printPlan(title: string, stages: Stage[], estimate: boolean): number {
  const total = H200.startupS + stages.reduce((s, x) => s + x.seconds, 0);
  say(title);
  for (const s of stages) say(`  ${s.name.padEnd(58)} ${String(s.count).padStart(4)}${estimate ? `  ~${s.seconds.toFixed(1).padStart(6)} s` : ''}`);
  if (estimate) say(`  estimated total on an H200: ~${total.toFixed(0)} s (budget ${BUDGET_S} s); assumed rates: fp32 ${H200.tflops.fp32}, tf32 ${H200.tflops.tf32}, bf16 ${H200.tflops.bf16} TFLOP/s, CUDA cores ${H200.scalarOpsPerS / 1e12} Tops/s, ${H200.hbmBytesPerS / 1e12} TB/s, CPU reference ${H200.cpuFlopsPerS / 1e9} GFLOP/s, torch.compile ${H200.torchCompileS} s each`);
  return total;
}

function say(line: string): void {
  report.say(line);
}

// ---------------------------------------------------------------------------------------
// The emulated backend: kernel coverage

function kernelCoverage(kernels: Record<string, number>): { failures: string[]; launched: number } {
  const failures: string[] = [];
  const entries = Object.entries(kernels).filter(([, count]) => count > 0);
  let sources: { name: string; file: string }[] = [];
  try {
    sources = sourceKernels(path.join(__dirname, '..', '..', 'native', 'cuda'));
    if (sources.length === 0) failures.push('no __global__ function found in native/cuda/*.cu');
  } catch (e) {
    failures.push(message(e));
  }
  const rows = sources.map((k) => {
    const mine = entries.filter(([name]) => kernelBaseName(name) === k.name);
    const launches = mine.reduce((s, [, c]) => s + c, 0);
    if (launches === 0) failures.push(`kernel ${k.name} (native/cuda/${k.file}) never ran`);
    say(`  ${launches > 0 ? 'ran ' : 'NOT RUN'} ${k.name.padEnd(20)} ${k.file.padEnd(16)} ${launches} launches, ${mine.length} instantiation${mine.length === 1 ? '' : 's'}`);
    return { ...k, launches, instantiations: Object.fromEntries(mine) };
  });
  const unknown = entries.filter(([name]) => !sources.some((k) => k.name === kernelBaseName(name)));
  for (const [name, count] of unknown) say(`  (not in native/cuda/*.cu) ${name}: ${count} launches`);
  report.json.kernels = { sources: rows, launched: kernels };
  report.save();
  return { failures, launched: entries.length };
}

/** cudaTimeLoss, the conv2d timing and cudaTimeGemm once each at tiny sizes (their code paths; the times mean nothing here). */
function timingEntryPoints(): Row[] {
  const cases = [
    {
      id: 'time-loss', run: (): RowBody => {
        const n = 40, d = 64, repeats = 1;
        const x = normal(n * 2 * d, random(90));
        const labels = Int32Array.from({ length: n }, (_, i) => i % 5);
        const ref = supconLoss({ data: x, shape: [n, 2, d] }, labels, { temperature: 0.1, baseTemperature: 0.07, device: 'cpu' });
        const features = Tensor.from(x, [n, 2, d], { device: DEV }), grad = Tensor.zeros([n, 2, d], { device: DEV });
        try {
          const t = timeLoss(features, n, d, labels, dryRun ? 'fp32' : 'tf32', grad, repeats);
          const times = [...t.forwardMs, ...t.backwardMs];
          const shaped = t.forwardMs.length === repeats && t.backwardMs.length === repeats && times.every((ms) => Number.isFinite(ms) && ms >= 0);
          const lossRelErr = Math.abs(t.loss - ref.loss) / Math.max(Math.abs(ref.loss), LOSS_FLOOR);
          const g = grad.dataSync();
          const gradRelErr = relL2(g, ref.grad);
          const tol = TOLERANCE[dryRun ? 'fp32' : 'tf32'];
          const ok = shaped && Number.isFinite(t.peakExtraBytes) && t.peakExtraBytes >= 0 && lossRelErr <= tol && gradRelErr <= GRADIENT_FACTOR * tol;
          return { ok, summary: `cudaTimeLoss n=${n} d=${d}: ${times.length} timings, loss err ${lossRelErr.toExponential(2)}, grad err ${gradRelErr.toExponential(2)}`, lossRelErr, gradRelErr, timing: t };
        } finally {
          features.dispose();
          grad.dispose();
        }
      },
    },
    {
      id: 'time-conv', run: (): RowBody => {
        const d: ConvDescOfCase = { N: 1, C: 5, H: 6, W: 7, K: 9, R: 3, S: 3, strideH: 1, strideW: 1, padH: 1, padW: 1 };
        const t = timeConvs([dryRun ? 'fp32' : 'tf32'], d);
        const ok = t.failures === 0 && t.rows.length === 1;
        return { ok, summary: `conv2d timing ${convLabel(d)}: ${t.rows.length} row(s), ${t.failures} failure(s)`, rows: t.rows };
      },
    },
    {
      id: 'time-gemm', run: (): RowBody => {
        const runs = dryRun ? wallClockGemm(33, 1) : native.cudaTimeGemm(33, 17, 9, 'bf16', 1);
        const ok = runs.length === 1 && runs.every((ms) => Number.isFinite(ms) && ms >= 0);
        return { ok, summary: `cudaTimeGemm 33x17x9: ${JSON.stringify(runs)}`, runs };
      },
    },
  ];
  return runCases('timingEntryPoints', cases, (c) => c.run(), (c) => c.id);
}

// ---------------------------------------------------------------------------------------

function failuresOf(rows: Row[]): number {
  return rows.filter((r) => !r.ok).length;
}

/** Times a stage and logs it beside its estimate. */
function stage<T>(name: string, estimateS: number | null, fn: () => T): T {
  const t0 = performance.now();
  const out = fn();
  const s = (performance.now() - t0) / 1000;
  const times = (report.json.stageSeconds ??= {}) as Record<string, { seconds: number; estimated: number | null }>;
  times[name] = { seconds: s, estimated: estimateS };
  report.say(`stage ${name}: ${s.toFixed(1)} s${estimateS === null ? '' : ` (estimated ~${estimateS.toFixed(1)} s on an H200)`}`, false);
  report.save();
  return out;
}

function runChecks(precisions: readonly Precision[], stages: Stage[] | null): Row[] {
  const est = (k: number) => (stages && !dryRun && !emulated ? stages[k].seconds : null);
  const loss = stage('loss', est(0), () => runCases('loss', lossCases(scale, precisions), checkLoss, describeLoss));
  lossCache = null;
  const perPrecision = precisions.map((p) => {
    const mine = loss.filter((r) => r.precision === p && r.error === undefined);
    const worst = (key: string) => Math.max(0, ...mine.map((r) => r[key] as number));
    return `${p} worst loss err ${worst('lossRelErr').toExponential(2)}, grad err ${worst('gradRelErr').toExponential(2)} (tolerance ${TOLERANCE[p]}, x${GRADIENT_FACTOR} for gradients)`;
  });
  say(`loss, CUDA vs CPU: ${loss.length - failuresOf(loss)} of ${loss.length} within tolerance; ${perPrecision.join('; ')}`);
  const gemms = stage('gemm', est(1), () => runCases('gemmCheck', gemmCases(scale, precisions), checkGemm, describeGemm));
  gemmCache = null;
  say(`GEMM, CUDA vs CPU: ${gemms.length - failuresOf(gemms)} of ${gemms.length} within tolerance`);
  const augments = stage('augment', est(2), () => runCases('augmentCheck', augmentCases(scale), checkAugment, describeAugment));
  say(`augmentation, CUDA vs CPU: ${augments.length - failuresOf(augments)} of ${augments.length} within tolerance`);
  const nn = stage('layers', est(3), () => runCases('nnCheck', nnCases(scale, precisions), checkNn, describeNn));
  nnCache = null;
  say(`layers, CUDA vs CPU: ${nn.length - failuresOf(nn)} of ${nn.length} within tolerance (x${GRADIENT_FACTOR} the table's tolerance; gradients compared as increments)`);
  const det = stage('determinism', est(4), checkDeterminism);
  say(`determinism: ${det.length - failuresOf(det)} of ${det.length}`);
  return [...loss, ...gemms, ...augments, ...nn, ...det];
}

function header(): ReturnType<typeof backendInfo> {
  const info = backendInfo();
  say(`supcon GPU check${emulated ? ' (emulated CUDA)' : ''}: cuda build ${info.cuda}, usable ${info.cudaUsable}${info.cudaUsable ? '' : ` (${info.cudaReason})`}`);
  for (const d of info.devices) say(`device ${d.index}: ${d.name}, compute capability ${d.computeCapability}, ${(d.totalMemory / 2 ** 30).toFixed(1)} GiB, ${d.multiprocessors} SMs`);
  report.json.info = info;
  report.json.date = new Date().toISOString();
  report.json.flags = flags;
  if (dryRun) say(`DRY RUN: the GPU path on the CPU (fp32; ${emulated ? 'the emulated run\'s small sizes' : 'small timing sizes, wall clock'}); nothing here measures a GPU`);
  report.save();
  return info;
}

function mainEmulated(): void {
  const info = header();
  const emulator = native.cudaEmulator;
  const closing = (k: number, n: number, f: number) => {
    report.json.summary = { kernels: k, cases: n, failures: f, seconds: elapsedS() };
    report.save();
    say(`emulated CUDA: ${k} kernels, ${n} cases, ${f} failures`);
    if (f > 0) process.exitCode = 1;
  };
  if (!dryRun && emulator === undefined) {
    say('--emulated: this addon has no cudaEmulator(): it is not the emulated CUDA build (load one with SUPCON_ADDON=/abs/path/build-emu/Release/supcon.node)');
    closing(0, 0, 1);
    return;
  }
  if (!dryRun && !info.cudaUsable) {
    say(`--emulated: the emulated CUDA backend reports itself unusable: ${info.cudaReason}`);
    closing(0, 0, 1);
    return;
  }
  const precisions = dryRun ? ['fp32' as const] : PRECISIONS;
  const loss = lossCases(scale, precisions), gemms = gemmCases(scale, precisions), augments = augmentCases(scale);
  const nn = nnCases(scale, precisions);
  printPlan('plan (small sizes; no time estimate: the emulator runs the kernels on the CPU):', [
    ...checkStages(loss, gemms, augments, nn), { name: 'cudaTimeLoss, conv2d timing, cudaTimeGemm once each, tiny', count: 3, seconds: 0 },
  ], false);
  const rows = runChecks(precisions, null);
  const entry = stage('timing entry points', null, timingEntryPoints);
  say(`timing entry points: ${entry.length - failuresOf(entry)} of ${entry.length}`);
  const all = [...rows, ...entry];
  let failures = failuresOf(all), kernels = 0;
  if (dryRun) {
    say('DRY RUN: kernel coverage SKIPPED (the CPU ran the cases; no emulator counts kernel launches)');
  } else {
    const state = emulator!();
    say(`kernels of native/cuda/*.cu (emulator: ${state.schedules} thread schedule${state.schedules === 1 ? '' : 's'} per block, guard: ${state.guard}):`);
    const coverage = kernelCoverage(state.kernels);
    for (const f of coverage.failures) say(`FAIL ${f}`);
    failures += coverage.failures.length;
    kernels = coverage.launched;
  }
  say(`wall time ${elapsedS().toFixed(1)} s`);
  closing(kernels, all.length, failures);
}

function mainNoGpu(info: ReturnType<typeof backendInfo>): void {
  say(`no GPU found (${info.cudaReason}): SKIPPED the CUDA-vs-CPU checks, the CUDA timings and the PyTorch peer.`);
  // What can run here: the CPU path that the GPU is compared against, one thread against all.
  let worst = 0;
  const cases = lossCases('small', ['fp32']).slice(0, 6);
  for (const c of cases) {
    const x = normal(c.n * c.v * c.d, random(c.seed));
    const a = supconLoss({ data: x, shape: [c.n, c.v, c.d] }, null, { ...c.options, device: 'cpu', threads: 1 });
    const b = supconLoss({ data: x, shape: [c.n, c.v, c.d] }, null, { ...c.options, device: 'cpu' });
    worst = Math.max(worst, Math.abs(a.loss - b.loss), relL2(a.grad, b.grad));
  }
  say(`CPU reference path: ${cases.length} cases, thread counts agree to ${worst.toExponential(1)}`);
  report.json.skipped = info.cudaReason;
  report.save();
  say('gpu check: 0 passed, 0 failed, 1 skipped');
}

function main(): void {
  if (emulated) return mainEmulated();
  const info = header();
  if (!info.cudaUsable && !dryRun) return mainNoGpu(info);

  // The plan printed is the GPU run's: a dry run shows what the same flags will cost there.
  const plan = timingPlan(dryRun);
  const gpuPlan = dryRun ? timingPlan(false) : plan;
  const peer = peerPlan(plan, dryRun);
  const checks = checkStages(lossCases(scale), gemmCases(scale), augmentCases(scale), nnCases(scale));
  const timings = timingStages(gpuPlan, peerPlan(gpuPlan, false));
  const total = printPlan(`plan of \`gpu-check${quick ? ' --quick' : ''}\` on a GPU:`, [...checks, ...timings], true);
  report.json.plan = { stages: [...checks, ...timings], estimatedSeconds: total, budgetSeconds: BUDGET_S, rates: H200 };
  report.save();

  const precisions: readonly Precision[] = dryRun ? ['fp32'] : PRECISIONS;
  const checkRows = runChecks(precisions, checks);
  const peerReserveS = dryRun ? 0 : peerSeconds(peer);
  const ours = stage('timings', dryRun ? null : timings[0].seconds, () => timeOurs(plan, peerReserveS));
  const gemmTimes = stage('gemm timings', dryRun ? null : timings[1].seconds, () => timeGemms(precisions));
  const convTimes = stage('conv timings', dryRun ? null : timings[2].seconds, () => timeConvs(precisions));
  const training = stage('training', dryRun ? null : timings[3].seconds + (withTrainRun ? timings[4].seconds : 0), () => trainingFigures(precisions));
  report.json.training = training;
  report.save();
  const peerResult = stage('peer', dryRun ? null : timings[timings.length - 1].seconds, () => timePeer(peer, dryRun ? 120 : BUDGET_S - elapsedS() - 5));
  report.json.peer = peerResult;
  report.save();
  if (!peerResult.available) say(`PyTorch peer SKIPPED: ${peerResult.reason}`);
  else if (dryRun) say(`PyTorch peer on the CPU (dry run: torch ${peerResult.torch}, wall clock)`);
  else if (peerResult.reason) say(`PyTorch peer incomplete (${peerResult.reason}); its finished rows are kept`);

  const fmt = (r?: PeerRow) => (r === undefined ? 'n/a' : r.ms !== undefined ? r.ms.toFixed(1) : 'OOM/failed');
  const ratio = (o: TimingRow, r?: PeerRow) => (r?.ms !== undefined ? (r.ms / o.totalMs).toFixed(1) + 'x' : 'n/a');
  const rows = ours.rows.map((o) => {
    const find = (mode: string) => peerResult.rows.find((r) => r.B === o.B && r.mode === mode && r.precision === o.precision);
    const eager = find('eager'), compiled = find('compile');
    return [o.B, o.precision, o.totalMs.toFixed(2), o.tflops.toFixed(1), o.peakExtraMB.toFixed(0), fmt(eager), ratio(o, eager), fmt(compiled), ratio(o, compiled)];
  });
  const md = table(['B', 'precision', 'ours fwd+bwd (ms)', 'TFLOP/s', 'peak extra (MB)', 'torch eager, same precision (ms)', 'speed-up', 'torch.compile (ms)', 'speed-up'], rows);
  const gemmMd = table([`GEMM ${GEMM_SIZE}^3`, 'ours (ms)', 'TFLOP/s', 'torch.matmul (ms)', 'ours / torch throughput'], gemmTimes.rows.map((g) => {
    const t = peerResult.gemm.find((r) => r.precision === g.precision);
    return [g.precision, g.ms.toFixed(2), g.tflops.toFixed(1), t ? t.ms.toFixed(2) : 'n/a', t ? (t.ms / g.ms).toFixed(2) : 'n/a'];
  }));
  const convMd = table([`conv2d ${convLabel(TIMED_CONV)}`, 'forward (ms)', 'TFLOP/s', 'backward data + weights (ms)', 'TFLOP/s'],
    convTimes.rows.map((r) => [r.precision, r.forwardMs.toFixed(2), r.forwardTflops.toFixed(1), r.backwardMs.toFixed(2), r.backwardTflops.toFixed(1)]));
  const stepMd = table([`ResNet-18 step, batch ${STEP.batch}, ${STEP.size}x${STEP.size}`, 'ours (images/s)', 'torch eager (images/s)', 'torch channels_last (images/s)', 'ours / best torch'],
    training.steps.map((s) => {
      const t = training.peer.rows.filter((r) => r.precision === s.precision && r.imagesPerSecond !== undefined);
      const plain = t.find((r) => !r.channelsLast), last = t.find((r) => r.channelsLast);
      const best = Math.max(...t.map((r) => r.imagesPerSecond as number));
      return [s.precision, s.imagesPerSecond.toFixed(0), plain ? (plain.imagesPerSecond as number).toFixed(0) : 'n/a', last ? (last.imagesPerSecond as number).toFixed(0) : 'n/a', t.length ? (s.imagesPerSecond / best).toFixed(2) : 'n/a'];
    }));
  const trainMd = 'skipped' in training.run ? `the default supcon train: skipped (${training.run.skipped})\n`
    : table(['the default supcon train', 'time (s)', 'linear evaluation', 'kNN'], [[training.run.ok ? 'ok' : `FAILED: ${training.run.reason}`, training.run.seconds.toFixed(1),
      training.run.testAccuracy !== undefined ? `${(100 * training.run.testAccuracy).toFixed(2)}%` : 'n/a', training.run.knnAccuracy !== undefined ? `${(100 * training.run.knnAccuracy).toFixed(2)}%` : 'n/a']]);
  const tables = [md, gemmMd, convMd, stepMd, trainMd].join('\n');
  report.json.table = tables;
  writeFileSync(path.join(outDir, 'gpu-check.md'), tables);
  console.log('\n' + tables);
  const failed = failuresOf(checkRows) + ours.failures + gemmTimes.failures + convTimes.failures + training.failures;
  const passed = checkRows.length - failuresOf(checkRows) + ours.rows.length + gemmTimes.rows.length + convTimes.rows.length + training.steps.length;
  report.json.summary = { passed, failed, seconds: elapsedS(), estimatedSeconds: total };
  report.save();
  say(`wall time ${elapsedS().toFixed(1)} s (${dryRun ? 'a dry run; the GPU run is estimated' : 'estimated'} at ~${total.toFixed(0)} s on an H200)`);
  say(`gpu check: ${passed} passed, ${failed} failed`);
  if (failed > 0) process.exitCode = 1;
}

main();
