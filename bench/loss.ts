// CPU benchmark of the fused SupCon loss (forward + backward) against the machine's FMA
// peak and an unfused implementation in the same run, and of the loss against a contrast
// set (B = 4096 anchors against m = 65,536 rows, both gradients). `npm run bench` (add
// --quick for a short run, --contrast for the contrast row alone). Results:
// bench/results/loss-cpu.{json,md} and loss-cpu-contrast.{json,md}.
import { backendInfo, fmaPeakGflops, setCpuKernels, supconForward } from '../lib/index';
import { native } from '../lib/native';
import { spawnSync } from 'node:child_process';
import { medianMs, peakMemoryGrowth } from './common';
import { machine, table, writeResults } from './results';

const quick = process.argv.includes('--quick');
const d = 128, v = 2;
const sizes = quick ? [1024, 4096] : [1024, 4096, 16384];

function features(B: number): Float32Array {
  // Unit-norm rows, as a projection head produces; a fixed generator so runs compare.
  const x = new Float32Array(B * d);
  let s = 12345;
  for (let i = 0; i < x.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    x[i] = (s / 4294967296) * 2 - 1;
  }
  for (let r = 0; r < B; r++) {
    let ss = 0;
    for (let k = 0; k < d; k++) ss += x[r * d + k] ** 2;
    for (let k = 0; k < d; k++) x[r * d + k] /= Math.sqrt(ss);
  }
  return x;
}

function fusedStep(x: Float32Array, n: number, labels: Int32Array): void {
  const fwd = supconForward({ data: x, shape: [n, v, d] }, labels, { temperature: 0.1 });
  fwd.backward();
  fwd.dispose();
}

// The contrast row: B anchors (n = B / v samples) against m contrast rows (a memory queue
// or a gathered batch), forward and both gradients.
const contrastB = 4096, contrastM = 65536;

function contrastInputs() {
  const x = features(contrastB), cx = features(contrastM);
  const labels = Int32Array.from({ length: contrastB / v }, (_, i) => i % 100);
  const contrastLabels = Int32Array.from({ length: contrastM }, (_, i) => (i * 7) % 100);
  return { x, labels, contrast: { features: { data: cx, shape: [contrastM, d] }, labels: contrastLabels } };
}

function contrastStep(p: ReturnType<typeof contrastInputs>): void {
  const fwd = supconForward({ data: p.x, shape: [contrastB / v, v, d] }, p.labels, { temperature: 0.1, contrast: p.contrast });
  fwd.gradients();
  fwd.dispose();
}

/** Peak resident-memory growth of one fused call (batch B, or the contrast row), in a fresh process. */
function memoryOfOneCall(what: number | 'contrast'): number {
  const run = spawnSync(process.execPath, [__filename, '--memory-child', String(what)], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`memory measurement failed: ${run.stderr}`);
  return Number(run.stdout.trim());
}

async function contrastRow() {
  const p = contrastInputs();
  const ms = await medianMs(`contrast B=${contrastB} m=${contrastM}`, () => contrastStep(p), quick ? 1 : 3);
  // Logits three times (forward, each gradient) and two gradient products: 10 B m d.
  const flops = 10 * contrastB * contrastM * d;
  const memory = memoryOfOneCall('contrast');
  const inputMB = ((contrastB + contrastM) * d * 4) / 2 ** 20;
  const denseMB = (contrastB * contrastM * 4) / 2 ** 20;
  const row = { B: contrastB, m: contrastM, d, ms, gflops: flops / ms / 1e6, peakMemoryMB: memory / 2 ** 20, inputMB, denseLogitsMB: denseMB };
  console.log(`contrast B=${contrastB} m=${contrastM}: ${ms.toFixed(0)} ms (${row.gflops.toFixed(0)} GFLOP/s), peak memory +${row.peakMemoryMB.toFixed(1)} MB (inputs ${inputMB.toFixed(1)} MB; one dense B x m logit matrix would be ${denseMB.toFixed(0)} MB)`);
  return row;
}

function contrastTable(row: Awaited<ReturnType<typeof contrastRow>>): string {
  return table(['B (anchors)', 'm (contrast rows)', 'd', 'forward + both gradients (ms, median)', 'GFLOP/s (10 B m d)', 'peak memory (MB)', 'inputs (MB)', 'one dense B x m matrix (MB)'],
    [[row.B, row.m, row.d, row.ms.toFixed(0), row.gflops.toFixed(0), row.peakMemoryMB.toFixed(1), row.inputMB.toFixed(1), row.denseLogitsMB.toFixed(0)]]);
}

