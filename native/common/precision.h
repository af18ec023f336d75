// How products (the loss's logits and gradients, GEMMs, convolutions, linear layers) are
// computed: 'fp32' on CUDA cores or the CPU (exact fp32 FMA), 'tf32' and 'bf16' on GPU tensor
// cores (mma.sync, fp32 accumulation). The CPU computes in fp32 only.
#pragma once

#include <cstdint>

namespace supcon {

enum class Precision : int32_t { Fp32 = 0, Tf32 = 1, Bf16 = 2 };

inline const char* precisionName(Precision p) {
  return p == Precision::Tf32 ? "tf32" : p == Precision::Bf16 ? "bf16" : "fp32";
}

}  // namespace supcon
