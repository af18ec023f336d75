// The command line: argument parsing and its errors, progress formatting, the main entry.
import { describe, expect, it } from 'vitest';
import { parseCommandLine, TRAIN_DEFAULTS, UsageError } from '../dist/lib/cli/args.js';
import { main } from '../dist/lib/cli/main.js';
import { formatDuration, formatProgress, formatRate, ProgressBar, renderBar } from '../dist/lib/cli/progress.js';

const now = new Date('2026-03-04T05:06:07.890Z');

function usageError(argv: string[]): UsageError {
  try {
    parseCommandLine(argv, now);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return e as UsageError;
  }
  throw new Error(`no error for ${argv.join(' ')}`);
}

describe('arguments', () => {
  it('train: defaults, and a run folder named by the time and method', () => {
    const cmd = parseCommandLine(['train'], now);
    expect(cmd).toEqual({ command: 'train', resume: false, given: [], config: { ...TRAIN_DEFAULTS, out: 'runs/20260304-050607-supcon' } });
  });

  it('train: every flag, long and short', () => {
    const cmd = parseCommandLine([
      'train', '-m', 'simclr', '--data', '/tmp/cifar', '-e', 'resnet50', '--epochs', '3', '-b', '64', '--lr', '0.3',
      '-t', '0.5', '-a', 'randaugment', '--device', 'cuda', '--precision', 'bf16', '-s', '7', '--linear-epochs', '2',
      '--limit', '1000', '--test-limit', '100', '-o', 'out/x', '--resume',
    ], now);
    expect(cmd).toEqual({
      command: 'train', resume: true,
      given: ['method', 'dataset', 'encoder', 'epochs', 'batchSize', 'lr', 'temperature', 'augmentation', 'device', 'precision', 'seed', 'linearEpochs', 'limit', 'testLimit', 'out'],
      config: {
        method: 'simclr', dataset: '/tmp/cifar', encoder: 'resnet50', epochs: 3, batchSize: 64, lr: 0.3, temperature: 0.5,
        augmentation: 'randaugment', device: 'cuda', precision: 'bf16', seed: 7, linearEpochs: 2, limit: 1000, testLimit: 100, out: 'out/x',
      },
    });
    expect(parseCommandLine(['train', '--lr=1e-3', '--epochs=+2'], now)).toMatchObject({ config: { lr: 0.001, epochs: 2 } });
  });

  it.each([
    [['train', '--epochs', 'x'], "--epochs: expected an integer >= 1, got 'x'"],
    [['train', '--epochs', '0'], "--epochs: expected an integer >= 1, got '0'"],
    [['train', '--epochs', '2.5'], "--epochs: expected an integer >= 1, got '2.5'"],
    [['train', '--batch', '1'], "--batch: expected an integer >= 2, got '1'"],
    [['train', '--precision', 'fp16'], "--precision: expected one of auto, fp32, tf32, bf16, got 'fp16'"],
    [['train', '--seed=-1'], "--seed: expected an integer >= 0, got '-1'"],
    // Negative numbers are values, refused by the flag's own check (not parseArgs' "ambiguous").
    [['train', '--epochs', '-1'], "--epochs: expected an integer >= 1, got '-1'"],
    [['train', '--lr', '-3'], "--lr: expected a positive number, got '-3'"],
    [['train', '--limit', '-5'], "--limit: expected an integer >= 0, got '-5'"],
    [['train', '-s', '-2'], "--seed: expected an integer >= 0, got '-2'"],
    [['train', '--temperature', '-.5'], "--temperature: expected a positive number, got '-.5'"],
    [['train', '--batch', '-Infinity'], "--batch: expected an integer >= 2, got '-Infinity'"],
    [['bench', '--n', '-4'], "--n: expected an integer >= 2, got '-4'"],
    [['train', '--epochs', '-x'], "--epochs: expected a value, got the flag '-x' (write --epochs=-x if that is the value)"],
    [['train', '-m', '--lr'], "--method: expected a value, got the flag '--lr'"],
    [['train', '--lr', '0'], "--lr: expected a positive number, got '0'"],
    [['train', '--lr', 'fast'], "--lr: expected a positive number, got 'fast'"],
    [['train', '--temperature', 'Infinity'], "--temperature: expected a positive number, got 'Infinity'"],
    [['train', '--method', 'byol'], "--method: expected one of supcon, simclr, ce, got 'byol'"],
    [['train', '--device', 'tpu'], "--device: expected one of auto, cpu, cuda, got 'tpu'"],
    [['train', '--augmentation', 'heavy'], "--augmentation: expected one of simclr, randaugment, basic, none, got 'heavy'"],
    [['train', '--encoder', 'vit'], "--encoder: expected one of resnet18, resnet34, resnet50, cnn, mlp, got 'vit'"],
    [['train', '--data', 'a', '--dataset', 'b'], '--dataset and --data both given'],
    [['train', '--dataset', ' '], '--dataset: expected a dataset name or a folder, got an empty string'],
    [['train', '--resume'], '--resume needs --out <run folder> to resume'],
    [['train', '--method', 'ce', '--temperature', '0.2'], '--temperature applies to supcon and simclr, not to --method ce'],
    [['train', '--linear-epochs', '0'], '--linear-epochs: --method supcon needs at least one epoch of linear evaluation, got 0'],
    [['train', 'extra'], "Unexpected argument 'extra'"],
    [['train', '--bogus'], "Unknown option '--bogus'"],
    [['train', '--epochs'], "Option '--epochs <value>' argument missing"],
    [['eval'], 'expected the run folder to evaluate: supcon eval <run folder>'],
    [['eval', 'a', 'b'], "unexpected argument 'b'"],
    [['bench', '--n', '1'], "--n: expected an integer >= 2, got '1'"],
    [['info', '--verbose'], "Unknown option '--verbose'"],
    [['fit'], "unknown command 'fit'; expected one of train, eval, bench, info"],
  ])('%j -> %s', (argv, message) => {
    const e = usageError(argv as string[]);
    expect(e.message).toContain(message);
    expect(e.command).toBe(argv[0] === 'fit' ? null : argv[0]);
  });

  it('other commands and help', () => {
    expect(parseCommandLine(['eval', 'runs/a', '--device', 'cpu'])).toEqual({ command: 'eval', run: 'runs/a', device: 'cpu' });
    expect(parseCommandLine(['bench', '--n', '300', '--json'])).toEqual({ command: 'bench', device: 'auto', n: 300, dim: 128, repeats: 10, json: true });
    expect(parseCommandLine(['info', '--json'])).toEqual({ command: 'info', json: true });
    expect(parseCommandLine([])).toEqual({ command: 'help', topic: null });
    expect(parseCommandLine(['help', 'train'])).toEqual({ command: 'help', topic: 'train' });
    expect(parseCommandLine(['train', '-h'])).toEqual({ command: 'help', topic: 'train' });
    expect(parseCommandLine(['--version'])).toEqual({ command: 'version' });
  });
});

