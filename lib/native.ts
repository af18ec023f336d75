// The native addon: loaded once, from prebuilds/<platform>-<arch>/ or a local build.
import path from 'node:path';
import load = require('node-gyp-build');

export interface NativeStorage {
  readonly bytes: number;
  readonly disposed: boolean;
  write(data: ArrayBufferView, byteOffset: number): void;
  read(out: ArrayBufferView, byteOffset: number): void;
  dispose(): void;
}

export interface NativeLossContext {
  readonly loss: number;
  readonly bytes: number;
  readonly disposed: boolean;
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
  Storage: new (bytes: number) => NativeStorage;
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
    options?: { threads?: number },
  ): void;
  cpuKernels(select?: string): { active: string; available: string[]; threads: number };
  devices(): NativeDeviceInfo[];
  buildInfo(): NativeBuildInfo;
  memory(): { cpuBytes: number; cpuStorages: number };
  knnTopK(
    train: Float32Array, nTrain: number, test: Float32Array, nTest: number, d: number, k: number,
    options?: { threads?: number },
  ): { index: Int32Array; similarity: Float32Array };
}

export const native = load(path.join(__dirname, '..', '..')) as NativeAddon;
