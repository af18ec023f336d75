// The machinery around the training loop: atomic writes under a crash, the run folder,
// checkpoints, exact resume, and Ctrl-C in a real process.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { leftoverTempFiles, writeFileAtomic } from '../dist/lib/io/atomic.js';
import { RunFolder } from '../dist/lib/cli/run-folder.js';
import { runTraining } from '../dist/lib/cli/train-loop.js';
import { main } from '../dist/lib/cli/main.js';
import { syntheticSet, toyFactory } from './fixtures/toy-trainer.mjs';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'supcon-run-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let count = 0;
const fresh = () => path.join(root, `r${count++}`);
const atomicJs = path.resolve('dist/lib/io/atomic.js');
const childJs = path.resolve('test/fixtures/train-child.mjs');

const baseConfig = {
  method: 'ce' as const, dataset: 'synthetic', encoder: 'mlp' as const, epochs: 3, batchSize: 8, lr: 0.5, temperature: 0.1,
  augmentation: 'none' as const, device: 'cpu' as const, seed: 5, linearEpochs: 1, limit: 0, testLimit: 0,
};
const loadData = () => ({ train: syntheticSet(120, 3, 4, 1), test: syntheticSet(40, 3, 4, 2) });
const sink = { write: () => true };
const withoutTimes = (records: Record<string, unknown>[]) => records.map(({ seconds: _s, ...rest }) => rest);

describe('writeFileAtomic', () => {
  it('a process killed in the middle of a write leaves the old file whole', async () => {
    const dir = fresh();
    fs.mkdirSync(dir);
    const target = path.join(dir, 'checkpoint.bin');
    const old = Buffer.alloc(3 << 20, 0x5a);
    fs.writeFileSync(target, old);
    const script = `
      const { writeFileAtomic } = require(${JSON.stringify(atomicJs)});
      function* chunks() {
        yield Buffer.alloc(1 << 20, 1);
        yield Buffer.alloc(1 << 20, 2);
        process.stdout.write('half\\n');
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000);
        yield Buffer.alloc(1 << 20, 3);
      }
      writeFileAtomic(${JSON.stringify(target)}, chunks());`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.on('data', (d) => { if (String(d).includes('half')) resolve(); }));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.on('exit', resolve));
    expect(Buffer.from(fs.readFileSync(target)).equals(old)).toBe(true);
    const left = leftoverTempFiles(dir);
    expect(left.length).toBe(1);
    expect(fs.statSync(left[0]).size).toBe(2 << 20);
    writeFileAtomic(target, 'new');
    expect(fs.readFileSync(target, 'utf8')).toBe('new');
  });

  it('an error while producing the content leaves the old file and no temporary file', () => {
    const dir = fresh();
    fs.mkdirSync(dir);
    const target = path.join(dir, 'a.json');
    writeFileAtomic(target, '{"v":1}');
    function* failing() {
      yield Buffer.from('{"v":');
      throw new Error('serialisation failed');
    }
    expect(() => writeFileAtomic(target, failing())).toThrow('serialisation failed');
    expect(fs.readFileSync(target, 'utf8')).toBe('{"v":1}');
    expect(fs.readdirSync(dir)).toEqual(['a.json']);
    writeFileAtomic(target, new Uint8Array([104, 105]));
    expect(fs.readFileSync(target, 'utf8')).toBe('hi');
  });
});

