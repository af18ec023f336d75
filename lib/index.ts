// supcon: Supervised Contrastive Learning for Node.js.
export { supconLoss, supconForward, supconBackward, SupconForward, supconLossAsync, supconForwardAsync, sharedLabelWeights } from './loss';
export type {
  SupconOptions, SupconResult, FeaturesInput, LabelsInput, MaskInput, ContrastMode, Variant, Denominator, ContrastSet,
  SupconGradients,
} from './loss';
export { Tensor, tidy, keep, memory, emptyCache } from './tensor';
export type { DType, DeviceName, TypedArray, TensorOptions, MemoryInfo } from './tensor';
export { devices, backendInfo, setCpuKernels, cudaStatus } from './device';
export type { DeviceInfo, BackendInfo, DeviceRequest } from './device';
export {
  loadImageSet, loadFolder, readIdx, readIdxPair, parseIdx, encodeIdx, readCifar, DataFileError, takeImages, headImages,
  ensureFashionMnist, FASHION_MNIST_CLASSES, philox4x32, permutation, PhiloxStream, batches, batchCount, gatherBatch,
} from './data';
export type { ImageSet, IdxArray, Split, CifarOptions, LoadOptions, Batch, BatchOptions } from './data';
export { fashionMnistSource, DEBIAN_FASHION_MNIST_DIR } from './data/fashion-mnist';
export type { FashionMnistSource } from './data/fashion-mnist';
export { registerTrainer } from './cli/trainer';
export { TrainerWorker, trainerInWorker } from './cli/trainer-worker';
export type { TrainerWorkerOptions } from './cli/trainer-worker';
export type {
  Trainer, TrainerFactory, TrainerSetup, StepResult, EvaluationResult, Embeddings, EvalProgress,
} from './cli/trainer';
export { TRAIN_DEFAULTS } from './cli/args';
export type { TrainConfig, Method } from './cli/args';
export { knnAccuracy, knnPredict, knnNeighbours } from './metrics/knn';
export type { KnnOptions, LabelledEmbeddings, Neighbours } from './metrics/knn';
export * as nn from './nn/index';
export { gemm, fmaPeakGflops } from './gemm';
export type { GemmOptions } from './gemm';
export { augment, applyAugmentOps, drawAugmentOps, pipelines, CIFAR10_NORMALIZE, augmentAsync, applyAugmentOpsAsync } from './augment';
export type {
  AugmentPipeline, AugmentOp, AugmentOptions, AugmentOpsOptions, AugmentResult, AugmentArray, ImagesInput,
  RandomResizedCropSpec, ColorJitterSpec, RandAugmentSpec, AutoAugmentSpec, GaussianBlurSpec, SolarizeSpec,
  NormalizeSpec, Interpolation, Range,
} from './augment';
export { SupconTrainer, linearEvaluation, ConvNet, makeEncoder } from './train';
export type { Encoder, EncoderName } from './train';
