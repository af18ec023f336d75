// The training loop behind `supcon train`: SupCon or SimCLR pre-training of an encoder with
// a projection head, or the cross-entropy baseline on the same encoder; a kNN monitor each
// epoch; linear evaluation of the frozen encoder at the end. Every random choice is keyed
// by (seed, epoch, step or image index), so a run restored from saveState() continues as
// the uninterrupted run would.
import { describe, isPositiveInteger } from '../check';
import { augment, AugmentPipeline, pipelines } from '../augment';
import type { EvalProgress, EvaluationResult, StepResult, Trainer, TrainerSetup } from '../cli/trainer';
import { epochOrder, gatherBatch } from '../data/batches';
import { headImages, ImageSet } from '../data/image-set';
import { knnAccuracy, knnPredict } from '../metrics/knn';
import { MatmulPrecision, matmulPrecision, noGrad, setMatmulPrecision, Variable } from '../nn/autograd';
import { Linear } from '../nn/layers';
import { ProjectionHead } from '../nn/models';
import { Module } from '../nn/module';
import * as ops from '../nn/ops';
import { SGD, warmupCosine } from '../nn/optim';
import { loadSafetensors, moduleToSafetensors } from '../nn/safetensors';
import { writeFileAtomic } from '../io/atomic';
import path from 'node:path';
import { keep, Tensor, tidy } from '../tensor';
import { backendInfo, resolveDevice } from '../device';
import { Encoder, makeEncoder } from './encoders';
import { packParts, unpackParts, optimizerFromBytes, optimizerToBytes } from './state';
import { FeatureQueue } from './queue';

/** Images of a set, or a batch, as the augmentation input. */
function imagesOf(images: Uint8Array, shape: readonly number[]) {
  return { data: images, shape };
}

/** Per-channel mean and standard deviation of the pixels in [0, 1]. */
export function channelStats(set: ImageSet): { mean: number[]; std: number[] } {
  const [n, c, h, w] = set.shape;
  const plane = h * w;
  const mean: number[] = [], std: number[] = [];
  for (let ch = 0; ch < c; ch++) {
    let s = 0, ss = 0;
    for (let i = 0; i < n; i++) {
      const base = (i * c + ch) * plane;
      for (let p = 0; p < plane; p++) {
        const x = set.images[base + p] / 255;
        s += x;
        ss += x * x;
      }
    }
    const m = s / (n * plane);
    mean.push(m);
    std.push(Math.sqrt(Math.max(ss / (n * plane) - m * m, 1e-12)));
  }
  return { mean, std };
}

/** The training augmentation of a --augmentation name, for images of side `size`. */
export function trainingPipeline(name: string, size: readonly [number, number], normalize: { mean: number[]; std: number[] }): AugmentPipeline {
  switch (name) {
    case 'simclr': return pipelines.simAugment({ size, normalize });
    case 'randaugment': return pipelines.stackedRandAugment({ size, normalize });
    case 'basic': return { size, crop: { scale: [0.6, 1], ratio: [3 / 4, 4 / 3] }, flip: 0.5, normalize };
    default: return { size, normalize };
  }
}

const FEATURE_BATCH = 500;
/** The projection head's output: the features the loss (and the queue) sees. */
const PROJECTION_DIM = 128;
/** Test images per kNN search in the final evaluation (the search is per query, so chunks give the same result). */
const KNN_CHUNK = 500;

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** kNN accuracy of all test representations, searched a chunk at a time with progress. */
async function knnInChunks(
  train: { data: Float32Array; dim: number; labels: Int32Array }, test: { data: Float32Array; dim: number; labels: Int32Array },
  progress: EvalProgress, device: 'cpu' | 'cuda',
): Promise<number> {
  const n = test.labels.length, dim = test.dim;
  let right = 0;
  progress(0, n, 'kNN (k = 200)');
  for (let from = 0; from < n; from += KNN_CHUNK) {
    const to = Math.min(n, from + KNN_CHUNK);
    const predicted = knnPredict(train, { data: test.data.subarray(from * dim, to * dim), dim }, { device });
    for (let i = 0; i < predicted.length; i++) if (predicted[i] === test.labels[from + i]) right++;
    progress(to, n, 'kNN (k = 200)');
    await yieldToEventLoop();
  }
  return right / n;
}

