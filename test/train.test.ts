// The library's training loop on real Fashion-MNIST images (small slices, so it stays
// quick): it learns, the cross-entropy baseline learns, and a run restored from a
// checkpoint continues bit for bit.
import { describe, expect, it } from 'vitest';
import { cudaStatus, loadImageSet, SupconTrainer, TRAIN_DEFAULTS } from '../dist/index.js';
import type { TrainConfig } from '../dist/index.js';

const train = loadImageSet('fashion-mnist', 'train', { limit: 2048 });
const test = loadImageSet('fashion-mnist', 'test', { limit: 1000 });

function config(overrides: Partial<TrainConfig>): TrainConfig {
  return { ...TRAIN_DEFAULTS, encoder: 'cnn', batchSize: 128, epochs: 2, linearEpochs: 10, out: '', ...overrides };
}

async function run(c: TrainConfig) {
  const trainer = new SupconTrainer({ config: c, train, test, log: () => {} });
  const losses: number[] = [];
  for (let e = 0; e < c.epochs; e++) {
    for (let s = 0; s < trainer.stepsPerEpoch; s++) losses.push(trainer.step(e, s).loss);
    await trainer.endEpoch(e);
  }
  const result = await trainer.evaluate(() => {});
  trainer.dispose();
  return { losses, result };
}

describe('training on a slice of Fashion-MNIST', () => {
  it('SupCon pre-training lowers the loss and gives a linearly separable representation', async () => {
    const { losses, result } = await run(config({ method: 'supcon', lr: 0.1 }));
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses.slice(-4).reduce((a, b) => a + b) / 4).toBeLessThan(losses.slice(0, 4).reduce((a, b) => a + b) / 4 - 0.2);
    // 2 epochs of 2,048 images: far from converged, far above chance (0.1).
    expect(result.metrics.testAccuracy).toBeGreaterThan(0.7);
    expect(result.metrics.knnAccuracy).toBeGreaterThan(0.65);
    expect(result.embeddings?.dim).toBe(256);
    expect(result.embeddings?.labels.length).toBe(1000);
  }, 300_000);

  it('the cross-entropy baseline trains the same encoder', async () => {
    const { result } = await run(config({ method: 'ce', lr: 0.1, augmentation: 'basic' }));
    expect(result.metrics.classifierAccuracy).toBeGreaterThan(0.7);
    expect(result.metrics.testAccuracy).toBeGreaterThan(0.7);
  }, 300_000);

  it('a trainer restored from saveState() continues exactly', () => {
    const c = config({ method: 'simclr', batchSize: 64, epochs: 1 });
    const whole = new SupconTrainer({ config: c, train, test, log: () => {} });
    const expected = [0, 1, 2, 3, 4, 5].map((s) => whole.step(0, s).loss);
    const wholeState = whole.saveState();
    whole.dispose();

    const first = new SupconTrainer({ config: c, train, test, log: () => {} });
    const got = [0, 1, 2].map((s) => first.step(0, s).loss);
    const checkpoint = first.saveState();
    first.dispose();
    const resumed = new SupconTrainer({ config: { ...c, seed: c.seed }, train, test, log: () => {} });
    resumed.loadState(checkpoint);
    got.push(...[3, 4, 5].map((s) => resumed.step(0, s).loss));
    expect(got).toEqual(expected);
    expect(Buffer.from(resumed.saveState()).equals(Buffer.from(wholeState))).toBe(true);
    resumed.dispose();
  }, 300_000);

  it('--loss-every 3: null between the reads, then the mean of the steps read; the end of an epoch and flushLoss read the rest', () => {
    const c = config({ method: 'simclr', batchSize: 256, epochs: 1 });
    const each = new SupconTrainer({ config: c, train, test, log: () => {} });
    expect(each.stepsPerEpoch).toBe(8);
    const want = Array.from({ length: 8 }, (_, s) => each.step(0, s).loss as number);
    each.dispose();
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const t = new SupconTrainer({ config: { ...c, lossEvery: 3 }, train, test, log: () => {} });
    const got = Array.from({ length: 8 }, (_, s) => t.step(0, s));
    expect(got.map((r) => r.loss === null)).toEqual([true, true, false, true, true, false, true, false]);
    // The same steps (the loss read later changes nothing), their means.
    expect(got[2]).toMatchObject({ loss: mean(want.slice(0, 3)), lossSteps: 3 });
    expect(got[5]).toMatchObject({ loss: mean(want.slice(3, 6)), lossSteps: 3 });
    expect(got[7]).toMatchObject({ loss: mean(want.slice(6, 8)), lossSteps: 2 });
    expect(t.flushLoss()).toBeNull();
    t.dispose();
    const f = new SupconTrainer({ config: { ...c, lossEvery: 5 }, train, test, log: () => {} });
    expect(f.step(0, 0).loss).toBeNull();
    expect(f.flushLoss()).toEqual({ loss: want[0] });
    expect(f.flushLoss()).toBeNull();
    f.dispose();
    expect(() => new SupconTrainer({ config: { ...c, lossEvery: 0 }, train, test, log: () => {} })).toThrow(/^lossEvery: expected an integer >= 1, got number 0/);
  }, 300_000);

  it('rejects a checkpoint that is not one', () => {
    const t = new SupconTrainer({ config: config({}), train, test, log: () => {} });
    expect(() => t.loadState(new Uint8Array(16))).toThrow(/^state: not a training checkpoint/);
    t.dispose();
  });
});

