// An owning, 64-byte aligned array for SIMD data: kernel scratch, packing buffers, the loss's
// state. Its memory comes from the host allocator (host_allocator.h), so a call that needs
// the same scratch sizes as the call before reuses the same blocks: with malloc, the loss's
// two dozen transient 2-64 KB buffers a call landed in glibc's heap between V8's small
// long-lived objects, and fragmentation there grew RSS by 12-18 MB in some runs of a loop
// that never yields (docs/RELIABILITY.md, the soak).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include "host_allocator.h"

namespace supcon::cpu {

template <typename T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  // Zero-filled; throws std::bad_alloc when the memory cannot be had.
  explicit AlignedBuffer(size_t count) : count_(count) {
    if (count == 0) return;
    if (count > (SIZE_MAX - 63) / sizeof(T)) throw std::bad_alloc();
    // hostAlloc returns zeroed, 64-byte aligned memory, or throws std::bad_alloc.
    data_ = std::unique_ptr<T[], Free>(static_cast<T*>(hostAlloc(count * sizeof(T))), Free{count * sizeof(T)});
  }
  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  size_t size() const { return count_; }
  size_t bytes() const { return count_ * sizeof(T); }
  T& operator[](size_t i) { return data_.get()[i]; }
  const T& operator[](size_t i) const { return data_.get()[i]; }

 private:
  struct Free {
    size_t bytes = 0;
    void operator()(T* p) const { hostFree(p, bytes); }
  };
  std::unique_ptr<T[], Free> data_;
  size_t count_ = 0;
};

}  // namespace supcon::cpu
