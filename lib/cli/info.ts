// `supcon info`: what this build and this machine offer.
import { backendInfo, BackendInfo } from '../device';

export function formatBackendInfo(info: BackendInfo, version: string): string {
  const lines = [
    `supcon ${version} (Node.js ${process.version}, N-API ${info.napiVersion}, ${process.platform}-${process.arch})`,
    `CPU kernels: ${info.cpuKernels} (this CPU supports: ${info.cpuKernelsAvailable.join(', ')}), ${info.cpuThreads} threads`,
    `CUDA build: ${info.cuda ? `yes${info.cudaArchitectures ? ` (architectures ${info.cudaArchitectures})` : ''}` : 'no'}`,
  ];
  if (info.cudaRuntimeVersion !== undefined) lines.push(`CUDA runtime: ${info.cudaRuntimeVersion}`);
  if (info.cudaDriverVersion !== undefined) lines.push(`CUDA driver: ${info.cudaDriverVersion}`);
  if (info.devices.length === 0) lines.push(`GPUs: none${info.noGpuReason ? ` (${info.noGpuReason})` : ''}`);
  for (const d of info.devices)
    lines.push(`GPU ${d.index}: ${d.name}, compute capability ${d.computeCapability}, ${(d.totalMemory / 2 ** 30).toFixed(1)} GiB, ${d.multiprocessors} SMs`);
  if (info.forcedDevice) lines.push(`SUPCON_DEVICE=${info.forcedDevice}`);
  return lines.join('\n');
}

export function runInfo(json: boolean, version: string): string {
  const info = backendInfo();
  return json ? JSON.stringify({ version, ...info }, null, 2) : formatBackendInfo(info, version);
}
