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
  /** Whether the CUDA kernels run here (a GPU, a driver, kernels for its architecture). */
  cudaUsable: boolean;
  cudaReason: string;
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
    cudaUsable: native.cudaStatus().usable,
    cudaReason: native.cudaStatus().reason,
  };
}

/**
 * Selects the CPU kernel set ('avx512', 'avx2', 'baseline'), for comparisons and tests; the
 * best one this CPU supports is chosen at load time (or by SUPCON_CPU_KERNELS).
 */
export function setCpuKernels(name: string): void {
  native.cpuKernels(name);
}

let announced = false;

/**
 * The device an operation runs on. 'auto' takes a working GPU (and says so once, on
 * stderr), else the CPU; 'cuda' throws when no GPU can be used (no device, no driver, or a
 * build without CUDA kernels); SUPCON_DEVICE=cpu forces the CPU.
 */
export function resolveDevice(request: unknown, name: string): 'cpu' | 'cuda' {
  const want = checkOneOf<DeviceRequest>(request ?? 'auto', ['auto', 'cpu', 'cuda'], name);
  const forced = process.env.SUPCON_DEVICE;
  if (forced !== undefined && forced !== '' && forced !== 'cpu' && forced !== 'auto' && forced !== 'cuda')
    throw new RangeError(`SUPCON_DEVICE: expected 'cpu', 'cuda' or 'auto', got '${forced}'`);
  if (want === 'cpu' || forced === 'cpu') return 'cpu';
  const status = native.cudaStatus();
  if (status.usable) {
    if (want === 'auto' && !announced) {
      announced = true;
      const d = devices()[0];
      process.stderr.write(`supcon: using CUDA device 0 (${d.name}, compute capability ${d.computeCapability})\n`);
    }
    return 'cuda';
  }
  if (want === 'cuda' || forced === 'cuda') throw new Error(`${name}: 'cuda' was asked for, but ${status.reason}`);
  return 'cpu';
}

/** Whether the CUDA kernels can run on this machine, and why not. */
export function cudaStatus(): { usable: boolean; reason: string } {
  return native.cudaStatus();
}
