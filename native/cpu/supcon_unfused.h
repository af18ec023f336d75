// The SupCon loss computed the unfused way, as a framework's eager operators would: the
// B x B logits, probabilities and gradient matrices are materialised. A benchmark peer for
// the fused kernels (and a cross-check in tests); 'out' variant, 'all' denominator and
// contrast mode, labels or none.
#pragma once

#include <cstdint>

namespace supcon::cpu {

// Returns the loss and writes d loss / d features ([n, v, d]) to grad.
double unfusedLoss(const float* features, int64_t n, int64_t v, int64_t d, const int32_t* labels,
                   float temperature, float baseTemperature, float* grad, int threads);

}  // namespace supcon::cpu
