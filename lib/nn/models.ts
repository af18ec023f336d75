// Encoders (ResNet-18/34/50 as torchvision's, with an optional small-image stem; an MLP)
// and the SupCon projection head. Parameter names match the PyTorch modules.
import { describe, isPositiveInteger, plainArray } from '../check';
import { Variable } from './autograd';
import { normalInPlace, SeedSequence, seedsFrom } from './init';
import { BatchNorm1d, BatchNorm2d, Conv2d, GlobalAvgPool, L2Normalize, Linear, MaxPool2d, ReLU, Sequential } from './layers';
import { Module } from './module';
import * as ops from './ops';
import { VariableLike } from './ops';

function conv(inC: number, outC: number, k: number, stride: number, seeds: SeedSequence): Conv2d {
  return new Conv2d(inC, outC, k, { stride, padding: (k - 1) >> 1, bias: false, seed: seeds });
}

/** Two 3x3 convolutions and a shortcut (ResNet-18/34). */
export class BasicBlock extends Module {
  static readonly expansion = 1;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly downsample: Sequential | null;
  constructor(inPlanes: number, planes: number, stride: number, seeds: SeedSequence) {
    super();
    this.conv1 = this.registerModule('conv1', conv(inPlanes, planes, 3, stride, seeds));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.conv2 = this.registerModule('conv2', conv(planes, planes, 3, 1, seeds));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    this.downsample = stride !== 1 || inPlanes !== planes
      ? this.registerModule('downsample', new Sequential(conv(inPlanes, planes, 1, stride, seeds), new BatchNorm2d(planes)))
      : null;
  }
  forward(x: VariableLike): Variable {
    const v = ops.asVariable(x, 'x');
    let out = this.bn1.forwardRelu(this.conv1.forward(v));
    out = this.bn2.forward(this.conv2.forward(out));
    const identity = this.downsample === null ? v : this.downsample.forward(v);
    return ops.relu(ops.add(out, identity));
  }
}

/** 1x1, 3x3 (strided), 1x1 convolutions with 4x expansion and a shortcut (ResNet-50). */
export class Bottleneck extends Module {
  static readonly expansion = 4;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly downsample: Sequential | null;
  constructor(inPlanes: number, planes: number, stride: number, seeds: SeedSequence) {
    super();
    const outPlanes = planes * Bottleneck.expansion;
    this.conv1 = this.registerModule('conv1', conv(inPlanes, planes, 1, 1, seeds));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.conv2 = this.registerModule('conv2', conv(planes, planes, 3, stride, seeds));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    this.conv3 = this.registerModule('conv3', conv(planes, outPlanes, 1, 1, seeds));
    this.bn3 = this.registerModule('bn3', new BatchNorm2d(outPlanes));
    this.downsample = stride !== 1 || inPlanes !== outPlanes
      ? this.registerModule('downsample', new Sequential(conv(inPlanes, outPlanes, 1, stride, seeds), new BatchNorm2d(outPlanes)))
      : null;
  }
  forward(x: VariableLike): Variable {
    const v = ops.asVariable(x, 'x');
    let out = this.bn1.forwardRelu(this.conv1.forward(v));
    out = this.bn2.forwardRelu(this.conv2.forward(out));
    out = this.bn3.forward(this.conv3.forward(out));
    const identity = this.downsample === null ? v : this.downsample.forward(v);
    return ops.relu(ops.add(out, identity));
  }
}

export interface ResNetOptions {
  /** 'basic' (ResNet-18/34) or 'bottleneck' (ResNet-50). */
  block: 'basic' | 'bottleneck';
  /** Blocks per stage, e.g. [2, 2, 2, 2]. */
  layers: readonly [number, number, number, number];
  /** Input channels. Default 3. */
  inChannels?: number;
  /** Small images (CIFAR): a 3x3 stride-1 stem and no max-pool. Default false (7x7 stride 2 + max-pool). */
  smallImages?: boolean;
  /** Adds the classifier `fc`; without it the network is an encoder returning [N, featureDim]. */
  numClasses?: number;
  /** Zero the last BN weight of each block (torchvision's zero_init_residual). Default false. */
  zeroInitResidual?: boolean;
  seed?: number | SeedSequence;
}

/**
 * ResNet as torchvision's (v1.5: the stride in the 3x3 convolution). Convolutions are
 * initialised kaiming-normal (fan_out, ReLU gain), BatchNorm weight 1 and bias 0, fc as
 * PyTorch's Linear.
 */
