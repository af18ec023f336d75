// An owning, 64-byte aligned array for SIMD data.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

namespace supcon::cpu {

template <typename T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  // Zero-filled; throws std::bad_alloc when the memory cannot be had.
  explicit AlignedBuffer(size_t count) : count_(count) {
    if (count == 0) return;
    if (count > (SIZE_MAX - 63) / sizeof(T)) throw std::bad_alloc();
    const size_t bytes = (count * sizeof(T) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, bytes);
    if (p == nullptr) throw std::bad_alloc();
    std::memset(p, 0, bytes);
    data_.reset(static_cast<T*>(p));
  }
  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  size_t size() const { return count_; }
  size_t bytes() const { return count_ * sizeof(T); }
  T& operator[](size_t i) { return data_.get()[i]; }
  const T& operator[](size_t i) const { return data_.get()[i]; }

 private:
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  std::unique_ptr<T[], Free> data_;
  size_t count_ = 0;
};

}  // namespace supcon::cpu