describe('progress', () => {
  it('formats durations, rates and bars', () => {
    expect(formatDuration(0)).toBe('00:00');
    expect(formatDuration(59.4)).toBe('00:59');
    expect(formatDuration(61)).toBe('01:01');
    expect(formatDuration(3600 * 2 + 5 * 60 + 9)).toBe('2:05:09');
    expect(formatDuration(NaN)).toBe('--:--');
    expect(formatDuration(-1)).toBe('--:--');
    expect(formatRate(250.4, 'img')).toBe('250 img/s');
    expect(formatRate(12.345, 'step')).toBe('12.3 step/s');
    expect(formatRate(0.25, 'step')).toBe('4.0 s/step');
    expect(formatRate(0, 'step')).toBe('-- step/s');
    expect(renderBar(0, 10)).toBe('..........');
    expect(renderBar(0.55, 10)).toBe('#####.....');
    expect(renderBar(1, 10)).toBe('##########');
    expect(renderBar(7, 4)).toBe('####');
  });

  it('one line: label, bar, count, rate, elapsed, ETA, fields', () => {
    expect(formatProgress({ label: 'epoch 2/10', done: 30, total: 120, elapsed: 15, unit: 'step', fields: { loss: 4.123456, lr: 0.05 } }, 12))
      .toBe('epoch 2/10 [###.........]  30/120 2.0 step/s 00:15 elapsed ETA 00:45 loss 4.123 lr 0.05000');
    expect(formatProgress({ label: 'x', done: 0, total: 5, elapsed: 0, unit: 'step' }, 5)).toBe('x [.....] 0/5 -- step/s 00:00 elapsed ETA --:--');
    expect(formatProgress({ label: 'x', done: 5, total: 5, elapsed: 10, unit: 'step' }, 5)).toBe('x [#####] 5/5 2.0 s/step 00:10 elapsed ETA 00:00');
  });

  it('not a terminal: plain lines, at most one per interval, and the last one', () => {
    let t = 0;
    const lines: string[] = [];
    const bar = new ProgressBar({ write: (s: string) => lines.push(s), isTTY: false }, 'e', 100, { now: () => t, plainEverySeconds: 5 });
    for (let i = 1; i <= 100; i++) { t = i * 0.5; bar.update(i); }
    bar.finish();
    expect(lines.every((l) => l.endsWith('\n') && !l.includes('\r'))).toBe(true);
    expect(lines.length).toBe(10); // t = 5, 10, ..., 45 and the final line
    expect(lines[0]).toBe('e [##......................]  10/100 2.0 step/s 00:05 elapsed ETA 00:45\n');
    expect(lines[lines.length - 1]).toBe('e [########################] 100/100 2.0 step/s 00:50 elapsed ETA 00:00\n');
  });

  it('a terminal: one line redrawn in place, cut to the width', () => {
    let t = 0;
    const out: string[] = [];
    const bar = new ProgressBar({ write: (s: string) => out.push(s), isTTY: true, columns: 40 }, 'epoch 1/1', 10, { now: () => t });
    for (let i = 1; i <= 10; i++) { t = i; bar.update(i); }
    bar.finish();
    expect(out.slice(0, -1).every((s) => s.startsWith('\r') && s.endsWith('\x1b[K') && !s.includes('\n'))).toBe(true);
    expect(out.slice(0, -1).every((s) => s.length - 4 <= 39)).toBe(true);
    expect(out[out.length - 1].endsWith('\n')).toBe(true);
  });
});

