// Everything around the training loop: data, run folder, metrics, checkpoints each epoch,
// progress, a clean stop on Ctrl-C, the final evaluation and the report. The loop itself is
// the injected Trainer.
import { loadImageSet } from '../data/dataset';
import type { ImageSet } from '../data/image-set';
import type { TrainConfig } from './args';
import { ProgressBar, ProgressStream } from './progress';
import { RunFolder } from './run-folder';
import type { EvaluationResult, Trainer, TrainerFactory } from './trainer';

export interface StopSignal {
  /** True once the user asked to stop: the loop finishes the current step, checkpoints and returns. */
  readonly requested: boolean;
}

export interface LoopOptions {
  factory: TrainerFactory;
  resume?: boolean;
  /** Where progress and messages go (stderr). */
  stream: ProgressStream;
  stop?: StopSignal;
  /** Loads the data (default: loadImageSet with the config's dataset and limits). */
  loadData?: (config: TrainConfig) => { train: ImageSet; test: ImageSet };
  /** Writes report.html from the run folder after the evaluation. */
  writeReport?: (run: RunFolder, evaluation: EvaluationResult, classNames: readonly string[] | null) => Promise<void> | void;
  /** Clock for durations in metrics (seconds). */
  now?: () => number;
}

export interface LoopResult {
  status: 'finished' | 'interrupted';
  run: RunFolder;
  evaluation: EvaluationResult | null;
}

