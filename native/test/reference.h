// A naive float64 SupCon loss and gradient, straight from the definitions (docs/LOSS.md):
// materialises the B x B logits. For tests only.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "../common/supcon_types.h"

namespace supcon::reference {

struct Result {
  double loss;
  std::vector<double> grad;  // [n, v, d]
};

inline double logSumExp(const std::vector<double>& xs) {
  if (xs.empty()) return -INFINITY;
  double m = -INFINITY;
  for (double x : xs) m = std::max(m, x);
  double s = 0;
  for (double x : xs) s += std::exp(x - m);
  return m + std::log(s);
}

// Loss of features x (as doubles); the gradient by forward differences of this function is
// what finite-difference tests compare against, and `grad` is its analytic gradient.
inline Result supcon(const std::vector<double>& x, int64_t n, int64_t v, int64_t d,
                     const int32_t* labels, const uint8_t* mask, const LossOptions& o) {
  const int64_t B = n * v;
  const int64_t A = o.contrastMode == ContrastMode::All ? B : n;
  std::vector<std::vector<double>> z(B, std::vector<double>(d));
  std::vector<double> norm(B, 1.0);
  for (int64_t r = 0; r < B; ++r) {
    const int64_t s = r % n, view = r / n;
    double ss = 0;
    for (int64_t k = 0; k < d; ++k) ss += x[(s * v + view) * d + k] * x[(s * v + view) * d + k];
    if (o.normalize) norm[r] = std::max(std::sqrt(ss), 1e-12);
    for (int64_t k = 0; k < d; ++k) z[r][k] = x[(s * v + view) * d + k] / norm[r];
  }
  auto pos = [&](int64_t i, int64_t j) {
    if (i == j) return false;
    const int64_t a = i % n, b = j % n;
    if (mask) return mask[a * n + b] != 0;
    if (labels) return labels[a] == labels[b];
    return a == b;
  };
  const double tau = o.temperature;
  std::vector<std::vector<double>> S(B, std::vector<double>(B));
  for (int64_t i = 0; i < B; ++i)
    for (int64_t j = 0; j < B; ++j) {
      double dot = 0;
      for (int64_t k = 0; k < d; ++k) dot += z[i][k] * z[j][k];
      S[i][j] = dot / tau;
    }
  // dl_i/ds_ij by the chain rule on each formula.
  std::vector<std::vector<double>> G(B, std::vector<double>(B, 0.0));
  std::vector<double> l(A, 0.0);
  std::vector<bool> counts(A, false);
  for (int64_t i = 0; i < A; ++i) {
    std::vector<double> den, posv;
    std::vector<int64_t> denIdx, posIdx;
    for (int64_t j = 0; j < B; ++j) {
      if (j == i) continue;
      const bool p = pos(i, j);
      if (p) { posv.push_back(S[i][j]); posIdx.push_back(j); }
      if (o.denominator == Denominator::All || !p) { den.push_back(S[i][j]); denIdx.push_back(j); }
    }
    const double np = static_cast<double>(posv.size());
    if (np == 0) continue;
    if (den.empty()) { counts[i] = o.denominator == Denominator::OnePositive; continue; }
    counts[i] = true;
    const double a = logSumExp(den);
    if (o.denominator == Denominator::OnePositive) {
      if (o.variant == Variant::Out) {
        double sum = 0;
        for (size_t q = 0; q < posv.size(); ++q) {
          const double t = a - posv[q];
          sum += t > 0 ? t + std::log1p(std::exp(-t)) : std::log1p(std::exp(t));
          const double sg = 1 / (1 + std::exp(-(a - posv[q])));
          G[i][posIdx[q]] -= sg / np;
          for (size_t e = 0; e < den.size(); ++e) G[i][denIdx[e]] += sg / np * std::exp(den[e] - a);
        }
        l[i] = sum / np;
      } else {
        // log Q through log sigmoid(x) = -softplus(-x): Q underflows for far positives.
        auto softplus = [](double t) { return t > 0 ? t + std::log1p(std::exp(-t)) : std::log1p(std::exp(t)); };
        std::vector<double> logSg(posv.size());
        for (size_t q = 0; q < posv.size(); ++q) logSg[q] = -softplus(a - posv[q]);
        const double logQ = logSumExp(logSg);
        l[i] = std::log(np) - logQ;
        for (size_t q = 0; q < posv.size(); ++q) {
          const double dsg = std::exp(logSg[q] - logQ) / (1 + std::exp(-(a - posv[q])));
          G[i][posIdx[q]] -= dsg;
          for (size_t e = 0; e < den.size(); ++e) G[i][denIdx[e]] += dsg * std::exp(den[e] - a);
        }
      }
    } else if (o.variant == Variant::Out) {
      double sp = 0;
      for (double s : posv) sp += s;
      l[i] = a - sp / np;
      for (size_t e = 0; e < den.size(); ++e) G[i][denIdx[e]] += std::exp(den[e] - a);
      for (int64_t j : posIdx) G[i][j] -= 1 / np;
    } else {
      const double b = logSumExp(posv);
      l[i] = a - b + std::log(np);
      for (size_t e = 0; e < den.size(); ++e) G[i][denIdx[e]] += std::exp(den[e] - a);
      for (size_t q = 0; q < posv.size(); ++q) G[i][posIdx[q]] -= std::exp(posv[q] - b);
    }
  }
  int64_t counted = A;
  if (o.excludeAnchorsWithoutPositives) {
    counted = 0;
    for (int64_t i = 0; i < A; ++i) counted += counts[i];
  }
  const double scale = tau / o.baseTemperature;
  Result res;
  res.loss = 0;
  res.grad.assign(B * d, 0.0);
  if (counted == 0) return res;
  for (int64_t i = 0; i < A; ++i) res.loss += l[i];
  res.loss *= scale / counted;
  // dz_r = (1/tau) sum_c (G_rc + G_cr) z_c, then back through the normalisation.
  std::vector<std::vector<double>> dz(B, std::vector<double>(d, 0.0));
  for (int64_t i = 0; i < A; ++i)
    for (int64_t j = 0; j < B; ++j) {
      const double g = G[i][j] * scale / counted / tau;
      if (g == 0) continue;
      for (int64_t k = 0; k < d; ++k) {
        dz[i][k] += g * z[j][k];
        dz[j][k] += g * z[i][k];
      }
    }
  for (int64_t r = 0; r < B; ++r) {
    const int64_t s = r % n, view = r / n;
    double dot = 0;
    if (o.normalize && norm[r] > 1e-12)
      for (int64_t k = 0; k < d; ++k) dot += z[r][k] * dz[r][k];
    for (int64_t k = 0; k < d; ++k)
      res.grad[(s * v + view) * d + k] = (dz[r][k] - (o.normalize ? z[r][k] * dot : 0)) / norm[r];
  }
  return res;
}

}  // namespace supcon::reference
