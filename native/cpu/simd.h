// Portable SIMD vocabulary on GCC/Clang vector extensions.
//
// This header is included by the kernel translation units, each compiled with its own
// instruction-set flags (-mavx512f..., -mavx2 -mfma, or the baseline). SUPCON_SIMD_WIDTH
// (floats per vector) is set by the including file, so the same source produces an
// AVX-512, an AVX2 and a baseline kernel that are chosen at run time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#ifndef SUPCON_SIMD_WIDTH
#error "define SUPCON_SIMD_WIDTH before including simd.h"
#endif

namespace supcon::simd {

constexpr int kWidth = SUPCON_SIMD_WIDTH;

typedef float VF __attribute__((vector_size(kWidth * 4)));
typedef int32_t VI __attribute__((vector_size(kWidth * 4)));
// Same types with 4-byte alignment, for loads and stores from unaligned addresses.
typedef float VFU __attribute__((vector_size(kWidth * 4), aligned(4)));

inline VF load(const float* p) { return *reinterpret_cast<const VFU*>(p); }
inline void store(float* p, VF v) { *reinterpret_cast<VFU*>(p) = v; }
inline VF splat(float x) { return VF{} + x; }
inline VI splati(int32_t x) { return VI{} + x; }

inline VF select(VI mask, VF a, VF b) { return mask ? a : b; }
inline VF vmax(VF a, VF b) { return a > b ? a : b; }
inline VF vmin(VF a, VF b) { return a < b ? a : b; }

inline VF bitsToFloat(VI x) {
  VF r;
  std::memcpy(&r, &x, sizeof r);
  return r;
}
inline VI floatToBits(VF x) {
  VI r;
  std::memcpy(&r, &x, sizeof r);
  return r;
}

inline float hmax(VF v) {
  float m = v[0];
  for (int i = 1; i < kWidth; ++i) m = v[i] > m ? v[i] : m;
  return m;
}

// exp(x) to about 2 ulp for x in [-87.3, 88.7]; 0 below, clamped above. Cody-Waite range
// reduction to r in [-ln2/2, ln2/2], then a degree-6 polynomial for e^r.
inline VF vexp(VF x) {
  const VF hi = splat(88.7f);
  const VF lo = splat(-87.3f);
  VI underflow = x < lo;
  x = vmin(x, hi);
  x = vmax(x, lo);
  const VF shifter = splat(12582912.0f);  // 1.5 * 2^23: adds and rounds to nearest integer
  VF t = x * 1.44269504088896341f + shifter;
  VF n = t - shifter;
  VF r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  VF p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  VI e = __builtin_convertvector(n, VI);
  VF scale = bitsToFloat((e + 127) << 23);
  return select(underflow, splat(0.0f), p * scale);
}

// log(x) for finite x > 0 (to about 2 ulp); frexp-style split, then a polynomial in
// (m - 1) with m in [sqrt(1/2), sqrt(2)).
inline VF vlog(VF x) {
  VI bits = floatToBits(x);
  VI e = ((bits >> 23) & 0xff) - 126;
  VF m = bitsToFloat((bits & 0x007fffff) | 0x3f000000);  // m in [0.5, 1)
  VI small = m < 0.70710678f;
  e = e - (small & 1);
  m = m + select(small, m, splat(0.0f)) - 1.0f;
  VF z = m * m;
  VF p = splat(7.0376836292e-2f);
  p = p * m - 1.1514610310e-1f;
  p = p * m + 1.1676998740e-1f;
  p = p * m - 1.2420140846e-1f;
  p = p * m + 1.4249322787e-1f;
  p = p * m - 1.6668057665e-1f;
  p = p * m + 2.0000714765e-1f;
  p = p * m - 2.4999993993e-1f;
  p = p * m + 3.3333331174e-1f;
  VF ef = __builtin_convertvector(e, VF);
  VF y = p * m * z;
  y = y + ef * -2.12194440e-4f;
  y = y - 0.5f * z;
  return m + y + ef * 0.693359375f;
}

// log(1 + exp(x)) without overflow.
inline VF vsoftplus(VF x) {
  VF ax = select(x < 0.0f, -x, x);
  return vmax(x, splat(0.0f)) + vlog(vexp(-ax) + 1.0f);
}

// 1 / (1 + exp(-x)).
inline VF vsigmoid(VF x) { return 1.0f / (vexp(-x) + 1.0f); }

// v[i] (i < kWidth) transposed in place: kWidth / 2, ..., 1 butterflies, each a two-source
// shuffle per output with constant indices (at distance h, rows i and i + h trade their lanes
// with bit h set). The GEMM's transposing packs and the layers' channels-last copies use it.
template <int H, size_t... L>
inline VF shuffleLo(VF a, VF b, std::index_sequence<L...>) {
  return __builtin_shufflevector(a, b, ((L & H) != 0 ? kWidth + L - H : L)...);
}
template <int H, size_t... L>
inline VF shuffleHi(VF a, VF b, std::index_sequence<L...>) {
  return __builtin_shufflevector(a, b, ((L & H) != 0 ? kWidth + L : L + H)...);
}

template <int H>
inline void butterfly(VF* v) {
  if constexpr (H >= 1) {
#pragma GCC unroll 16
    for (int i = 0; i < kWidth; ++i) {
      if ((i & H) != 0) continue;
      const VF a = v[i], b = v[i + H];
      v[i] = shuffleLo<H>(a, b, std::make_index_sequence<kWidth>{});
      v[i + H] = shuffleHi<H>(a, b, std::make_index_sequence<kWidth>{});
    }
    butterfly<H / 2>(v);
  }
}

inline void transposeInPlace(VF* v) { butterfly<kWidth / 2>(v); }

}  // namespace supcon::simd
