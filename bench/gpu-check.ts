// The GPU check: one command for a machine with an NVIDIA GPU (`npm run gpu:check`; no
// build there). Every CUDA path against the CPU path on random inputs, with guard values
// around the outputs; then forward + backward timed with CUDA events against a PyTorch
// peer on the same GPU. A table is printed last; everything is saved as JSON to $OUT (or
// bench/results/). Without a GPU it says so and checks only what the CPU can.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { backendInfo, gemm, supconForward, supconLoss, Tensor } from '../lib/index';
import type { SupconOptions } from '../lib/index';
import { native } from '../lib/native';
import { table } from './results';

type Precision = 'fp32' | 'tf32' | 'bf16';
const TOLERANCE: Record<Precision, number> = { fp32: 1e-5, tf32: 2e-3, bf16: 2e-2 };
const GUARD = 64;
const SENTINEL = 1234.5;

const outDir = process.env.OUT ?? path.join(__dirname, '..', '..', 'bench', 'results');
// --dry-run: the whole GPU path on the CPU (fp32 only, small sizes, wall-clock timings), to
// check this script itself before spending GPU time on it.
const dryRun = process.argv.includes('--dry-run');
const DEV = dryRun ? 'cpu' : 'cuda';
mkdirSync(outDir, { recursive: true });
const log: string[] = [];
function say(line: string): void {
  console.log(line);
  log.push(line);
}

function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function normal(count: number, rnd: () => number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = Math.sqrt(-2 * Math.log(Math.max(rnd(), 1e-12))) * Math.cos(2 * Math.PI * rnd());
  return out;
}

interface CheckCase {
  n: number; v: number; d: number; labels: 'labels' | 'none' | 'mask'; options: SupconOptions;
}

function cases(): CheckCase[] {
  const out: CheckCase[] = [];
  const shapes: [number, number, number][] = [[37, 2, 1], [150, 2, 64], [333, 2, 128], [101, 4, 256], [1001, 1, 128], [45, 2, 2048], [700, 2, 300]];
  let k = 0;
  for (const [n, v, d] of shapes)
    for (const temperature of [0.05, 0.1, 1]) {
      const variant = k % 2 === 0 ? 'out' : 'in';
      const denominator = (['all', 'onePositive', 'onlyNegatives'] as const)[k % 3];
      const contrastMode = k % 4 === 3 ? 'one' : 'all';
      out.push({ n, v, d, labels: (['labels', 'none', 'mask'] as const)[k % 3], options: { temperature, variant, denominator, contrastMode, normalize: k % 2 === 0, excludeAnchorsWithoutPositives: k % 5 === 2 } });
      k++;
    }
  return out;
}

interface CheckRow {
  precision: Precision; n: number; v: number; d: number; labels: string; options: string;
  lossRelErr: number; gradRelErr: number; guardsIntact: boolean; finite: boolean; ok: boolean;
}