describe('training loop machinery', () => {
  it('a full run writes config, metrics, a checkpoint per epoch and the report', async () => {
    const out = fresh();
    const reports: unknown[] = [];
    const result = await runTraining({ ...baseConfig, out }, {
      factory: toyFactory(), stream: sink, loadData, writeReport: (run, e) => { reports.push(e.metrics); },
    });
    expect(result.status).toBe('finished');
    const run = new RunFolder(out);
    expect(run.readConfig()).toEqual({ ...baseConfig, out });
    const metrics = run.readMetrics();
    const steps = metrics.filter((r) => r.type === 'step');
    expect(steps.length).toBe(3 * 15); // 120 images, batches of 8
    expect(steps[0]).toMatchObject({ epoch: 1, step: 1, lr: 0.5 }); // counted from 1, as in the messages
    expect(steps[steps.length - 1]).toMatchObject({ epoch: 3, step: 15 });
    const epochs = metrics.filter((r) => r.type === 'epoch');
    expect(epochs.map((r) => r.epoch)).toEqual([1, 2, 3]);
    const mean0 = steps.filter((r) => r.epoch === 1).reduce((s, r) => s + (r.loss as number), 0) / 15;
    expect(epochs[0].meanLoss).toBeCloseTo(mean0, 12);
    expect(epochs[2].trainAccuracy as number).toBeGreaterThan(0.9); // the toy problem is easy
    const evalRecord = metrics[metrics.length - 1];
    expect(evalRecord.type).toBe('eval');
    expect(reports).toEqual([{ testAccuracy: evalRecord.testAccuracy }]);
    const state = run.readState()!;
    expect(state).toMatchObject({ epoch: 3, step: 0, reason: 'epoch', checkpoint: path.join('checkpoints', 'epoch-0003.ckpt') });
    expect(fs.readdirSync(run.checkpointDir)).toEqual(['epoch-0003.ckpt']);
    await expect(runTraining({ ...baseConfig, out }, { factory: toyFactory(), stream: sink, loadData }))
      .rejects.toThrow(/already holds a run; pass --resume/);
  });

  it('a stop mid-epoch checkpoints, and resuming gives the uninterrupted run bit for bit', async () => {
    const reference = fresh();
    await runTraining({ ...baseConfig, out: reference }, { factory: toyFactory(), stream: sink, loadData });
    const out = fresh();
    const stop = { requested: false };
    const first = await runTraining({ ...baseConfig, out }, {
      factory: toyFactory({ onStep: (e: number, s: number) => { if (e === 1 && s === 6) stop.requested = true; } }),
      stream: sink, loadData, stop,
    });
    expect(first.status).toBe('interrupted');
    const run = new RunFolder(out);
    expect(run.readState()).toMatchObject({ epoch: 1, step: 7, reason: 'interrupt', checkpoint: path.join('checkpoints', 'epoch-0002-step-000007.ckpt') });
    const lastStep = run.readMetrics().filter((r) => r.type === 'step').pop();
    expect(lastStep).toMatchObject({ epoch: 2, step: 7 }); // the checkpoint's name and the metrics agree
    // Lines written after the checkpoint (as by a crash) are cut off on resume.
    fs.appendFileSync(run.metricsFile, JSON.stringify({ type: 'step', epoch: 2, step: 8, loss: 123 }) + '\n');
    await expect(runTraining({ ...baseConfig, out: fresh() }, { factory: toyFactory(), stream: sink, loadData, resume: true }))
      .rejects.toThrow(/no config\.json \(not a run folder\?\)/);
    const resumed = await runTraining({ ...baseConfig, out }, { factory: toyFactory(), stream: sink, loadData, resume: true });
    expect(resumed.status).toBe('finished');
    const got = withoutTimes(run.readMetrics()), want = withoutTimes(new RunFolder(reference).readMetrics());
    got.forEach((r, i) => expect(r).toEqual(want[i]));
    expect(got.length).toBe(want.length);
  });

  it('Ctrl-C in a real process: exit 130, a usable checkpoint, and resume matches', async () => {
    const reference = fresh();
    await runTraining({ ...baseConfig, out: reference }, { factory: toyFactory(), stream: sink, loadData });
    const out = fresh();
    const child = spawn(process.execPath, [childJs, out, 'fresh'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    await new Promise<void>((resolve) => child.stdout.on('data', (d) => { if (String(d).includes('step 1 3')) resolve(); }));
    child.kill('SIGINT');
    const code = await new Promise((resolve) => child.on('exit', resolve));
    expect(code).toBe(130);
    expect(stderr).toContain('Ctrl-C: finishing the current step');
    const run = new RunFolder(out);
    const state = run.readState()!;
    expect(state.epoch * 15 + state.step).toBeGreaterThanOrEqual(15 + 4);
    expect(fs.existsSync(path.join(out, state.checkpoint))).toBe(true);
    const again = spawnSync(process.execPath, [childJs, out, 'resume'], { encoding: 'utf8' });
    expect(again.status).toBe(0);
    expect(again.stderr).toContain(state.step === 0
      ? `Resuming ${run.dir} at the start of epoch ${state.epoch + 1} of 3`
      : `Resuming ${run.dir} in epoch ${state.epoch + 1} of 3, after step ${state.step}`);
    expect(withoutTimes(run.readMetrics())).toEqual(withoutTimes(new RunFolder(reference).readMetrics()));
  });

  it('supcon train through main with an injected trainer, then supcon eval', async () => {
    const out = fresh();
    const outLines: string[] = [], errLines: string[] = [];
    const io = { stdout: { write: (s: string) => outLines.push(s) }, stderr: { write: (s: string) => errLines.push(s) } };
    // main loads the data itself: give it a real IDX folder.
    const data = fresh();
    fs.mkdirSync(data);
    const { encodeIdx } = await import('../dist/index.js');
    const zlib = await import('node:zlib');
    for (const [prefix, set] of [['train', syntheticSet(96, 3, 4, 3)], ['t10k', syntheticSet(30, 3, 4, 4)]] as const) {
      fs.writeFileSync(path.join(data, `${prefix}-images-idx3-ubyte.gz`), zlib.gzipSync(encodeIdx([set.shape[0], 4, 4], set.images)));
      fs.writeFileSync(path.join(data, `${prefix}-labels-idx1-ubyte`), encodeIdx([set.shape[0]], Uint8Array.from(set.labels)));
    }
    const code = await main(['train', '--data', data, '--method', 'ce', '--epochs', '2', '--batch', '16', '--lr', '0.5', '--out', out], io, { factory: toyFactory() });
    expect(errLines.join('')).toContain('Report: ');
    expect(code).toBe(0);
    const summary = JSON.parse(outLines.join(''));
    expect(summary.run).toBe(path.resolve(out));
    expect(summary.testAccuracy).toBeGreaterThan(0.8);
    const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
    expect(html).toContain('id="map-chart"');
    outLines.length = 0;
    expect(await main(['eval', out], io, { factory: toyFactory() })).toBe(0);
    expect(JSON.parse(outLines.join('')).testAccuracy).toBe(summary.testAccuracy);
    const errs: string[] = [];
    expect(await main(['train', '--data', data, '--out', fresh()], { stdout: io.stdout, stderr: { write: (s: string) => errs.push(s) } })).toBe(1);
    // Without an injected factory main uses the library's own trainer, which checks the batch.
    expect(errs.join('')).toContain('supcon train: batch: 256 is more than the 96 training images');
  });
});

describe('a run that cannot start', () => {
  it('leaves no run folder behind (bad data folder), so the same --out works after the fix', async () => {
    const out = fresh();
    const missing = path.join(root, 'no-such-data');
    await expect(runTraining({ ...baseConfig, dataset: missing, out }, { factory: toyFactory(), stream: sink }))
      .rejects.toThrow(/no-such-data': not found or not a folder/);
    expect(fs.existsSync(path.join(out, 'config.json'))).toBe(false);
    const done = await runTraining({ ...baseConfig, epochs: 1, out }, { factory: toyFactory(), stream: sink, loadData });
    expect(done.status).toBe('finished');
  });
});
