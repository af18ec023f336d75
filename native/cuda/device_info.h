// GPU discovery through the CUDA runtime (linked statically; the driver library is loaded
// at run time, so machines without a driver simply have no devices).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace supcon::cuda {

struct DeviceInfo {
  int index;
  std::string name;
  int computeMajor, computeMinor;
  uint64_t totalMemory;
  int multiprocessors;
};

struct Discovery {
  std::vector<DeviceInfo> devices;
  // Why there are none ("no CUDA driver", "no CUDA-capable device", ...); empty otherwise.
  std::string reason;
  int driverVersion = 0;   // e.g. 13000 for 13.0; 0 when no driver
  int runtimeVersion = 0;
};

// Never throws; the result is computed once and cached.
const Discovery& discover();

}  // namespace supcon::cuda