function relL2(a: Float32Array, b: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

function checkCorrectness(precisions: Precision[]): CheckRow[] {
  const rows: CheckRow[] = [];
  let seed = 1;
  for (const c of cases()) {
    const rnd = random(seed++);
    const x = normal(c.n * c.v * c.d, rnd);
    const labels = c.labels === 'labels' ? Int32Array.from({ length: c.n }, () => Math.floor(rnd() * 7)) : null;
    const mask = c.labels === 'mask' ? Uint8Array.from({ length: c.n * c.n }, () => (rnd() < 0.2 ? 1 : 0)) : undefined;
    const options = { ...c.options, ...(mask ? { mask } : {}) };
    const ref = supconLoss({ data: x, shape: [c.n, c.v, c.d] }, labels, { ...options, device: 'cpu' });
    for (const precision of precisions) {
      const features = Tensor.from(x, [c.n, c.v, c.d], { device: DEV });
      const count = x.length;
      const out = new native.Storage((count + 2 * GUARD) * 4, DEV);
      out.write(new Float32Array(count + 2 * GUARD).fill(SENTINEL), 0);
      const ctx = native.lossForward(features.storage, c.n, c.v, c.d, labels, mask ?? null, {
        temperature: c.options.temperature ?? 0.07, baseTemperature: 0.07, contrastMode: c.options.contrastMode ?? 'all',
        variant: c.options.variant ?? 'out', denominator: c.options.denominator ?? 'all', normalize: c.options.normalize ?? false,
        excludeAnchorsWithoutPositives: c.options.excludeAnchorsWithoutPositives ?? false, device: DEV, precision,
      });
      native.lossBackward(ctx, 1, out, { outOffset: GUARD });
      const all = new Float32Array(count + 2 * GUARD);
      out.read(all, 0);
      const grad = all.subarray(GUARD, GUARD + count);
      const guardsIntact = all.subarray(0, GUARD).every((g) => g === SENTINEL) && all.subarray(GUARD + count).every((g) => g === SENTINEL);
      const finite = Number.isFinite(ctx.loss) && grad.every(Number.isFinite);
      const lossRelErr = Math.abs(ctx.loss - ref.loss) / Math.max(Math.abs(ref.loss), 1e-30);
      const gradRelErr = relL2(grad, ref.grad);
      const tol = TOLERANCE[precision];
      const row: CheckRow = {
        precision, n: c.n, v: c.v, d: c.d, labels: c.labels, options: JSON.stringify(c.options),
        lossRelErr, gradRelErr, guardsIntact, finite, ok: guardsIntact && finite && lossRelErr <= tol && gradRelErr <= 10 * tol,
      };
      rows.push(row);
      if (!row.ok) say(`FAIL ${precision} n=${c.n} v=${c.v} d=${c.d} ${c.labels} ${row.options}: loss err ${lossRelErr.toExponential(2)}, grad err ${gradRelErr.toExponential(2)}, guards ${guardsIntact}, finite ${finite}`);
      ctx.dispose();
      out.dispose();
      features.dispose();
    }
  }
  return rows;
}

function determinism(): boolean {
  const rnd = random(77);
  const n = 513, v = 2, d = 128;
  const x = Tensor.from(normal(n * v * d, rnd), [n, v, d], { device: DEV });
  const labels = Int32Array.from({ length: n }, (_, i) => i % 10);
  const precision = dryRun ? 'fp32' : 'tf32';
  const a = supconLoss(x, labels, { precision });
  const b = supconLoss(x, labels, { precision });
  const same = a.loss === b.loss && a.grad.dataSync().every((g, i) => g === b.grad.dataSync()[i]);
  a.grad.dispose(); b.grad.dispose(); x.dispose();
  // Host arrays through the GPU give the same result as a CUDA tensor.
  const hx = normal(n * v * d, rnd);
  const host = supconLoss({ data: hx, shape: [n, v, d] }, labels, { device: DEV });
  const t = Tensor.from(hx, [n, v, d], { device: DEV });
  const dev = supconLoss(t, labels);
  const sameHost = host.loss === dev.loss && host.grad.every((g, i) => g === dev.grad.dataSync()[i]);
  dev.grad.dispose(); t.dispose();
  return same && sameHost;
}

/** The dry run's stand-in for cudaTimeGemm: the CPU GEMM, timed by the wall clock. */
function wallClockGemm(size: number): number {
  const a = new Float32Array(size * size).fill(0.5), c = new Float32Array(size * size);
  const t0 = performance.now();
  gemm(size, size, size, a, a, c);
  return performance.now() - t0;
}

/** The dry run's stand-in for cudaTimeLoss: the CPU loss, timed by the wall clock. */
function wallClockLoss(features: Tensor, labels: Int32Array, repeats: number) {
  const forwardMs: number[] = [], backwardMs: number[] = [];
  let loss = 0;
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    const fwd = supconForward(features as Tensor<'float32'>, labels, { temperature: 0.1, baseTemperature: 0.07, device: 'cpu' });
    const t1 = performance.now();
    fwd.backward().dispose();
    forwardMs.push(t1 - t0);
    backwardMs.push(performance.now() - t1);
    loss = fwd.loss;
    fwd.dispose();
  }
  return { forwardMs, backwardMs, peakExtraBytes: 0, loss };
}

