// Run folder files: nothing is lost and nothing is trusted blindly. A failed resume changes
// nothing; checkpoints carry SHA-256s (per file in state.json, per part inside); JSON errors
// name the file; paths stay inside the folder; stale temporary files go on the next start.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RunFolder } from '../dist/lib/cli/run-folder.js';
import { evaluateRun, runTraining } from '../dist/lib/cli/train-loop.js';
import { main } from '../dist/lib/cli/main.js';
import { packParts, unpackParts } from '../dist/lib/train/state.js';
import { syntheticSet, toyFactory } from './fixtures/toy-trainer.mjs';
import { rng } from './reference';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'supcon-files-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let count = 0;
const fresh = () => path.join(root, `r${count++}`);
const baseConfig = {
  method: 'ce' as const, dataset: 'synthetic', encoder: 'mlp' as const, epochs: 2, batchSize: 8, lr: 0.5, temperature: 0.1,
  augmentation: 'none' as const, device: 'cpu' as const, seed: 5, linearEpochs: 1, limit: 0, testLimit: 0,
};
const loadData = () => ({ train: syntheticSet(64, 3, 4, 1), test: syntheticSet(24, 3, 4, 2) });
const sink = { write: () => true };

/** A run stopped mid-epoch, with metrics written after its checkpoint (as by a crash). */
async function interruptedRun(): Promise<{ out: string; run: RunFolder }> {
  const out = fresh();
  const stop = { requested: false };
  await runTraining({ ...baseConfig, out }, {
    factory: toyFactory({ onStep: (e: number, s: number) => { if (e === 1 && s === 2) stop.requested = true; } }),
    stream: sink, loadData, stop,
  });
  const run = new RunFolder(out);
  fs.appendFileSync(run.metricsFile, JSON.stringify({ type: 'step', epoch: 1, step: 3, loss: 1 }) + '\n');
  return { out, run };
}

const snapshot = (dir: string) => {
  const files: Record<string, string> = {};
  const walk = (d: string) => {
    for (const n of fs.readdirSync(d)) {
      const f = path.join(d, n);
      if (fs.statSync(f).isDirectory()) walk(f);
      else files[path.relative(dir, f)] = createHash('sha256').update(fs.readFileSync(f)).digest('hex');
    }
  };
  walk(dir);
  return files;
};

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('--resume validates before it changes anything', () => {
  it('a damaged checkpoint: a clear error naming it, and every file of the folder unchanged', async () => {
    const { out, run } = await interruptedRun();
    const state = run.readState()!;
    expect(state.sha256).toMatch(/^[0-9a-f]{64}$/);
    const file = path.join(out, state.checkpoint);
    const bytes = fs.readFileSync(file);
    bytes.fill(0xff, 8, Math.min(bytes.length, 1008));
    fs.writeFileSync(file, bytes);
    const before = snapshot(out);
    await expect(runTraining({ ...baseConfig, out }, { factory: toyFactory(), stream: sink, loadData, resume: true }))
      .rejects.toThrow(new RegExp(`${escapeRegExp(path.basename(state.checkpoint))}: does not match the SHA-256 that state.json recorded`));
    expect(snapshot(out)).toEqual(before);
  });

  it('a trainer whose loadState refuses the bytes: metrics.jsonl keeps every byte', async () => {
    const { out, run } = await interruptedRun();
    const size = fs.statSync(run.metricsFile).size;
    const refusing = async (setup: unknown) => {
      const t = await toyFactory()(setup as never);
      return { ...t, stepsPerEpoch: t.stepsPerEpoch, loadState() { throw new Error('state: not this model'); } };
    };
    await expect(runTraining({ ...baseConfig, out }, { factory: refusing as never, stream: sink, loadData, resume: true }))
      .rejects.toThrow('state: not this model');
    expect(fs.statSync(run.metricsFile).size).toBe(size);
    // A resume that succeeds cuts the lines after the checkpoint, then goes on.
    const done = await runTraining({ ...baseConfig, out }, { factory: toyFactory(), stream: sink, loadData, resume: true });
    expect(done.status).toBe('finished');
    expect(run.readMetrics().some((r) => r.type === 'step' && r.loss === 1 && r.step === 3)).toBe(false);
  });
});

