// Fused optimizer steps: one pass over a parameter, its gradient and its state.
#include <algorithm>
#include <cmath>
#include <vector>

#include "nn_cpu.h"
#include "nn_kernels.h"
#include "thread_pool.h"

namespace supcon::cpu {

namespace {

constexpr int64_t kChunk = int64_t{1} << 15;

template <typename F>
void forChunks(int64_t n, int threads, F&& fn) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  ThreadPool::instance().parallelFor(chunks, threads, [&](int64_t c, int) {
    const int64_t b = c * kChunk;
    fn(b, std::min(kChunk, n - b));
  });
}

}  // namespace

double l2Norm(const float* x, int64_t n, int threads) {
  const NnKernelTable& kt = activeNn();
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<size_t>(chunks));
  ThreadPool::instance().parallelFor(chunks, threads, [&](int64_t c, int) {
    const int64_t b = c * kChunk;
    partial[static_cast<size_t>(c)] = kt.sumSquares(x + b, std::min(kChunk, n - b));
  });
  double s = 0.0;
  for (double v : partial) s += v;
  if (std::isfinite(s)) return std::sqrt(s);
  // The kernels sum squares in float32 lanes: values past about 1e19 overflow there. Again in
  // double, scaled by the largest magnitude (a non-finite input stays non-finite).
  double peak = 0.0;
  for (int64_t k = 0; k < n; ++k) peak = std::max(peak, std::fabs(static_cast<double>(x[k])));
  if (!std::isfinite(peak)) return peak;
  double t = 0.0;
  for (int64_t k = 0; k < n; ++k) {
    const double q = x[k] / peak;
    t += q * q;
  }
  return peak * std::sqrt(t);
}

void sgdStep(float* p, const float* g, float* buf, int64_t n, const nn::SgdParams& o,
             int threads) {
  const NnKernelTable& kt = activeNn();
  forChunks(n, threads, [&](int64_t b, int64_t len) {
    kt.sgdUpdate(p + b, g + b, buf == nullptr ? nullptr : buf + b, len, o);
  });
}

void larsStep(float* p, const float* g, float* buf, int64_t n, const nn::LarsParams& o,
              int threads) {
  const NnKernelTable& kt = activeNn();
  float scale = 1.0f, wd = 0.0f;
  if (o.adapt) {
    wd = o.weightDecay;
    // Trust ratio on the decayed gradient d = g + wd p: eta |p| / (|g| + wd |p| + eps).
    const double pn = l2Norm(p, n, threads), gn = l2Norm(g, n, threads);
    if (pn > 0.0 && gn > 0.0)
      scale = static_cast<float>(o.trustCoefficient * pn / (gn + o.weightDecay * pn + o.eps));
  }
  forChunks(n, threads, [&](int64_t b, int64_t len) {
    kt.larsUpdate(p + b, g + b, buf + b, len, o.lr, o.momentum, wd, scale);
  });
}

void adamwStep(float* p, const float* g, float* m, float* v, int64_t n,
               const nn::AdamWParams& o, int threads) {
  const NnKernelTable& kt = activeNn();
  forChunks(n, threads, [&](int64_t b, int64_t len) { kt.adamwUpdate(p + b, g + b, m + b, v + b, len, o); });
}

void rmspropStep(float* p, const float* g, float* sq, float* buf, int64_t n,
                 const nn::RmspropParams& o, int threads) {
  const NnKernelTable& kt = activeNn();
  forChunks(n, threads, [&](int64_t b, int64_t len) {
    kt.rmspropUpdate(p + b, g + b, sq + b, buf == nullptr ? nullptr : buf + b, len, o);
  });
}

}  // namespace supcon::cpu
