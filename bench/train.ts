// Training steps on the CPU, ours and PyTorch's side by side in one run: `supcon train`'s
// SupCon step (the trainer, augmentation included) for the default ConvNet at batch 256 on
// 28x28x1 and ResNet-18 (small-image stem) at batches 32 and 128 on 32x32x3, against the
// same model, loss and optimizer in PyTorch (bench/peers/torch_resnet_step.py, fp32, NCHW
// and channels_last, no augmentation) on the same number of threads. Each side is the
// median of its timed steps after a warm-up. Then our step by kind of op (the native
// calls timed by lib/nn/profile.ts; the augmentation timed alone at the step's batch;
// "glue" is the rest: JavaScript, allocation, the autograd), each convolution's fraction
// of the FMA peak measured in the same run, and PyTorch's step by kind (torch.profiler).
// Ratios last. Results: bench/results/train-cpu.{json,md}.
//
// `npm run bench:train` (--quick: 3 steps, ResNet-18 at batch 32 only). PyTorch from
// SUPCON_PYTHON, else the first of python3 and /usr/bin/python3 that imports torch.
import { spawnSync } from 'node:child_process';
import { augment } from '../lib/augment';
import { backendInfo, Tensor } from '../lib/index';
import { OpTiming, profileOps } from '../lib/nn/profile';
import { channelStats, trainingPipeline } from '../lib/train/trainer';
import { TRAIN_DEFAULTS } from '../lib/cli/args';
import { fmaPeak } from './common';
import { machine, table, writeResults } from './results';
import { median, PeerStep, peerEnv, syntheticSet, timePeerStep, timeTrainerStep } from './train-step';

const quick = process.argv.includes('--quick');
const STEPS = quick ? 3 : 5;
const PROFILED_STEPS = quick ? 1 : 3;
const threads = backendInfo().cpuThreads;

interface Workload {
  name: string;
  encoder: 'cnn' | 'resnet18';
  batch: number;
  channels: number;
  side: number;
}

const ALL_WORKLOADS: Workload[] = [
  { name: 'ConvNet', encoder: 'cnn', batch: 256, channels: 1, side: 28 },
  { name: 'ResNet-18', encoder: 'resnet18', batch: 32, channels: 3, side: 32 },
  { name: 'ResNet-18', encoder: 'resnet18', batch: 128, channels: 3, side: 32 },
];
const WORKLOADS = ALL_WORKLOADS.filter((w) => !quick || w.batch !== 128);

// The BLAS libraries the peer's process maps once a linear layer has run: Debian's torch
// calls whichever libblas.so.3 the system's alternatives name, and the reference one (the
// libblas3 package, without libopenblas0-*) runs the ConvNet's linear layer some 50x slower
// than OpenBLAS, which would make the peer's step no fair measure.
const BLAS_PROBE = [
  'import torch, torchvision',
  'torch.nn.functional.linear(torch.randn(8, 64), torch.randn(16, 64)).sum()',
  "print('\\n'.join(sorted({l.split()[-1] for l in open('/proc/self/maps') if 'blas' in l.lower() and '/' in l})))",
].join('; ');

function torchPython(): { python: string | null; reason: string; blas: string[]; referenceBlas: boolean } {
  const candidates = process.env.SUPCON_PYTHON ? [process.env.SUPCON_PYTHON] : ['python3', '/usr/bin/python3'];
  const env = peerEnv();
  for (const python of candidates) {
    const r = spawnSync(python, ['-c', BLAS_PROBE], { encoding: 'utf8', env });
    if (r.status !== 0) continue;
    const blas = r.stdout.split('\n').filter((l) => l.startsWith('/'));
    const referenceBlas = blas.length > 0 && !blas.some((l) => /openblas|mkl|blis/i.test(l));
    return { python, reason: '', blas, referenceBlas };
  }
  return { python: null, reason: `PyTorch not found: 'import torch, torchvision' fails in ${candidates.join(' and ')} (set SUPCON_PYTHON)`, blas: [], referenceBlas: false };
}

/** Per-kind milliseconds of one step: the median over the profiled steps of each kind's total. */
/** A convolution's rate with the products a direct convolution counts. */
function convGflops(c: OpTiming): number {
  return c.flops / c.ms / 1e6;
}

/** The fraction of the FMA peak on the products the algorithm does: Winograd's GEMMs do 16 a tile where the direct convolution does 36. */
function convFractionOfPeak(c: OpTiming, peak: number): number {
  return (convGflops(c) * (c.algorithm === 'winograd' ? 4 / 9 : 1)) / peak;
}

