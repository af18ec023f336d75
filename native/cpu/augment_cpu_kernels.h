// The interface between the CPU augmentation driver (augment_cpu.cc) and the
// per-instruction-set pixel kernels (augment_kernel.inl compiled once per instruction set).
#pragma once

#include <cstdint>
#include <vector>

#include "../common/augment_types.h"
#include "aligned_buffer.h"

namespace supcon::cpu {

// One worker's buffers: two planar images [channels][plane] (plane = outH * outW rounded up
// to 16 floats, zero past the end), the resize taps (outW and outH of them) and one input
// row (inW floats).
struct AugmentScratch {
  int64_t plane = 0;
  AlignedBuffer<float> a, b, row;
  std::vector<augment::ResizeTap> xTaps, yTaps;
};

struct AugmentKernelTable {
  const char* name;
  // Writes views [first, first + count) of the batch (index = sample * views + view).
  void (*run)(const augment::Batch& batch, int64_t first, int64_t count, AugmentScratch& scratch);
};

namespace avx512 { extern const AugmentKernelTable kAugmentKernels; }
namespace avx2 { extern const AugmentKernelTable kAugmentKernels; }
namespace baseline { extern const AugmentKernelTable kAugmentKernels; }

}  // namespace supcon::cpu
