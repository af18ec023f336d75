// supcon: Supervised Contrastive Learning for Node.js.
export { supconLoss, supconForward, supconBackward, SupconForward } from './loss';
export type {
  SupconOptions, SupconResult, FeaturesInput, LabelsInput, MaskInput, ContrastMode, Variant, Denominator,
} from './loss';
export { Tensor, tidy, keep, memory } from './tensor';
export type { DType, DeviceName, TypedArray, TensorOptions, MemoryInfo } from './tensor';
export { devices, backendInfo, setCpuKernels } from './device';
export type { DeviceInfo, BackendInfo, DeviceRequest } from './device';
export { augment, applyAugmentOps, drawAugmentOps, philox4x32, pipelines, CIFAR10_NORMALIZE } from './augment';
export type {
  AugmentPipeline, AugmentOp, AugmentOptions, AugmentOpsOptions, AugmentResult, AugmentArray, ImagesInput,
  RandomResizedCropSpec, ColorJitterSpec, RandAugmentSpec, AutoAugmentSpec, GaussianBlurSpec, SolarizeSpec,
  NormalizeSpec, Interpolation, Range,
} from './augment';
