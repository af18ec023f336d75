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
import { knnAccuracy } from '../metrics/knn';
import { noGrad, Variable } from '../nn/autograd';
import { Linear } from '../nn/layers';
import { ProjectionHead } from '../nn/models';
import { Module } from '../nn/module';
import * as ops from '../nn/ops';
import { SGD, warmupCosine } from '../nn/optim';
import { loadSafetensors, moduleToSafetensors } from '../nn/safetensors';
import { writeFileAtomic } from '../io/atomic';
import path from 'node:path';
import { Tensor, tidy } from '../tensor';
import { Encoder, makeEncoder } from './encoders';
import { packParts, unpackParts, optimizerFromBytes, optimizerToBytes } from './state';

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

  constructor(setup: TrainerSetup) {
    if (setup === null || typeof setup !== 'object' || setup.config === null || typeof setup.config !== 'object' ||
        setup.train === null || typeof setup.train !== 'object' || !Array.isArray(setup.train.shape))
      throw new TypeError(`setup: expected { config, train, test, log }, got ${describe(setup)}`);
    this.#setup = setup;
    const { config, train } = setup;
    if (config.device === 'cuda')
      throw new RangeError("device: 'cuda' needs CUDA versions of the layers, which this version does not have yet; use --device cpu (or auto)");
    const [n, c, h, w] = train.shape;
    this.stepsPerEpoch = Math.floor(n / config.batchSize);
    if (this.stepsPerEpoch < 1)
      throw new RangeError(`batch: ${config.batchSize} is more than the ${n} training images`);
    this.#encoder = makeEncoder(config.encoder, [c, h, w], config.seed);
    this.#head = config.method === 'ce'
      ? new Linear(this.#encoder.featureDim, train.numClasses, { seed: config.seed + 1 })
      : new ProjectionHead(this.#encoder.featureDim, { outDim: 128, seed: config.seed + 1 });
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
    this.#optimizer = new SGD(this.#model, { lr: config.lr, momentum: 0.9, weightDecay: 5e-4 });
    const totalSteps = config.epochs * this.stepsPerEpoch;
    this.#schedule = warmupCosine({ baseLr: config.lr, totalSteps: Math.max(totalSteps, 1), warmupSteps: Math.min(this.stepsPerEpoch, Math.floor(totalSteps / 10)) });
    const normalize = channelStats(train);
    this.#pipeline = trainingPipeline(config.augmentation, [h, w], normalize);
    this.#evalPipeline = { size: [h, w], normalize };
    setup.log(`training on the CPU: ${config.method} with the ${config.encoder} encoder (${this.#model.parameters().reduce((s, p) => s + p.size, 0)} parameters), ${this.stepsPerEpoch} steps per epoch`);
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
    const loss = tidy(() => {
      const x = augment(imagesOf(batch.images, batch.shape), this.#pipeline, {
        seed: config.seed, epoch, indices: Int32Array.from(batch.indices), views, output: 'tensor',
      }) as Tensor<'float32'>;
      const [n, v, c, h, w] = x.shape;
      const input = ops.reshape(x, [n * v, c, h, w]);
      this.#optimizer.zeroGrad();
      const out = this.#model.forward(input);
      const l = config.method === 'ce'
        ? ops.crossEntropy(out, batch.labels)
        : ops.supcon(out, config.method === 'supcon' ? batch.labels : null, { views: 2, temperature: config.temperature });
      l.backward();
      this.#optimizer.lr = lr;
      this.#optimizer.step();
      return l.item();
    });
    return { loss, lr };
  }

  /** Encoder representations of a set (no augmentation, evaluation mode), [n, featureDim]. */
  features(set: ImageSet, progress?: (done: number) => void): Float32Array {
    const [n, c, h, w] = set.shape;
    const dim = this.#encoder.featureDim;
    const out = new Float32Array(n * dim);
    this.#model.eval();
    const stride = c * h * w;
    for (let from = 0; from < n; from += FEATURE_BATCH) {
      const to = Math.min(n, from + FEATURE_BATCH);
      tidy(() => noGrad(() => {
        const x = augment(imagesOf(set.images.subarray(from * stride, to * stride), [to - from, c, h, w]), this.#evalPipeline, {
          views: 1, output: 'tensor',
        }) as Tensor<'float32'>;
        const f = this.#encoder.forward(ops.reshape(x, [to - from, c, h, w]));
        out.set(f.value.dataSync(), from * dim);
      }));
      progress?.(to);
    }
    return out;
  }

  endEpoch(): Record<string, number> {
    // A cheap monitor: kNN accuracy of the encoder's representations on subsets.
    const { train, test } = this.#setup;
    const trainPart = headImages(train, 10_000), testPart = headImages(test, 2_000);
    const dim = this.#encoder.featureDim;
    return {
      knnAccuracy: knnAccuracy(
        { data: this.features(trainPart), dim, labels: trainPart.labels },
        { data: this.features(testPart), dim, labels: testPart.labels },
      ),
    };
  }

  saveState(): Uint8Array {
    return packParts([moduleToSafetensors(this.#model), optimizerToBytes(this.#optimizer.stateDict())]);
  }

  loadState(state: Uint8Array): void {
    const [model, optimizer] = unpackParts(state, 2, ['model', 'optimizer']);
    loadSafetensors(this.#model, model);
    this.#optimizer.loadStateDict(optimizerFromBytes(optimizer));
  }

  evaluate(progress: EvalProgress): EvaluationResult {
    const { config, train, test } = this.#setup;
    const dim = this.#encoder.featureDim;
    const trainFeatures = this.features(train, (d) => progress(d, train.shape[0], 'features (train)'));
    const testFeatures = this.features(test, (d) => progress(d, test.shape[0], 'features (test)'));
    const metrics: Record<string, number> = {
      knnAccuracy: knnAccuracy({ data: trainFeatures, dim, labels: train.labels }, { data: testFeatures, dim, labels: test.labels }),
    };
    if (config.method === 'ce') metrics.classifierAccuracy = this.#classifierAccuracy(testFeatures, test.labels);
    metrics.testAccuracy = linearEvaluation(
      { data: trainFeatures, labels: train.labels }, { data: testFeatures, labels: test.labels },
      { dim, classes: train.numClasses, epochs: config.linearEpochs, seed: config.seed },
      (e) => progress(e, config.linearEpochs, 'linear evaluation'),
    );
    // The weights in safetensors with PyTorch's names ('encoder.*', 'head.*'), for use
    // outside this package; the checkpoint itself holds the optimizer state too.
    if (config.out !== '') writeFileAtomic(path.join(config.out, 'model.safetensors'), moduleToSafetensors(this.#model, { method: config.method, encoder: config.encoder }));
    return { metrics, embeddings: { data: testFeatures, dim, labels: test.labels } };
  }

  /** The cross-entropy model's own head on the test representations. */
  #classifierAccuracy(features: Float32Array, labels: Int32Array): number {
    const dim = this.#encoder.featureDim;
    return tidy(() => noGrad(() => {
      const logits = this.#head.forward(new Variable(Tensor.from(features, [labels.length, dim]))).value.dataSync();
      return accuracyOf(logits, labels, logits.length / labels.length);
    }));
  }

  dispose(): void {
    this.#optimizer.dispose();
    this.#model.dispose();
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
      progress?.(epoch + 1);
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
