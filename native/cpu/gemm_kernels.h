// The interface between the GEMM driver (gemm.cc) and its per-instruction-set micro-kernels
// (gemm_kernel.inl compiled once per instruction set).
#pragma once

#include <cstdint>

namespace supcon::cpu {

struct GemmKernelTable {
  const char* name;
  int mr;  // rows of a micro-tile (broadcast from the packed A panel)
  int nr;  // columns of a micro-tile (vector lanes of the packed B panel)
  // c[i * ldc + j] = alpha * sum_k ap[k * mr + i] * bp[k * nr + j] (+ beta * c when
  // beta != 0) for the full mr x nr tile. ap and bp are 64-byte aligned packed panels.
  void (*microKernel)(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
                      float alpha, float beta);
  // The transposing packs: out[k * width + i] = src[i][k] for i < n and 0 for n <= i < width,
  // k < kc (W x W blocks transposed in registers).
  void (*gatherRows)(const float* const* src, int n, int width, int64_t kc, float* out);
  // Runs `iterations` rounds of independent FMA chains; returns the floating-point
  // operations done (the result feeds a sink so the work cannot be dropped).
  double (*fmaLoop)(int64_t iterations, float* sink);
};

namespace avx512 { extern const GemmKernelTable kGemmKernels; }
namespace avx2 { extern const GemmKernelTable kGemmKernels; }
namespace baseline { extern const GemmKernelTable kGemmKernels; }

}  // namespace supcon::cpu
