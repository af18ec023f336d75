// k nearest neighbours by cosine similarity on the CPU: for each test row, the k training
// rows most similar to it. The kNN accuracy monitor votes with them (lib/metrics/knn.ts).
#pragma once

#include <cstdint>

namespace supcon::cpu {

struct KnnInput {
  const float* train;  // [nTrain, d]
  int64_t nTrain;
  const float* test;   // [nTest, d]
  int64_t nTest;
  int64_t d;
  int64_t k;           // 1 <= k <= nTrain
};

// index / similarity [nTest, k], most similar first; equal similarities: lower index first.
// Rows are normalised here (a zero or non-finite row is an ArgumentError). The result does
// not depend on the thread count.
void knnTopK(const KnnInput& input, int32_t* index, float* similarity, int threads);
// The same with flat operands, as the one dispatch point (native/binding/nn.cc) calls its ops.
inline void knnTopK(const float* train, const float* test, int32_t* index, float* similarity, int64_t nTrain,
                    int64_t nTest, int64_t d, int64_t k, int threads) {
  knnTopK(KnnInput{train, nTrain, test, nTest, d, k}, index, similarity, threads);
}

// One tile of similarities, per instruction set (knn_kernel.inl): out[i][j] =
// sum_k test[i][k] * trainT[k][j0 + j] for i < rows, j < cols (cols a multiple of 2 vectors).
#define SUPCON_KNN_TILE_DECL                                                            \
  void knnSimilarityTile(const float* test, int rows, int64_t d, const float* trainT, \
                         int64_t ldT, int64_t j0, int cols, float* out)
namespace avx512 { SUPCON_KNN_TILE_DECL; }
namespace avx2 { SUPCON_KNN_TILE_DECL; }
namespace baseline { SUPCON_KNN_TILE_DECL; }
#undef SUPCON_KNN_TILE_DECL

// Columns per tile step of every kernel set: the transposed training matrix is padded to it.
constexpr int kKnnColumnAlign = 32;

}  // namespace supcon::cpu
