// A loop of independent fused multiply-adds: the machine's fp32 FMA throughput, the floor
// that benchmarks report their kernels against. Included by fma_peak_<isa>.cc.
#include "fma_peak.h"
#include "simd.h"

namespace supcon::cpu::SUPCON_ISA_NAMESPACE {

// 16 independent chains hide the FMA latency on every core we target; without fast-math
// the compiler may not reassociate them, so every FMA is executed.
double fmaLoop(int64_t iterations) {
  using namespace supcon::simd;
  constexpr int kChains = 16;
  VF acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = splat(1.0f + 0.01f * c);
  const VF m = splat(0.999999f), a = splat(1e-7f);
  for (int64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 16
    for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * m + a;
  }
  float sum = 0.0f;
  for (int c = 0; c < kChains; ++c)
    for (int l = 0; l < kWidth; ++l) sum += acc[c][l];
  return sum;
}

extern const FmaLoop kFmaLoop = {SUPCON_ISA_LABEL, simd::kWidth * 16 * 2, fmaLoop};

}  // namespace supcon::cpu::SUPCON_ISA_NAMESPACE
