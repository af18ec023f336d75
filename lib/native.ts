// The native addon: loaded once, from prebuilds/<platform>-<arch>/ or a local build.
import path from 'node:path';
import load = require('node-gyp-build');

export interface NativeStorage {
  readonly bytes: number;
  readonly disposed: boolean;
  readonly device: 'cpu' | 'cuda';
  write(data: ArrayBufferView, byteOffset: number): void;
  read(out: ArrayBufferView, byteOffset: number): void;
  dispose(): void;
}

export interface NativeLossContext {
  readonly loss: number;
  readonly bytes: number;
  readonly disposed: boolean;
  readonly device: 'cpu' | 'cuda';
  dispose(): void;
}

export interface NativeLossOptions {
  temperature: number;
  baseTemperature: number;
  contrastMode: string;
  variant: string;
  denominator: string;
  normalize: boolean;
  excludeAnchorsWithoutPositives: boolean;
  threads?: number;
  device?: 'cpu' | 'cuda';
  precision?: 'fp32' | 'tf32' | 'bf16';
}

export interface NativeDeviceInfo {
  index: number;
  name: string;
  computeCapability: string;
  totalMemory: number;
  multiprocessors: number;
}

export interface NativeBuildInfo {
  cuda: boolean;
  cudaRuntimeVersion?: number;
  cudaDriverVersion?: number;
  cudaArchitectures?: string;
  noGpuReason: string;
  napiVersion: number;
}

export interface NativeAddon {
  Storage: new (bytes: number, device?: 'cpu' | 'cuda') => NativeStorage;
  lossForward(
    features: Float32Array | NativeStorage,
    n: number,
    v: number,
    d: number,
    labels: Int32Array | null,
    mask: Uint8Array | null,
    options: NativeLossOptions,
  ): NativeLossContext;
  lossBackward(
    context: NativeLossContext,
    gradLoss: number,
    out: Float32Array | NativeStorage,
    options?: { threads?: number; outOffset?: number },
  ): void;
  cpuKernels(select?: string): { active: string; available: string[]; threads: number };
  devices(): NativeDeviceInfo[];
  buildInfo(): NativeBuildInfo;
  memory(): { cpuBytes: number; cpuStorages: number; cudaBytes: number; cudaCachedBytes: number };
  cudaStatus(): { usable: boolean; reason: string };
  emptyCache(): void;
  lossUnfused(
    features: Float32Array,
    n: number,
    v: number,
    d: number,
    labels: Int32Array | null,
    temperature: number,
    baseTemperature: number,
    out: Float32Array,
    threads?: number,
  ): number;
  measureCpuPeak(threads?: number, seconds?: number): { gflops: number; kernels: string; threads: number };
  cudaTimeLoss(
    features: NativeStorage,
    n: number,
    v: number,
    d: number,
    labels: Int32Array | null,
    options: Partial<NativeLossOptions>,
    grad: NativeStorage,
    repeats: number,
  ): { forwardMs: number[]; backwardMs: number[]; peakExtraBytes: number; loss: number };
  knnTopK(
    train: Float32Array, nTrain: number, test: Float32Array, nTest: number, d: number, k: number,
    options?: { threads?: number },
  ): { index: Int32Array; similarity: Float32Array };
}

export const native = load(path.join(__dirname, '..', '..')) as NativeAddon;