describe('devices', () => {
  it('tensor-core precisions on the CPU are refused, saying why', () => {
    expect(() => new SupconTrainer({ config: config({ device: 'cpu', precision: 'tf32' }), train, test, log: () => {} }))
      .toThrow(/^precision: 'tf32' runs on GPU tensor cores; on the CPU the layers compute in fp32/);
  });

  it.skipIf(cudaStatus().usable)('--device cuda without a usable GPU says why', () => {
    expect(() => new SupconTrainer({ config: config({ device: 'cuda' }), train, test, log: () => {} }))
      .toThrow(/^device: 'cuda' was asked for, but /);
  });
});

describe('supcon train end to end with the package trainer', () => {
  it('trains, writes a run folder with PyTorch-named weights, and eval reproduces the result', async () => {
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const { main } = await import('../dist/lib/cli/main.js');
    const { nn, ConvNet } = await import('../dist/index.js');
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'supcon-e2e-')), 'run');
    const lines: string[] = [];
    const io = { stdout: { write: (s: string) => lines.push(s) }, stderr: { write: () => {} } };
    try {
      const code = await main(['train', '--limit', '1024', '--test-limit', '300', '--epochs', '2', '--batch', '64',
        '--linear-epochs', '3', '--out', out], io);
      expect(code).toBe(0);
      const summary = JSON.parse(lines.join(''));
      expect(summary.testAccuracy).toBeGreaterThan(0.6);
      expect(fs.existsSync(path.join(out, 'report.html'))).toBe(true);
      // The weights load into the same architecture by name, as PyTorch's load_state_dict would.
      const encoder = new ConvNet(1, [28, 28], 5);
      const head = new nn.ProjectionHead(256, { outDim: 128 });
      const model = new (class extends nn.Module {
        constructor() {
          super();
          this.registerModule('encoder', encoder);
          this.registerModule('head', head);
        }
        forward(x: never) { return head.forward(encoder.forward(x)); }
      })();
      const meta = nn.loadSafetensors(model, path.join(out, 'model.safetensors'));
      expect(meta).toMatchObject({ method: 'supcon', encoder: 'cnn' });
      model.dispose();
      lines.length = 0;
      expect(await main(['eval', out], io)).toBe(0);
      expect(JSON.parse(lines.join('')).testAccuracy).toBe(summary.testAccuracy);
    } finally {
      fs.rmSync(path.dirname(out), { recursive: true, force: true });
    }
  }, 300_000);
});
