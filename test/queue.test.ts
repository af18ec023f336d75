// The memory queue of `supcon train --queue K`: the ring of the last K samples' projected
// features, its place in the loss after the warm-up, and exact resume with it.
import { describe, expect, it } from 'vitest';
import { loadImageSet, SupconTrainer, TRAIN_DEFAULTS } from '../dist/index.js';
import type { TrainConfig } from '../dist/index.js';
import { FeatureQueue } from '../dist/lib/train/queue.js';
import { parseCommandLine } from '../dist/lib/cli/args.js';
import { resumeConfig } from '../dist/lib/cli/train-loop.js';

describe('FeatureQueue', () => {
  it('keeps the last rows in a ring, and its bytes restore it exactly', () => {
    const q = new FeatureQueue(5, 2);
    expect(q.size).toBe(0);
    q.push(Float32Array.of(1, 1, 2, 2, 3, 3), Int32Array.of(10, 20, 30));
    expect(q.size).toBe(3);
    expect(Array.from(q.contents().labels)).toEqual([10, 20, 30]);
    q.push(Float32Array.of(4, 4, 5, 5, 6, 6, 7, 7), Int32Array.of(40, 50, 60, 70));
    // Rows 1 and 2 (the oldest) made room for 6 and 7, in their slots.
    const { features, labels } = q.contents();
    expect(features.shape).toEqual([5, 2]);
    expect(Array.from(labels)).toEqual([60, 70, 30, 40, 50]);
    expect(Array.from(features.data)).toEqual([6, 6, 7, 7, 3, 3, 4, 4, 5, 5]);
    // More rows than it holds at once: the last 5 count.
    const big = new FeatureQueue(2, 1);
    big.push(Float32Array.of(1, 2, 3), Int32Array.of(1, 2, 3));
    expect(Array.from(big.contents().labels).sort()).toEqual([2, 3]);

    const copy = new FeatureQueue(5, 2);
    copy.load(q.toBytes());
    q.push(Float32Array.of(8, 8), Int32Array.of(-2147483648));
    copy.push(Float32Array.of(8, 8), Int32Array.of(-2147483648));
    expect(copy.contents()).toEqual(q.contents());
    expect(() => new FeatureQueue(4, 2).load(q.toBytes())).toThrow(/^state: the queue holds 5 rows of 2, this run's holds 4/);
    expect(() => q.push(new Float32Array(3), Int32Array.of(1, 2))).toThrow(/^rows: expected 2 x 2 values/);
  });
});

describe('supcon train --queue', () => {
  const train = loadImageSet('fashion-mnist', 'train', { limit: 1024 });
  const test = loadImageSet('fashion-mnist', 'test', { limit: 200 });
  const config = (o: Partial<TrainConfig>): TrainConfig =>
    ({ ...TRAIN_DEFAULTS, encoder: 'cnn', batchSize: 32, epochs: 1, linearEpochs: 1, device: 'cpu', out: '', ...o });
  const steps = (t: SupconTrainer, from: number, to: number) => Array.from({ length: to - from }, (_, i) => t.step(0, from + i).loss);

  it('the queue joins the loss after its warm-up, and a restored trainer continues exactly', () => {
    const c = config({ queue: 100, queueWarmup: 2 });
    const plain = new SupconTrainer({ config: config({}), train, test, log: () => {} });
    const withoutQueue = steps(plain, 0, 6);
    plain.dispose();
    const whole = new SupconTrainer({ config: c, train, test, log: () => {} });
    const expected = steps(whole, 0, 6);
    const wholeState = whole.saveState();
    whole.dispose();
    // Before the warm-up ends, the same steps as without a queue; after, other losses (more negatives).
    expect(expected.slice(0, 2)).toEqual(withoutQueue.slice(0, 2));
    for (let s = 2; s < 6; s++) expect(expected[s]).not.toBe(withoutQueue[s]);
    expect(expected[5]).toBeGreaterThan(withoutQueue[5]);

    const first = new SupconTrainer({ config: c, train, test, log: () => {} });
    const got = steps(first, 0, 3);
    const checkpoint = first.saveState();
    first.dispose();
    const resumed = new SupconTrainer({ config: c, train, test, log: () => {} });
    resumed.loadState(checkpoint);
    got.push(...steps(resumed, 3, 6));
    expect(got).toEqual(expected);
    expect(Buffer.from(resumed.saveState()).equals(Buffer.from(wholeState))).toBe(true);
    // A checkpoint without the queue is refused by a run with one, and the other way round.
    const noQueue = new SupconTrainer({ config: config({}), train, test, log: () => {} });
    expect(() => noQueue.loadState(checkpoint)).toThrow(/^state: expected 2 parts, got 3/);
    expect(() => resumed.loadState(noQueue.saveState())).toThrow(/^state: expected 3 parts, got 2/);
    noQueue.dispose();
    resumed.dispose();
  }, 300_000);

  it('SimCLR with a queue: the queued rows are negatives only', () => {
    const t = new SupconTrainer({ config: config({ method: 'simclr', queue: 64, queueWarmup: 1 }), train, test, log: () => {} });
    const losses = steps(t, 0, 3);
    expect(losses.every(Number.isFinite)).toBe(true);
    t.dispose();
  }, 300_000);

  it('is refused where it does not apply', () => {
    expect(() => new SupconTrainer({ config: config({ method: 'ce', queue: 10 }), train, test, log: () => {} }))
      .toThrow(/^queue: a memory queue applies to supcon and simclr, not to ce/);
  });

  it('parses --loss-every, which may change on --resume', () => {
    const cmd = parseCommandLine(['train', '--loss-every', '10', '-o', 'x']);
    expect(cmd.command === 'train' && cmd.config.lossEvery).toBe(10);
    expect(cmd.command === 'train' && cmd.given).toEqual(['lossEvery', 'out']);
    expect(() => parseCommandLine(['train', '--loss-every', '0'])).toThrow(/^--loss-every: expected an integer >= 1, got '0'/);
    const saved = { ...TRAIN_DEFAULTS, out: 'x' } as TrainConfig;
    expect(resumeConfig(saved, { ...saved, lossEvery: 10 }, ['lossEvery', 'out']).lossEvery).toBe(10);
  });

  it('parses --queue and --queue-warmup, with clear usage errors', () => {
    const cmd = parseCommandLine(['train', '--queue', '4096', '--queue-warmup', '50', '-o', 'x']);
    expect(cmd.command === 'train' && cmd.config.queue).toBe(4096);
    expect(cmd.command === 'train' && cmd.config.queueWarmup).toBe(50);
    expect(cmd.command === 'train' && cmd.given).toEqual(['queue', 'queueWarmup', 'out']);
    const plain = parseCommandLine(['train', '-o', 'x']);
    expect(plain.command === 'train' && 'queue' in plain.config).toBe(false);
    expect(() => parseCommandLine(['train', '--queue', '-3'])).toThrow(/^--queue: expected an integer >= 0, got '-3'/);
    expect(() => parseCommandLine(['train', '--method', 'ce', '--queue', '8'])).toThrow(/^--queue applies to supcon and simclr, not to --method ce/);
    expect(() => parseCommandLine(['train', '--queue-warmup', '8'])).toThrow(/^--queue-warmup needs --queue <K>/);
  });
});
