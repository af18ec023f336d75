// The CUDA runtime as the rest of the addon sees it: plain C++ (no CUDA headers), so the
// binding compiles with the host compiler. Every failure is thrown as CudaError with the
// CUDA message; nothing here aborts the process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace supcon::cuda {

class CudaError : public std::runtime_error {
 public:
  CudaError(const std::string& message, bool outOfMemory)
      : std::runtime_error(message), outOfMemory_(outOfMemory) {}
  bool outOfMemory() const { return outOfMemory_; }

 private:
  bool outOfMemory_;
};

// Whether the CUDA path can run here: a device, a driver, and kernels this build carries
// for it (checked once by launching a kernel). `reason` says why not.
bool usable(std::string* reason);

// Device memory through the caching allocator (stream-ordered on the addon's stream).
void* deviceAlloc(size_t bytes);
void deviceFree(void* p);
// An owning device buffer of n elements (at least one) from the caching allocator.
template <typename T>
struct DeviceArray {
  T* ptr;
  explicit DeviceArray(int64_t n) : ptr(static_cast<T*>(deviceAlloc(static_cast<size_t>(n > 0 ? n : 1) * sizeof(T)))) {}
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { deviceFree(ptr); }
};
struct AllocatorStats {
  int64_t inUseBytes, cachedBytes, allocations;
  int64_t peakInUseBytes;  // since the last resetPeak()
};
AllocatorStats allocatorStats();
void resetPeak();
// Returns cached blocks to the driver.
void emptyCache();

// Copies on the addon's stream. copyToHost waits for the GPU; copyToDevice takes a copy of
// the host data at once (the caller may reuse it on return) and, up to 1 MiB, queues the
// upload from page-locked staging memory without waiting for the GPU.
void copyToDevice(void* dst, const void* src, size_t bytes);
void copyToHost(void* dst, const void* src, size_t bytes);
// How many times the host has waited for the GPU (read-backs, synchronisations): a
// training step that never reads back leaves it unchanged. noteHostWait() counts one.
int64_t hostWaits();
void noteHostWait();
void memsetDevice(void* dst, int value, size_t bytes);
// Device to device, on the stream.
void copyOnDevice(void* dst, const void* src, size_t bytes);
void synchronize();

}  // namespace supcon::cuda
