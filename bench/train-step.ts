// Training figures of the GPU check and `npm run bench:train`: our SupCon step (the model
// alone, or `supcon train`'s trainer with its augmentation) against PyTorch's
// (bench/peers/torch_resnet_step.py) in images per second, and the default `supcon train`
// end to end (time and test accuracy), each within a time limit.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TRAIN_DEFAULTS } from '../lib/cli/args';
import type { ImageSet } from '../lib/data/image-set';
import { makeEncoder, nn, Tensor, tidy } from '../lib/index';
import { SupconTrainer } from '../lib/train/trainer';

export type StepPrecision = 'fp32' | 'tf32' | 'bf16';

export interface StepTiming {
  batch: number;
  size: number;
  precision: StepPrecision;
  ms: number;
  imagesPerSecond: number;
  loss: number;
}

function normalImages(count: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 2) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    const u1 = (a + 1) / 4294967297;
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    const u2 = a / 4294967296;
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < count) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** One warm-up call of step, then `steps` timed by the wall clock: the median and the last loss. */
function medianStep(step: (i: number) => number, steps: number): { ms: number; loss: number } {
  step(0);
  const times: number[] = [];
  let loss = 0;
  for (let s = 1; s <= steps; s++) {
    const t0 = performance.now();
    loss = step(s);
    times.push(performance.now() - t0);
  }
  return { ms: median(times), loss };
}

/** Random images [n, c, side, side] with labels in [0, 10), as a training set. */
export function syntheticSet(n: number, channels: number, side: number, seed: number): ImageSet {
  let a = seed >>> 0;
  const images = new Uint8Array(n * channels * side * side);
  for (let i = 0; i < images.length; i++) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    images[i] = a >>> 24;
  }
  return { images, shape: [n, channels, side, side], labels: Int32Array.from({ length: n }, (_, i) => i % 10), numClasses: 10, classNames: null };
}

/**
 * `supcon train`'s trainer (the default configuration with `encoder` and `batch`) on the
 * CPU: steps of `set`, the median of `steps` after one warm-up, augmentation included. The
 * trainer comes back for more steps (its profile); dispose() it after.
 */
export function timeTrainerStep(encoder: 'cnn' | 'resnet18', batch: number, set: ImageSet, steps: number):
  { ms: number; imagesPerSecond: number; loss: number; trainer: SupconTrainer } {
  const config = { ...TRAIN_DEFAULTS, encoder, batchSize: batch, device: 'cpu' as const, out: '' };
  const trainer = new SupconTrainer({ config, train: set, test: set, log: () => {} });
  const { ms, loss } = medianStep((i) => trainer.step(0, i % trainer.stepsPerEpoch).loss ?? NaN, steps);
  return { ms, imagesPerSecond: batch / (ms / 1000), loss, trainer };
}

/**
 * `steps` timed SupCon steps of ResNet-18 + projection head on `batch` images of two views
 * (after one warm-up), by the wall clock around each step and its loss read-back; the
 * median. The step `supcon train --encoder resnet18` takes, without the augmentation.
 */
