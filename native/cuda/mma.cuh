// Tile engines shared by the CUDA kernels: a warp computes a 16 x 32 block of a 64 x 64
// product with exact fp32 FMA on CUDA cores, or on tensor cores with tf32 / bf16 inputs and
// fp32 accumulation (mma.sync). One accumulator layout for all three, so the code around
// an engine does not depend on the precision.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>

namespace supcon::cuda {

// Engines. A warp computes a 16 x 32 block of a 64 x 64 product (warp w: rows 16 (w % 4),
// columns 32 (w / 4)); each thread holds acc[4][4] in the m16n8 accumulator layout:
// tile j, element e -> row g + 8 (e / 2), column 8 j + 2 t + (e % 2), g = lane / 4,
// t = lane % 4. A(r, k) and B(k, c) read shared memory.

struct Fp32Engine {
  static constexpr int kStep = 8;
  static constexpr const char* kName = "fp32";
  template <class FA, class FB>
  __device__ static void step(float (&acc)[4][4], const FA& A, const FB& B, int k0, int g, int t) {
#pragma unroll
    for (int k = k0; k < k0 + kStep; ++k) {
      const float a0 = A(g, k), a1 = A(g + 8, k);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float b0 = B(k, 8 * j + 2 * t), b1 = B(k, 8 * j + 2 * t + 1);
        acc[j][0] = fmaf(a0, b0, acc[j][0]);
        acc[j][1] = fmaf(a0, b1, acc[j][1]);
        acc[j][2] = fmaf(a1, b0, acc[j][2]);
        acc[j][3] = fmaf(a1, b1, acc[j][3]);
      }
    }
  }
};

// The PTX of the engines lives in these three wrappers; the emulated backend replaces them
// with the instructions' definitions (native/cuda/emu/).
static __device__ __forceinline__ uint32_t toTf32(float x) {
#if defined(SUPCON_CUDA_EMULATION)
  return ::supcon::emu::cvtRnaTf32(x);
#else
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return r;
#endif
}

// D = A B + D on tensor cores for one m16n8 tile: A fragments a[4], B fragments b[2] in the
// PTX ISA's register layouts, fp32 accumulators d[4].
static __device__ __forceinline__ void mmaTf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(SUPCON_CUDA_EMULATION)
  ::supcon::emu::mmaTf32(d, a, b);
#else
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

static __device__ __forceinline__ void mmaBf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(SUPCON_CUDA_EMULATION)
  ::supcon::emu::mmaBf16(d, a, b);
#else
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

struct Tf32Engine {
  static constexpr int kStep = 8;
  static constexpr const char* kName = "tf32";
  template <class FA, class FB>
  __device__ static void step(float (&acc)[4][4], const FA& A, const FB& B, int k0, int g, int t) {
    const uint32_t a[4] = {toTf32(A(g, k0 + t)), toTf32(A(g + 8, k0 + t)), toTf32(A(g, k0 + t + 4)),
                           toTf32(A(g + 8, k0 + t + 4))};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const uint32_t b[2] = {toTf32(B(k0 + t, 8 * j + g)), toTf32(B(k0 + t + 4, 8 * j + g))};
      mmaTf32(acc[j], a, b);
    }
  }
};

static __device__ __forceinline__ uint32_t packBf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  uint32_t r;
  memcpy(&r, &v, sizeof r);
  return r;
}

struct Bf16Engine {
  static constexpr int kStep = 16;
  static constexpr const char* kName = "bf16";
  template <class FA, class FB>
  __device__ static void step(float (&acc)[4][4], const FA& A, const FB& B, int k0, int g, int t) {
    const int k = k0 + 2 * t;
    const uint32_t a[4] = {packBf16(A(g, k), A(g, k + 1)), packBf16(A(g + 8, k), A(g + 8, k + 1)),
                           packBf16(A(g, k + 8), A(g, k + 9)), packBf16(A(g + 8, k + 8), A(g + 8, k + 9))};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int c = 8 * j + g;
      const uint32_t b[2] = {packBf16(B(k, c), B(k + 1, c)), packBf16(B(k + 8, c), B(k + 9, c))};
      mmaBf16(acc[j], a, b);
    }
  }
};

// Calls fn(r, c, value) for each element of a 4 x 4 accumulator the thread holds, with r
// and c its row and column in the block's 64 x 64 output (the engines' layout).
template <class F>
__device__ __forceinline__ void forEachHeld(float (&acc)[4][4], int wr, int wc, int g, int t, F fn) {
#pragma unroll
  for (int j = 0; j < 4; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) fn(wr + g + 8 * (e >> 1), wc + 8 * j + 2 * t + (e & 1), acc[j][e]);
}

}  // namespace supcon::cuda
