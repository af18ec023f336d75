// SGEMM on the GPU with the tile engines of mma.cuh: C = alpha op(A) op(B) + beta C,
// row-major, any leading dimensions; exact fp32 on CUDA cores, or tf32 / bf16 tensor
// cores with fp32 accumulation. The CUDA twin of native/cpu/gemm.h. Plain C++ header.
#pragma once

#include <cstdint>
#include <vector>

#include "supcon_cuda.h"

namespace supcon::cuda {

struct GemmArgs {
  bool transA, transB;
  int64_t M, N, K;
  float alpha;
  const float* A;  // device
  int64_t lda;
  const float* B;  // device
  int64_t ldb;
  float beta;      // 0: C is not read
  float* C;        // device
  int64_t ldc;
};

void gemm(const GemmArgs& args, Precision precision);

// M x N x K products on random device matrices, timed with CUDA events (ms each).
std::vector<float> timeGemm(int64_t M, int64_t N, int64_t K, Precision precision, int repeats);

}  // namespace supcon::cuda
