// Per-row pieces of the layer kernels that the CPU (native/cpu/nn_cpu.cc) and its CUDA
// twin (native/cuda/nn.cu) share, so that both compute the same bits in the same order.
#pragma once

#include <float.h>
#include <math.h>

#include <cstdint>

#include "supcon_types.h"  // SUPCON_HD

namespace supcon::nn {

// log sum_k exp(z[k]) of one row of logits, shifted by the row's maximum; the sum in double.
SUPCON_HD double rowLogSumExp(const float* z, int64_t classes) {
  float m = z[0];
  for (int64_t k = 1; k < classes; ++k) m = m < z[k] ? z[k] : m;
  double s = 0.0;
  for (int64_t k = 0; k < classes; ++k) s += exp(static_cast<double>(z[k] - m));
  return m + log(s);
}

// L2 normalisation of one row: y = x / max(|x|, eps), norm = |x| (at most FLT_MAX). The sum
// of squares, the norm and the division in double: a row near the float32 maximum has a norm
// past it (in float the norm was Infinity and the row came out 0).
SUPCON_HD void l2NormalizeForwardRow(const float* xr, float* yr, float* norm, int64_t dim, float eps) {
  double ss = 0.0;
  for (int64_t k = 0; k < dim; ++k) ss += static_cast<double>(xr[k]) * xr[k];
  const double n = sqrt(ss);
  *norm = static_cast<float>(fmin(n, static_cast<double>(FLT_MAX)));
  const double den = fmax(n, static_cast<double>(eps));
  for (int64_t k = 0; k < dim; ++k) yr[k] = static_cast<float>(xr[k] / den);
}

// L2 normalisation backward for one row: out += d y / d x^T gy, with y = x / max(|x|, eps).
SUPCON_HD void l2NormalizeBackwardRow(const float* yr, float norm, const float* gr, float* out, int64_t dim,
                                      float eps) {
  if (norm <= eps) {
    // Clamped: y = x / eps is linear in x.
    for (int64_t k = 0; k < dim; ++k) out[k] += gr[k] / eps;
    return;
  }
  double dot = 0.0;
  for (int64_t k = 0; k < dim; ++k) dot += static_cast<double>(yr[k]) * gr[k];
  const float fdot = static_cast<float>(dot), inv = 1.0f / norm;
  for (int64_t k = 0; k < dim; ++k) out[k] += (gr[k] - yr[k] * fdot) * inv;
}

}  // namespace supcon::nn