export function timeResnetStep(batch: number, size: number, steps: number, precision: StepPrecision, device: 'cpu' | 'cuda'): StepTiming {
  const encoder = makeEncoder('resnet18', [3, size, size], 0);
  const head = new nn.ProjectionHead(encoder.featureDim, { outDim: 128, seed: 1 });
  const model = new nn.SupConModel(encoder, head).to(device);
  const optimizer = new nn.SGD(model, { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
  const images = Tensor.from(normalImages(2 * batch * 3 * size * size, 7), [2 * batch, 3, size, size], { device });
  const labels = Int32Array.from({ length: batch }, (_, i) => i % 10);
  const previous = nn.matmulPrecision();
  nn.setMatmulPrecision(device === 'cuda' ? precision : 'fp32');
  try {
    const step = () => tidy(() => {
      optimizer.zeroGrad();
      const l = nn.ops.supcon(model.forward(images), labels, { views: 2, temperature: 0.1 });
      l.backward();
      optimizer.step();
      return l.item();
    });
    const { ms, loss } = medianStep(step, steps);
    return { batch, size, precision, ms, imagesPerSecond: batch / (ms / 1000), loss };
  } finally {
    nn.setMatmulPrecision(previous);
    images.dispose();
    optimizer.dispose();
    model.dispose();
  }
}

export interface PeerStep {
  precision: string;
  channelsLast: boolean;
  ms?: number;
  imagesPerSecond?: number;
  /** With `profile`: self CPU milliseconds per step by kind of op (torch.profiler). */
  kinds?: Record<string, number>;
  error?: string;
}

export interface PeerOptions {
  /** 'resnet18' (the default) or 'cnn' (the default `supcon train` ConvNet). */
  encoder?: 'resnet18' | 'cnn';
  channels?: number;
  /** CPU threads for torch (and OpenBLAS), as ours. */
  threads?: number;
  profile?: boolean;
}

/** PyTorch's step in each precision and memory format; unavailable with the reason when torch (or torchvision) is not there. */
/** The PyTorch peer's environment: the machine's OpenBLAS settings are tuned for our process's host, not the peer's. */
export function peerEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

export function timePeerStep(python: string, batch: number, size: number, steps: number, device: 'cpu' | 'cuda', timeoutS: number,
  options: PeerOptions = {}): { available: boolean; reason: string; rows: PeerStep[] } {
  const script = path.join(__dirname, '..', '..', 'bench', 'peers', 'torch_resnet_step.py');
  const args = [script, '--batch', String(batch), '--size', String(size), '--steps', String(steps), '--device', device];
  if (options.encoder !== undefined) args.push('--encoder', options.encoder);
  if (options.channels !== undefined) args.push('--channels', String(options.channels));
  if (options.threads !== undefined) args.push('--threads', String(options.threads));
  if (options.profile) args.push('--profile');
  const env = peerEnv();
  if (options.threads !== undefined) env.OPENBLAS_NUM_THREADS = String(options.threads);
  const run = spawnSync(python, args, { encoding: 'utf8', maxBuffer: 1 << 24, timeout: timeoutS * 1000, cwd: path.dirname(script), env });
  const rows: PeerStep[] = [];
  for (const line of (run.stdout ?? '').split('\n')) {
    if (!line.startsWith('{')) continue;
    const parsed = JSON.parse(line) as { step?: PeerStep };
    if (parsed.step) rows.push(parsed.step);
  }
  if (run.status !== 0 && rows.length === 0)
    return { available: false, reason: `the PyTorch step peer failed (exit ${run.status ?? run.signal}): ${(run.stderr ?? '').trim().split('\n').slice(-1)[0] ?? ''}`, rows };
  return { available: true, reason: run.status === 0 ? '' : `stopped early (exit ${run.status ?? run.signal})`, rows };
}

export interface TrainRun {
  ok: boolean;
  seconds: number;
  testAccuracy?: number;
  knnAccuracy?: number;
  reason?: string;
}

/**
 * `supcon train` end to end with `args`, in a fresh run folder, within `timeoutS`: its
 * wall time and the final evaluation's accuracies (from metrics.jsonl).
 */
export function timeTrainCommand(args: string[], timeoutS: number): TrainRun {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'supcon-gpu-train-'));
  const main = path.join(__dirname, '..', 'lib', 'cli', 'main.js');
  const t0 = performance.now();
  try {
    const run = spawnSync(process.execPath, [main, 'train', ...args, '--out', path.join(dir, 'run')],
      { encoding: 'utf8', maxBuffer: 1 << 26, timeout: timeoutS * 1000 });
    const seconds = (performance.now() - t0) / 1000;
    if (run.status !== 0)
      return { ok: false, seconds, reason: `exit ${run.status ?? run.signal}: ${(run.stderr ?? '').trim().split('\n').slice(-2).join(' ')}` };
    const lines = readFileSync(path.join(dir, 'run', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const evalRow = lines.reverse().find((r) => r.type === 'eval') ?? {};
    return { ok: true, seconds, testAccuracy: evalRow.testAccuracy as number, knnAccuracy: evalRow.knnAccuracy as number };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
