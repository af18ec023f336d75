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

// Contrast rows given apart from the anchors (docs/LOSS.md, "The contrast set").
struct ContrastInput {
  const float* features;     // [m, d]
  int64_t m;
  const int32_t* labels;     // [m], with the anchors' labels; or null
  const int32_t* positions;  // [n * v] (sample-major, as the features): the contrast row
                             // that is the anchor row itself, or -1; null for none
  bool withAnchors;          // the contrast set is the own rows (view-major) then these rows
  bool gradient;             // also d loss / d contrast rows
};

// Features [n, v, d] (sample-major, as given by the user); labels [n] or mask or neither
// (each sample its own class). The mask holds non-negative weights: [n, n] without a
// contrast set, [n, m] with one, [n, n + m] with withAnchors. The caller has validated
// shapes and values.
struct LossInput {
  const float* features;
  int64_t n, v, d;
  const int32_t* labels;
  const float* mask;
  const ContrastInput* contrast = nullptr;
};

// Everything the backward pass needs; O((B + M) * d + B + the mask) memory.
struct LossState {
  int64_t n = 0, v = 0, d = 0, ld = 0, B = 0, numAnchors = 0;
  int64_t M = 0;             // contrast rows (B without a contrast set)
  int64_t m = 0;             // contrast rows given by the caller (0 without a contrast set)
  int64_t maskColumns = 0;
  bool symmetric = true;     // no contrast set: the contrast rows are the own rows
  bool withAnchors = false;
  bool contrastGradient = false;
  // The symmetric triangle (KernelTable::triangleForwardBlock): every pair once, with the
  // fixed shift; chosen from the problem alone, so the bits do not depend on the threads.
  bool triangle = false;
  float shift = 0.0f;
  LossOptions options;
  const KernelTable* kernels = nullptr;
  double loss = 0.0;
  int64_t counted = 0;            // anchors in the mean
  AlignedBuffer<float> zw;        // [B, ld] working features
  AlignedBuffer<float> zc;        // [M, ld] contrast rows (empty when symmetric)
  AlignedBuffer<double> norms;    // [B] when normalising (double: |x| may pass FLT_MAX)
  AlignedBuffer<double> contrastNorms;  // [M] when normalising a contrast set
  AlignedBuffer<float> statA, statB, statC;
  AlignedBuffer<uint8_t> hasGrad;
  std::vector<int32_t> rowClass, colClass, selfColumn;
  std::vector<float> mask;
  size_t bytes() const;
};

std::unique_ptr<LossState> lossForward(const LossInput& input, const LossOptions& options,
                                       int threads);
// grad [n, v, d] = gradLoss * d loss / d features; contrastGrad [m, d] = gradLoss * d loss /
// d contrast rows (when the state has a contrast set with gradient, else ignored).
void lossBackward(const LossState& state, float gradLoss, float* grad, int threads,
                  float* contrastGrad = nullptr);

}  // namespace supcon::cpu