interface TimingRow {
  B: number; d: number; precision: Precision; forwardMs: number; backwardMs: number; totalMs: number; tflops: number; peakExtraMB: number; loss: number;
}

const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];

function timeOurs(sizes: number[], precisions: Precision[]): TimingRow[] {
  const rows: TimingRow[] = [];
  const d = 128;
  for (const B of sizes) {
    const n = B / 2;
    // Uniform values from a linear congruential generator: cheap enough for a million rows.
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
    const features = Tensor.from(x, [n, 2, d], { device: DEV });
    const grad = Tensor.zeros([n, 2, d], { device: DEV });
    for (const precision of precisions) {
      const repeats = B >= 1 << 20 ? 2 : B >= 1 << 17 ? 3 : 5;
      const t = dryRun
        ? wallClockLoss(features, labels, repeats)
        : native.cudaTimeLoss(features.storage, n, 2, d, labels, { temperature: 0.1, baseTemperature: 0.07, precision }, grad.storage, repeats);
      const forwardMs = median(t.forwardMs), backwardMs = median(t.backwardMs);
      const totalMs = median(t.forwardMs.map((f, i) => f + t.backwardMs[i]));
      const row = { B, d, precision, forwardMs, backwardMs, totalMs, tflops: (6 * B * B * d) / totalMs / 1e9, peakExtraMB: t.peakExtraBytes / 2 ** 20, loss: t.loss };
      rows.push(row);
      say(`ours B=${B} ${precision}: forward ${forwardMs.toFixed(2)} ms, backward ${backwardMs.toFixed(2)} ms, ${row.tflops.toFixed(1)} TFLOP/s, +${row.peakExtraMB.toFixed(0)} MB, loss ${t.loss.toFixed(6)}`);
    }
    features.dispose();
    grad.dispose();
  }
  return rows;
}

interface PeerRow { B: number; d: number; mode: string; ms?: number; loss?: number; peakExtraBytes?: number; error?: string }

function timePeer(sizes: number[]): { available: boolean; reason: string; rows: PeerRow[]; torch?: string; gemm?: unknown[] } {
  const probe = spawnSync('python3', ['-c', 'import torch; assert torch.cuda.is_available(); print(torch.__version__)'], { encoding: 'utf8' });
  if (probe.status !== 0) return { available: false, reason: 'python3 with CUDA-enabled torch is not available', rows: [] };
  const script = path.join(__dirname, '..', '..', 'bench', 'peers', 'torch_supcon.py');
  const run = spawnSync('python3', [script, '--sizes', sizes.join(','), '--d', '128', '--repeats', '3', '--compile-max', '32768', '--gemm', '8192'], { encoding: 'utf8', maxBuffer: 1 << 26, timeout: 300_000 });
  writeFileSync(path.join(outDir, 'torch-peer.log'), `${run.stderr ?? ''}`);
  if (run.status !== 0) return { available: false, reason: `the PyTorch peer failed (exit ${run.status}): ${(run.stderr ?? '').split('\n').slice(-3).join(' ')}`, rows: [] };
  const parsed = JSON.parse(run.stdout);
  return { available: true, reason: '', rows: parsed.rows, torch: parsed.torch, gemm: parsed.gemm };
}

interface GemmCheckRow { precision: Precision; M: number; N: number; K: number; transA: boolean; transB: boolean; relErr: number; guardsIntact: boolean; ok: boolean }