describe('main', () => {
  function io() {
    const out: string[] = [], err: string[] = [];
    return { out, err, io: { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } } };
  }

  it('info prints the backend, --json as JSON', async () => {
    const a = io();
    expect(await main(['info'], a.io)).toBe(0);
    expect(a.out.join('')).toMatch(/^supcon \d+\.\d+\.\d+ .*\nCPU kernels: (avx512|avx2|baseline) /);
    const b = io();
    expect(await main(['info', '--json'], b.io)).toBe(0);
    const info = JSON.parse(b.out.join(''));
    expect(info).toHaveProperty('cpuKernelsAvailable');
    expect(info).toHaveProperty('cuda');
  });

  it('usage errors exit with 2 and point at the help', async () => {
    const a = io();
    expect(await main(['train', '--epochs', 'many'], a.io)).toBe(2);
    expect(a.err.join('')).toBe("supcon train: --epochs: expected an integer >= 1, got 'many'\nRun 'supcon train --help' for usage.\n");
    expect(a.out).toEqual([]);
  });

  it('bench times the loss on the CPU', async () => {
    const a = io();
    expect(await main(['bench', '--device', 'cpu', '--n', '33', '--dim', '17', '--repeats', '2', '--json'], a.io)).toBe(0);
    const r = JSON.parse(a.out.join(''));
    expect(r).toMatchObject({ device: 'cpu', n: 33, views: 2, dim: 17, repeats: 2 });
    expect(r.forwardMs.min).toBeGreaterThan(0);
    expect(Number.isFinite(r.loss) && r.loss > 0).toBe(true);
  });
});

describe('progress rate', () => {
  const capture = () => {
    const lines: string[] = [];
    return { lines, stream: { write: (s: string) => lines.push(s), isTTY: true, columns: 200 } };
  };

  it('the first redraw shows no rate until there is a fair measurement (not millions per second)', () => {
    let t = 100;
    const { lines, stream } = capture();
    const bar = new ProgressBar(stream, 'features (train)', 60000, { unit: 'it', now: () => t });
    t += 0.0001;
    bar.update(500);
    expect(lines[0]).toContain('-- it/s');
    expect(lines[0]).toContain('ETA --:--');
    t += 1;
    bar.update(1000);
    expect(lines[1]).toMatch(/ 1000 it\/s /);
  });

  it('after a resume, the steps done before the restart are not in the rate', () => {
    let t = 0;
    const { lines, stream } = capture();
    const bar = new ProgressBar(stream, 'epoch 2/5', 234, { now: () => t, start: 200 });
    t = 10;
    bar.update(210);
    expect(lines[0]).toContain(' 210/234 1.0 step/s ');
    expect(lines[0]).toContain('ETA 00:24');
  });

  it('the unit does not flip between s/step and step/s within a run', () => {
    let t = 0;
    const { lines, stream } = capture();
    const bar = new ProgressBar(stream, 'epoch 1/2', 100, { now: () => t });
    t = 1; bar.update(2); // 2 step/s
    t = 4; bar.update(3); // 0.75 step/s: still step/s
    expect(lines[0]).toContain('2.0 step/s');
    expect(lines[1]).toContain('0.75 step/s');
    expect(bar.rateStyle).toBe('perSecond');
    const slow = new ProgressBar(stream, 'epoch 2/2', 100, { now: () => t, rateStyle: bar.rateStyle });
    t = 14; slow.update(2); // 0.2 step/s, shown in the run's unit
    expect(lines[2]).toContain('0.20 step/s');
    expect(formatRate(0.2, 'step', 'secondsEach')).toBe('5.0 s/step');
  });
});

describe('invoked as', () => {
  it('npx, a global install, or the script', async () => {
    const { invokedAs } = await import('../dist/lib/cli/main.js');
    expect(invokedAs({ npm_command: 'exec' }, ['node', '/app/node_modules/.bin/supcon'])).toBe('npx supcon');
    expect(invokedAs({ PATH: '/usr/local/bin:/usr/bin' }, ['node', '/usr/local/bin/supcon'])).toBe('supcon');
    expect(invokedAs({ PATH: '/usr/bin' }, ['node', '/app/node_modules/.bin/supcon'])).toBe('/app/node_modules/.bin/supcon');
    expect(invokedAs({ PATH: '/usr/bin' }, ['node', `${process.cwd()}/dist/lib/cli/main.js`])).toBe('node dist/lib/cli/main.js');
  });
});