export class ResNet extends Module {
  readonly featureDim: number;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly maxpool: MaxPool2d | null;
  readonly stages: Sequential[];
  readonly avgpool = new GlobalAvgPool();
  readonly fc: Linear | null;
  constructor(options: ResNetOptions) {
    super();
    if (options === null || typeof options !== 'object') throw new TypeError(`options: expected an object, got ${describe(options)}`);
    if (options.block !== 'basic' && options.block !== 'bottleneck')
      throw new RangeError(`options.block: expected 'basic' or 'bottleneck', got ${describe(options.block)}`);
    const layers = options.layers;
    if (!Array.isArray(layers) || layers.length !== 4 || !layers.every((n) => isPositiveInteger(n)))
      throw new RangeError(`options.layers: expected four positive block counts, got ${describe(layers)}`);
    const inChannels = options.inChannels ?? 3;
    if (!isPositiveInteger(inChannels)) throw new RangeError(`options.inChannels: expected a positive integer, got ${describe(inChannels)}`);
    const seeds = seedsFrom(options.seed, 'options.seed');
    const Block = options.block === 'basic' ? BasicBlock : Bottleneck;
    const small = options.smallImages ?? false;
    this.conv1 = this.registerModule('conv1', small
      ? new Conv2d(inChannels, 64, 3, { stride: 1, padding: 1, bias: false, seed: seeds })
      : new Conv2d(inChannels, 64, 7, { stride: 2, padding: 3, bias: false, seed: seeds }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(64));
    this.maxpool = small ? null : new MaxPool2d(3, 2, 1);
    let inPlanes = 64;
    this.stages = [64, 128, 256, 512].map((planes, s) => {
      const blocks: Module[] = [];
      for (let b = 0; b < layers[s]; b++) {
        blocks.push(new Block(inPlanes, planes, b === 0 && s > 0 ? 2 : 1, seeds));
        inPlanes = planes * Block.expansion;
      }
      return this.registerModule(`layer${s + 1}`, new Sequential(...blocks));
    });
    this.featureDim = 512 * Block.expansion;
    if (options.numClasses !== undefined && !isPositiveInteger(options.numClasses))
      throw new RangeError(`options.numClasses: expected a positive integer, got ${describe(options.numClasses)}`);
    this.fc = options.numClasses === undefined ? null : this.registerModule('fc', new Linear(this.featureDim, options.numClasses, { seed: seeds }));
    // torchvision: kaiming_normal_(mode='fan_out', nonlinearity='relu') for every conv.
    for (const [name, p] of this.namedParameters()) {
      if (p.shape.length === 4 && name.endsWith('weight')) {
        const [K, , R, S] = p.shape;
        normalInPlace(p.value, Math.sqrt(2 / (K * R * S)), seeds);
      }
    }
    if (options.zeroInitResidual) {
      for (const stage of this.stages)
        for (const block of stage.layers) {
          const bn = block instanceof Bottleneck ? block.bn3 : (block as BasicBlock).bn2;
          bn.weight.value.storage.write(new Float32Array(bn.numFeatures), 0);
        }
    }
  }
  forward(x: VariableLike): Variable {
    let v = this.bn1.forwardRelu(this.conv1.forward(x));
    if (this.maxpool !== null) v = this.maxpool.forward(v);
    for (const stage of this.stages) v = stage.forward(v);
    v = this.avgpool.forward(v);
    return this.fc === null ? v : this.fc.forward(v);
  }
}

type ResNetVariant = Omit<ResNetOptions, 'block' | 'layers'>;
export const resnet18 = (o: ResNetVariant = {}) => new ResNet({ ...o, block: 'basic', layers: [2, 2, 2, 2] });
export const resnet34 = (o: ResNetVariant = {}) => new ResNet({ ...o, block: 'basic', layers: [3, 4, 6, 3] });
export const resnet50 = (o: ResNetVariant = {}) => new ResNet({ ...o, block: 'bottleneck', layers: [3, 4, 6, 3] });

export interface MlpOptions {
  /** BatchNorm1d after each hidden Linear. Default true. */
  batchNorm?: boolean;
  seed?: number | SeedSequence;
}

/**
 * Linear (+ BatchNorm1d) + ReLU per hidden width, then a final Linear to `outputDim`: a
 * PyTorch nn.Sequential of the same layers has the same names ('0.weight', ...).
 */
export class MLP extends Sequential {
  readonly featureDim: number;
  constructor(inputDim: number, hiddenDims: readonly number[], outputDim: number, options: MlpOptions = {}) {
    const dims = plainArray(hiddenDims, 'hiddenDims', 1024);
    if (!dims.every((h) => isPositiveInteger(h)))
      throw new RangeError(`hiddenDims: expected an array of positive integers, got ${describe(hiddenDims)}`);
    const seeds = seedsFrom(options.seed, 'options.seed');
    const layers: Module[] = [];
    let d = inputDim;
    for (const h of dims as number[]) {
      layers.push(new Linear(d, h, { seed: seeds }));
      if (options.batchNorm ?? true) layers.push(new BatchNorm1d(h));
      layers.push(new ReLU());
      d = h;
    }
    layers.push(new Linear(d, outputDim, { seed: seeds }));
    super(...layers);
    this.featureDim = outputDim;
  }
}

export interface ProjectionHeadOptions {
  hiddenDim?: number;
  /** Default 128. */
  outDim?: number;
  seed?: number | SeedSequence;
}

/** Linear -> ReLU -> Linear -> L2-normalise (SupCon's 'mlp' head); names '0.*', '2.*'. */
export class ProjectionHead extends Sequential {
  constructor(dimIn: number, options: ProjectionHeadOptions = {}) {
    const seeds = seedsFrom(options.seed, 'options.seed');
    const hidden = options.hiddenDim ?? dimIn;
    super(new Linear(dimIn, hidden, { seed: seeds }), new ReLU(), new Linear(hidden, options.outDim ?? 128, { seed: seeds }), new L2Normalize());
  }
}

/** An encoder and a projection head: forward gives normalised projections; names 'encoder.*', 'head.*'. */
export class SupConModel extends Module {
  constructor(readonly encoder: Module & { featureDim: number }, readonly head: Module) {
    super();
    this.registerModule('encoder', encoder);
    this.registerModule('head', head);
  }
  forward(x: VariableLike): Variable {
    return this.head.forward(this.encoder.forward(x));
  }
}
