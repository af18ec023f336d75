#include <cuda_runtime.h>

#include <mutex>

#include "device_info.h"

namespace supcon::cuda {

const Discovery& discover() {
  static Discovery result;
  static std::once_flag once;
  std::call_once(once, [] {
    cudaRuntimeGetVersion(&result.runtimeVersion);
    if (cudaDriverGetVersion(&result.driverVersion) != cudaSuccess || result.driverVersion == 0) {
      result.driverVersion = 0;
      result.reason = "no CUDA driver is installed";
      return;
    }
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      result.reason = cudaGetErrorString(err);
      cudaGetLastError();  // clear the sticky-free error so later calls start clean
      return;
    }
    for (int i = 0; i < count; ++i) {
      cudaDeviceProp prop;
      if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
      result.devices.push_back(DeviceInfo{i, prop.name, prop.major, prop.minor,
                                          static_cast<uint64_t>(prop.totalGlobalMem),
                                          prop.multiProcessorCount});
    }
    if (result.devices.empty()) result.reason = "no CUDA-capable device was found";
  });
  return result;
}

}  // namespace supcon::cuda
