#include "supcon_unfused.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "aligned_buffer.h"
#include "thread_pool.h"

namespace supcon::cpu {

double unfusedLoss(const float* x, int64_t n, int64_t v, int64_t d, const int32_t* labels,
                   float tau, float base, float* grad, int threads) {
  const int64_t B = n * v;
  const size_t BB = static_cast<size_t>(B) * static_cast<size_t>(B);
  ThreadPool& pool = ThreadPool::instance();
  auto rows = [&](auto&& fn) { pool.parallelFor(B, threads, [&](int64_t i, int) { fn(i); }); };
  auto label = [&](int64_t r) { return labels ? labels[r % n] : static_cast<int32_t>(r % n); };

  AlignedBuffer<float> z(static_cast<size_t>(B * d));
  rows([&](int64_t r) {
    const float* src = x + ((r % n) * v + r / n) * d;
    std::copy(src, src + d, z.data() + r * d);
  });
  // S = Z Z^T / tau.
  AlignedBuffer<float> S(BB);
  rows([&](int64_t i) {
    const float* zi = z.data() + i * d;
    for (int64_t j = 0; j < B; ++j) {
      const float* zj = z.data() + j * d;
      float dot = 0.0f;
      for (int64_t k = 0; k < d; ++k) dot += zi[k] * zj[k];
      S[i * B + j] = dot / tau;
    }
  });
  // Row-wise log-softmax over j != i, the mean over positives, then G in place of S:
  // G_ij = g (P_ij - [j positive] / n_i).
  std::vector<double> rowLoss(B, 0.0);
  std::vector<float> rowScale(B, 0.0f);
  const float g = (tau / base) / static_cast<float>(B);
  rows([&](int64_t i) {
    float* s = S.data() + i * B;
    float m = -INFINITY;
    for (int64_t j = 0; j < B; ++j)
      if (j != i) m = std::max(m, s[j]);
    double sum = 0.0, sumPos = 0.0;
    int64_t npos = 0;
    for (int64_t j = 0; j < B; ++j) {
      if (j == i) continue;
      sum += std::exp(static_cast<double>(s[j] - m));
      if (label(j) == label(i)) {
        sumPos += s[j];
        ++npos;
      }
    }
    const double lse = m + std::log(sum);
    if (npos > 0) rowLoss[i] = lse - sumPos / static_cast<double>(npos);
    for (int64_t j = 0; j < B; ++j) {
      const bool pos = j != i && label(j) == label(i);
      s[j] = (j == i || npos == 0)
                 ? 0.0f
                 : g * (static_cast<float>(std::exp(s[j] - lse)) - (pos ? 1.0f / npos : 0.0f));
    }
  });
  // H = G + G^T, then dZ = H Z / tau.
  AlignedBuffer<float> H(BB);
  rows([&](int64_t i) {
    for (int64_t j = 0; j < B; ++j) H[i * B + j] = S[i * B + j] + S[j * B + i];
  });
  rows([&](int64_t i) {
    float* out = grad + ((i % n) * v + i / n) * d;
    std::fill(out, out + d, 0.0f);
    for (int64_t j = 0; j < B; ++j) {
      const float h = H[i * B + j] / tau;
      const float* zj = z.data() + j * d;
      for (int64_t k = 0; k < d; ++k) out[k] += h * zj[k];
    }
  });
  double total = 0.0;
  for (double l : rowLoss) total += l;
  return (tau / base) * total / static_cast<double>(B);
}

}  // namespace supcon::cpu