/** The CUDA GEMM against the CPU GEMM; C has 3 padding columns (ldc = N + 3) as guards. */
function checkGemm(precisions: Precision[]): GemmCheckRow[] {
  const rows: GemmCheckRow[] = [];
  const sizes: [number, number, number][] = [[1, 1, 1], [7, 33, 5], [64, 64, 64], [130, 67, 257], [257, 300, 129]];
  let seed = 500;
  for (const [M, N, K] of sizes)
    for (const transA of [false, true])
      for (const transB of [false, true]) {
        const rnd = random(seed++);
        const a = normal(M * K, rnd), b = normal(K * N, rnd), ldc = N + 3;
        const c0 = normal(M * ldc, rnd);
        const want = c0.slice();
        gemm(M, N, K, a, b, want, { transA, transB, alpha: 0.7, beta: 0.3, ldc });
        for (const precision of precisions) {
          const A = Tensor.from(a, [a.length], { device: DEV }), B = Tensor.from(b, [b.length], { device: DEV });
          const C = Tensor.from(c0, [c0.length], { device: DEV });
          gemm(M, N, K, A, B, C, { transA, transB, alpha: 0.7, beta: 0.3, ldc, precision });
          const got = C.dataSync();
          let guardsIntact = true, num = 0, den = 0;
          for (let m = 0; m < M; m++)
            for (let n = 0; n < ldc; n++) {
              const i = m * ldc + n;
              if (n >= N) guardsIntact &&= got[i] === c0[i];
              else { num += (got[i] - want[i]) ** 2; den += want[i] ** 2; }
            }
          const relErr = Math.sqrt(num / Math.max(den, 1e-30));
          const ok = guardsIntact && got.every(Number.isFinite) && relErr <= TOLERANCE[precision] * 10;
          rows.push({ precision, M, N, K, transA, transB, relErr, guardsIntact, ok });
          if (!ok) say(`FAIL gemm ${precision} ${M}x${N}x${K} tA=${transA} tB=${transB}: err ${relErr.toExponential(2)}, guards ${guardsIntact}`);
          for (const t of [A, B, C]) t.dispose();
        }
      }
  return rows;
}