async function main(): Promise<void> {
  const child = process.argv.indexOf('--memory-child');
  if (child >= 0) {
    if (process.argv[child + 1] === 'contrast') {
      const p = contrastInputs();
      console.log(peakMemoryGrowth(() => contrastStep(p)));
      return;
    }
    const B = Number(process.argv[child + 1]);
    const x = features(B);
    const labels = Int32Array.from({ length: B / v }, (_, i) => i % 100);
    console.log(peakMemoryGrowth(() => fusedStep(x, B / v, labels)));
    return;
  }
  if (process.argv.includes('--contrast')) {
    const info = backendInfo();
    const row = await contrastRow();
    const md = ['# SupCon loss against a contrast set on the CPU', '', `${machine().cpu}, ${info.cpuThreads} threads, kernels ${info.cpuKernels}; v = ${v}, temperature 0.1, labels on both sides.`, '', contrastTable(row)].join('\n');
    const files = writeResults('loss-cpu-contrast', { machine: machine(), row }, md);
    console.log(`\n${md}\nwritten: ${files.join(', ')}`);
    return;
  }
  const info = backendInfo();
  const peak = { gflops: fmaPeakGflops(info.cpuThreads, 1.0), kernels: info.cpuKernels, threads: info.cpuThreads };
  console.log(`CPU: ${machine().cpu}, ${info.cpuThreads} threads, kernels ${info.cpuKernels}`);
  console.log(`measured fp32 FMA peak: ${peak.gflops.toFixed(1)} GFLOP/s (${peak.kernels}, ${peak.threads} threads)`);

  const rows = [];
  for (const B of sizes) {
    const n = B / v;
    const x = features(B);
    const labels = Int32Array.from({ length: n }, (_, i) => i % 100);
    const iterations = B >= 16384 ? 5 : B >= 4096 ? 10 : 30;
    const fusedMs = await medianMs(`fused B=${B}`, () => fusedStep(x, n, labels), iterations);
    const memory = memoryOfOneCall(B);
    const grad = new Float32Array(B * d);
    const unfusedMs = await medianMs(`unfused B=${B}`, () => { native.lossUnfused(x, n, v, d, labels, 0.1, 0.07, grad); }, B >= 16384 ? 1 : 3);
    // The products the kernel does: each pair once (the symmetric triangle), its logit in
    // both passes and the two gradient products (4 B^2 d; the ordered-pair kernels did 6).
    const flops = 4 * B * B * d;
    const floorMs = ((4 * B * B * d) / (peak.gflops * 1e9)) * 1e3;
    const row = {
      B, d, fusedMs, gflops: flops / fusedMs / 1e6, fractionOfPeak: flops / fusedMs / 1e6 / peak.gflops,
      floorMs, timesFloor: fusedMs / floorMs, peakMemoryMB: memory / 2 ** 20, unfusedMs, speedupVsUnfused: unfusedMs / fusedMs,
    };
    rows.push(row);
    console.log(`B=${B}: fused ${fusedMs.toFixed(1)} ms (${row.gflops.toFixed(0)} GFLOP/s, ${(100 * row.fractionOfPeak).toFixed(0)}% of peak, ${row.timesFloor.toFixed(2)}x the FMA floor), peak memory +${row.peakMemoryMB.toFixed(1)} MB; unfused ${unfusedMs.toFixed(0)} ms (${row.speedupVsUnfused.toFixed(1)}x slower)`);
  }

  // Each CPU kernel set at B = 4096.
  const perKernels = [];
  const B = 4096, n = B / v, x = features(B);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 100);
  for (const kernels of info.cpuKernelsAvailable) {
    setCpuKernels(kernels);
    const ms = await medianMs(`fused ${kernels}`, () => fusedStep(x, n, labels), quick ? 3 : 10);
    perKernels.push({ kernels, B, ms, gflops: (4 * B * B * d) / ms / 1e6 });
    console.log(`kernels ${kernels}: ${ms.toFixed(1)} ms at B=${B}`);
  }
  setCpuKernels(info.cpuKernels);
  const contrast = await contrastRow();

  const md = [
    '# SupCon loss on the CPU: forward + backward',
    '',
    `${machine().cpu}, ${info.cpuThreads} threads, kernels ${info.cpuKernels}; d = ${d}, v = ${v}, temperature 0.1.`,
    `Measured fp32 FMA peak: ${peak.gflops.toFixed(1)} GFLOP/s. FLOPs counted as 4 B^2 d (each pair once: its logit in both passes and the two gradient products); the FMA floor is 4 B^2 d at the peak.`,
    '',
    table(['B', 'fused (ms, median)', 'GFLOP/s', '% of peak', 'x FMA floor', 'peak memory (MB)', 'unfused (ms)', 'fused speed-up'],
      rows.map((r) => [r.B, r.fusedMs.toFixed(1), r.gflops.toFixed(0), (100 * r.fractionOfPeak).toFixed(1), r.timesFloor.toFixed(2), r.peakMemoryMB.toFixed(1), r.unfusedMs.toFixed(0), r.speedupVsUnfused.toFixed(1)])),
    table(['kernels', 'B', 'ms (median)', 'GFLOP/s'], perKernels.map((r) => [r.kernels, r.B, r.ms.toFixed(1), r.gflops.toFixed(0)])),
    'Against a contrast set (forward and the gradients of both the anchors and the contrast rows):',
    '',
    contrastTable(contrast),
  ].join('\n');
  const files = writeResults('loss-cpu', { machine: machine(), peak, quick, rows, perKernels, contrast }, md);
  console.log(`\n${md}\nwritten: ${files.join(', ')}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
