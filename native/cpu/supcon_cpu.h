// The fused SupCon loss on the CPU: forward, backward, and the state kept between them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../common/supcon_types.h"
#include "aligned_buffer.h"
#include "isa.h"
#include "supcon_cpu_kernels.h"

namespace supcon::cpu {

// Features [n, v, d] (sample-major, as given by the user); labels [n] or mask [n, n] or
// neither (each sample its own class). The caller has validated shapes and values.
struct LossInput {
  const float* features;
  int64_t n, v, d;
  const int32_t* labels;
  const uint8_t* mask;
};

// Everything the backward pass needs; O(B * d + B + n * n for a mask) memory.
struct LossState {
  int64_t n = 0, v = 0, d = 0, ld = 0, B = 0, numAnchors = 0;
  LossOptions options;
  const KernelTable* kernels = nullptr;
  double loss = 0.0;
  int64_t counted = 0;            // anchors in the mean
  AlignedBuffer<float> zw;        // [B, ld] working features
  AlignedBuffer<double> norms;    // [B] when normalising (double: |x| may pass FLT_MAX)
  AlignedBuffer<float> statA, statB, statC;
  AlignedBuffer<uint8_t> hasGrad;
  std::vector<int32_t> rowClass;
  std::vector<uint8_t> mask;
  size_t bytes() const;
};

std::unique_ptr<LossState> lossForward(const LossInput& input, const LossOptions& options,
                                       int threads);
// grad [n, v, d] = gradLoss * d loss / d features.
void lossBackward(const LossState& state, float gradLoss, float* grad, int threads);

}  // namespace supcon::cpu
