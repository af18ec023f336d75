// Layers, models, optimizers and weights.
export { Variable, Parameter, noGrad, isGradEnabled, setNumThreads, setMatmulPrecision, matmulPrecision } from './autograd';
export type { MatmulPrecision } from './autograd';
export * as ops from './ops';
export type { VariableLike, Pair, Conv2dOptions, BatchNormOptions, MaxPool2dOptions, SupconLayerOptions, ClassLabels } from './ops';
export { Module } from './module';
export type { StateEntry, Counter } from './module';
export { SeedSequence, setDefaultSeed } from './init';
export {
  Linear, Conv2d, BatchNorm1d, BatchNorm2d, ReLU, MaxPool2d, GlobalAvgPool, Flatten, L2Normalize, Sequential,
} from './layers';
export type { LinearOptions, Conv2dLayerOptions, BatchNormLayerOptions } from './layers';
export {
  BasicBlock, Bottleneck, ResNet, resnet18, resnet34, resnet50, MLP, ProjectionHead, SupConModel,
} from './models';
export type { ResNetOptions, MlpOptions, ProjectionHeadOptions } from './models';
export { Optimizer, SGD, LARS, AdamW, RMSProp, warmupCosine, stepDecay } from './optim';
export type {
  SgdOptions, LarsOptions, AdamWOptions, RmspropOptions, WarmupCosineOptions, StepDecayOptions, OptimizerState,
} from './optim';
export {
  serializeSafetensors, parseSafetensors, moduleToSafetensors, saveSafetensors, loadSafetensors,
} from './safetensors';
export type { SafetensorsEntry, SafetensorsDType, ParsedSafetensors } from './safetensors';
