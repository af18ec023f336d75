// Augmentation on a CUDA device: the same drawn programs and the same pixel formulas
// (native/common/augment_pixel.h) as the CPU kernels, one thread block per view.
#pragma once

#include "../common/augment_types.h"

namespace supcon::cuda {

struct AugmentTiming {
  float copyInMs;   // images and programs, host to device
  float kernelMs;
  float copyOutMs;  // views, device to host
};

// batch holds host pointers, or device ones for the images and the views when its
// inputOnDevice / outputOnDevice flags say so (then nothing of them crosses to the host);
// runs on the addon's stream through the caching allocator. Views on the device are queued
// without waiting for the GPU (timing all zero) unless `timed`; views to the host, or timed
// calls, wait for the result. Throws CudaError (runtime.h) naming the CUDA error when a
// call fails.
AugmentTiming augmentBatch(const augment::Batch& batch, bool timed = false);

}  // namespace supcon::cuda
