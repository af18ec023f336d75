// Stream, caching allocator, copies and the usability probe.
#include <cuda_runtime.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <string>
#include <mutex>
#include <vector>

#include "check.cuh"
#include "device_info.h"
#include "launch.cuh"
#include "runtime.h"

namespace supcon::cuda {
namespace {

__global__ void probeKernel(int* out) { *out = 42; }

std::mutex gMutex;

// Blocks are rounded to 512 bytes (small) or 2 MiB (large) and kept in per-size free
// lists after release; all work runs on one stream, so a freed block may be reused by the
// next allocation without a synchronisation.
struct Allocator {
  std::multimap<size_t, void*> freeBlocks;
  std::map<void*, size_t> sizes;
  int64_t inUse = 0, cached = 0, allocations = 0, peak = 0;
  void take(size_t bytes) {
    inUse += static_cast<int64_t>(bytes);
    if (inUse > peak) peak = inUse;
  }
};
Allocator& allocator() {
  static Allocator a;
  return a;
}

// SUPCON_CUDA_CACHE=0: exact sizes and no reuse, so that the emulated backend's guard pages
// sit at the end of every buffer and a freed buffer cannot be read again unnoticed.
bool cacheEnabled() {
  static const bool on = [] {
    const char* v = std::getenv("SUPCON_CUDA_CACHE");
    return v == nullptr || std::string(v) != "0";
  }();
  return on;
}

// Times the host waited for the GPU: every read-back, and every wait for the stream or an
// event on the data path (timing calls aside).
std::atomic<int64_t> gHostWaits{0};

// Pinned staging of host-to-device copies, so that an upload does not wait for the GPU: the
// host data is copied into page-locked memory at once (the caller may free it on return)
// and the DMA queued on the stream. Regions are taken round a ring; a region is taken again
// only once the event recorded behind its copy has completed.
constexpr size_t kStagingBytes = size_t{8} << 20;
constexpr size_t kStagedMax = size_t{1} << 20;  // larger copies wait for the GPU
struct Staging {
  char* base = nullptr;
  bool failed = false;  // no page-locked memory: every copy waits
  size_t head = 0;
  struct Use {
    size_t begin, end;
    cudaEvent_t done;
  };
  std::deque<Use> inFlight;  // oldest first
  std::vector<cudaEvent_t> spare;
};
std::mutex gStagingMutex;
Staging& staging() {
  static Staging s;
  return s;
}

// Queues the copy through the ring; false where there is no ring (then the caller copies).
bool stagedCopy(void* dst, const void* src, size_t bytes) {
  Staging& st = staging();
  if (st.failed) return false;
  if (st.base == nullptr) {
    void* p = nullptr;
    if (cudaMallocHost(&p, kStagingBytes) != cudaSuccess) {
      cudaGetLastError();
      st.failed = true;
      return false;
    }
    st.base = static_cast<char*>(p);
  }
  // The completed uses first, without waiting (not ready is not an error).
  while (!st.inFlight.empty()) {
    const cudaError_t q = cudaEventQuery(st.inFlight.front().done);
    if (q == cudaErrorNotReady) break;
    check(q, "copying to the GPU");
    st.spare.push_back(st.inFlight.front().done);
    st.inFlight.pop_front();
  }
  const size_t size = (bytes + 255) / 256 * 256;
  size_t at = st.head + size <= kStagingBytes ? st.head : 0;
  const auto overlaps = [&](const Staging::Use& u) { return u.begin < at + size && at < u.end; };
  while (!st.inFlight.empty()) {
    bool any = false;
    for (const Staging::Use& u : st.inFlight) any = any || overlaps(u);
    if (!any) break;
    ++gHostWaits;
    check(cudaEventSynchronize(st.inFlight.front().done), "waiting for an earlier copy to the GPU");
    st.spare.push_back(st.inFlight.front().done);
    st.inFlight.pop_front();
  }
  cudaEvent_t done = nullptr;
  if (!st.spare.empty()) {
    done = st.spare.back();
    st.spare.pop_back();
  } else {
    check(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), "creating an event");
  }
  std::memcpy(st.base + at, src, bytes);
  const cudaError_t copied = cudaMemcpyAsync(dst, st.base + at, bytes, cudaMemcpyHostToDevice, stream());
  const cudaError_t recorded = copied == cudaSuccess ? cudaEventRecord(done, stream()) : copied;
  if (recorded != cudaSuccess) {
    cudaEventDestroy(done);
    check(recorded, "copying to the GPU");
  }
  st.inFlight.push_back({at, at + size, done});
  st.head = at + size;
  return true;
}

size_t roundSize(size_t bytes) {
  if (!cacheEnabled()) return bytes;
  if (bytes <= (size_t{1} << 20)) return (bytes + 511) / 512 * 512;
  const size_t big = size_t{2} << 20;
  return (bytes + big - 1) / big * big;
}

}  // namespace

cudaStream_t stream() {
  static cudaStream_t s = [] {
    cudaStream_t created;
    check(cudaStreamCreateWithFlags(&created, cudaStreamNonBlocking), "creating the stream");
    return created;
  }();
  return s;
}