export class SupconTrainer implements Trainer {
  readonly stepsPerEpoch: number;
  readonly #setup: TrainerSetup;
  readonly #encoder: Encoder;
  readonly #head: Module & { forward(x: Variable): Variable };
  readonly #model: Module;
  readonly #optimizer: SGD;
  readonly #schedule: (step: number) => number;
  readonly #pipeline: AugmentPipeline;
  readonly #evalPipeline: AugmentPipeline;
  #order: { epoch: number; order: Uint32Array } | null = null;
  /** Where the model and the steps run. */
  readonly device: 'cpu' | 'cuda';
  /** The layers' products (tf32 by default on a GPU; fp32 on the CPU). */
  readonly precision: MatmulPrecision;
  /** On CUDA: the training images, uploaded once (uint8); each step's augmentation reads its batch there. */
  readonly #deviceImages: Tensor<'uint8'> | null;
  /** --queue K: the projected features of the last K samples (both views), and the step it joins the loss. */
  readonly #queue: FeatureQueue | null;
  readonly #queueFrom: number;
  /** --loss-every k: the steps' loss scalars not read yet (on CUDA, on the device). */
  #pendingLosses: Tensor<'float32'>[] = [];
  readonly #lossEvery: number;

  constructor(setup: TrainerSetup) {
    if (setup === null || typeof setup !== 'object' || setup.config === null || typeof setup.config !== 'object' ||
        setup.train === null || typeof setup.train !== 'object' || !Array.isArray(setup.train.shape))
      throw new TypeError(`setup: expected { config, train, test, log }, got ${describe(setup)}`);
    this.#setup = setup;
    const { config, train } = setup;
    this.device = resolveDevice(config.device, 'device');
    const wanted = config.precision ?? 'auto';
    this.precision = wanted === 'auto' ? (this.device === 'cuda' ? 'tf32' : 'fp32') : wanted;
    if (this.device === 'cpu' && this.precision !== 'fp32')
      throw new RangeError(`precision: '${this.precision}' runs on GPU tensor cores; on the CPU the layers compute in fp32 (use --precision auto or fp32)`);
    const [n, c, h, w] = train.shape;
    this.stepsPerEpoch = Math.floor(n / config.batchSize);
    if (this.stepsPerEpoch < 1)
      throw new RangeError(`batch: ${config.batchSize} is more than the ${n} training images`);
    this.#encoder = makeEncoder(config.encoder, [c, h, w], config.seed);
    this.#head = config.method === 'ce'
      ? new Linear(this.#encoder.featureDim, train.numClasses, { seed: config.seed + 1 })
      : new ProjectionHead(this.#encoder.featureDim, { outDim: PROJECTION_DIM, seed: config.seed + 1 });
    const encoder = this.#encoder, head = this.#head;
    this.#model = new (class extends Module {
      constructor() {
        super();
        this.registerModule('encoder', encoder);
        this.registerModule('head', head);
      }
      forward(x: Variable): Variable {
        return head.forward(encoder.forward(x));
      }
    })();
    if (this.device === 'cuda') this.#model.to('cuda');
    this.#deviceImages = this.device === 'cuda' ? keep(Tensor.from(train.images, train.shape.slice(), { dtype: 'uint8', device: 'cuda' })) : null;
    // After the move: the optimizer's state lives with the parameters.
    this.#optimizer = new SGD(this.#model, { lr: config.lr, momentum: 0.9, weightDecay: 5e-4 });
    const totalSteps = config.epochs * this.stepsPerEpoch;
    this.#schedule = warmupCosine({ baseLr: config.lr, totalSteps: Math.max(totalSteps, 1), warmupSteps: Math.min(this.stepsPerEpoch, Math.floor(totalSteps / 10)) });
    const queue = config.queue ?? 0;
    if (queue > 0 && config.method === 'ce') throw new RangeError('queue: a memory queue applies to supcon and simclr, not to ce');
    this.#queue = queue > 0 ? new FeatureQueue(queue * 2, PROJECTION_DIM) : null;
    this.#queueFrom = config.queueWarmup ?? Math.ceil(queue / config.batchSize);
    const every = config.lossEvery ?? 1;
    if (!(Number.isSafeInteger(every) && every >= 1)) throw new RangeError(`lossEvery: expected an integer >= 1, got ${describe(every)}`);
    this.#lossEvery = every;
    const normalize = channelStats(train);
    this.#pipeline = trainingPipeline(config.augmentation, [h, w], normalize);
    this.#evalPipeline = { size: [h, w], normalize };
    const model = `the ${config.encoder} encoder (${this.#model.parameters().reduce((s, p) => s + p.size, 0).toLocaleString('en-US')} parameters)`;
    const gpu = backendInfo().devices[0];
    const where = this.device === 'cuda' ? `on CUDA device 0 (${gpu?.name ?? 'unknown'}, ${this.precision})` : 'on the CPU';
    setup.log(setup.purpose === 'evaluate'
      ? `evaluating ${where}: ${config.method} with ${model}, ${train.shape[0].toLocaleString('en-US')} training and ${setup.test.shape[0].toLocaleString('en-US')} test images`
      : `training ${where}: ${config.method} with ${model}, ${this.stepsPerEpoch} steps per epoch`);
  }

