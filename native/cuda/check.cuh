// CUDA-side helpers shared by the .cu files: the addon's stream and error checking.
#pragma once

#include <cuda_runtime.h>

namespace supcon::cuda {

cudaStream_t stream();
// Throws CudaError (runtime.h) with the CUDA message when err is not cudaSuccess.
void check(cudaError_t err, const char* what);

}  // namespace supcon::cuda