function breakdown(profiles: OpTiming[][]): { kinds: Record<string, number>; convs: OpTiming[] } {
  const perStep = profiles.map((ops) => {
    const k: Record<string, number> = {};
    for (const o of ops) k[o.kind] = (k[o.kind] ?? 0) + o.ms;
    return k;
  });
  const names = [...new Set(perStep.flatMap((k) => Object.keys(k)))];
  const kinds = Object.fromEntries(names.map((n) => [n, median(perStep.map((k) => k[n] ?? 0))]));
  // Convolutions by shape and pass: the median step's time of each.
  const convs = profiles[0].filter((o) => o.flops > 0).map((o) => {
    const same = profiles.map((ops) => ops.find((p) => p.kind === o.kind && p.shape === o.shape)?.ms ?? NaN);
    return { ...o, ms: median(same) };
  });
  return { kinds, convs };
}

/** The augmentation of a trainer step alone: the default pipeline, two views of `batch` images. */
function augmentationMs(set: ReturnType<typeof syntheticSet>, batch: number, steps: number): number {
  const [, c, h, w] = set.shape;
  const pipeline = trainingPipeline(TRAIN_DEFAULTS.augmentation, [h, w], channelStats(set));
  const images = { data: set.images.subarray(0, batch * c * h * w), shape: [batch, c, h, w] };
  const times: number[] = [];
  for (let s = 0; s <= steps; s++) {
    const t0 = performance.now();
    (augment(images, pipeline, { seed: 0, epoch: 0, indices: Int32Array.from({ length: batch }, (_, i) => i), views: 2, output: 'tensor' }) as Tensor).dispose();
    if (s > 0) times.push(performance.now() - t0);
  }
  return median(times);
}

const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

