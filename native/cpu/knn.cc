#include "knn.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "../common/errors.h"
#include "aligned_buffer.h"
#include "isa.h"
#include "thread_pool.h"

namespace supcon::cpu {
namespace {

using TileFn = void (*)(const float*, int, int64_t, const float*, int64_t, int64_t, int, float*);

// The tile kernel of the active kernel set (setCpuKernels / SUPCON_CPU_KERNELS apply here too).
TileFn activeTile() { return SUPCON_ACTIVE_TABLE(knnSimilarityTile); }

// 1 / |row| in double; a zero or non-finite row cannot be compared by cosine. Kept in double:
// a row of norm below about 3e-39 has an inverse past the float32 maximum.
double inverseNorm(const float* row, int64_t d, const char* what, int64_t i) {
  double s = 0.0;
  for (int64_t k = 0; k < d; ++k) {
    if (!std::isfinite(row[k]))
      throw rangeError(std::string(what) + ": row " + std::to_string(i) + " holds a non-finite value");
    s += static_cast<double>(row[k]) * row[k];
  }
  if (s == 0.0)
    throw rangeError(std::string(what) + ": row " + std::to_string(i) +
                     " is all zeros; cosine similarity needs nonzero rows");
  return 1.0 / std::sqrt(s);
}

// A candidate neighbour; `a` is better than `b` when more similar, or as similar with a lower index.
struct Neighbour {
  float sim;
  int32_t index;
};
inline bool better(const Neighbour& a, const Neighbour& b) {
  return a.sim > b.sim || (a.sim == b.sim && a.index < b.index);
}

constexpr int kRowsPerBlock = 16;
constexpr int kColsPerTile = 512;
static_assert(kColsPerTile % kKnnColumnAlign == 0, "tiles must be whole steps");

}  // namespace

void knnTopK(const KnnInput& in, int32_t* index, float* similarity, int threads) {
  const int64_t d = in.d, k = in.k;
  const int64_t ldT = (in.nTrain + kKnnColumnAlign - 1) / kKnnColumnAlign * kKnnColumnAlign;
  // Normalised copies: training rows transposed and zero-padded, test rows as they are.
  AlignedBuffer<float> trainT(static_cast<size_t>(d * ldT));
  for (int64_t j = 0; j < in.nTrain; ++j) {
    const float* row = in.train + j * d;
    const double s = inverseNorm(row, d, "train", j);
    for (int64_t c = 0; c < d; ++c) trainT[c * ldT + j] = static_cast<float>(row[c] * s);
  }
  AlignedBuffer<float> test(static_cast<size_t>(in.nTest * d));
  for (int64_t i = 0; i < in.nTest; ++i) {
    const float* row = in.test + i * d;
    const double s = inverseNorm(row, d, "test", i);
    for (int64_t c = 0; c < d; ++c) test[i * d + c] = static_cast<float>(row[c] * s);
  }
  const TileFn tile = activeTile();
  const int64_t blocks = (in.nTest + kRowsPerBlock - 1) / kRowsPerBlock;
  ThreadPool::instance().parallelFor(blocks, threads, [&](int64_t block, int) {
    const int64_t i0 = block * kRowsPerBlock;
    const int rows = static_cast<int>(std::min<int64_t>(kRowsPerBlock, in.nTest - i0));
    AlignedBuffer<float> sims(static_cast<size_t>(kRowsPerBlock) * kColsPerTile);
    // One heap per row whose front is the worst of the best k so far.
    std::vector<std::vector<Neighbour>> heaps(rows);
    for (auto& h : heaps) h.reserve(static_cast<size_t>(k));
    for (int64_t j0 = 0; j0 < in.nTrain; j0 += kColsPerTile) {
      const int cols = static_cast<int>(std::min<int64_t>(kColsPerTile, ldT - j0));
      tile(test.data() + i0 * d, rows, d, trainT.data(), ldT, j0, cols, sims.data());
      const int valid = static_cast<int>(std::min<int64_t>(cols, in.nTrain - j0));
      for (int r = 0; r < rows; ++r) {
        auto& h = heaps[r];
        const float* s = sims.data() + static_cast<int64_t>(r) * cols;
        for (int c = 0; c < valid; ++c) {
          const Neighbour cand{s[c], static_cast<int32_t>(j0 + c)};
          if (static_cast<int64_t>(h.size()) < k) {
            h.push_back(cand);
            std::push_heap(h.begin(), h.end(), better);
          } else if (better(cand, h.front())) {
            std::pop_heap(h.begin(), h.end(), better);
            h.back() = cand;
            std::push_heap(h.begin(), h.end(), better);
          }
        }
      }
    }
    for (int r = 0; r < rows; ++r) {
      auto& h = heaps[r];
      std::sort(h.begin(), h.end(), better);
      for (int64_t q = 0; q < k; ++q) {
        index[(i0 + r) * k + q] = h[q].index;
        similarity[(i0 + r) * k + q] = h[q].sim;
      }
    }
  });
}

}  // namespace supcon::cpu
