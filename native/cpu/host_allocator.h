// A caching allocator for tensor storage in host memory. Training allocates and frees the
// same sizes every step; handing freed blocks back to the operating system and faulting
// fresh zero pages in again costs as much as the arithmetic on them. Freed blocks are kept
// per exact size, up to a cap, and reused.
#pragma once

#include <cstddef>
#include <cstdint>

namespace supcon::cpu {

// 64-byte aligned, zero-filled; throws std::bad_alloc when the memory cannot be had.
void* hostAlloc(size_t bytes);
void hostFree(void* p, size_t bytes);

struct HostCacheStats {
  int64_t cachedBytes;
  int64_t capBytes;
};
HostCacheStats hostCacheStats();
// Returns every cached block to the system.
void hostEmptyCache();

}  // namespace supcon::cpu