function main(): void {
  const info = backendInfo();
  console.log(`CPU: ${machine().cpu}, ${threads} threads, kernels ${info.cpuKernels}${quick ? ' (quick)' : ''}`);
  // The best window so far: measured again before each workload, as other work may load the machine.
  let peak = fmaPeak(threads, quick ? 3 : 6).wall;
  console.log(`measured fp32 FMA peak: ${fmt(peak)} GFLOP/s on ${threads} threads`);
  const py = torchPython();
  console.log(py.python === null ? py.reason : `PyTorch: ${py.python}, ${threads} threads, BLAS ${py.blas.join(', ') || 'not mapped'}`);
  if (py.referenceBlas)
    console.log('WARNING: PyTorch runs the reference BLAS (Debian\'s libblas3): its linear layers are far slower than with OpenBLAS, so the ratios below flatter us; `apt-get install libopenblas0-pthread` makes the peer fair.');

  const results = [];
  const ratioRows: (string | number)[][] = [];
  const mdSections: string[] = [];
  for (const w of WORKLOADS) {
    const label = `${w.name} batch ${w.batch} ${w.side}x${w.side}x${w.channels}`;
    if (w !== WORKLOADS[0]) peak = Math.max(peak, fmaPeak(threads, 3).wall);
    const set = syntheticSet(2 * w.batch, w.channels, w.side, 1);
    const ours = timeTrainerStep(w.encoder, w.batch, set, STEPS);
    const profiles: OpTiming[][] = [], profiledMs: number[] = [];
    for (let s = 0; s < PROFILED_STEPS; s++) {
      const t0 = performance.now();
      profiles.push(profileOps(() => ours.trainer.step(0, s % ours.trainer.stepsPerEpoch)).ops);
      profiledMs.push(performance.now() - t0);
    }
    const profiledStep = median(profiledMs);
    ours.trainer.dispose();
    const aug = augmentationMs(set, w.batch, STEPS);
    const { kinds, convs } = breakdown(profiles);
    const opsMs = Object.values(kinds).reduce((a, b) => a + b, 0);
    const fullKinds: Record<string, number> = { ...kinds, augmentation: aug, glue: Math.max(0, profiledStep - opsMs - aug) };
    console.log(`\n${label}: ours ${fmt(ours.ms, 0)} ms a step (augmentation included), ${fmt(ours.imagesPerSecond)} images/s`);

    let peer: { available: boolean; reason: string; rows: PeerStep[] } = { available: false, reason: py.reason, rows: [] };
    if (py.python !== null) {
      peer = timePeerStep(py.python, w.batch, w.side, STEPS, 'cpu', quick ? 300 : 900,
        { encoder: w.encoder, channels: w.channels, threads, profile: true });
    }
    const peerRows = peer.rows.filter((r) => r.ms !== undefined);
    const best = peerRows.reduce<PeerStep | null>((b, r) => (b === null || r.ms! < b.ms! ? r : b), null);
    for (const r of peer.rows)
      console.log(`  PyTorch ${r.channelsLast ? 'channels_last' : 'NCHW'}: ${r.ms !== undefined ? `${fmt(r.ms, 0)} ms, ${fmt(r.imagesPerSecond!)} images/s` : r.error}`);
    if (!peer.available || best === null) console.log(`  PyTorch: ${peer.reason || 'no step row'}`);

    const kindRows = Object.entries(fullKinds).sort((a, b) => b[1] - a[1]).map(([k, ms]) => {
      const t = best?.kinds;
      const theirs = t === undefined ? NaN : k === 'conv backward data' ? t['conv backward'] ?? 0 : k === 'conv backward weights' ? NaN : t[k] ?? NaN;
      return [k, fmt(ms), `${fmt((100 * ms) / profiledStep, 0)}%`, k === 'conv backward data' ? `${fmt(theirs)} (data + weights)` : fmt(theirs)];
    });
    if (best?.kinds !== undefined) {
      const known = new Set(Object.keys(fullKinds).concat(['conv backward']));
      for (const [k, ms] of Object.entries(best.kinds)) if (!known.has(k)) kindRows.push([k, '', '', fmt(ms)]);
    }
    const convRows = convs.map((c) => [c.kind, c.shape, c.algorithm, c.calls, fmt(c.ms, 2), fmt(convGflops(c)), `${fmt(100 * convFractionOfPeak(c, peak), 0)}%`]);
    const section = [
      `## ${label}`,
      '',
      `Ours: ${fmt(ours.ms, 0)} ms a step (${fmt(ours.imagesPerSecond)} images/s, augmentation included). ` +
        (best !== null ? `PyTorch (best of NCHW and channels_last, no augmentation): ${fmt(best.ms!, 0)} ms (${fmt(best.imagesPerSecond!)} images/s).` : `PyTorch: ${peer.reason}`),
      '',
      `Our step by kind (median of ${PROFILED_STEPS} profiled steps of ${fmt(profiledStep, 0)} ms; conv backward timed as two calls; ` +
        'glue: the rest of the step), and PyTorch\'s self CPU time by kind (torch.profiler, 2 steps):',
      '',
      table(['kind', 'ours ms', 'of our step', 'PyTorch ms'], kindRows),
      `Each convolution (per step), against the FMA peak of ${fmt(peak)} GFLOP/s (the best measured so far in the run); ` +
        'GFLOP/s count a direct convolution\'s products, the fraction of the peak the products the algorithm does (Winograd: 4/9 of them):',
      '',
      table(['pass', 'shape (N C HxW -> K PxQ RxS /stride)', 'algorithm', 'calls', 'ms', 'GFLOP/s (direct count)', 'of peak (products done)'], convRows),
    ].join('\n');
    console.log(section.split('\n').slice(2).join('\n'));
    mdSections.push(section);

    const ratio = best === null ? NaN : ours.imagesPerSecond / best.imagesPerSecond!;
    const ratioNoAug = best === null ? NaN : best.ms! / (ours.ms - aug);
    ratioRows.push([label, fmt(ours.ms, 0), best === null ? 'n/a' : fmt(best.ms!, 0), fmt(ratio, 2), fmt(ratioNoAug, 2)]);
    results.push({
      workload: w, ours: { ms: ours.ms, imagesPerSecond: ours.imagesPerSecond, loss: ours.loss, augmentationMs: aug },
      peakGflops: peak, profiledStepMs: profiledStep, breakdownMs: fullKinds, convs: convs.map((c) => ({ ...c, gflops: convGflops(c), fractionOfPeak: convFractionOfPeak(c, peak) })),
      pytorch: { available: peer.available, reason: peer.reason, rows: peer.rows },
      ratio, ratioWithoutAugmentation: ratioNoAug,
    });
  }

  const ratioTable = table(['workload', 'ours ms', 'PyTorch ms (best)', 'ours / PyTorch images/s', 'same, our augmentation left out'], ratioRows);
  const files = writeResults('train-cpu', { machine: { ...machine(), threads, kernels: info.cpuKernels }, quick, peakGflops: peak, python: py.python, pythonBlas: py.blas, referenceBlas: py.referenceBlas, workloads: results },
    [`# Training steps on the CPU (${machine().cpu}, ${threads} threads, ${info.cpuKernels})`, '',
      `FMA peak measured in the run: ${fmt(peak)} GFLOP/s.`, '', ...mdSections, '## Ratios', '', ratioTable].join('\n'));
  console.log(`\nwrote ${files.join(', ')}\n\nRatios (our images/s over PyTorch's, same run, same threads):\n${ratioTable}`);
}

main();
