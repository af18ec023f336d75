// What `supcon train` and `supcon eval` say and do for a user: --resume with changed flags
// or on a finished run, one numbering of epochs, the commands it suggests, Ctrl-C in the
// evaluation, progress on Ctrl-C, and the evaluation's phases with the package trainer.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeIdx, SupconTrainer, TRAIN_DEFAULTS } from '../dist/index.js';
import { main } from '../dist/lib/cli/main.js';
import { RunFolder } from '../dist/lib/cli/run-folder.js';
import { interceptSigint } from '../dist/lib/cli/train-loop.js';
import { ProgressBar } from '../dist/lib/cli/progress.js';
import { syntheticSet, toyFactory } from './fixtures/toy-trainer.mjs';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'supcon-cli-runs-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let count = 0;
const fresh = () => path.join(root, `r${count++}`);
const data = path.join(root, 'data');
const childJs = path.resolve('test/fixtures/cli-child.mjs');

beforeAll(() => {
  fs.mkdirSync(data);
  for (const [prefix, set] of [['train', syntheticSet(96, 3, 4, 3)], ['t10k', syntheticSet(30, 3, 4, 4)]] as const) {
    fs.writeFileSync(path.join(data, `${prefix}-images-idx3-ubyte.gz`), zlib.gzipSync(encodeIdx([set.shape[0], 4, 4], set.images)));
    fs.writeFileSync(path.join(data, `${prefix}-labels-idx1-ubyte`), encodeIdx([set.shape[0]], Uint8Array.from(set.labels)));
  }
});

function io() {
  const out: string[] = [], err: string[] = [];
  return { out, err, io: { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } } };
}
const base = ['--data', data, '--method', 'ce', '--batch', '16', '--lr', '0.5', '--linear-epochs', '1'];
const train = async (args: string[]) => {
  const a = io();
  const code = await main(['train', ...args], a.io, { factory: toyFactory(), command: 'npx supcon' });
  return { code, out: a.out.join(''), err: a.err.join('') };
};

