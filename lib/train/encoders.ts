// Encoders by the names the command line takes. 'cnn' is the small convolutional network
// that makes the default run fit a laptop CPU; the ResNets come from nn.models.
import { describe, isPositiveInteger } from '../check';
import { Module } from '../nn/module';
import { BatchNorm1d, BatchNorm2d, Conv2d, Flatten, Linear, ReLU, Sequential } from '../nn/layers';
import { MLP, resnet18, resnet34, resnet50 } from '../nn/models';
import type { Variable } from '../nn/autograd';
import type { VariableLike } from '../nn/ops';
import { SeedSequence } from '../nn/init';

export type EncoderName = 'resnet18' | 'resnet34' | 'resnet50' | 'cnn' | 'mlp';

export type Encoder = Module & { readonly featureDim: number; forward(x: VariableLike): Variable };

/**
 * Three 3x3 convolutions (32, 64, 128 channels; the last two with stride 2), each followed
 * by BatchNorm and ReLU, then the flattened map through Linear + BatchNorm + ReLU to a
 * 256-d representation (the map keeps where things are, which a global average would
 * lose on 28 x 28 images): about 9 M multiply-adds per image, small enough for the
 * default run on a laptop CPU.
 */
export class ConvNet extends Sequential {
  readonly featureDim = 256;
  constructor(inChannels: number, side: readonly [number, number], seed: number) {
    const seeds = new SeedSequence(seed);
    const block = (cin: number, cout: number, stride: number): Module[] => [
      new Conv2d(cin, cout, 3, { stride, padding: 1, bias: false, seed: seeds }),
      new BatchNorm2d(cout),
      new ReLU(),
    ];
    const out = (x: number) => Math.floor((Math.floor((x - 1) / 2) + 1 - 1) / 2) + 1;
    super(
      ...block(inChannels, 32, 1), ...block(32, 64, 2), ...block(64, 128, 2), new Flatten(),
      new Linear(128 * out(side[0]) * out(side[1]), 256, { bias: false, seed: seeds }), new BatchNorm1d(256), new ReLU(),
    );
  }
}

/** A two-layer perceptron on the flattened pixels. */
export class PixelMlp extends Sequential {
  readonly featureDim = 256;
  constructor(inputDim: number, seed: number) {
    super(new Flatten(), new MLP(inputDim, [512], 256, { seed, batchNorm: true }));
  }
}

/** The encoder `name` for images [C, H, W]. */
export function makeEncoder(name: EncoderName, shape: readonly [number, number, number], seed: number): Encoder {
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((s) => isPositiveInteger(s)))
    throw new RangeError(`shape: expected [C, H, W] of positive integers, got ${describe(shape)}`);
  const [c, h, w] = shape;
  switch (name) {
    case 'cnn': return new ConvNet(c, [h, w], seed);
    case 'mlp': return new PixelMlp(c * h * w, seed);
    case 'resnet18': return resnet18({ smallImages: h <= 64, inChannels: c, seed });
    case 'resnet34': return resnet34({ smallImages: h <= 64, inChannels: c, seed });
    case 'resnet50': return resnet50({ smallImages: h <= 64, inChannels: c, seed });
    default: throw new RangeError(`name: expected one of 'cnn', 'mlp', 'resnet18', 'resnet34', 'resnet50', got ${describe(name)}`);
  }
}
