// Inner loops of the layers and optimizers for one instruction set. Element-wise loops are
// plain C++ that the compiler vectorises with this file's flags; reductions use explicit
// vectors (simd.h) so their order of summation is fixed.
//
// Included by nn_kernel_{avx512,avx2,baseline}.cc; SUPCON_SIMD_WIDTH and
// SUPCON_ISA_NAMESPACE are set there.
#include <cmath>

#include "nn_kernels.h"
#include "simd.h"

namespace supcon::cpu::SUPCON_ISA_NAMESPACE {
namespace {

using namespace supcon::simd;
constexpr int W = kWidth;
// Partial sums in float over blocks of this many elements, then into double.
constexpr int64_t kBlock = 1024;

void reluForward(const float* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void reluBackward(const float* __restrict y, const float* __restrict dy, float* __restrict dx,
                  int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] += y[i] > 0.0f ? dy[i] : 0.0f;
}

void add(const float* __restrict a, const float* __restrict b, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

void addInto(float* __restrict y, const float* __restrict x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void scaleShift(const float* __restrict x, float* __restrict y, int64_t n, float scale,
                float shift) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale + shift;
}

float hsum(VF v) {
  float s = 0.0f;
  for (int l = 0; l < W; ++l) s += v[l];
  return s;
}

void centeredMoments(const float* x, int64_t n, float shift, double* sums) {
  for (int64_t b0 = 0; b0 < n; b0 += kBlock) {
    const int64_t b1 = b0 + kBlock < n ? b0 + kBlock : n;
    VF s = splat(0.0f), q = splat(0.0f);
    int64_t i = b0;
    for (; i + W <= b1; i += W) {
      const VF d = load(x + i) - shift;
      s += d;
      q += d * d;
    }
    float ss = hsum(s), qq = hsum(q);
    for (; i < b1; ++i) {
      const float d = x[i] - shift;
      ss += d;
      qq += d * d;
    }
    sums[0] += ss;
    sums[1] += qq;
  }
}

void gradMoments(const float* x, const float* dy, int64_t n, float mean, double* sums) {
  for (int64_t b0 = 0; b0 < n; b0 += kBlock) {
    const int64_t b1 = b0 + kBlock < n ? b0 + kBlock : n;
    VF s = splat(0.0f), q = splat(0.0f);
    int64_t i = b0;
    for (; i + W <= b1; i += W) {
      const VF g = load(dy + i);
      s += g;
      q += g * (load(x + i) - mean);
    }
    float ss = hsum(s), qq = hsum(q);
    for (; i < b1; ++i) {
      ss += dy[i];
      qq += dy[i] * (x[i] - mean);
    }
    sums[0] += ss;
    sums[1] += qq;
  }
}

void affineGrad(const float* __restrict x, const float* __restrict dy, float* __restrict dx,
                int64_t n, float k1, float k2, float mean, float k3) {
  for (int64_t i = 0; i < n; ++i) dx[i] += k1 * dy[i] + k2 * (x[i] - mean) + k3;
}

double sumSquares(const float* x, int64_t n) {
  double total = 0.0;
  for (int64_t b0 = 0; b0 < n; b0 += kBlock) {
    const int64_t b1 = b0 + kBlock < n ? b0 + kBlock : n;
    VF q = splat(0.0f);
    int64_t i = b0;
    for (; i + W <= b1; i += W) {
      const VF v = load(x + i);
      q += v * v;
    }
    float qq = hsum(q);
    for (; i < b1; ++i) qq += x[i] * x[i];
    total += qq;
  }
  return total;
}

void sgdUpdate(float* __restrict p, const float* __restrict g, float* __restrict buf, int64_t n,
               const nn::SgdParams& o) {
  const float lr = o.lr, wd = o.weightDecay, mu = o.momentum, damp = 1.0f - o.dampening;
  if (mu == 0.0f) {
    for (int64_t i = 0; i < n; ++i) p[i] -= lr * (g[i] + wd * p[i]);
    return;
  }
  if (o.firstStep) {
    for (int64_t i = 0; i < n; ++i) buf[i] = g[i] + wd * p[i];
  } else {
    for (int64_t i = 0; i < n; ++i) buf[i] = mu * buf[i] + damp * (g[i] + wd * p[i]);
  }
  if (o.nesterov) {
    for (int64_t i = 0; i < n; ++i) p[i] -= lr * (g[i] + wd * p[i] + mu * buf[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) p[i] -= lr * buf[i];
  }
}

void larsUpdate(float* __restrict p, const float* __restrict g, float* __restrict buf, int64_t n,
                float lr, float momentum, float weightDecay, float scale) {
  for (int64_t i = 0; i < n; ++i) {
    buf[i] = momentum * buf[i] + scale * (g[i] + weightDecay * p[i]);
    p[i] -= lr * buf[i];
  }
}

void adamwUpdate(float* __restrict p, const float* __restrict g, float* __restrict m,
                 float* __restrict v, int64_t n, const nn::AdamWParams& o) {
  const double t = static_cast<double>(o.step);
  const float bc1 = static_cast<float>(1.0 - std::pow(static_cast<double>(o.beta1), t));
  const float bc2 = static_cast<float>(1.0 - std::pow(static_cast<double>(o.beta2), t));
  const float stepSize = o.lr / bc1, invSqrtBc2 = 1.0f / std::sqrt(bc2);
  const float decay = 1.0f - o.lr * o.weightDecay, b1 = o.beta1, b2 = o.beta2, eps = o.eps;
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    m[i] = b1 * m[i] + (1.0f - b1) * gi;
    v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
    p[i] = p[i] * decay - stepSize * m[i] / (std::sqrt(v[i]) * invSqrtBc2 + eps);
  }
}

void rmspropUpdate(float* __restrict p, const float* __restrict g, float* __restrict sq,
                   float* __restrict buf, int64_t n, const nn::RmspropParams& o) {
  const float a = o.alpha, wd = o.weightDecay, eps = o.eps, lr = o.lr, mu = o.momentum;
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i] + wd * p[i];
    sq[i] = a * sq[i] + (1.0f - a) * gi * gi;
    const float step = gi / (std::sqrt(sq[i]) + eps);
    if (mu > 0.0f) {
      buf[i] = mu * buf[i] + step;
      p[i] -= lr * buf[i];
    } else {
      p[i] -= lr * step;
    }
  }
}

}  // namespace

extern const NnKernelTable kNnKernels = {
    SUPCON_ISA_LABEL, reluForward,  reluBackward, add,       addInto,     scaleShift,
    centeredMoments,  gradMoments,  affineGrad,   sumSquares, sgdUpdate,  larsUpdate,
    adamwUpdate,      rmspropUpdate,
};

}  // namespace supcon::cpu::SUPCON_ISA_NAMESPACE