function main(): void {
  const info = backendInfo();
  say(`supcon GPU check: cuda build ${info.cuda}, usable ${info.cudaUsable}${info.cudaUsable ? '' : ` (${info.cudaReason})`}`);
  for (const d of info.devices) say(`device ${d.index}: ${d.name}, compute capability ${d.computeCapability}, ${(d.totalMemory / 2 ** 30).toFixed(1)} GiB, ${d.multiprocessors} SMs`);
  const result: Record<string, unknown> = { info, date: new Date().toISOString() };
  if (dryRun) say('DRY RUN: the GPU path on the CPU (fp32, small sizes); nothing here measures a GPU');
  if (!info.cudaUsable && !dryRun) {
    say(`no GPU found (${info.cudaReason}): SKIPPED the CUDA-vs-CPU checks, the CUDA timings and the PyTorch peer.`);
    // What can run here: the CPU path that the GPU is compared against, on the same cases.
    let worst = 0;
    for (const c of cases().slice(0, 6)) {
      const rnd = random(c.n);
      const x = normal(c.n * c.v * c.d, rnd);
      const a = supconLoss({ data: x, shape: [c.n, c.v, c.d] }, null, { ...c.options, device: 'cpu', threads: 1 });
      const b = supconLoss({ data: x, shape: [c.n, c.v, c.d] }, null, { ...c.options, device: 'cpu' });
      worst = Math.max(worst, Math.abs(a.loss - b.loss), relL2(a.grad, b.grad));
    }
    say(`CPU reference path: 6 cases, thread counts agree to ${worst.toExponential(1)}`);
    result.skipped = info.cudaReason;
    writeFileSync(path.join(outDir, 'gpu-check.json'), JSON.stringify(result, null, 2));
    say('gpu check: 0 passed, 0 failed, 1 skipped');
    return;
  }
  const precisions: Precision[] = dryRun ? ['fp32'] : ['fp32', 'tf32', 'bf16'];
  const check = checkCorrectness(precisions);
  const passed = check.filter((r) => r.ok).length;
  const deterministic = determinism();
  say(`CUDA vs CPU: ${passed} of ${check.length} cases within tolerance; deterministic: ${deterministic}`);
  for (const p of precisions) {
    const mine = check.filter((r) => r.precision === p);
    say(`  ${p}: worst loss error ${Math.max(...mine.map((r) => r.lossRelErr)).toExponential(2)}, worst gradient error ${Math.max(...mine.map((r) => r.gradRelErr)).toExponential(2)} (tolerance ${TOLERANCE[p]})`);
  }
  const gemmCheck = checkGemm(precisions);
  const gemmPassed = gemmCheck.filter((r) => r.ok).length;
  say(`CUDA GEMM vs CPU GEMM: ${gemmPassed} of ${gemmCheck.length} cases within tolerance`);
  result.check = check;
  result.gemmCheck = gemmCheck;
  result.deterministic = deterministic;
  writeFileSync(path.join(outDir, 'gpu-check.json'), JSON.stringify(result, null, 2));

  const sizes = (process.env.SUPCON_GPU_SIZES ?? (dryRun ? '1024,2048' : '8192,32768,131072,1048576')).split(',').map(Number);
  const ours = timeOurs(sizes, precisions);
  result.ours = ours;
  writeFileSync(path.join(outDir, 'gpu-check.json'), JSON.stringify(result, null, 2));
  const gemmTimes = precisions.map((precision) => {
    const size = dryRun ? 256 : 8192;
    const ms = dryRun ? wallClockGemm(size) : median(native.cudaTimeGemm(size, size, size, precision, 5));
    const tflops = (2 * size ** 3) / ms / 1e9;
    say(`ours GEMM ${size}^3 ${precision}: ${ms.toFixed(2)} ms, ${tflops.toFixed(3)} TFLOP/s`);
    return { precision, ms, tflops };
  });
  result.gemm = gemmTimes;
  const peer = dryRun ? { available: false, reason: 'dry run', rows: [] as PeerRow[] } : timePeer(sizes.filter((b) => b <= 131072));
  result.peer = peer;
  if (!peer.available) say(`PyTorch peer SKIPPED: ${peer.reason}`);

  const rows = ours.map((o) => {
    const eager = peer.rows.find((r) => r.B === o.B && r.mode === 'eager');
    const compiled = peer.rows.find((r) => r.B === o.B && r.mode === 'compile');
    const fmt = (r?: PeerRow) => (r === undefined ? 'n/a' : r.ms !== undefined ? r.ms.toFixed(1) : 'OOM/failed');
    const ratio = (r?: PeerRow) => (r?.ms !== undefined ? (r.ms / o.totalMs).toFixed(1) + 'x' : 'n/a');
    return [o.B, o.precision, o.totalMs.toFixed(2), o.tflops.toFixed(1), o.peakExtraMB.toFixed(0), fmt(eager), ratio(eager), fmt(compiled), ratio(compiled)];
  });
  const md = table(['B', 'precision', 'ours fwd+bwd (ms)', 'TFLOP/s', 'peak extra (MB)', 'torch eager (ms)', 'speed-up', 'torch.compile (ms)', 'speed-up'], rows);
  result.table = md;
  writeFileSync(path.join(outDir, 'gpu-check.json'), JSON.stringify(result, null, 2));
  writeFileSync(path.join(outDir, 'gpu-check.md'), md);
  writeFileSync(path.join(outDir, 'gpu-check.log'), log.join('\n') + '\n');
  console.log('\n' + md);
  const peerGemm = (peer.gemm ?? []) as { precision: string; ms: number }[];
  const gemmMd = table([`GEMM ${dryRun ? 256 : 8192}^3`, 'ours (ms)', 'TFLOP/s', 'torch.matmul (ms)', 'ours / torch throughput'], gemmTimes.map((g) => {
    const t = peerGemm.find((r) => r.precision === g.precision);
    return [g.precision, g.ms.toFixed(2), g.tflops.toFixed(1), t ? t.ms.toFixed(2) : 'n/a', t ? (t.ms / g.ms).toFixed(2) : 'n/a'];
  }));
  writeFileSync(path.join(outDir, 'gpu-check.md'), md + '\n' + gemmMd);
  console.log(gemmMd);
  const failed = check.length - passed + gemmCheck.length - gemmPassed + (deterministic ? 0 : 1);
  say(`gpu check: ${passed + gemmPassed + (deterministic ? 1 : 0)} passed, ${failed} failed`);
  if (failed > 0) process.exitCode = 1;
}

main();
