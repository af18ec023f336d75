#include "host_allocator.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <list>
#include <mutex>
#include <new>
#include <unordered_map>
#include <utility>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#define SUPCON_HOST_MMAP 1
#endif

namespace supcon::cpu {
namespace {

// Freed blocks, oldest first, and by size (each size's newest last) for reuse.
struct Block {
  size_t size;
  void* p;
};
// The cache's state lives for the whole process and is never destroyed: thread-local scratch
// (AlignedBuffer) is freed into it by threads that exit after static destructors have run,
// and cached blocks stay reachable at exit (no leak report from LeakSanitizer).
struct State {
  std::mutex mutex;
  std::list<Block> order;
  std::unordered_map<size_t, std::vector<std::list<Block>::iterator>> free;
  int64_t cached = 0;
  int64_t live = 0;  // bytes handed out and not freed
  int64_t peak = 0;  // the most live at once, since the last hostEmptyCache()
};
State& state() {
  static State* s = new State();
  return *s;
}

// Whatever the peak, the cache may keep this much (small tensors of a loop of varying sizes).
constexpr int64_t kFloorBytes = int64_t{64} << 20;

// The default hard cap: a quarter of the physical memory, at least 2 GiB. A ResNet-18 step
// at batch 128 on 32 x 32 images reuses 2.5 GB of blocks; under a 2 GiB cap it unmapped and
// faulted in 720 MB of them every step (docs/PERFORMANCE.md). The bound below (twice the
// peak of live bytes) still keeps a small workload's cache small.
int64_t defaultHardCap() {
  int64_t cap = int64_t{2} << 30;
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) cap = std::max(cap, static_cast<int64_t>(pages) * page / 4);
  return cap;
}

int64_t hardCap() {
  // SUPCON_HOST_CACHE_MB sets the cap; 0 turns the cache off.
  static const int64_t cap = [] {
    if (const char* env = std::getenv("SUPCON_HOST_CACHE_MB")) {
      char* end = nullptr;
      const long long mb = std::strtoll(env, &end, 10);
      if (end != env && mb >= 0) return static_cast<int64_t>(mb) << 20;
    }
    return defaultHardCap();
  }();
  return cap;
}

// The bound on cached bytes: the hard cap, and no more than twice the peak of live bytes (at
// least 64 MB). A training step's blocks of one size peak at other times than its total (its
// activations at the end of the forward pass, its gradients of the same sizes later), so the
// blocks it reuses add up to more than its peak: with the peak alone as the bound, the
// ConvNet step unmapped and faulted in 150 MB of them every step. Blocks beyond the bound
// (sizes seen once, by a loop of varying sizes) would only be retained memory.
int64_t capLocked() { return std::min(hardCap(), std::max(kFloorBytes, 2 * state().peak)); }

size_t blockSize(size_t bytes) { return (std::max<size_t>(bytes, 1) + 63) / 64 * 64; }

// Blocks from 64 KiB up are mapped pages of their own, unmapped when freed (not cached): with
// malloc they would land in glibc's heap, whose mmap threshold rises as large blocks are
// freed, and a loop of varying sizes would leave freed blocks there, kept by fragmentation.
// RSS is then what tensors hold plus what the cache keeps, both bounded.
constexpr size_t kMapBytes = size_t{64} << 10;

void* rawAlloc(size_t size, bool& zeroed) {
#if defined(SUPCON_HOST_MMAP)
  if (size >= kMapBytes) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    zeroed = true;  // fresh pages are zero
    return p;
  }
#endif
  void* p = std::aligned_alloc(64, size);
  if (p == nullptr) throw std::bad_alloc();
  zeroed = false;
  return p;
}

void rawFree(void* p, size_t size) {
#if defined(SUPCON_HOST_MMAP)
  if (size >= kMapBytes) {
    munmap(p, size);
    return;
  }
#endif
  std::free(p);
}

// Takes the oldest cached blocks out until `room` more bytes fit under the cap, into `out`
// (freed outside the lock).
void evictLocked(int64_t room, std::vector<Block>& out) {
  const int64_t cap = capLocked();
  while (!state().order.empty() && state().cached + room > cap) {
    const Block b = state().order.front();
    auto& list = state().free[b.size];
    list.erase(std::find(list.begin(), list.end(), state().order.begin()));
    if (list.empty()) state().free.erase(b.size);
    state().order.pop_front();
    state().cached -= static_cast<int64_t>(b.size);
    out.push_back(b);
  }
}

bool poisonUninitialized() {
  static const bool poison = [] {
    const char* env = std::getenv("SUPCON_POISON_UNINITIALIZED");
    return env != nullptr && env[0] != '\0' && std::strcmp(env, "0") != 0;
  }();
  return poison;
}

}  // namespace

void* hostAlloc(size_t bytes, bool zero) {
  if (bytes > SIZE_MAX - 64) throw std::bad_alloc();
  const size_t size = blockSize(bytes);
  void* p = nullptr;
  {
    std::lock_guard<std::mutex> lock(state().mutex);
    auto it = state().free.find(size);
    if (it != state().free.end() && !it->second.empty()) {
      auto node = it->second.back();
      it->second.pop_back();
      if (it->second.empty()) state().free.erase(it);
      p = node->p;
      state().order.erase(node);
      state().cached -= static_cast<int64_t>(size);
    }
  }
  bool zeroed = false;
  if (p == nullptr) p = rawAlloc(size, zeroed);
  if (!zero && poisonUninitialized())
    std::memset(p, 0xFF, size);
  else if (zero && !zeroed)
    std::memset(p, 0, size);
  std::lock_guard<std::mutex> lock(state().mutex);
  state().live += static_cast<int64_t>(size);
  state().peak = std::max(state().peak, state().live);
  return p;
}

void hostFree(void* p, size_t bytes) {
  if (p == nullptr) return;
  const size_t size = blockSize(bytes);
  std::vector<Block> evicted;
  bool kept = false;
  {
    std::lock_guard<std::mutex> lock(state().mutex);
    state().live -= static_cast<int64_t>(size);
    if (static_cast<int64_t>(size) <= capLocked()) {
      evictLocked(static_cast<int64_t>(size), evicted);
      state().order.push_back(Block{size, p});
      state().free[size].push_back(std::prev(state().order.end()));
      state().cached += static_cast<int64_t>(size);
      kept = true;
    }
  }
  for (const Block& b : evicted) rawFree(b.p, b.size);
  if (!kept) rawFree(p, size);
}

HostCacheStats hostCacheStats() {
  std::lock_guard<std::mutex> lock(state().mutex);
  return HostCacheStats{state().cached, capLocked()};
}

void hostEmptyCache() {
  std::lock_guard<std::mutex> lock(state().mutex);
  for (const Block& b : state().order) rawFree(b.p, b.size);
  state().order.clear();
  state().free.clear();
  state().cached = 0;
  state().peak = state().live;
}

bool pinMallocThresholds() {
#if defined(__GLIBC__)
  const char* own = std::getenv("SUPCON_MALLOC_TUNING");
  if (own != nullptr && std::strcmp(own, "0") == 0) return false;
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr || std::getenv("MALLOC_TRIM_THRESHOLD_") != nullptr) return false;
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables != nullptr && std::strstr(tunables, "glibc.malloc.") != nullptr) return false;
  return mallopt(M_MMAP_THRESHOLD, 128 * 1024) == 1;
#else
  return false;
#endif
}

}  // namespace supcon::cpu