  #batch(epoch: number, step: number) {
    const { config, train } = this.#setup;
    if (this.#order === null || this.#order.epoch !== epoch)
      this.#order = { epoch, order: epochOrder(train.shape[0], { batchSize: config.batchSize, seed: config.seed, epoch }) };
    return gatherBatch(train, this.#order.order.subarray(step * config.batchSize, (step + 1) * config.batchSize));
  }

  step(epoch: number, step: number): StepResult {
    const { config } = this.#setup;
    const batch = this.#batch(epoch, step);
    const views = config.method === 'ce' ? 1 : 2;
    const lr = this.#schedule(epoch * this.stepsPerEpoch + step);
    this.#model.train();
    const loss = this.#inPrecision(() => tidy((): Tensor<'float32'> => {
      // The same Philox keys on both devices (the batch's dataset indices), so the same views.
      const indices = Int32Array.from(batch.indices);
      const x = (this.#deviceImages !== null
        ? augment(this.#deviceImages, this.#pipeline, { seed: config.seed, epoch, select: indices, views, device: 'cuda' })
        : augment(imagesOf(batch.images, batch.shape), this.#pipeline, { seed: config.seed, epoch, indices, views, output: 'tensor' })) as Tensor<'float32'>;
      const [n, v, c, h, w] = x.shape;
      const input = ops.reshape(x, [n * v, c, h, w]);
      this.#optimizer.zeroGrad();
      const out = this.#model.forward(input);
      const labels = config.method === 'supcon' ? batch.labels : null;
      const l = config.method === 'ce'
        ? ops.crossEntropy(out, batch.labels)
        : ops.supcon(out, labels, { views: 2, temperature: config.temperature, contrast: this.#contrast(epoch * this.stepsPerEpoch + step, labels) });
      l.backward();
      // The batch joins the queue after its own step (detached: no gradient flows into it).
      this.#queue?.push(out.value.dataSync(), Int32Array.from({ length: 2 * batch.labels.length }, (_, r) => batch.labels[r >> 1]));
      this.#optimizer.lr = lr;
      this.#optimizer.step();
      // The loss scalar, kept (on CUDA it stays on the device: reading it waits for the GPU).
      return l.value;
    }));
    this.#pendingLosses.push(loss);
    // Read every lossEvery steps, and at the end of each epoch.
    if (this.#pendingLosses.length < this.#lossEvery && step + 1 < this.stepsPerEpoch) return { loss: null, lr };
    return { ...this.#readLosses()!, lr };
  }

  flushLoss(): StepResult | null {
    return this.#readLosses();
  }

  /** The mean of the pending losses (and how many), read back at once; null if none. */
  #readLosses(): { loss: number; lossSteps?: number } | null {
    const pending = this.#pendingLosses;
    if (pending.length === 0) return null;
    this.#pendingLosses = [];
    let sum = 0;
    try {
      for (const t of pending) sum += t.dataSync()[0];
    } finally {
      for (const t of pending) t.dispose();
    }
    if (!Number.isFinite(sum))
      throw new RangeError('loss: the training loss is not finite (it overflowed float32); lower --lr or raise --temperature');
    return pending.length === 1 ? { loss: sum } : { loss: sum / pending.length, lossSteps: pending.length };
  }

  /** The batch's own rows and the queue, once the queue has joined (after its warm-up steps). */
  #contrast(globalStep: number, labels: Int32Array | null) {
    if (this.#queue === null || globalStep < this.#queueFrom || this.#queue.size === 0) return undefined;
    const { features, labels: queued } = this.#queue.contents();
    return { features, labels: labels === null ? null : queued, withAnchors: true, gradient: false };
  }

  /** fn with this run's precision for the layers' products (the setting is global). */
  #inPrecision<T>(fn: () => T): T {
    const previous = matmulPrecision();
    setMatmulPrecision(this.precision);
    try {
      return fn();
    } finally {
      setMatmulPrecision(previous);
    }
  }

  /** Encoder representations of a set (no augmentation, evaluation mode), [n, featureDim]. */
  features(set: ImageSet, progress?: (done: number) => void): Float32Array {
    const [n, c, h, w] = set.shape;
    const dim = this.#encoder.featureDim;
    const out = new Float32Array(n * dim);
    this.#model.eval();
    const stride = c * h * w;
    progress?.(0);
    for (let from = 0; from < n; from += FEATURE_BATCH) {
      const to = Math.min(n, from + FEATURE_BATCH);
      this.#inPrecision(() => tidy(() => noGrad(() => {
        const chunk = set.images.subarray(from * stride, to * stride);
        const images = this.device === 'cuda' ? Tensor.from(chunk, [to - from, c, h, w], { dtype: 'uint8', device: 'cuda' }) : imagesOf(chunk, [to - from, c, h, w]);
        const x = augment(images, this.#evalPipeline, { views: 1, output: 'tensor', device: this.device }) as Tensor<'float32'>;
        const f = this.#encoder.forward(ops.reshape(x, [to - from, c, h, w]));
        out.set(f.value.dataSync(), from * dim);
      })));
      progress?.(to);
    }
    return out;
  }