describe('checkpoint parts carry SHA-256s', () => {
  const parts = () => {
    const r = rng(3);
    return [Uint8Array.from({ length: 3000 }, () => Math.floor(r() * 256)), Uint8Array.from({ length: 2500 }, () => Math.floor(r() * 256))];
  };

  it('round-trips, and 1,000 bytes of 0xff in the optimizer part are refused naming that part', () => {
    const p = parts();
    const packed = packParts(p);
    expect(unpackParts(packed, 2).map((x: Uint8Array) => Array.from(x))).toEqual(p.map((x) => Array.from(x)));
    const damaged = packed.slice();
    const second = 8 + 8 + 32 + p[0].length + 8 + 32;
    damaged.fill(0xff, second + 100, second + 1100);
    expect(() => unpackParts(damaged, 2, ['model', 'optimizer'])).toThrow(/part 1 \(optimizer\) does not match its SHA-256/);
    const flipped = packed.slice();
    flipped[8 + 8 + 32 + 17] ^= 1; // one bit of the model part
    expect(() => unpackParts(flipped, 2)).toThrow(/part 0 does not match its SHA-256/);
    expect(() => unpackParts(packed.subarray(0, packed.length - 1), 2)).toThrow(/past the end/);
  });

  it('version 1 checkpoints (no checksums) still load', () => {
    const p = parts();
    const v1 = new Uint8Array(8 + p.reduce((s, x) => s + 8 + x.length, 0));
    const view = new DataView(v1.buffer);
    view.setUint32(0, 0x53435450, true);
    view.setUint32(4, 2, true);
    let at = 8;
    for (const x of p) {
      view.setBigUint64(at, BigInt(x.length), true);
      v1.set(x, at + 8);
      at += 8 + x.length;
    }
    expect(unpackParts(v1, 2).map((x: Uint8Array) => x.length)).toEqual([3000, 2500]);
  });
});

describe('files named in errors, and confined to the run folder', () => {
  it('a truncated state.json or config.json: the error names the file', async () => {
    const { run } = await interruptedRun();
    const state = fs.readFileSync(run.stateFile, 'utf8');
    fs.writeFileSync(run.stateFile, state.slice(0, 20));
    expect(() => run.readState()).toThrow(new RegExp(`${run.stateFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: is not valid JSON`));
    fs.writeFileSync(run.stateFile, state);
    const config = fs.readFileSync(run.configFile, 'utf8');
    fs.writeFileSync(run.configFile, config.slice(0, 20));
    expect(() => run.readConfig()).toThrow(/config\.json: is not valid JSON \(.*truncated or damaged\?\)/);
    fs.writeFileSync(run.configFile, config);
  });

  it('a state.json that names a file outside checkpoints/ is refused before anything is read', async () => {
    const { run } = await interruptedRun();
    const state = JSON.parse(fs.readFileSync(run.stateFile, 'utf8'));
    for (const name of ['../../../etc/hostname', '/etc/hostname', 'config.json', 'checkpoints/../config.json', 'checkpoints/x/../../state.json']) {
      fs.writeFileSync(run.stateFile, JSON.stringify({ ...state, checkpoint: name }));
      expect(() => run.readState()).toThrow(/refusing to read outside the run folder/);
    }
    fs.writeFileSync(run.stateFile, JSON.stringify({ ...state, epoch: -1 }));
    expect(() => run.readState()).toThrow(/state\.json: epoch: expected an integer >= 0, got -1/);
  });

  it('eval on a missing checkpoint: a clear message, no raw ENOENT', async () => {
    const { out, run } = await interruptedRun();
    const checkpoint = run.readState()!.checkpoint;
    fs.rmSync(path.join(out, checkpoint));
    await expect(evaluateRun(out, { factory: toyFactory(), stream: sink, loadData }))
      .rejects.toThrow(new RegExp(`state\\.json: names the checkpoint checkpoints.${escapeRegExp(path.basename(checkpoint))}, which is missing`));
    const errs: string[] = [];
    const code = await main(['eval', out], { stdout: { write: () => true }, stderr: { write: (s: string) => errs.push(s) } }, { factory: toyFactory() });
    expect(code).not.toBe(0);
    expect(errs.join('')).toContain('which is missing');
    expect(errs.join('')).not.toContain('ENOENT');
  });
});

describe('stale temporary files', () => {
  it('files of dead writers are removed on the next start; a live writer keeps its file', async () => {
    const { out, run } = await interruptedRun();
    const dead = path.join(out, '.state.json.999999999.kq3.tmp');
    const deadCkpt = path.join(run.checkpointDir, '.epoch-0002.ckpt.999999998.kq4.tmp');
    const live = path.join(out, `.metrics.jsonl.${process.pid}.kq5.tmp`);
    for (const f of [dead, deadCkpt, live]) fs.writeFileSync(f, 'partial');
    const done = await runTraining({ ...baseConfig, out }, { factory: toyFactory(), stream: sink, loadData, resume: true });
    expect(done.status).toBe('finished');
    expect(fs.existsSync(dead)).toBe(false);
    expect(fs.existsSync(deadCkpt)).toBe(false);
    expect(fs.existsSync(live)).toBe(true);
  });
});
