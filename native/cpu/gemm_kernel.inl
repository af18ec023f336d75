// The GEMM micro-kernel for one instruction set: an MR x NR tile of C kept in registers
// (NR = two vectors), fed by packed panels of A (MR values broadcast per k) and B (two
// aligned vector loads per k).
//
// Included by gemm_kernel_{avx512,avx2,baseline}.cc, each compiled with its own flags;
// SUPCON_SIMD_WIDTH and SUPCON_ISA_NAMESPACE are set there.
#include "gemm_kernels.h"
#include "simd.h"

#include <cstddef>
#include <utility>

namespace supcon::cpu::SUPCON_ISA_NAMESPACE {
namespace {

using namespace supcon::simd;

constexpr int W = kWidth;
// Registers: 2 * MR accumulators + 2 B vectors + a broadcast. AVX-512 has 32 vector
// registers (14 rows: 28 + 3), AVX2 and SSE 16 (6 rows: 12 + 3).
constexpr int MR = W >= 16 ? 14 : 6;
constexpr int NR = 2 * W;

typedef float VFA __attribute__((vector_size(W * 4), aligned(W * 4)));
inline VF loadAligned(const float* p) { return *reinterpret_cast<const VFA*>(p); }

void microKernel(int64_t kc, const float* __restrict ap, const float* __restrict bp,
                 float* __restrict c, int64_t ldc, float alpha, float beta) {
  VF acc0[MR], acc1[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    acc0[i] = acc1[i] = splat(0.0f);
    // The C tile is read (or written) after the loop: start fetching it now.
    __builtin_prefetch(c + i * ldc, 1);
    __builtin_prefetch(c + i * ldc + NR - 1, 1);
  }
  for (int64_t k = 0; k < kc; ++k) {
    const VF b0 = loadAligned(bp);
    const VF b1 = loadAligned(bp + W);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      // vector * scalar: the scalar is broadcast (an embedded broadcast on AVX-512).
      acc0[i] += b0 * ap[i];
      acc1[i] += b1 * ap[i];
    }
    ap += MR;
    bp += NR;
  }
  if (beta == 0.0f) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      store(c + i * ldc, acc0[i] * alpha);
      store(c + i * ldc + W, acc1[i] * alpha);
    }
  } else {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      store(c + i * ldc, acc0[i] * alpha + load(c + i * ldc) * beta);
      store(c + i * ldc + W, acc1[i] * alpha + load(c + i * ldc + W) * beta);
    }
  }
}

void gatherRows(const float* const* src, int n, int width, int64_t kc, float* __restrict out) {
  for (int g0 = 0; g0 < width; g0 += W) {
    const int lanes = width - g0 < W ? width - g0 : W;
    int64_t k = 0;
    for (; k + W <= kc; k += W) {
      VF v[W];
#pragma GCC unroll 16
      for (int i = 0; i < W; ++i) v[i] = g0 + i < n && i < lanes ? load(src[g0 + i] + k) : splat(0.0f);
      transposeInPlace(v);
      if (lanes == W) {
#pragma GCC unroll 16
        for (int j = 0; j < W; ++j) store(out + (k + j) * width + g0, v[j]);
      } else if (width == lanes) {
        // A panel narrower than a vector (the A panels: MR = 14 of 16 lanes): its rows are
        // contiguous, so each row's full vector store runs into the next row, which the next
        // store then writes. Only the block's last row must stop at the panel when no row
        // follows (a short copy was 44% of the pack: memcpy of 56 bytes as rep movsq).
#pragma GCC unroll 16
        for (int j = 0; j + 1 < W; ++j) store(out + (k + j) * width, v[j]);
        if (k + W < kc)
          store(out + (k + W - 1) * width, v[W - 1]);
        else
          __builtin_memcpy(out + (k + W - 1) * width, &v[W - 1], sizeof(float) * lanes);
      } else {
        for (int j = 0; j < W; ++j) __builtin_memcpy(out + (k + j) * width + g0, &v[j], sizeof(float) * lanes);
      }
    }
    for (; k < kc; ++k)
      for (int i = 0; i < lanes; ++i) out[k * width + g0 + i] = g0 + i < n ? src[g0 + i][k] : 0.0f;
  }
}

// As many independent chains as the accumulators of the micro-kernel: enough to cover the
// FMA latency on both FMA ports.
double fmaLoop(int64_t iterations, float* sink) {
  constexpr int kChains = 2 * MR;
  VF acc[kChains];
  const float m = *sink * 1e-9f + 0.999999f;
  const float a = *sink * 1e-9f + 1e-7f;
#pragma GCC unroll 32
  for (int i = 0; i < kChains; ++i) acc[i] = splat(static_cast<float>(i));
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 32
    for (int i = 0; i < kChains; ++i) acc[i] = acc[i] * m + a;
  }
  VF total = splat(0.0f);
  for (int i = 0; i < kChains; ++i) total += acc[i];
  float s = 0.0f;
  for (int l = 0; l < W; ++l) s += total[l];
  *sink = s;
  return 2.0 * W * kChains * static_cast<double>(iterations);
}

}  // namespace

extern const GemmKernelTable kGemmKernels = {SUPCON_ISA_LABEL, MR, NR, microKernel, gatherRows, fmaLoop};

}  // namespace supcon::cpu::SUPCON_ISA_NAMESPACE
