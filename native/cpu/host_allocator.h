// A caching allocator for tensor storage in host memory. Training allocates and frees the
// same sizes every step; handing freed blocks back to the operating system and faulting
// fresh zero pages in again costs as much as the arithmetic on them. Freed blocks are kept
// per exact size, up to a cap, and reused.
#pragma once

#include <cstddef>
#include <cstdint>

namespace supcon::cpu {

// 64-byte aligned; zero-filled unless `zero` is false (then the memory holds whatever it
// held: for outputs that a kernel writes in full). With SUPCON_POISON_UNINITIALIZED=1 in the
// environment, memory asked for without zeros is filled with 0xFF bytes instead (NaN as
// float32, -1 as int32), so that a kernel that leaves part of its output unwritten shows
// in every test. Throws std::bad_alloc when the memory cannot be had.
void* hostAlloc(size_t bytes, bool zero = true);
void hostFree(void* p, size_t bytes);

struct HostCacheStats {
  int64_t cachedBytes;
  int64_t capBytes;
};
HostCacheStats hostCacheStats();
// Returns every cached block to the system.
void hostEmptyCache();

// Pins glibc's mmap threshold at its initial 128 KiB (once, at load; docs/RELIABILITY.md).
// glibc raises the threshold to the size of each mapped block that is freed, so after the
// first freed 256 KB gradient array every later one came from the heap, and a loop that
// frees them (V8 collects a few dozen at a time) left RSS creeping up by up to 30 MB.
// Pinned, blocks from 128 KiB are mapped and unmapped as before the first free. Left alone
// where the process sets its own malloc tuning (MALLOC_MMAP_THRESHOLD_, GLIBC_TUNABLES) or
// SUPCON_MALLOC_TUNING=0; a no-op on other C libraries. Returns whether it pinned.
bool pinMallocThresholds();

}  // namespace supcon::cpu
