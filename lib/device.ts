// Which device runs the work: 'auto' picks a working NVIDIA GPU when the build has CUDA
// kernels for the operation, else the CPU. SUPCON_DEVICE=cpu forces the CPU.
import { checkOneOf } from './check';
import { native, NativeBuildInfo, NativeDeviceInfo } from './native';

export type DeviceRequest = 'auto' | 'cpu' | 'cuda';

export interface DeviceInfo extends NativeDeviceInfo {}

/** The CUDA devices this process can use (empty without a GPU, a driver or a CUDA build). */
export function devices(): DeviceInfo[] {
  return native.devices();
}

export interface BackendInfo extends NativeBuildInfo {
  /** CPU kernel set in use ('avx512', 'avx2' or 'baseline') and the ones this CPU supports. */
  cpuKernels: string;
  cpuKernelsAvailable: string[];
  cpuThreads: number;
  devices: DeviceInfo[];
  /** Set when SUPCON_DEVICE forces a device. */
  forcedDevice: string | null;
}

/** What this build and this machine offer: the diagnostic behind `supcon info`. */
export function backendInfo(): BackendInfo {
  const cpu = native.cpuKernels();
  return {
    ...native.buildInfo(),
    cpuKernels: cpu.active,
    cpuKernelsAvailable: cpu.available,
    cpuThreads: cpu.threads,
    devices: devices(),
    forcedDevice: process.env.SUPCON_DEVICE ?? null,
  };
}

/**
 * Selects the CPU kernel set ('avx512', 'avx2', 'baseline'), for comparisons and tests; the
 * best one this CPU supports is chosen at load time (or by SUPCON_CPU_KERNELS).
 */
export function setCpuKernels(name: string): void {
  native.cpuKernels(name);
}

/**
 * The device an operation runs on. `cudaSupported` says whether that operation has CUDA
 * kernels in this version.
 */
export function resolveDevice(request: unknown, name: string, cudaSupported: boolean): 'cpu' | 'cuda' {
  const want = checkOneOf<DeviceRequest>(request ?? 'auto', ['auto', 'cpu', 'cuda'], name);
  const forced = process.env.SUPCON_DEVICE;
  if (forced !== undefined && forced !== '' && forced !== 'cpu' && forced !== 'auto' && forced !== 'cuda')
    throw new RangeError(`SUPCON_DEVICE: expected 'cpu', 'cuda' or 'auto', got '${forced}'`);
  if (want === 'cpu' || forced === 'cpu') return 'cpu';
  const reason = !cudaSupported
    ? 'this operation has no CUDA kernels yet'
    : devices().length === 0
      ? native.buildInfo().noGpuReason
      : '';
  if (reason === '') return 'cuda';
  if (want === 'cuda' || forced === 'cuda') throw new Error(`${name}: 'cuda' was asked for, but ${reason}`);
  return 'cpu';
}
