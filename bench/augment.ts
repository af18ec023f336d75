// Images per second of the two-view augmentation pipelines on the CPU (tinybench): SimAugment
// at 32x32x3 and 28x28x1 (the acceptance figures), and the other presets at 32x32x3, with
// all threads and with one. An image is one input image, turned into its two views; the
// output buffer is reused across calls (options.out), as a training loop would.
// With a GPU, the same on CUDA with large batches, the uint8 host-to-device copy reported
// apart (CUDA events). Writes bench/results/augment-{cpu,cuda}.{json,md}.
// Usage: node dist/bench/augment.js [--quick] [--cuda-only]
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Bench } from 'tinybench';
import { augmentTimed } from '../lib/augment';
import { augment, backendInfo, devices, pipelines } from '../lib/index';
import type { AugmentPipeline } from '../lib/index';

const quick = process.argv.includes('--quick');
const batch = 512;

interface Row {
  pipeline: string;
  shape: string;
  threads: number;
  batch: number;
  medianMs: number;
  imagesPerSecond: number;
}

function images(channels: number, side: number): Uint8Array {
  const data = new Uint8Array(batch * channels * side * side);
  let s = 12345;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    data[i] = s >>> 24;
  }
  return data;
}

async function measure(name: string, pipeline: AugmentPipeline, channels: number, side: number, threads: number): Promise<Row> {
  const data = images(channels, side);
  const shape = [batch, channels, side, side];
  let epoch = 0;
  // One output buffer for all calls, as a training loop keeps (fresh memory costs page faults).
  const out = new Float32Array(batch * 2 * channels * side * side);
  const bench = new Bench({ name, time: quick ? 300 : 1500, warmupTime: 100, warmupIterations: 2, throws: true });
  bench.add(name, () => {
    augment({ data, shape }, pipeline, { seed: 1, epoch: epoch++, threads, out });
  });
  await bench.run();
  const result = bench.tasks[0].result;
  if (!('latency' in result)) throw new Error(`${name}: the benchmark did not complete`);
  const ms = result.latency.p50;
  return {
    pipeline: name, shape: `${side}x${side}x${channels}`, threads, batch, medianMs: ms,
    imagesPerSecond: Math.round((batch / ms) * 1000),
  };
}

interface CudaRow {
  pipeline: string;
  shape: string;
  batch: number;
  copyInMs: number;
  kernelMs: number;
  copyOutMs: number;
  kernelImagesPerSecond: number;
  withCopyInImagesPerSecond: number;
}

// Median of `repeats` calls (after a warm-up) of each CUDA part.
function measureCuda(name: string, pipeline: AugmentPipeline, channels: number, side: number, n: number, repeats: number): CudaRow {
  const data = new Uint8Array(n * channels * side * side);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
  const shape = [n, channels, side, side];
  const times: { copyInMs: number; kernelMs: number; copyOutMs: number }[] = [];
  for (let r = 0; r <= repeats; r++) {
    const { timing } = augmentTimed({ data, shape }, pipeline, { seed: 1, epoch: r, device: 'cuda' });
    if (timing === undefined) throw new Error('augment: the CUDA run returned no timing');
    if (r > 0) times.push(timing);
  }
  const median = (key: 'copyInMs' | 'kernelMs' | 'copyOutMs') => {
    const xs = times.map((t) => t[key]).sort((a, b) => a - b);
    return xs[Math.floor(xs.length / 2)];
  };
  const copyInMs = median('copyInMs'), kernelMs = median('kernelMs'), copyOutMs = median('copyOutMs');
  return {
    pipeline: name, shape: `${side}x${side}x${channels}`, batch: n, copyInMs, kernelMs, copyOutMs,
    kernelImagesPerSecond: Math.round((n / kernelMs) * 1000),
    withCopyInImagesPerSecond: Math.round((n / (kernelMs + copyInMs)) * 1000),
  };
}

function writeResults(name: string, json: unknown, md: string): void {
  const dir = path.join(__dirname, '..', '..', 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(json, null, 2) + '\n');
  writeFileSync(path.join(dir, `${name}.md`), md);
  console.log(`wrote ${path.join(dir, `${name}.{json,md}`)}`);
}

