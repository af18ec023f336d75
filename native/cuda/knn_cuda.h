// The kNN search of the accuracy monitor on the GPU (knn.cu), the twin of cpu::knnTopK
// (native/cpu/knn.h): the same neighbours and similarities, bit for bit.
#pragma once

#include <cstdint>

namespace supcon::cuda {

// The most neighbours one search returns on CUDA (they are sorted in shared memory).
constexpr int64_t kKnnMaxK = 2048;

// Device pointers: train [nTrain, d], test [nTest, d]; index / similarity [nTest, k], most
// similar first, equal similarities by lower index. A zero or non-finite row, or k past
// kKnnMaxK, is an ArgumentError.
void knnTopK(const float* train, const float* test, int32_t* index, float* similarity, int64_t nTrain, int64_t nTest,
             int64_t d, int64_t k);

}  // namespace supcon::cuda