  /** The monitor after each epoch: kNN accuracy on subsets (10,000 training, 2,000 test images), with progress. */
  async endEpoch(_epoch: number, progress: EvalProgress = () => {}): Promise<Record<string, number>> {
    const { train, test } = this.#setup;
    const trainPart = headImages(train, 10_000), testPart = headImages(test, 2_000);
    const dim = this.#encoder.featureDim;
    const trainFeatures = await this.#featuresAsync(trainPart, 'kNN monitor: features (train)', progress);
    const testFeatures = await this.#featuresAsync(testPart, 'kNN monitor: features (test)', progress);
    return { knnAccuracy: knnAccuracy({ data: trainFeatures, dim, labels: trainPart.labels }, { data: testFeatures, dim, labels: testPart.labels }, { device: this.device }) };
  }

  saveState(): Uint8Array {
    const parts = [moduleToSafetensors(this.#model), optimizerToBytes(this.#optimizer.stateDict())];
    if (this.#queue !== null) parts.push(this.#queue.toBytes());
    return packParts(parts);
  }

  loadState(state: Uint8Array): void {
    const [model, optimizer, queue] = unpackParts(state, this.#queue !== null ? 3 : 2, ['model', 'optimizer', 'queue']);
    loadSafetensors(this.#model, model);
    this.#optimizer.loadStateDict(optimizerFromBytes(optimizer));
    if (queue !== undefined) this.#queue?.load(queue);
  }

  /**
   * The final evaluation: representations of all images, kNN accuracy and linear evaluation.
   * It reports each phase to `progress` and lets the event loop in between (so Ctrl-C is
   * seen within a fraction of a second; `progress` may throw to stop).
   */
  async evaluate(progress: EvalProgress): Promise<EvaluationResult> {
    const { config, train, test } = this.#setup;
    const dim = this.#encoder.featureDim;
    const trainFeatures = await this.#featuresAsync(train, 'features (train)', progress);
    const testFeatures = await this.#featuresAsync(test, 'features (test)', progress);
    const metrics: Record<string, number> = {
      knnAccuracy: await knnInChunks({ data: trainFeatures, dim, labels: train.labels }, { data: testFeatures, dim, labels: test.labels }, progress, this.device),
    };
    if (config.method === 'ce') metrics.classifierAccuracy = this.#classifierAccuracy(testFeatures, test.labels);
    const linear = linearEvaluationSteps(
      { data: trainFeatures, labels: train.labels }, { data: testFeatures, labels: test.labels },
      { dim, classes: train.numClasses, epochs: config.linearEpochs, seed: config.seed },
    );
    for (let r = linear.next(); ; r = linear.next()) {
      if (r.done) { metrics.testAccuracy = r.value; break; }
      progress(r.value, config.linearEpochs, 'linear evaluation');
      await yieldToEventLoop();
    }
    // The weights in safetensors with PyTorch's names ('encoder.*', 'head.*'), for use
    // outside this package; the checkpoint itself holds the optimizer state too.
    if (config.out !== '') writeFileAtomic(path.join(config.out, 'model.safetensors'), moduleToSafetensors(this.#model, { method: config.method, encoder: config.encoder }));
    return { metrics, embeddings: { data: testFeatures, dim, labels: test.labels } };
  }

  /** features() a batch at a time, with the event loop let in between. */
  async #featuresAsync(set: ImageSet, label: string, progress: EvalProgress): Promise<Float32Array> {
    const [n, c, h, w] = set.shape;
    const dim = this.#encoder.featureDim, stride = c * h * w;
    const out = new Float32Array(n * dim);
    progress(0, n, label);
    for (let from = 0; from < n; from += FEATURE_BATCH) {
      const to = Math.min(n, from + FEATURE_BATCH);
      const part: ImageSet = { ...set, images: set.images.subarray(from * stride, to * stride), shape: [to - from, c, h, w], labels: set.labels.subarray(from, to) };
      out.set(this.features(part), from * dim);
      progress(to, n, label);
      await yieldToEventLoop();
    }
    return out;
  }

  /** The cross-entropy model's own head on the test representations. */
  #classifierAccuracy(features: Float32Array, labels: Int32Array): number {
    const dim = this.#encoder.featureDim;
    return tidy(() => noGrad(() => {
      const logits = this.#head.forward(new Variable(Tensor.from(features, [labels.length, dim], { device: this.device }))).value.dataSync();
      return accuracyOf(logits, labels, logits.length / labels.length);
    }));
  }

  dispose(): void {
    for (const t of this.#pendingLosses) t.dispose();
    this.#pendingLosses = [];
    this.#optimizer.dispose();
    this.#model.dispose();
    this.#deviceImages?.dispose();
  }
}

function accuracyOf(logits: Float32Array, labels: Int32Array, classes: number): number {
  let right = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let k = 1; k < classes; k++) if (logits[i * classes + k] > logits[i * classes + best]) best = k;
    if (best === labels[i]) right++;
  }
  return right / labels.length;
}

/**
 * Linear evaluation: a linear classifier trained with cross-entropy on the frozen encoder's
 * representations (standardised with the training set's statistics), then its test
 * accuracy. The representations are computed once, without augmentation.
 */
export function linearEvaluation(
  train: { data: Float32Array; labels: Int32Array },
  test: { data: Float32Array; labels: Int32Array },
  o: { dim: number; classes: number; epochs: number; seed: number; batchSize?: number; lr?: number },
  progress?: (epoch: number) => void,
): number {
  const steps = linearEvaluationSteps(train, test, o);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    progress?.(r.value);
  }
}

/** linearEvaluation as a generator: it yields the number of epochs done, and returns the accuracy. */
export function* linearEvaluationSteps(
  train: { data: Float32Array; labels: Int32Array },
  test: { data: Float32Array; labels: Int32Array },
  o: { dim: number; classes: number; epochs: number; seed: number; batchSize?: number; lr?: number },
): Generator<number, number> {
  for (const [set, name] of [[train, 'train'], [test, 'test']] as const)
    if (set === null || typeof set !== 'object' || !(set.data instanceof Float32Array) || !(set.labels instanceof Int32Array))
      throw new TypeError(`${name}: expected { data: Float32Array, labels: Int32Array }, got ${describe(set)}`);
  if (o === null || typeof o !== 'object') throw new TypeError(`o: expected { dim, classes, epochs, seed }, got ${describe(o)}`);
  for (const key of ['dim', 'classes', 'epochs'] as const)
    if (!isPositiveInteger(o[key])) throw new RangeError(`o.${key}: expected a positive integer, got ${describe(o[key])}`);
  const { dim } = o;
  const n = train.labels.length;
  const mean = new Float64Array(dim), sq = new Float64Array(dim);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < dim; k++) {
      const x = train.data[i * dim + k];
      mean[k] += x;
      sq[k] += x * x;
    }
  const scale = new Float32Array(dim), shift = new Float32Array(dim);
  for (let k = 0; k < dim; k++) {
    const m = mean[k] / n;
    const s = Math.sqrt(Math.max(sq[k] / n - m * m, 1e-12));
    scale[k] = 1 / s;
    shift[k] = -m / s;
  }
  const standardise = (data: Float32Array) => {
    const out = new Float32Array(data.length);
    for (let i = 0; i < out.length; i++) out[i] = data[i] * scale[i % dim] + shift[i % dim];
    return out;
  };
  const xs = standardise(train.data), xt = standardise(test.data);
  const classifier = new Linear(dim, o.classes, { seed: o.seed + 7 });
  const batchSize = o.batchSize ?? 256;
  const steps = Math.max(1, Math.floor(n / batchSize));
  const optimizer = new SGD(classifier, { lr: o.lr ?? 0.1, momentum: 0.9, weightDecay: 1e-4 });
  const schedule = warmupCosine({ baseLr: o.lr ?? 0.1, totalSteps: Math.max(1, o.epochs * steps) });
  const xb = new Float32Array(batchSize * dim), yb = new Int32Array(batchSize);
  try {
    for (let epoch = 0; epoch < o.epochs; epoch++) {
      const order = epochOrder(n, { batchSize, seed: o.seed, epoch });
      for (let s = 0; s < steps; s++) {
        for (let i = 0; i < batchSize; i++) {
          const k = order[s * batchSize + i];
          xb.set(xs.subarray(k * dim, (k + 1) * dim), i * dim);
          yb[i] = train.labels[k];
        }
        tidy(() => {
          optimizer.zeroGrad();
          const loss = ops.crossEntropy(classifier.forward(Tensor.from(xb, [batchSize, dim])), yb);
          loss.backward();
          optimizer.lr = schedule(epoch * steps + s);
          optimizer.step();
        });
      }
      yield epoch + 1;
    }
    return tidy(() => noGrad(() => {
      const logits = classifier.forward(Tensor.from(xt, [test.labels.length, dim])).value.dataSync();
      return accuracyOf(logits, test.labels, o.classes);
    }));
  } finally {
    optimizer.dispose();
    classifier.dispose();
  }
}
