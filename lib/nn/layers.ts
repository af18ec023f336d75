// Layers: modules around the ops, with PyTorch's parameter names and default
// initialisation (seeded).
import { describe, isPositiveInteger, optionsObject } from '../check';
import { Tensor } from '../tensor';
import { Parameter, Variable } from './autograd';
import { constant, SeedSequence, seedsFrom, uniform } from './init';
import { Counter, Module } from './module';
import * as ops from './ops';
import { Pair, VariableLike } from './ops';

function requireCount(x: unknown, name: string): number {
  if (!isPositiveInteger(x)) throw new RangeError(`${name}: expected a positive integer, got ${describe(x)}`);
  return x;
}

export interface LinearOptions {
  bias?: boolean;
  seed?: number | SeedSequence;
}

/** y = x W^T + b. Initialised as PyTorch: W, b ~ U(-1/sqrt(in), 1/sqrt(in)). */
export class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, options: LinearOptions = {}) {
    super();
    options = optionsObject(options, 'options');
    requireCount(inFeatures, 'inFeatures');
    requireCount(outFeatures, 'outFeatures');
    const seeds = seedsFrom(options.seed, 'options.seed');
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = this.registerParameter('weight', new Parameter(uniform([outFeatures, inFeatures], bound, seeds)));
    this.bias = options.bias === false ? null : this.registerParameter('bias', new Parameter(uniform([outFeatures], bound, seeds)));
  }
  forward(x: VariableLike): Variable {
    return ops.linear(x, this.weight, this.bias);
  }
}

export interface Conv2dLayerOptions {
  stride?: Pair;
  padding?: Pair;
  bias?: boolean;
  seed?: number | SeedSequence;
}

/** 2-d convolution. Initialised as PyTorch: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C kH kW. */
export class Conv2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly kernelSize: [number, number];
  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: Pair, options: Conv2dLayerOptions = {}) {
    super();
    options = optionsObject(options, 'options');
    requireCount(inChannels, 'inChannels');
    requireCount(outChannels, 'outChannels');
    this.kernelSize = ops.pair(kernelSize, 'kernelSize', 1);
    this.stride = ops.pair(options.stride ?? 1, 'options.stride', 1);
    this.padding = ops.pair(options.padding ?? 0, 'options.padding', 0);
    const [R, S] = this.kernelSize;
    if (this.padding[0] >= R || this.padding[1] >= S)
      throw new RangeError(`options.padding: expected less than the kernel size [${R}, ${S}], got [${this.padding.join(', ')}]`);
    const seeds = seedsFrom(options.seed, 'options.seed');
    const bound = 1 / Math.sqrt(inChannels * R * S);
    this.weight = this.registerParameter('weight', new Parameter(uniform([outChannels, inChannels, R, S], bound, seeds)));
    this.bias = options.bias === false ? null : this.registerParameter('bias', new Parameter(uniform([outChannels], bound, seeds)));
  }
  forward(x: VariableLike): Variable {
    return ops.conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding });
  }
}

export interface BatchNormLayerOptions {
  eps?: number;
  momentum?: number;
}

abstract class BatchNormBase extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  readonly runningMean: Tensor<'float32'>;
  readonly runningVar: Tensor<'float32'>;
  readonly numBatchesTracked: Counter;
  readonly eps: number;
  readonly momentum: number;
  protected abstract readonly ranks: number[];
  constructor(readonly numFeatures: number, options: BatchNormLayerOptions = {}) {
    super();
    options = optionsObject(options, 'options');
    requireCount(numFeatures, 'numFeatures');
    this.eps = options.eps ?? 1e-5;
    this.momentum = options.momentum ?? 0.1;
    this.weight = this.registerParameter('weight', new Parameter(constant([numFeatures], 1)));
    this.bias = this.registerParameter('bias', new Parameter(constant([numFeatures], 0)));
    this.runningMean = this.registerBuffer('running_mean', constant([numFeatures], 0));
    this.runningVar = this.registerBuffer('running_var', constant([numFeatures], 1));
    this.numBatchesTracked = this.registerBuffer('num_batches_tracked', { value: 0 });
  }
  forward(x: VariableLike): Variable {
    return this.normalize(x, false);
  }
  /** relu(forward(x)) in one fused op (ops.batchNorm's `relu`): what Sequential and the ResNet blocks call. */
  forwardRelu(x: VariableLike): Variable {
    return this.normalize(x, true);
  }
  private normalize(x: VariableLike, relu: boolean): Variable {
    const v = ops.asVariable(x, 'x');
    if (!this.ranks.includes(v.shape.length))
      throw new RangeError(`x: expected ${this.constructor.name} input of rank ${this.ranks.join(' or ')}, got shape [${v.shape.join(', ')}]`);
    const y = ops.batchNorm(v, this.weight, this.bias, this.runningMean, this.runningVar, {
      training: this.training, momentum: this.momentum, eps: this.eps, relu,
    });
    if (this.training) this.numBatchesTracked.value++;
    return y;
  }
}

/** Batch normalisation over [N, C] or [N, C, L]. */
export class BatchNorm1d extends BatchNormBase {
  protected readonly ranks = [2, 3];
}

/** Batch normalisation over [N, C, H, W]. */
export class BatchNorm2d extends BatchNormBase {
  protected readonly ranks = [4];
}

export class ReLU extends Module {
  forward(x: VariableLike): Variable {
    return ops.relu(x);
  }
}

export class MaxPool2d extends Module {
  constructor(readonly kernelSize: Pair, readonly stride?: Pair, readonly padding: Pair = 0) {
    super();
    ops.pair(kernelSize, 'kernelSize', 1);
  }
  forward(x: VariableLike): Variable {
    return ops.maxPool2d(x, { kernelSize: this.kernelSize, stride: this.stride, padding: this.padding });
  }
}

/** [N, C, H, W] -> [N, C]: PyTorch's AdaptiveAvgPool2d(1) followed by flatten. */
export class GlobalAvgPool extends Module {
  forward(x: VariableLike): Variable {
    return ops.globalAvgPool(x);
  }
}

export class Flatten extends Module {
  forward(x: VariableLike): Variable {
    return ops.flatten(x);
  }
}

export class L2Normalize extends Module {
  constructor(readonly eps = 1e-12) {
    super();
  }
  forward(x: VariableLike): Variable {
    return ops.l2Normalize(x, this.eps);
  }
}

/** Modules applied in order; children are named '0', '1', ... as in PyTorch. */
export class Sequential extends Module {
  readonly layers: readonly Module[];
  constructor(...layers: Module[]) {
    super();
    layers.forEach((m, i) => this.registerModule(String(i), m));
    this.layers = layers;
  }
  forward(x: VariableLike): Variable {
    let v = ops.asVariable(x, 'x');
    for (let i = 0; i < this.layers.length; i++) {
      const m = this.layers[i];
      // A batch norm followed by a ReLU runs as one fused op (the same bits, one pass fewer).
      if (m instanceof BatchNormBase && this.layers[i + 1] instanceof ReLU) {
        v = m.forwardRelu(v);
        i++;
      } else {
        v = m.forward(v);
      }
    }
    return v;
  }
}
