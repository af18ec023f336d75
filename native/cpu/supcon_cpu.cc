#include "supcon_cpu.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>

#include "../common/contrast_classes.h"
#include "../common/errors.h"
#include "thread_pool.h"

namespace supcon::cpu {
namespace {

int64_t roundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// The triangle's fixed shift must keep exp(s - shift) a normal float for every logit s in
// [-shift, shift], with room to spare for the sums: 2 shift <= 64 (exp(-64) = 1.6e-28).
constexpr double kTriangleRange = 64.0;

// One zeroed ticket per row block.
std::unique_ptr<std::atomic<int32_t>[]> makeTickets(int64_t blocks) {
  std::unique_ptr<std::atomic<int32_t>[]> t(new std::atomic<int32_t>[static_cast<size_t>(blocks)]);
  for (int64_t b = 0; b < blocks; ++b) t[b].store(0, std::memory_order_relaxed);
  return t;
}

}  // namespace

size_t LossState::bytes() const {
  return zw.bytes() + zc.bytes() + norms.bytes() + contrastNorms.bytes() + statA.bytes() +
         statB.bytes() + statC.bytes() + hasGrad.bytes() +
         (rowClass.size() + colClass.size() + selfColumn.size()) * sizeof(int32_t) +
         mask.size() * sizeof(float);
}

static KernelContext makeContext(const LossState& s, float* rowLoss, uint8_t* rowCounts,
                                 uint8_t* rowHasGrad, float* statG) {
  KernelContext ctx;
  ctx.zw = s.zw.data();
  ctx.zc = s.symmetric ? s.zw.data() : s.zc.data();
  ctx.n = s.n;
  ctx.B = s.B;
  ctx.M = s.M;
  ctx.ld = s.ld;
  ctx.numAnchors = s.numAnchors;
  ctx.rowClass = s.rowClass.data();
  ctx.colClass = s.symmetric ? s.rowClass.data() : s.colClass.data();
  ctx.selfColumn = s.selfColumn.data();
  ctx.mask = s.mask.empty() ? nullptr : s.mask.data();
  ctx.maskColumns = s.maskColumns;
  ctx.symmetric = s.symmetric;
  ctx.invTau = 1.0f / s.options.temperature;
  ctx.options = s.options;
  ctx.positiveTerm = positiveTermOf(s.options.variant, s.options.denominator);
  ctx.rowLoss = rowLoss;
  ctx.rowCounts = rowCounts;
  ctx.rowHasGrad = rowHasGrad;
  ctx.statA = const_cast<float*>(s.statA.data());
  ctx.statB = const_cast<float*>(s.statB.data());
  ctx.statC = const_cast<float*>(s.statC.data());
  ctx.statG = statG;
  ctx.shift = s.shift;
  return ctx;
}

namespace {
// The buffers of the workers that will run (at most one per block and per hardware thread),
// allocated on the calling thread; a worker past them allocates its own.
void preallocate(std::vector<AlignedBuffer<float>>& buffers, int64_t blocks, int64_t floats) {
  const int64_t n = std::min<int64_t>({static_cast<int64_t>(buffers.size()), blocks,
                                       static_cast<int64_t>(ThreadPool::hardwareThreads())});
  for (int64_t w = 0; w < n; ++w) buffers[static_cast<size_t>(w)] = AlignedBuffer<float>(static_cast<size_t>(floats));
}

// z = x, or x / max(|x|, eps) with |x| into *norm when normalising.
void prepareRow(const float* x, int64_t d, bool normalize, float* z, double* norm) {
  if (!normalize) {
    for (int64_t k = 0; k < d; ++k) z[k] = x[k];
    return;
  }
  // In double, from the row scaled by its largest magnitude: the loss is scale-invariant,
  // and so is this (a row near the float32 maximum neither overflows nor underflows).
  double peak = 0.0;
  for (int64_t k = 0; k < d; ++k) peak = std::max(peak, std::fabs(static_cast<double>(x[k])));
  double ss = 0.0;
  if (peak > 0.0)
    for (int64_t k = 0; k < d; ++k) {
      const double t = x[k] / peak;
      ss += t * t;
    }
  *norm = std::max(peak * std::sqrt(ss), static_cast<double>(1e-12f));
  // Divide (not multiply by 1/norm): a 1-d feature then becomes exactly +-1.
  for (int64_t k = 0; k < d; ++k) z[k] = static_cast<float>(x[k] / *norm);
}

// Through z = x / max(|x|, eps): dx = (dz - z (z . dz)) / |x|, or dz / eps when clamped.
void normalizeBackward(const float* z, double norm, int64_t d, float* out) {
  double dot = 0.0;
  if (norm > static_cast<double>(1e-12f))
    for (int64_t k = 0; k < d; ++k) dot += static_cast<double>(z[k]) * out[k];
  for (int64_t k = 0; k < d; ++k)
    out[k] = static_cast<float>((out[k] - static_cast<double>(z[k]) * dot) / norm);
}

// One buffer of `floats` for each of `workers` workers, allocated now: the triangle's blocks
// wait for one another, so none may fail (or allocate) once its loop runs.
std::vector<AlignedBuffer<float>> buffersForAll(int workers, int64_t floats) {
  std::vector<AlignedBuffer<float>> buffers;
  for (int w = 0; w < workers; ++w) buffers.emplace_back(static_cast<size_t>(floats));
  return buffers;
}

// Runs kernel(ctx, block * mb, scratch, dzt) over `blocks` blocks, then emit(first row, rows,
// dzt) on the same worker: each block writes only its own rows.
template <class Kernel, class Emit>
void runBackward(const LossState& s, int64_t rows, int threads, Kernel kernel, Emit emit) {
  const int64_t mb = s.kernels->rowBlock;
  const int64_t scratchFloats = s.kernels->scratchFloats(s.ld);
  const int workers = std::max(1, threads);
  std::vector<AlignedBuffer<float>> scratch(static_cast<size_t>(workers));
  std::vector<AlignedBuffer<float>> dzt(static_cast<size_t>(workers));
  const int64_t blocks = (rows + mb - 1) / mb;
  preallocate(scratch, blocks, scratchFloats);
  preallocate(dzt, blocks, s.ld * mb);
  ThreadPool::instance().parallelFor(blocks, workers, [&](int64_t block, int worker) {
    auto& buf = scratch[static_cast<size_t>(worker)];
    auto& acc = dzt[static_cast<size_t>(worker)];
    if (buf.size() == 0) {
      buf = AlignedBuffer<float>(static_cast<size_t>(scratchFloats));
      acc = AlignedBuffer<float>(static_cast<size_t>(s.ld * mb));
    }
    const int64_t r0 = block * mb;
    kernel(r0, buf.data(), acc.data());
    emit(r0, std::min(mb, rows - r0), acc.data());
  });
}
}  // namespace

std::unique_ptr<LossState> lossForward(const LossInput& in, const LossOptions& options,
                                       int threads) {
  auto st = std::make_unique<LossState>();
  LossState& s = *st;
  const ContrastInput* cin = in.contrast;
  s.kernels = &SUPCON_ACTIVE_TABLE(kKernels);
  s.n = in.n;
  s.v = in.v;
  s.d = in.d;
  s.B = in.n * in.v;
  s.ld = roundUp(in.d, s.kernels->width);
  s.numAnchors = options.contrastMode == ContrastMode::All ? s.B : s.n;
  s.options = options;
  s.symmetric = cin == nullptr;
  s.withAnchors = cin != nullptr && cin->withAnchors;
  s.contrastGradient = cin != nullptr && cin->gradient;
  s.m = cin != nullptr ? cin->m : 0;
  const int64_t own = s.symmetric || s.withAnchors ? s.B : 0;  // own rows in the contrast set
  s.M = own + s.m;
  const int64_t mb = s.kernels->rowBlock;
  const int64_t padded = roundUp(s.B, mb);

  s.zw = AlignedBuffer<float>(static_cast<size_t>(s.B) * static_cast<size_t>(s.ld));
  if (options.normalize) s.norms = AlignedBuffer<double>(s.B);
  s.statA = AlignedBuffer<float>(padded);
  s.statB = AlignedBuffer<float>(padded);
  s.statC = AlignedBuffer<float>(padded);
  s.hasGrad = AlignedBuffer<uint8_t>(padded);
  ContrastClasses classes = contrastClasses(
      in.n, in.v, in.labels, in.mask != nullptr, cin != nullptr ? cin->m : -1, cin != nullptr ? cin->labels : nullptr,
      cin != nullptr ? cin->positions : nullptr, s.withAnchors);
  s.rowClass = std::move(classes.rowClass);
  s.colClass = std::move(classes.colClass);
  s.selfColumn = std::move(classes.selfColumn);
  if (in.mask != nullptr) {
    s.maskColumns = s.symmetric ? s.n : (s.withAnchors ? s.n : 0) + s.m;
    s.mask.assign(in.mask, in.mask + in.n * s.maskColumns);
  }

  // Row r = view * n + sample holds features[sample][view].
  ThreadPool& pool = ThreadPool::instance();
  const int64_t rowChunks = (s.B + 255) / 256;
  pool.parallelFor(rowChunks, threads, [&](int64_t chunk, int) {
    const int64_t end = std::min(s.B, (chunk + 1) * 256);
    for (int64_t r = chunk * 256; r < end; ++r) {
      const int64_t sample = r % s.n, view = r / s.n;
      prepareRow(in.features + (sample * s.v + view) * s.d, s.d, options.normalize,
                 s.zw.data() + r * s.ld, options.normalize ? &s.norms[r] : nullptr);
    }
  });

  if (!s.symmetric) {
    s.zc = AlignedBuffer<float>(static_cast<size_t>(s.M) * static_cast<size_t>(s.ld));
    if (options.normalize) s.contrastNorms = AlignedBuffer<double>(s.M);
    for (int64_t c = 0; c < own; ++c) {
      std::copy(s.zw.data() + c * s.ld, s.zw.data() + (c + 1) * s.ld, s.zc.data() + c * s.ld);
      if (options.normalize) s.contrastNorms[c] = s.norms[c];
    }
    const int64_t chunks = (s.m + 255) / 256;
    pool.parallelFor(chunks, threads, [&](int64_t chunk, int) {
      const int64_t end = std::min(s.m, (chunk + 1) * 256);
      for (int64_t e = chunk * 256; e < end; ++e) {
        const int64_t c = own + e;
        prepareRow(cin->features + e * s.d, s.d, options.normalize, s.zc.data() + c * s.ld,
                   options.normalize ? &s.contrastNorms[c] : nullptr);
      }
    });
  }

  if (s.symmetric && s.mask.empty() && s.numAnchors == s.B &&
      options.denominator != Denominator::OnePositive) {
    // Every |s_ij| <= max |z|^2 / tau (Cauchy-Schwarz).
    double maxNorm2 = 0.0;
    for (int64_t r = 0; r < s.B; ++r) {
      const float* z = s.zw.data() + r * s.ld;
      double ss = 0.0;
      for (int64_t k = 0; k < s.d; ++k) ss += static_cast<double>(z[k]) * z[k];
      maxNorm2 = std::max(maxNorm2, ss);
    }
    const double shift = maxNorm2 / static_cast<double>(options.temperature);
    if (2.0 * shift <= kTriangleRange) {
      s.triangle = true;
      s.shift = static_cast<float>(shift);
    }
  }

  AlignedBuffer<float> rowLoss(padded);
  AlignedBuffer<uint8_t> rowCounts(padded);
  KernelContext ctx = makeContext(s, rowLoss.data(), rowCounts.data(), s.hasGrad.data(), nullptr);
  const int64_t scratchFloats = s.kernels->scratchFloats(s.ld);
  const int workers = std::max(1, threads);
  const int64_t blocks = (s.numAnchors + mb - 1) / mb;
  if (s.triangle) {
    AlignedBuffer<float> colDen(padded), colPosExp(padded), colSumPos(padded), colCount(padded);
    auto tickets = makeTickets(blocks);
    ctx.colDen = colDen.data();
    ctx.colPosExp = colPosExp.data();
    ctx.colSumPos = colSumPos.data();
    ctx.colCount = colCount.data();
    ctx.tickets = tickets.get();
    const int used = static_cast<int>(std::min<int64_t>(workers, blocks));
    auto scratch = buffersForAll(used, scratchFloats);
    pool.parallelFor(blocks, used, [&](int64_t block, int worker) {
      s.kernels->triangleForwardBlock(ctx, block * mb, scratch[static_cast<size_t>(worker)].data());
    });
  } else {
    // Scratch allocated here, on the calling thread: allocations on the pool's threads land
    // in glibc's per-thread arenas, which keep freed memory (RSS that grows over a long run).
    std::vector<AlignedBuffer<float>> scratch(static_cast<size_t>(workers));
    preallocate(scratch, blocks, scratchFloats);
    pool.parallelFor(blocks, workers, [&](int64_t block, int worker) {
      auto& buf = scratch[static_cast<size_t>(worker)];
      if (buf.size() == 0) buf = AlignedBuffer<float>(static_cast<size_t>(scratchFloats));
      s.kernels->forwardBlock(ctx, block * mb, buf.data());
    });
  }

  double sum = 0.0;
  int64_t counted = 0;
  for (int64_t r = 0; r < s.numAnchors; ++r) {
    sum += rowLoss[r];
    counted += rowCounts[r];
  }
  if (!options.excludeAnchorsWithoutPositives) counted = s.numAnchors;
  s.counted = counted;
  const double scale = static_cast<double>(options.temperature) / options.baseTemperature;
  s.loss = counted > 0 ? scale * sum / static_cast<double>(counted) : 0.0;
  if (!std::isfinite(s.loss))
    throw rangeError(
        "features: the loss overflowed float32; the logits z_i . z_j / temperature are too "
        "large (scale the features down, raise the temperature or pass normalize: true)");
  return st;
}

void lossBackward(const LossState& s, float gradLoss, float* grad, int threads, float* contrastGrad) {
  const int64_t mb = s.kernels->rowBlock;
  const int64_t padded = roundUp(s.B, mb);
  AlignedBuffer<float> statG(padded);
  if (s.counted > 0) {
    const double scale = static_cast<double>(s.options.temperature) / s.options.baseTemperature;
    const float g = static_cast<float>(scale * gradLoss / static_cast<double>(s.counted));
    for (int64_t r = 0; r < s.numAnchors; ++r) statG[r] = s.hasGrad[r] ? g : 0.0f;
  }
  KernelContext ctx = makeContext(s, nullptr, nullptr, nullptr, statG.data());
  const float invTau = 1.0f / s.options.temperature;
  auto featureRow = [&](int64_t r) {
    const int64_t sample = r % s.n, view = r / s.n;
    return grad + (sample * s.v + view) * s.d;
  };
  if (s.triangle) {
    // G_ij = rowA_i exp(s_ij - shift) over den(i), minus rowP_i (times exp(s_ij - shift)
    // for 'in') over P(i); rows without a gradient give exactly zero.
    AlignedBuffer<float> rowA(padded), rowP(padded);
    const bool expIn = ctx.positiveTerm == PositiveTerm::ExpIn;
    for (int64_t r = 0; r < s.B; ++r) {
      const double g = statG[r];
      if (g == 0.0) continue;
      rowA[r] = static_cast<float>(g * s.statC[r] * std::exp(static_cast<double>(s.shift) - s.statA[r]));
      rowP[r] = static_cast<float>(expIn ? g * std::exp(static_cast<double>(s.shift) - s.statB[r])
                                         : g * s.statB[r]);
    }
    const int64_t blocks = padded / mb;
    AlignedBuffer<float> dzAcc(static_cast<size_t>(s.B) * static_cast<size_t>(s.ld));
    auto tickets = makeTickets(blocks);
    ctx.rowA = rowA.data();
    ctx.rowP = rowP.data();
    ctx.dzAcc = dzAcc.data();
    ctx.tickets = tickets.get();
    const int used = static_cast<int>(std::min<int64_t>(std::max(1, threads), blocks));
    auto scratch = buffersForAll(used, s.kernels->scratchFloats(s.ld));
    auto dzt = buffersForAll(used, s.ld * mb);
    ThreadPool::instance().parallelFor(blocks, used, [&](int64_t block, int worker) {
      const int64_t r0 = block * mb;
      float* acc = dzt[static_cast<size_t>(worker)].data();
      s.kernels->triangleBackwardBlock(ctx, r0, scratch[static_cast<size_t>(worker)].data(), acc);
      waitTicket(tickets[block], static_cast<int32_t>(block));
      const int64_t rows = std::min(mb, s.B - r0);
      for (int64_t i = 0; i < rows; ++i) {
        const int64_t r = r0 + i;
        float* out = featureRow(r);
        const float* lower = dzAcc.data() + r * s.ld;
        for (int64_t k = 0; k < s.d; ++k) out[k] = (lower[k] + acc[k * mb + i]) * invTau;
        if (s.options.normalize) normalizeBackward(s.zw.data() + r * s.ld, s.norms[r], s.d, out);
      }
    });
    return;
  }
  // Own rows: sum_c H_rc zc_c (H = G + G^T without a contrast set).
  const bool finishOwn = s.symmetric || !s.withAnchors;
  const int64_t ownRows = s.symmetric ? s.B : s.numAnchors;
  runBackward(s, ownRows, threads,
              [&](int64_t r0, float* buf, float* acc) { s.kernels->backwardBlock(ctx, r0, buf, acc); },
              [&](int64_t r0, int64_t rows, const float* acc) {
                for (int64_t i = 0; i < rows; ++i) {
                  const int64_t r = r0 + i;
                  float* out = featureRow(r);
                  for (int64_t k = 0; k < s.d; ++k) out[k] = acc[k * mb + i] * invTau;
                  if (finishOwn && s.options.normalize)
                    normalizeBackward(s.zw.data() + r * s.ld, s.norms[r], s.d, out);
                }
              });
  if (s.symmetric) return;
  for (int64_t r = ownRows; r < s.B; ++r) std::fill(featureRow(r), featureRow(r) + s.d, 0.0f);
  // Contrast rows: sum_i G_ic z_i over the anchors; the own rows of withAnchors add theirs
  // into the features' gradient.
  const int64_t own = s.withAnchors ? s.B : 0;
  const int64_t contrastRows = s.contrastGradient && contrastGrad != nullptr ? s.M : own;
  runBackward(s, contrastRows, threads,
              [&](int64_t c0, float* buf, float* acc) { s.kernels->backwardContrastBlock(ctx, c0, buf, acc); },
              [&](int64_t c0, int64_t rows, const float* acc) {
                for (int64_t i = 0; i < rows; ++i) {
                  const int64_t c = c0 + i;
                  if (c < own) {
                    float* out = featureRow(c);
                    for (int64_t k = 0; k < s.d; ++k) out[k] += acc[k * mb + i] * invTau;
                    if (s.options.normalize) normalizeBackward(s.zw.data() + c * s.ld, s.norms[c], s.d, out);
                  } else {
                    float* out = contrastGrad + (c - own) * s.d;
                    for (int64_t k = 0; k < s.d; ++k) out[k] = acc[k * mb + i] * invTau;
                    if (s.options.normalize)
                      normalizeBackward(s.zc.data() + c * s.ld, s.contrastNorms[c], s.d, out);
                  }
                }
              });
}

}  // namespace supcon::cpu