function cudaSuite(): void {
  if (devices().length === 0) {
    console.log(`CUDA: skipped (${backendInfo().noGpuReason || 'no GPU'})`);
    return;
  }
  const n = quick ? 16384 : 65536;
  const cases: [string, AugmentPipeline, number, number][] = [
    ['simAugment', pipelines.simAugment(), 3, 32],
    ['simAugment', pipelines.simAugment(), 1, 28],
    ['randAugment (2, 9)', pipelines.randAugment(), 3, 32],
    ['autoAugment cifar10', pipelines.autoAugment({ policy: 'cifar10' }), 3, 32],
  ];
  const rows = cases.map(([name, p, c, side]) => measureCuda(name, p, c, side, n, quick ? 3 : 10));
  for (const r of rows)
    console.log(`CUDA ${r.pipeline.padEnd(20)} ${r.shape.padEnd(9)}: ${r.kernelImagesPerSecond.toLocaleString('en-US')} images/s kernel, ${r.withCopyInImagesPerSecond.toLocaleString('en-US')} with the uint8 copy in (copy in ${r.copyInMs.toFixed(3)} ms, kernel ${r.kernelMs.toFixed(3)} ms, copy out ${r.copyOutMs.toFixed(3)} ms per ${n})`);
  const gpu = devices()[0];
  const md = [
    '# Augmentation throughput on CUDA',
    '',
    `Two views per image, uint8 input, float32 output, batch ${n}; ${gpu.name}; CUDA events, median of the calls.`,
    '',
    '| pipeline | image | images/s (kernel) | images/s (kernel + uint8 copy in) | copy in ms | kernel ms | copy out ms |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.pipeline} | ${r.shape} | ${r.kernelImagesPerSecond.toLocaleString('en-US')} | ${r.withCopyInImagesPerSecond.toLocaleString('en-US')} | ${r.copyInMs.toFixed(3)} | ${r.kernelMs.toFixed(3)} | ${r.copyOutMs.toFixed(3)} |`),
    '',
  ].join('\n');
  writeResults('augment-cuda', { device: gpu, rows }, md);
}

async function main(): Promise<void> {
  if (process.argv.includes('--cuda-only')) {
    cudaSuite();
    return;
  }
  const info = backendInfo();
  const all = info.cpuThreads;
  const cases: [string, AugmentPipeline, number, number][] = [
    ['simAugment', pipelines.simAugment(), 3, 32],
    ['simAugment', pipelines.simAugment(), 1, 28],
    ['simclr (no blur)', pipelines.simclr({ size: 32 }), 3, 32],
    ['simclr + blur k=3', pipelines.simclr({ size: 32, blur: true }), 3, 32],
    ['autoAugment cifar10', pipelines.autoAugment({ policy: 'cifar10' }), 3, 32],
    ['randAugment (2, 9)', pipelines.randAugment(), 3, 32],
    ['stackedRandAugment', pipelines.stackedRandAugment(), 3, 32],
  ];
  const rows: Row[] = [];
  for (const [name, p, c, side] of cases) {
    for (const threads of all > 1 ? [all, 1] : [1]) {
      if (threads === 1 && name !== 'simAugment') continue;
      const row = await measure(name, p, c, side, threads);
      rows.push(row);
      console.log(`${row.pipeline.padEnd(22)} ${row.shape.padEnd(9)} threads ${threads}: ${row.imagesPerSecond.toLocaleString('en-US')} images/s (median ${row.medianMs.toFixed(2)} ms per ${batch})`);
    }
  }
  const machine = {
    cpu: os.cpus()[0]?.model ?? 'unknown', threads: all, kernels: info.cpuKernels, node: process.version,
    date: new Date().toISOString(), note: 'shared machine: other processes may have been running',
  };
  const target = rows.find((r) => r.pipeline === 'simAugment' && r.shape === '32x32x3' && r.threads === all);
  const md = [
    '# Augmentation throughput on the CPU',
    '',
    `Two views per image, uint8 input, float32 output written into a reused buffer (options.out), batch ${batch}; ${machine.cpu}, ${all} threads, kernels ${info.cpuKernels}, node ${process.version}, ${machine.date}. Shared machine.`,
    '',
    '| pipeline | image | threads | images/s | median ms per batch |',
    '| --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.pipeline} | ${r.shape} | ${r.threads} | ${r.imagesPerSecond.toLocaleString('en-US')} | ${r.medianMs.toFixed(2)} |`),
    '',
    `Acceptance: two-view SimAugment at 32x32x3 on all threads >= 20,000 images/s: ${target ? target.imagesPerSecond.toLocaleString('en-US') : 'n/a'} (${target && target.imagesPerSecond >= 20000 ? 'met' : 'not met'}).`,
    '',
  ].join('\n');
  writeResults('augment-cpu', { machine, rows }, md);
  cudaSuite();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
