// The contract between the command line (run folder, checkpoints, progress, Ctrl-C) and the
// training loop itself (models, optimizers, augmentation), which registers a factory here.
import type { ImageSet } from '../data/image-set';
import type { TrainConfig } from './args';

export interface TrainerSetup {
  config: TrainConfig;
  train: ImageSet;
  test: ImageSet;
  /** A message for the user (stderr), such as the device chosen. */
  log(message: string): void;
  /** What the trainer is made for: training (the default) or `supcon eval` of a checkpoint. */
  purpose?: 'train' | 'evaluate';
}

/**
 * What one optimisation step reports: the loss, and any other numbers to log. With
 * --loss-every k the loss is read back every k steps: `loss` is then null at the steps
 * between, and at a reading step the mean of the `lossSteps` steps read (1 when absent).
 */
export interface StepResult {
  loss: number | null;
  lossSteps?: number;
  [metric: string]: number | null | undefined;
}

export interface Embeddings {
  /** Row-major [labels.length, dim]. */
  data: Float32Array;
  dim: number;
  labels: Int32Array;
}

export interface EvaluationResult {
  /** Final numbers, such as testAccuracy (linear evaluation) and knnAccuracy. */
  metrics: Record<string, number>;
  /** Test-set representations for the report's 2-D map. */
  embeddings?: Embeddings;
}

export type EvalProgress = (done: number, total: number, label: string) => void;

/**
 * One training run. The loop calls step(epoch, s) for s = 0 .. stepsPerEpoch - 1, then
 * endEpoch(epoch), for each epoch; then evaluate(). saveState() may come between any two calls
 * and loadState() before the first: a trainer restored from the state saved after step s of
 * epoch e continues exactly as the uninterrupted run would (same batches, same numbers).
 */
export interface Trainer {
  readonly stepsPerEpoch: number;
  step(epoch: number, step: number): StepResult | Promise<StepResult>;
  /**
   * The losses of the steps taken and not yet read (--loss-every), read now: the loop calls
   * it before a checkpoint that interrupts an epoch. Null when nothing is pending.
   */
  flushLoss?(): StepResult | null | Promise<StepResult | null>;
  /** The monitors after an epoch; `progress` (optional to call) shows their phases. */
  endEpoch(epoch: number, progress?: EvalProgress): Record<string, number> | Promise<Record<string, number>>;
  saveState(): Uint8Array | Promise<Uint8Array>;
  loadState(state: Uint8Array): void | Promise<void>;
  evaluate(progress: EvalProgress): EvaluationResult | Promise<EvaluationResult>;
  dispose(): void;
}

export type TrainerFactory = (setup: TrainerSetup) => Trainer | Promise<Trainer>;

let registered: TrainerFactory | null = null;

/** Sets the factory that `supcon train` and `supcon eval` use. */
export function registerTrainer(factory: TrainerFactory): void {
  if (typeof factory !== 'function') throw new TypeError(`factory: expected a function, got ${typeof factory}`);
  registered = factory;
}

export function registeredTrainer(): TrainerFactory {
  if (registered === null) throw new Error('no training loop is registered in this build (see registerTrainer)');
  return registered;
}
