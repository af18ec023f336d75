// The similarity tile of the kNN search, for one instruction set (included by
// knn_kernel_{avx512,avx2,baseline}.cc with SUPCON_SIMD_WIDTH and SUPCON_ISA_NAMESPACE set).
// The training rows are stored transposed (trainT[k][j]), so a vector holds W training rows
// and each step is a broadcast of one test value times a vector: no horizontal sums.
#include "knn.h"
#include "simd.h"

namespace supcon::cpu::SUPCON_ISA_NAMESPACE {

using namespace supcon::simd;

namespace {

constexpr int W = kWidth;
constexpr int R = 4;  // test rows per micro-kernel step
static_assert(kKnnColumnAlign % (2 * W) == 0, "padding must hold whole micro-kernel steps");

template <int Rows>
inline void microKernel(const float* test, int64_t d, const float* trainT, int64_t ldT, int64_t j,
                        float* out, int cols) {
  VF acc[Rows][2];
  for (int r = 0; r < Rows; ++r) acc[r][0] = acc[r][1] = splat(0.0f);
  for (int64_t k = 0; k < d; ++k) {
    const float* b = trainT + k * ldT + j;
    const VF b0 = load(b), b1 = load(b + W);
    for (int r = 0; r < Rows; ++r) {
      const VF a = splat(test[r * d + k]);
      acc[r][0] += a * b0;
      acc[r][1] += a * b1;
    }
  }
  for (int r = 0; r < Rows; ++r) {
    store(out + r * cols, acc[r][0]);
    store(out + r * cols + W, acc[r][1]);
  }
}

}  // namespace

void knnSimilarityTile(const float* test, int rows, int64_t d, const float* trainT, int64_t ldT,
                       int64_t j0, int cols, float* out) {
  for (int c = 0; c < cols; c += 2 * W) {
    int i = 0;
    for (; i + R <= rows; i += R)
      microKernel<R>(test + i * d, d, trainT, ldT, j0 + c, out + i * cols + c, cols);
    for (; i < rows; ++i) microKernel<1>(test + i * d, d, trainT, ldT, j0 + c, out + i * cols + c, cols);
  }
}

}  // namespace supcon::cpu::SUPCON_ISA_NAMESPACE