export function loadRunData(config: TrainConfig, log: (m: string) => void): { train: ImageSet; test: ImageSet } {
  const onConvert = (dir: string) => log(`Converting the fashion-mnist package once into ${dir} ...`);
  const train = loadImageSet(config.dataset, 'train', { limit: config.limit || undefined, onConvert });
  const test = loadImageSet(config.dataset, 'test', { limit: config.testLimit || undefined, onConvert });
  if (train.shape.slice(1).join('x') !== test.shape.slice(1).join('x'))
    throw new Error(`dataset '${config.dataset}': train images are ${train.shape.slice(1).join('x')} but test images are ${test.shape.slice(1).join('x')}`);
  return { train, test };
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

async function evaluateAndReport(
  trainer: Trainer, run: RunFolder, options: LoopOptions, classNames: readonly string[] | null,
): Promise<EvaluationResult> {
  let bar: ProgressBar | null = null;
  let barLabel = '';
  const evaluation = await trainer.evaluate((done, total, label) => {
    if (bar === null || label !== barLabel) {
      bar?.finish();
      bar = new ProgressBar(options.stream, label, total, { unit: 'it' });
      barLabel = label;
    }
    bar.update(done);
  });
  (bar as ProgressBar | null)?.finish();
  run.appendMetrics({ type: 'eval', ...evaluation.metrics });
  await options.writeReport?.(run, evaluation, classNames);
  return evaluation;
}

/** Trains (or resumes) the run of `config` in config.out. */
export async function runTraining(config: TrainConfig, options: LoopOptions): Promise<LoopResult> {
  const log = (m: string) => options.stream.write(m + '\n');
  const now = options.now ?? (() => performance.now() / 1000);
  const run = new RunFolder(config.out);
  let startEpoch = 0, startStep = 0;
  if (options.resume) config = run.readConfig();
  else run.checkNew();
  // Data and trainer first: a run that cannot start leaves no run folder behind.
  const data = (options.loadData ?? ((c) => loadRunData(c, log)))(config);
  const trainer = await options.factory({ config, train: data.train, test: data.test, log });
  try {
    if (options.resume) {
      const { state, bytes } = run.restore();
      startEpoch = state.epoch;
      startStep = state.step;
      await trainer.loadState(bytes);
      log(`Resuming ${run.dir} at epoch ${startEpoch + 1}, step ${startStep}`);
    } else {
      run.create(config);
    }
    const steps = trainer.stepsPerEpoch;
    if (!Number.isSafeInteger(steps) || steps < 1)
      throw new Error(`trainer: stepsPerEpoch must be a positive integer, got ${steps}`);
    for (let epoch = startEpoch; epoch < config.epochs; epoch++) {
      const bar = new ProgressBar(options.stream, `epoch ${epoch + 1}/${config.epochs}`, steps, { unit: 'step' });
      const t0 = now();
      let lossSum = 0, lossCount = 0;
      if (epoch === startEpoch && startStep > 0)
        for (const r of run.readMetrics())
          if (r.type === 'step' && r.epoch === epoch && typeof r.loss === 'number') { lossSum += r.loss; lossCount++; }
      for (let step = epoch === startEpoch ? startStep : 0; step < steps; step++) {
        const result = await trainer.step(epoch, step);
        if (typeof result?.loss !== 'number') throw new Error(`trainer.step: expected { loss: number, ... }, got ${JSON.stringify(result)}`);
        run.appendMetrics({ type: 'step', epoch, step, ...result });
        lossSum += result.loss;
        lossCount++;
        bar.update(step + 1, { loss: result.loss });
        await yieldToEventLoop();
        if (options.stop?.requested && step + 1 < steps) {
          bar.finish();
          const state = run.saveCheckpoint(await trainer.saveState(), epoch, step + 1, 'interrupt');
          log(`Stopped. Checkpoint ${state.checkpoint} written; continue with: supcon train --resume --out ${run.dir}`);
          return { status: 'interrupted', run, evaluation: null };
        }
      }
      bar.finish();
      const monitors = await trainer.endEpoch(epoch);
      run.appendMetrics({ type: 'epoch', epoch, meanLoss: lossCount > 0 ? lossSum / lossCount : null, seconds: now() - t0, ...monitors });
      run.saveCheckpoint(await trainer.saveState(), epoch + 1, 0, 'epoch');
      const shown = Object.entries(monitors).map(([k, v]) => `${k} ${typeof v === 'number' ? v.toFixed(4) : v}`).join(', ');
      if (shown) log(`epoch ${epoch + 1}: ${shown}`);
      if (options.stop?.requested && epoch + 1 < config.epochs) {
        log(`Stopped after epoch ${epoch + 1}; continue with: supcon train --resume --out ${run.dir}`);
        return { status: 'interrupted', run, evaluation: null };
      }
    }
    const evaluation = await evaluateAndReport(trainer, run, options, data.test.classNames);
    return { status: 'finished', run, evaluation };
  } finally {
    trainer.dispose();
  }
}

/** Evaluates the latest checkpoint of a run folder again (supcon eval). */
export async function evaluateRun(dir: string, options: LoopOptions & { device?: TrainConfig['device'] }): Promise<EvaluationResult> {
  const log = (m: string) => options.stream.write(m + '\n');
  const run = new RunFolder(dir);
  const config = { ...run.readConfig(), ...(options.device ? { device: options.device } : {}) };
  const state = run.readState();
  if (state === null) throw new Error(`run folder '${run.dir}': no checkpoint to evaluate (no state.json)`);
  const bytes = run.readCheckpoint(state);
  const data = (options.loadData ?? ((c) => loadRunData(c, log)))(config);
  const trainer = await options.factory({ config, train: data.train, test: data.test, log });
  try {
    await trainer.loadState(bytes);
    return await evaluateAndReport(trainer, run, options, data.test.classNames);
  } finally {
    trainer.dispose();
  }
}

/** A StopSignal set by the first Ctrl-C; a second one exits at once (status 130). */
export function interceptSigint(stream: ProgressStream): StopSignal & { dispose(): void } {
  let requested = false;
  const onSigint = () => {
    if (requested) {
      stream.write('\nSecond Ctrl-C: exiting without a checkpoint.\n');
      process.exit(130);
    }
    requested = true;
    stream.write('\nCtrl-C: finishing the current step, then writing a checkpoint (Ctrl-C again to quit at once).\n');
  };
  process.on('SIGINT', onSigint);
  return {
    get requested() { return requested; },
    dispose() { process.off('SIGINT', onSigint); },
  };
}
