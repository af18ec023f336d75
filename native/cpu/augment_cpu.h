// Augmentation on the CPU: the drawn programs of a batch applied by the SIMD kernels of the
// active instruction set, on the thread pool (one block of views per task).
#pragma once

#include "../common/augment_types.h"
#include "augment_cpu_kernels.h"

namespace supcon::cpu {

// The kernels of the instruction set the loss kernels use (setCpuKernels picks both).
const AugmentKernelTable& activeAugmentKernels();

// Writes batch.out; the caller has validated shapes, programs and the output size.
void augmentBatch(const augment::Batch& batch, int threads);

}  // namespace supcon::cpu
