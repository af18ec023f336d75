// TrainerWorker: the trainer in a worker thread, so that the command's progress line and
// Ctrl-C stay responsive while a step runs. Each test that times the event loop also runs the
// same trainer in the calling thread, where the same check fails.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeIdx, SupconTrainer, TRAIN_DEFAULTS, TrainerWorker, trainerInWorker } from '../dist/index.js';
import type { TrainConfig, TrainerFactory } from '../dist/index.js';
import { runTraining } from '../dist/lib/cli/train-loop.js';
import { syntheticSet, toyFactory } from './fixtures/toy-trainer.mjs';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'supcon-trainer-worker-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let count = 0;
const fresh = () => path.join(root, `r${count++}`);
const data = path.join(root, 'data');
const childJs = path.resolve('test/fixtures/cli-child.mjs');
const toyModule = path.resolve('test/fixtures/toy-trainer-thread.mjs');
const busy = (ms: number) => { const until = Date.now() + ms; while (Date.now() < until); };

beforeAll(() => {
  fs.mkdirSync(data);
  for (const [prefix, set] of [['train', syntheticSet(96, 3, 4, 3)], ['t10k', syntheticSet(30, 3, 4, 4)]] as const) {
    fs.writeFileSync(path.join(data, `${prefix}-images-idx3-ubyte.gz`), zlib.gzipSync(encodeIdx([set.shape[0], 4, 4], set.images)));
    fs.writeFileSync(path.join(data, `${prefix}-labels-idx1-ubyte`), encodeIdx([set.shape[0]], Uint8Array.from(set.labels)));
  }
});

const base = ['--data', data, '--method', 'ce', '--batch', '16', '--lr', '0.5', '--linear-epochs', '1'];

/** supcon train in a child process; SIGINT once the second step has started. */
function interruptedInStep(out: string, env: Record<string, string>) {
  const child = spawn(process.execPath, [childJs, 'train', ...base, '--epochs', '1', '--out', out], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env },
  });
  let stderr = '', sentAt = 0, acknowledgedMs = -1;
  child.stderr.on('data', (d) => {
    stderr += d;
    if (sentAt !== 0 && acknowledgedMs < 0 && stderr.includes('Ctrl-C: finishing the current step')) acknowledgedMs = Date.now() - sentAt;
  });
  child.stdout.on('data', (d) => {
    if (sentAt === 0 && String(d).includes('step 0 1')) { sentAt = Date.now(); child.kill('SIGINT'); }
  });
  return new Promise<{ code: number | null; stderr: string; acknowledgedMs: number }>((resolve) =>
    child.on('exit', (code) => resolve({ code, stderr, acknowledgedMs })));
}

