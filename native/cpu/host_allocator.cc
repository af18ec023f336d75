#include "host_allocator.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace supcon::cpu {
namespace {

std::mutex gMutex;
std::unordered_map<size_t, std::vector<void*>> gFree;
int64_t gCached = 0;

int64_t capBytes() {
  // SUPCON_HOST_CACHE_MB sets the cap; 0 turns the cache off.
  static const int64_t cap = [] {
    if (const char* env = std::getenv("SUPCON_HOST_CACHE_MB")) {
      char* end = nullptr;
      const long long mb = std::strtoll(env, &end, 10);
      if (end != env && mb >= 0) return static_cast<int64_t>(mb) << 20;
    }
    return int64_t{2} << 30;
  }();
  return cap;
}

size_t blockSize(size_t bytes) { return (std::max<size_t>(bytes, 1) + 63) / 64 * 64; }

}  // namespace

void* hostAlloc(size_t bytes) {
  if (bytes > SIZE_MAX - 64) throw std::bad_alloc();
  const size_t size = blockSize(bytes);
  void* p = nullptr;
  {
    std::lock_guard<std::mutex> lock(gMutex);
    auto it = gFree.find(size);
    if (it != gFree.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      gCached -= static_cast<int64_t>(size);
    }
  }
  if (p == nullptr) {
    p = std::aligned_alloc(64, size);
    if (p == nullptr) throw std::bad_alloc();
  }
  std::memset(p, 0, size);
  return p;
}

void hostFree(void* p, size_t bytes) {
  if (p == nullptr) return;
  const size_t size = blockSize(bytes);
  {
    std::lock_guard<std::mutex> lock(gMutex);
    if (gCached + static_cast<int64_t>(size) <= capBytes()) {
      gFree[size].push_back(p);
      gCached += static_cast<int64_t>(size);
      return;
    }
  }
  std::free(p);
}

HostCacheStats hostCacheStats() {
  std::lock_guard<std::mutex> lock(gMutex);
  return HostCacheStats{gCached, capBytes()};
}

void hostEmptyCache() {
  std::lock_guard<std::mutex> lock(gMutex);
  for (auto& [size, blocks] : gFree)
    for (void* p : blocks) std::free(p);
  gFree.clear();
  gCached = 0;
}

}  // namespace supcon::cpu