void check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  cudaGetLastError();
  throw CudaError(std::string("CUDA error while ") + what + ": " + cudaGetErrorString(err) + " (" +
                      cudaGetErrorName(err) + ")",
                  err == cudaErrorMemoryAllocation);
}

bool usable(std::string* reason) {
  static bool ok = false;
  static std::string why;
  static std::once_flag once;
  std::call_once(once, [] {
    const Discovery& disc = discover();
    if (disc.devices.empty()) {
      why = disc.reason;
      return;
    }
    try {
      check(cudaSetDevice(0), "selecting device 0");
      int* d = nullptr;
      check(cudaMalloc(&d, sizeof(int)), "allocating the probe");
      launchKernel("probeKernel", probeKernel, 1, 1, 0, stream(), d);
      cudaError_t launch = cudaGetLastError();
      int host = 0;
      if (launch == cudaSuccess) launch = cudaMemcpyAsync(&host, d, sizeof host, cudaMemcpyDeviceToHost, stream());
      if (launch == cudaSuccess) launch = cudaStreamSynchronize(stream());
      cudaFree(d);
      check(launch, "running the probe kernel");
      ok = host == 42;
      if (!ok) why = "the probe kernel gave a wrong result";
    } catch (const CudaError& e) {
      why = e.what();
    }
  });
  if (reason != nullptr) *reason = why;
  return ok;
}

void* deviceAlloc(size_t bytes) {
  std::lock_guard<std::mutex> lock(gMutex);
  Allocator& a = allocator();
  const size_t size = roundSize(std::max<size_t>(bytes, 1));
  auto it = cacheEnabled() ? a.freeBlocks.lower_bound(size) : a.freeBlocks.end();
  // Reuse a cached block of the same size, or of a small one up to twice the size.
  if (it != a.freeBlocks.end() && (it->first == size || (size < (size_t{1} << 20) && it->first <= 2 * size))) {
    void* p = it->second;
    a.cached -= static_cast<int64_t>(it->first);
    a.take(it->first);
    a.freeBlocks.erase(it);
    return p;
  }
  void* p = nullptr;
  cudaError_t err = cudaMallocAsync(&p, size, stream());
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    for (auto& [s, block] : a.freeBlocks) cudaFreeAsync(block, stream());
    for (auto& [s, block] : a.freeBlocks) a.sizes.erase(block);
    a.freeBlocks.clear();
    a.cached = 0;
    cudaStreamSynchronize(stream());
    err = cudaMallocAsync(&p, size, stream());
  }
  check(err, ("allocating " + std::to_string(bytes) + " bytes on the GPU").c_str());
  a.sizes[p] = size;
  a.take(size);
  ++a.allocations;
  return p;
}

void deviceFree(void* p) {
  if (p == nullptr) return;
  std::lock_guard<std::mutex> lock(gMutex);
  Allocator& a = allocator();
  auto it = a.sizes.find(p);
  if (it == a.sizes.end()) return;
  a.inUse -= static_cast<int64_t>(it->second);
  if (!cacheEnabled()) {
    a.sizes.erase(it);
    cudaFreeAsync(p, stream());
    return;
  }
  a.freeBlocks.emplace(it->second, p);
  a.cached += static_cast<int64_t>(it->second);
}

AllocatorStats allocatorStats() {
  std::lock_guard<std::mutex> lock(gMutex);
  const Allocator& a = allocator();
  return AllocatorStats{a.inUse, a.cached, a.allocations, a.peak};
}

void resetPeak() {
  std::lock_guard<std::mutex> lock(gMutex);
  allocator().peak = allocator().inUse;
}

void emptyCache() {
  std::lock_guard<std::mutex> lock(gMutex);
  Allocator& a = allocator();
  for (auto& [s, block] : a.freeBlocks) {
    cudaFreeAsync(block, stream());
    a.sizes.erase(block);
  }
  a.freeBlocks.clear();
  a.cached = 0;
}

void copyToDevice(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  if (bytes <= kStagedMax) {
    std::lock_guard<std::mutex> lock(gStagingMutex);
    if (stagedCopy(dst, src, bytes)) return;
  }
  ++gHostWaits;
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream()), "copying to the GPU");
  check(cudaStreamSynchronize(stream()), "copying to the GPU");
}

void copyToHost(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  ++gHostWaits;
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream()), "copying from the GPU");
  check(cudaStreamSynchronize(stream()), "copying from the GPU");
}

int64_t hostWaits() { return gHostWaits.load(); }
void noteHostWait() { ++gHostWaits; }

void copyOnDevice(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream()), "copying on the GPU");
}

void memsetDevice(void* dst, int value, size_t bytes) {
  if (bytes == 0) return;
  check(cudaMemsetAsync(dst, value, bytes, stream()), "filling GPU memory");
}

void synchronize() {
  ++gHostWaits;
  check(cudaStreamSynchronize(stream()), "waiting for the GPU");
}

}  // namespace supcon::cuda