describe('--resume', () => {
  it('refuses flags that differ from the saved run, naming each with both values', async () => {
    const out = fresh();
    expect((await train([...base, '--epochs', '2', '--out', out])).code).toBe(0);
    const before = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8');
    const r = await train(['--resume', '--out', out, '--batch', '64', '--lr', '0.3', '--epochs', '1']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('--batch 64 (the run has 16)');
    expect(r.err).toContain('--lr 0.3 (the run has 0.5)');
    expect(r.err).toContain('--epochs 1 (the run has 2; on --resume, --epochs can only grow)');
    expect(fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')).toBe(before);
    // The same values as saved are fine (a command line repeated with --resume).
    expect((await train([...base, '--epochs', '2', '--resume', '--out', out])).code).toBe(0);
  });

  it('on a finished run says it is complete and runs nothing; more --epochs train on and evaluate again', async () => {
    const out = fresh();
    await train([...base, '--epochs', '2', '--out', out]);
    const before = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8');
    const done = await train(['--resume', '--out', out]);
    expect(done.code).toBe(0);
    expect(done.err).toMatch(/is complete: 2 of 2 epochs trained and evaluated \(testAccuracy [01]\.\d{4}\)\. Nothing to resume; `npx supcon eval .*` evaluates it again/);
    expect(done.err).not.toContain('Resuming');
    expect(done.out).toBe('');
    expect(fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')).toBe(before);

    const longer = await train(['--resume', '--out', out, '--epochs', '3']);
    expect(longer.code).toBe(0);
    expect(longer.err).toContain('Training for 3 epochs instead of 2');
    const run = new RunFolder(out);
    expect(run.readConfig().epochs).toBe(3);
    const metrics = run.readMetrics();
    expect(metrics.filter((m) => m.type === 'epoch').map((m) => m.epoch)).toEqual([1, 2, 3]);
    expect(metrics.filter((m) => m.type === 'eval').length).toBe(1);
    expect(metrics[metrics.length - 1].type).toBe('eval');
    expect(run.readState()).toMatchObject({ epoch: 3, step: 0, checkpoint: path.join('checkpoints', 'epoch-0003.ckpt') });
  });
});

describe('supcon eval', () => {
  it('prints the report line, and the package trainer says it is evaluating, not training', async () => {
    const out = fresh();
    await train([...base, '--epochs', '1', '--out', out]);
    const a = io();
    expect(await main(['eval', out], a.io, { factory: toyFactory() })).toBe(0);
    expect(a.err.join('')).toContain(`Report: ${path.join(path.resolve(out), 'report.html')}\n`);
    const logs: string[] = [];
    const set = syntheticSet(64, 3, 8, 1);
    const config = { ...TRAIN_DEFAULTS, encoder: 'mlp' as const, batchSize: 16, out: '' };
    new SupconTrainer({ config, train: set, test: set, log: (m: string) => logs.push(m), purpose: 'evaluate' }).dispose();
    new SupconTrainer({ config, train: set, test: set, log: (m: string) => logs.push(m) }).dispose();
    expect(logs[0]).toMatch(/^evaluating on the CPU: supcon with the mlp encoder \([\d,]+ parameters\), 64 training and 64 test images$/);
    expect(logs[1]).toMatch(/^training on the CPU: /);
  });
});

/** Runs cli-child.mjs; sends SIGINT once `when` appears on its stdout. */
function interrupted(args: string[], env: Record<string, string>, when: string) {
  const child = spawn(process.execPath, [childJs, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '', sentAt = 0;
  child.stderr.on('data', (d) => (stderr += d));
  child.stdout.on('data', (d) => {
    if (sentAt === 0 && String(d).includes(when)) { sentAt = Date.now(); child.kill('SIGINT'); }
  });
  return new Promise<{ code: number | null; stderr: string; ms: number }>((resolve) =>
    child.on('exit', (code) => resolve({ code, stderr, ms: Date.now() - sentAt })));
}

describe('Ctrl-C', () => {
  it('in training: the hint is the command as invoked (npx), with the run folder', async () => {
    const out = fresh();
    const r = await interrupted(['train', ...base, '--epochs', '3', '--out', out], { SLOW: 'steps', npm_command: 'exec' }, 'step 1 2');
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(new RegExp(`Stopped in epoch 2 after step \\d+ of 6; checkpoint checkpoints/epoch-0002-step-00000\\d\\.ckpt written; continue with: npx supcon train --resume --out ${out}\\n`));
  });

  it('in the evaluation: acknowledged, and the run stops within a second (exit 130)', async () => {
    const out = fresh();
    const r = await interrupted(['train', ...base, '--epochs', '1', '--out', out], { SLOW: 'evaluate' }, 'evaluating');
    expect(r.code).toBe(130);
    expect(r.stderr).toContain('Ctrl-C: stopping the evaluation (the checkpoint is safe;');
    expect(r.stderr).toContain('Stopped during the evaluate; training is complete and checkpointed');
    expect(r.ms).toBeLessThan(1000);
    expect(fs.existsSync(path.join(out, 'report.html'))).toBe(false);
    // The checkpoint is there: eval finishes the job.
    const a = io();
    expect(await main(['eval', out], a.io, { factory: toyFactory() })).toBe(0);
    expect(fs.existsSync(path.join(out, 'report.html'))).toBe(true);
  });

  it('on a terminal the message replaces the progress line: the line is not printed twice', () => {
    const written: string[] = [];
    const stream = { write: (s: string) => written.push(s), isTTY: true, columns: 120 };
    const before = process.listeners('SIGINT').length;
    const stop = interceptSigint(stream);
    try {
      let t = 0;
      const bar = new ProgressBar(stream, 'epoch 1/1', 10, { now: () => t });
      t = 1; bar.update(3);
      (process.listeners('SIGINT').at(-1) as () => void)();
      t = 2; bar.update(4);
      bar.finish();
      // What a terminal shows: apply the carriage returns and erases.
      const screen: string[] = [''];
      for (const chunk of written)
        for (const part of chunk.split(/(\r|\n|\x1b\[K)/)) {
          if (part === '\r') screen[screen.length - 1] = '';
          else if (part === '\n') screen.push('');
          else if (part !== '\x1b[K') screen[screen.length - 1] += part;
        }
      const lines = screen.filter((l) => l !== '');
      expect(lines.length).toBe(2);
      expect(lines[0]).toMatch(/^Ctrl-C: /);
      expect(lines[1]).toMatch(/^epoch 1\/1 \[.*\]  4\/10 /);
    } finally {
      stop.dispose();
    }
    expect(process.listeners('SIGINT').length).toBe(before);
  });
});

describe('the package trainer\'s evaluation', () => {
  it('reports every phase, lets the event loop in, and stops when its progress callback throws', async () => {
    const set = syntheticSet(1200, 3, 8, 2);
    const config = { ...TRAIN_DEFAULTS, encoder: 'mlp' as const, batchSize: 64, linearEpochs: 2, out: '' };
    const trainer = new SupconTrainer({ config, train: set, test: set, log: () => {} });
    try {
      const labels: string[] = [];
      let ticks = 0;
      const timer = setInterval(() => ticks++, 0);
      const result = await trainer.evaluate((done: number, total: number, label: string) => {
        if (!labels.includes(label)) labels.push(label);
        expect(done).toBeLessThanOrEqual(total);
      });
      clearInterval(timer);
      expect(labels).toEqual(['features (train)', 'features (test)', 'kNN (k = 200)', 'linear evaluation']);
      expect(ticks).toBeGreaterThan(3); // the event loop ran during the evaluation
      expect(result.metrics.knnAccuracy).toBeGreaterThan(0.5);
      await expect(trainer.evaluate((_d: number, _t: number, label: string) => { if (label === 'kNN (k = 200)') throw new Error('stop here'); }))
        .rejects.toThrow('stop here');
    } finally {
      trainer.dispose();
    }
  }, 120_000);
});

describe('Ctrl-C while the report is drawn', () => {
  it('stops the map at its next progress report: no report.html, the evaluation kept, eval writes the report later', async () => {
    const { runTraining } = await import('../dist/lib/cli/train-loop.js');
    const { writeRunReport } = await import('../dist/lib/report/write.js');
    const out = fresh();
    const stop = { requested: false, message: '' };
    const lines: string[] = [];
    const labels: string[] = [];
    const result = await runTraining({
      method: 'ce', dataset: 'synthetic', encoder: 'mlp', epochs: 1, batchSize: 8, lr: 0.5, temperature: 0.1,
      augmentation: 'none', device: 'cpu', seed: 5, linearEpochs: 1, limit: 0, testLimit: 0, out,
    }, {
      factory: toyFactory(), stream: { write: (s: string) => lines.push(s) }, stop, command: 'npx supcon',
      loadData: () => ({ train: syntheticSet(120, 3, 4, 1), test: syntheticSet(60, 3, 4, 2) }),
      writeReport: (run, e, names, hooks) => writeRunReport(run, e, names, {
        progress: (done: number, total: number, label: string) => {
          labels.push(label);
          if (done > 0) stop.requested = true; // Ctrl-C after the map's first epochs
          return hooks.progress(done, total, label);
        },
      }),
    });
    expect(result.status).toBe('interrupted');
    expect(labels[0]).toBe('map (UMAP)');
    expect(stop.message).toMatch(/^Ctrl-C: stopping the report \(the evaluation is saved in metrics\.jsonl; `npx supcon eval .*` writes the report again\)\.$/);
    expect(lines.join('')).toContain('Stopped during the map (UMAP)');
    expect(fs.existsSync(path.join(out, 'report.html'))).toBe(false);
    expect(new RunFolder(out).readMetrics().pop()?.type).toBe('eval');
  });
});
