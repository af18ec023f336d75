// A Trainer that runs in a worker thread (node:worker_threads): every method returns a
// promise, and the calling thread's event loop stays free while a step runs. The command
// line uses it so that its progress line and Ctrl-C stay responsive during a long step.
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe } from '../check';
import type { EvalProgress, EvaluationResult, StepResult, Trainer, TrainerFactory, TrainerSetup } from './trainer';

export interface TrainerWorkerOptions {
  /**
   * A module the worker thread loads (require()) to register its trainer with
   * registerTrainer(); default: the package's own SupconTrainer (lib/train).
   */
  module?: string;
}

/** What the worker thread posts back. */
export type ThreadMessage =
  | { type: 'ready'; stepsPerEpoch: number }
  | { type: 'log'; message: string }
  | { type: 'progress'; id: number; done: number; total: number; label: string }
  | { type: 'result'; id: number; value: unknown }
  | { type: 'error'; id: number; error: SerializedError };

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
}

/** The worker's data: the setup without its log function, the module, the abort flag. */
export interface ThreadData {
  setup: Omit<TrainerSetup, 'log'>;
  module: string;
  /** Int32Array over it: [0] = 1 once the caller's progress callback threw (stop the call). */
  abort: SharedArrayBuffer;
}

const ERRORS: Record<string, new (message: string) => Error> = { TypeError, RangeError };

function revive(e: SerializedError): Error {
  const error = new (ERRORS[e.name] ?? Error)(e.message);
  if (!(e.name in ERRORS)) error.name = e.name;
  if (e.stack !== undefined) error.stack = e.stack;
  return error;
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
  progress?: EvalProgress;
  /** What the progress callback threw: the call rejects with it. */
  thrown?: unknown;
}

export class TrainerWorker implements Trainer {
  readonly stepsPerEpoch: number;
  readonly #worker: Worker;
  readonly #abort: Int32Array;
  readonly #pending = new Map<number, Pending>();
  #next = 1;
  #exited: Error | null = null;

  private constructor(worker: Worker, abort: Int32Array, stepsPerEpoch: number) {
    this.#worker = worker;
    this.#abort = abort;
    this.stepsPerEpoch = stepsPerEpoch;
  }

  /**
   * Starts a worker thread, makes the trainer there with the registered factory of
   * `options.module` and resolves once it is made (rejects with its constructor's error).
   * The setup's data is copied to the thread; its log messages come back to setup.log. Bad
   * arguments reject too.
   */
  static async create(setup: TrainerSetup, options: TrainerWorkerOptions = {}): Promise<TrainerWorker> {
    if (setup === null || typeof setup !== 'object' || typeof setup.log !== 'function')
      throw new TypeError(`setup: expected { config, train, test, log }, got ${describe(setup)}`);
    if (options.module !== undefined && typeof options.module !== 'string')
      throw new TypeError(`options.module: expected a module path, got ${describe(options.module)}`);
    const abort = new SharedArrayBuffer(4);
    const { log, ...rest } = setup;
    const data: ThreadData = { setup: rest, module: options.module ?? path.join(__dirname, '..', 'train'), abort };
    const worker = new Worker(path.join(__dirname, 'trainer-thread.js'), { workerData: data });
    return new Promise<TrainerWorker>((resolve, reject) => {
      let trainer: TrainerWorker | null = null;
      worker.on('message', (m: ThreadMessage) => {
        if (m.type === 'log') log(m.message);
        else if (m.type === 'ready') resolve((trainer = new TrainerWorker(worker, new Int32Array(abort), m.stepsPerEpoch)));
        else if (trainer === null && m.type === 'error') reject(revive(m.error));
        else if (trainer !== null) trainer.#receive(m);
      });
      worker.on('error', (e) => (trainer === null ? reject(e) : trainer.#stop(e)));
      worker.on('exit', (code) => {
        const e = new Error(`the trainer's worker thread exited (code ${code})`);
        if (trainer === null) reject(e);
        else trainer.#stop(e);
      });
    });
  }

  #receive(m: ThreadMessage): void {
    if (m.type !== 'progress' && m.type !== 'result' && m.type !== 'error') return;
    const call = this.#pending.get(m.id);
    if (call === undefined) return;
    if (m.type === 'progress') {
      if (call.thrown !== undefined) return;
      try {
        call.progress?.(m.done, m.total, m.label);
      } catch (e) {
        call.thrown = e;
        Atomics.store(this.#abort, 0, 1);
      }
      return;
    }
    this.#pending.delete(m.id);
    if (call.thrown !== undefined) call.reject(call.thrown as Error);
    else if (m.type === 'result') call.resolve(m.value);
    else call.reject(revive(m.error));
  }

  #stop(e: Error): void {
    this.#exited ??= e;
    for (const call of this.#pending.values()) call.reject(e);
    this.#pending.clear();
  }

  #call<T>(method: string, args: unknown[], progress?: EvalProgress): Promise<T> {
    if (this.#exited !== null) return Promise.reject(this.#exited);
    const id = this.#next++;
    Atomics.store(this.#abort, 0, 0);
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, progress });
      this.#worker.postMessage({ id, method, args, progress: progress !== undefined });
    });
  }

  step(epoch: number, step: number): Promise<StepResult> {
    return this.#call('step', [epoch, step]);
  }

  flushLoss(): Promise<StepResult | null> {
    return this.#call('flushLoss', []);
  }

  endEpoch(epoch: number, progress?: EvalProgress): Promise<Record<string, number>> {
    return this.#call('endEpoch', [epoch], progress);
  }

  saveState(): Promise<Uint8Array> {
    return this.#call('saveState', []);
  }

  loadState(state: Uint8Array): Promise<void> {
    return this.#call('loadState', [state]);
  }

  /** The evaluation; when `progress` throws (Ctrl-C), the thread stops at its next report and this rejects with that error. */
  evaluate(progress: EvalProgress): Promise<EvaluationResult> {
    return this.#call('evaluate', [], progress);
  }

  /** Disposes the trainer in its thread, which then ends. */
  dispose(): void {
    if (this.#exited !== null) return;
    this.#exited = new RangeError('trainer: it has been disposed');
    this.#worker.postMessage({ id: 0, method: 'dispose', args: [] });
  }
}

/** A TrainerFactory whose trainers run in worker threads (TrainerWorker). */
export function trainerInWorker(options: TrainerWorkerOptions = {}): TrainerFactory {
  return (setup) => TrainerWorker.create(setup, options);
}