describe('supcon train with the trainer in a worker thread', () => {
  it('acknowledges Ctrl-C within a second during a 2.5 s step, then checkpoints after it (exit 130, resume hint); in one thread it waits for the step', async () => {
    const out = fresh();
    const threaded = await interruptedInStep(out, { THREAD: '1', SUPCON_TOY_STEP_MS: '2500' });
    expect(threaded.code).toBe(130);
    expect(threaded.acknowledgedMs).toBeGreaterThanOrEqual(0);
    expect(threaded.acknowledgedMs).toBeLessThan(1000);
    expect(threaded.stderr).toMatch(new RegExp(`Stopped in epoch 1 after step 2 of 6; checkpoint checkpoints/epoch-0001-step-000002\\.ckpt written; continue with: .* train --resume --out ${out}\\n`));
    const inline = await interruptedInStep(fresh(), { SLOW: 'steps', SUPCON_TOY_STEP_MS: '2500' });
    expect(inline.code).toBe(130);
    console.log(`Ctrl-C in a 2.5 s step: acknowledged after ${threaded.acknowledgedMs} ms with the trainer in a worker thread, ${inline.acknowledgedMs} ms in one thread`);
    expect(inline.acknowledgedMs).toBeGreaterThan(1500);
    // The checkpoint resumes (in the thread again) and the run finishes.
    const resumed = spawn(process.execPath, [childJs, 'train', '--resume', '--out', out], { stdio: 'ignore', env: { ...process.env, THREAD: '1', SUPCON_TOY_STEP_MS: '0' } });
    expect(await new Promise((resolve) => resumed.on('exit', resolve))).toBe(0);
    const steps = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.type === 'step');
    expect(steps.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('redraws the progress line every second while a step runs; in one thread the line stands still', async () => {
    const config: TrainConfig = {
      ...TRAIN_DEFAULTS, method: 'ce', dataset: 'synthetic', epochs: 1, batchSize: 96, lr: 0.5, augmentation: 'none', device: 'cpu',
      linearEpochs: 1, out: '',
    };
    const loadData = () => ({ train: syntheticSet(96, 3, 4, 1), test: syntheticSet(30, 3, 4, 2) });
    const redrawsDuringStep = async (factory: TrainerFactory) => {
      const written: string[] = [];
      const stream = { write: (s: string) => written.push(s), isTTY: true, columns: 200 };
      await runTraining({ ...config, out: fresh() }, { factory, stream, loadData });
      // Before the one step ends the bar shows 0/1: only a redraw during the step writes that.
      return written.filter((s) => s.startsWith('\repoch 1/1') && s.includes(' 0/1 ')).map((s) => /(\d\d:\d\d) elapsed/.exec(s)?.[1]);
    };
    process.env.SUPCON_TOY_STEP_MS = '2600';
    try {
      const threaded = await redrawsDuringStep(trainerInWorker({ module: toyModule }));
      expect(threaded.length).toBeGreaterThanOrEqual(2);
      expect(new Set(threaded).size).toBeGreaterThanOrEqual(2); // the elapsed time moves on
      const inline = await redrawsDuringStep(toyFactory({ onStep: () => busy(2600) }));
      console.log(`progress redraws during a 2.6 s step: ${threaded.length} in a worker thread (${threaded.join(', ')} elapsed), ${inline.length} in one thread`);
      expect(inline).toEqual([]);
    } finally {
      delete process.env.SUPCON_TOY_STEP_MS;
    }
  });
});

describe('TrainerWorker with the package trainer', () => {
  const set = syntheticSet(64, 3, 8, 7), test = syntheticSet(32, 3, 8, 8);
  const config: TrainConfig = {
    ...TRAIN_DEFAULTS, dataset: 'synthetic', epochs: 1, batchSize: 32, device: 'cpu', linearEpochs: 1, out: '', seed: 3,
  };
  const setup = (c: TrainConfig, log: (m: string) => void = () => {}) => ({ config: c, train: set, test, log });

  it('steps to the same bits and state as SupconTrainer in this thread (the addon in a worker thread)', async () => {
    const logs: string[] = [];
    const worker = await TrainerWorker.create(setup(config, (m) => logs.push(m)));
    const here = new SupconTrainer(setup(config));
    try {
      expect(logs[0]).toMatch(/^training on the CPU: supcon with the cnn encoder/);
      expect(worker.stepsPerEpoch).toBe(here.stepsPerEpoch);
      for (let s = 0; s < 2; s++) {
        const [a, b] = [await worker.step(0, s), here.step(0, s)];
        expect(Object.is(a.loss, b.loss)).toBe(true);
        expect(a.lr).toBe(b.lr);
      }
      const [sa, sb] = [await worker.saveState(), here.saveState()];
      expect(Buffer.from(sa).equals(Buffer.from(sb))).toBe(true);
      await worker.loadState(sb);
      expect((await worker.endEpoch(0)).knnAccuracy).toBe((await here.endEpoch(0)).knnAccuracy);
    } finally {
      worker.dispose();
      here.dispose();
    }
    await expect(worker.step(0, 0)).rejects.toThrow(new RangeError('trainer: it has been disposed'));
  });

  it('rejects with the trainer\'s own error class and message', async () => {
    await expect(TrainerWorker.create(setup({ ...config, batchSize: 999 }))).rejects.toThrow(new RangeError('batch: 999 is more than the 64 training images'));
    const worker = await TrainerWorker.create(setup(config));
    try {
      await expect(worker.loadState(new Uint8Array(3))).rejects.toBeInstanceOf(Error);
      // A progress callback that throws (Ctrl-C in the evaluation) stops the thread's work at its
      // next report, and the call rejects with what the callback threw.
      const stop = new Error('interrupted during features (train)');
      const seen: string[] = [];
      await expect(worker.evaluate((done, total, label) => { seen.push(label); throw stop; })).rejects.toBe(stop);
      expect(seen).toEqual(['features (train)']);
      // The thread goes on with the next call.
      expect(typeof (await worker.step(0, 0)).loss).toBe('number');
    } finally {
      worker.dispose();
    }
    await expect(TrainerWorker.create(null as never)).rejects.toThrow(TypeError);
  });
});
