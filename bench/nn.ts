// CPU benchmark of the layers: our SGEMM against the measured FMA peak, a convolution
// forward + backward, and a ResNet-18 (small-image stem) training step at 32x32.
// `node dist/bench/nn.js` (--quick: fewer repeats, batch 32 for the ResNet step).
// Results: bench/results/nn-cpu.{json,md}.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { backendInfo, gemm, nn, Tensor, tidy } from '../lib/index';
import { cpuAndWall, fmaPeak, medianMs } from './common';

const quick = process.argv.includes('--quick');
const threads = backendInfo().cpuThreads;

function filled(n: number, seed: number): Float32Array {
  const x = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    x[i] = (s / 4294967296) * 2 - 1;
  }
  return x;
}

const peak = (t: number) => fmaPeak(t, quick ? 3 : 6);

/** GFLOP per CPU second of `flops`-sized calls of fn, best of a few. */
function perCpuSecond(fn: () => void, flops: number, repeats: number): number {
  let best = 0;
  for (let i = 0; i < repeats; i++) best = Math.max(best, flops / cpuAndWall(fn).cpu / 1e9);
  return best;
}

function torchAvailable(): boolean {
  return spawnSync('python3', ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
}

async function main(): Promise<void> {
  const info = backendInfo();
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  console.log(`CPU: ${cpu}, ${threads} threads, kernels ${info.cpuKernels}`);
  const peaks = peak(threads), peakOne = peak(1).wall, peakAll = peaks.wall;
  console.log(`measured fp32 FMA peak: ${peakAll.toFixed(1)} GFLOP/s on ${threads} threads, ${peakOne.toFixed(1)} on 1; ${peaks.cpu.toFixed(1)} GFLOP per CPU second`);
  const torch = torchAvailable();
  const peerNote = torch ? 'PyTorch found: its column is not produced by this script yet' : "n/a (python3 -c 'import torch' fails here)";

  const gemmRows: (string | number)[][] = [];
  const gemmJson = [];
  for (const [n, ta, tb] of [[1024, false, false], [1024, false, true], [1024, true, false], [2048, false, false]] as const) {
    if (quick && n > 1024) continue;
    const A = filled(n * n, 1), B = filled(n * n, 2), C = new Float32Array(n * n);
    const run = () => gemm(n, n, n, A, B, C, { transA: ta, transB: tb });
    const ms = await medianMs(`gemm ${n}`, run, quick ? 5 : 15);
    const gflops = (2 * n ** 3) / ms / 1e6;
    const cpuRate = perCpuSecond(run, 2 * n ** 3, quick ? 3 : 6);
    const op = `${ta ? 'T' : 'N'}${tb ? 'T' : 'N'}`;
    const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
    gemmRows.push([`${n}^3 ${op}`, gflops.toFixed(1), pct(gflops / peakAll), pct(cpuRate / peaks.cpu), peerNote]);
    gemmJson.push({ n, op, ms, gflops, fractionOfPeak: gflops / peakAll, gflopsPerCpuSecond: cpuRate, fractionOfPeakPerCpuSecond: cpuRate / peaks.cpu });
    console.log(`sgemm ${n}^3 ${op}: ${gflops.toFixed(1)} GFLOP/s = ${pct(gflops / peakAll)} of the measured peak; per CPU second ${pct(cpuRate / peaks.cpu)}`);
  }

  // ResNet-18 layer1 convolution (64 -> 64, 3x3, 32x32), forward + backward.
  const N = quick ? 16 : 64;
  const x = new nn.Parameter(Tensor.from(filled(N * 64 * 32 * 32, 3), [N, 64, 32, 32]));
  const w = new nn.Parameter(Tensor.from(filled(64 * 64 * 9, 4).map((v) => v * 0.05), [64, 64, 3, 3]));
  const dy = Tensor.from(filled(N * 64 * 32 * 32, 5), [N, 64, 32, 32]);
  const convMs = await medianMs('conv', () => tidy(() => nn.ops.conv2d(x, w, null, { padding: 1 }).backward(dy)), quick ? 3 : 8);
  const convFlops = 3 * 2 * N * 64 * 64 * 9 * 32 * 32;
  const convGflops = convFlops / convMs / 1e6;
  console.log(`conv2d 64->64 3x3 at 32x32, batch ${N}, forward + backward: ${convMs.toFixed(1)} ms, ${convGflops.toFixed(1)} GFLOP/s`);
  for (const t of [x, w]) t.dispose();
  dy.dispose();

  // ResNet-18, small-image stem, 32x32, one SGD step (forward, backward, update).
  const batch = quick ? 32 : 128;
  const model = nn.resnet18({ smallImages: true, numClasses: 10, seed: 1 });
  const images = Tensor.from(filled(batch * 3 * 32 * 32, 6), [batch, 3, 32, 32]);
  const labels = Int32Array.from({ length: batch }, (_, i) => i % 10);
  const opt = new nn.SGD(model, { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
  const stepMs = await medianMs('resnet18 step', () => tidy(() => {
    opt.zeroGrad();
    nn.ops.crossEntropy(model.forward(images), labels).backward();
    opt.step();
  }), quick ? 2 : 3);
  const imagesPerSecond = (batch / stepMs) * 1000;
  console.log(`ResNet-18 (small-image stem) training step, batch ${batch} at 32x32: ${stepMs.toFixed(0)} ms, ${imagesPerSecond.toFixed(1)} images/s; PyTorch: ${peerNote}`);
  opt.dispose();
  model.dispose();
  images.dispose();

  const json = {
    machine: { cpu, threads, kernels: info.cpuKernels, node: process.version, date: new Date().toISOString() },
    peakGflops: { all: peakAll, one: peakOne, perCpuSecond: peaks.cpu },
    gemm: gemmJson,
    conv: { batch: N, ms: convMs, gflops: convGflops },
    resnet18Step: { batch, ms: stepMs, imagesPerSecond },
    pytorch: peerNote,
  };
  const md = [
    `# Layers on the CPU (${cpu}, ${threads} threads, ${info.cpuKernels})`,
    '',
    `Measured FMA peak: ${peakAll.toFixed(1)} GFLOP/s (${threads} threads), ${peakOne.toFixed(1)} (1 thread), ${peaks.cpu.toFixed(1)} GFLOP per CPU second.`,
    'On a shared machine the wall-clock ratio varies with the load; the per-CPU-second ratio does not count time other processes took (nor time our threads waited).',
    '',
    '| SGEMM | GFLOP/s | of peak | of peak per CPU second | PyTorch |',
    '| --- | --- | --- | --- | --- |',
    ...gemmRows.map((r) => `| ${r.join(' | ')} |`),
    '',
    `| workload | ms | rate | PyTorch |`,
    '| --- | --- | --- | --- |',
    `| conv2d 64->64 3x3 32x32 batch ${N} fwd+bwd | ${convMs.toFixed(1)} | ${convGflops.toFixed(1)} GFLOP/s | ${peerNote} |`,
    `| ResNet-18 small stem step, batch ${batch} | ${stepMs.toFixed(0)} | ${imagesPerSecond.toFixed(1)} images/s | ${peerNote} |`,
    '',
  ].join('\n');
  const dir = path.join(__dirname, '..', '..', 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'nn-cpu.json'), JSON.stringify(json, null, 2) + '\n');
  writeFileSync(path.join(dir, 'nn-cpu.md'), md);
  console.log(`wrote ${path.join(dir, 'nn-cpu.{json,md}')}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
