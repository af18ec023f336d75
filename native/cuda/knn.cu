// The kNN search of the accuracy monitor on the GPU (knn_cuda.h), the twin of
// native/cpu/knn.cc: the same bits for the same inputs.
//   1. rows normalised as the CPU does: the sum of squares in double, in order, unfused;
//      each value times the inverse norm in double, then rounded to float. The training rows
//      are stored transposed, so a warp reads 32 consecutive training rows at once;
//   2. similarities of a chunk of test rows against every training row, one fused
//      multiply-add per dimension in order from 0 (the CPU's vector kernels do the same);
//   3. per test row, a radix select of the k-th best similarity (four passes of 8 bits with
//      integer counts, so no order of atomics shows), the rows above it and the first ties
//      by index, then a bitonic sort of those k by (similarity desc, index asc).
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>

#include "../common/errors.h"
#include "check.cuh"
#include "knn_cuda.h"
#include "launch.cuh"
#include "runtime.h"

namespace supcon::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kRowsPerThread = 8;  // test rows per similarity thread: each training value loaded once for 8
constexpr int64_t kScratchBytes = int64_t{256} << 20;

// Normalises rows [rows, d] into out: row-major (ld = d, transposed = 0) or transposed
// (out[k * ld + j], transposed = 1). A non-finite or zero row records 2 * row (+1 for zero)
// in *bad with atomicMin, so the first bad row by index is reported, as on the CPU.
__global__ void knnNormalizeKernel(const float* x, int64_t rows, int64_t d, float* out, int64_t ld, int transposed,
                                   long long* bad) {
  for (int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < rows;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float* row = x + j * d;
    double s = 0.0;
    bool finite = true;
    for (int64_t k = 0; k < d; ++k) {
      const double v = row[k];
      finite = finite && isfinite(row[k]);
      s = __dadd_rn(s, __dmul_rn(v, v));
    }
    if (!finite || s == 0.0) {
      atomicMin(bad, static_cast<long long>(2 * j + (finite ? 1 : 0)));
      continue;
    }
    const double inv = 1.0 / sqrt(s);
    for (int64_t k = 0; k < d; ++k) {
      const float v = static_cast<float>(__dmul_rn(static_cast<double>(row[k]), inv));
      if (transposed) out[k * ld + j] = v;
      else out[j * ld + k] = v;
    }
  }
}

// sims[r][j] = sum_k test[q0 + r][k] * trainT[k][j] for r < rows, one fma per k in order.
__global__ void knnSimilarityKernel(const float* test, int64_t rows, int64_t d, const float* trainT, int64_t nTrain,
                                    float* sims) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * kRowsPerThread;
  if (j >= nTrain) return;
  const int count = static_cast<int>(rows - r0 < kRowsPerThread ? rows - r0 : kRowsPerThread);
  float acc[kRowsPerThread];
  for (int r = 0; r < kRowsPerThread; ++r) acc[r] = 0.0f;
  for (int64_t k = 0; k < d; ++k) {
    const float b = trainT[k * nTrain + j];
    for (int r = 0; r < kRowsPerThread; ++r)
      if (r < count) acc[r] = fmaf(test[(r0 + r) * d + k], b, acc[r]);
  }
  for (int r = 0; r < count; ++r) sims[(r0 + r) * nTrain + j] = acc[r];
}

// An unsigned key in the order of the floats (finite similarities; -0 never occurs: every
// sum starts at +0).
__device__ __forceinline__ uint32_t orderKey(float f) {
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Whether (sa, ia) ranks before (sb, ib): more similar, or as similar with a lower index.
__device__ __forceinline__ bool before(float sa, int32_t ia, float sb, int32_t ib) {
  return sa > sb || (sa == sb && ia < ib);
}

// One block per test row of the chunk: the k best of sims[row][0, nTrain), sorted, into
// index / similarity [row, k]. Dynamic shared memory: `sorted` pairs (a power of two >= k).
__global__ void knnSelectKernel(const float* sims, int64_t nTrain, int64_t k, int sorted, int32_t* index,
                                float* similarity) {
  __shared__ int hist[256];
  __shared__ uint32_t prefix;
  __shared__ int64_t remaining;  // how many of the rows whose key starts with prefix are still to take
  __shared__ int taken;          // rows above the threshold placed so far
  __shared__ int scan[kThreads];
  __shared__ int64_t tiesBase;
  float* bestSim = dynamicShared<float>();
  int32_t* bestIndex = reinterpret_cast<int32_t*>(bestSim + sorted);
  const float* row = sims + static_cast<int64_t>(blockIdx.x) * nTrain;
  const int t = static_cast<int>(threadIdx.x);

  if (t == 0) {
    prefix = 0;
    remaining = k;
  }
  __syncthreads();
  for (int pass = 0; pass < 4; ++pass) {
    const int shift = 24 - 8 * pass;
    const uint32_t highMask = pass == 0 ? 0u : 0xFFFFFFFFu << (shift + 8);
    hist[t] = 0;  // kThreads == 256 bins
    __syncthreads();
    for (int64_t j = t; j < nTrain; j += kThreads) {
      const uint32_t key = orderKey(row[j]);
      if ((key & highMask) == (prefix & highMask)) atomicAdd(&hist[(key >> shift) & 0xFF], 1);
    }
    __syncthreads();
    if (t == 0) {
      int64_t above = 0;
      int digit = 255;
      for (; digit > 0; --digit) {
        if (above + hist[digit] >= remaining) break;
        above += hist[digit];
      }
      prefix |= static_cast<uint32_t>(digit) << shift;
      remaining -= above;
    }
    __syncthreads();
  }
  // prefix is the key of the k-th best; `remaining` of the rows with that key are taken.
  const uint32_t threshold = prefix;
  const int64_t ties = remaining;
  if (t == 0) {
    taken = 0;
    tiesBase = 0;
  }
  for (int i = t; i < sorted; i += kThreads) {
    bestSim[i] = -INFINITY;
    bestIndex[i] = INT32_MAX;
  }
  __syncthreads();
  const int64_t aboveCount = k - ties;
  for (int64_t j0 = 0; j0 < nTrain; j0 += kThreads) {
    const int64_t j = j0 + t;
    const float s = j < nTrain ? row[j] : 0.0f;
    const uint32_t key = j < nTrain ? orderKey(s) : 0u;
    if (j < nTrain && key > threshold) {
      const int at = atomicAdd(&taken, 1);
      bestSim[at] = s;
      bestIndex[at] = static_cast<int32_t>(j);
    }
    // The ties in index order: an inclusive scan of the flags over the block.
    scan[t] = (j < nTrain && key == threshold) ? 1 : 0;
    __syncthreads();
    for (int off = 1; off < kThreads; off <<= 1) {
      const int add = t >= off ? scan[t - off] : 0;
      __syncthreads();
      scan[t] += add;
      __syncthreads();
    }
    const int64_t position = tiesBase + scan[t] - 1;
    if (j < nTrain && key == threshold && position < ties) {
      bestSim[aboveCount + position] = s;
      bestIndex[aboveCount + position] = static_cast<int32_t>(j);
    }
    __syncthreads();
    if (t == 0) tiesBase += scan[kThreads - 1];
    __syncthreads();
  }
  // Bitonic sort of the `sorted` pairs, best first.
  for (int size = 2; size <= sorted; size <<= 1) {
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      for (int i = t; i < sorted; i += kThreads) {
        const int partner = i ^ stride;
        if (partner > i) {
          const bool ascending = (i & size) == 0;  // "ascending" = best first
          const bool swap = ascending ? before(bestSim[partner], bestIndex[partner], bestSim[i], bestIndex[i])
                                      : before(bestSim[i], bestIndex[i], bestSim[partner], bestIndex[partner]);
          if (swap) {
            const float s = bestSim[i];
            const int32_t x = bestIndex[i];
            bestSim[i] = bestSim[partner];
            bestIndex[i] = bestIndex[partner];
            bestSim[partner] = s;
            bestIndex[partner] = x;
          }
        }
      }
      __syncthreads();
    }
  }
  for (int64_t q = t; q < k; q += kThreads) {
    index[static_cast<int64_t>(blockIdx.x) * k + q] = bestIndex[q];
    similarity[static_cast<int64_t>(blockIdx.x) * k + q] = bestSim[q];
  }
}

unsigned blocksFor(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > 65535 ? 65535 : b));
}

// Normalises `rows` rows; throws the CPU's error for the first zero or non-finite row.
void normalizeRows(const float* x, int64_t rows, int64_t d, float* out, int64_t ld, bool transposed,
                   const char* what) {
  DeviceArray<long long> bad(1);
  const long long none = INT64_MAX;
  copyToDevice(bad.ptr, &none, sizeof none);
  launchKernel("knnNormalizeKernel", knnNormalizeKernel, blocksFor(rows), kThreads, 0, stream(), x, rows, d, out, ld,
               transposed ? 1 : 0, bad.ptr);
  check(cudaGetLastError(), "normalising the kNN rows");
  long long first = 0;
  copyToHost(&first, bad.ptr, sizeof first);
  if (first == INT64_MAX) return;
  const std::string at = std::string(what) + ": row " + std::to_string(first / 2);
  if (first % 2 == 0) throw rangeError(at + " holds a non-finite value");
  throw rangeError(at + " is all zeros; cosine similarity needs nonzero rows");
}

}  // namespace

void knnTopK(const float* train, const float* test, int32_t* index, float* similarity, int64_t nTrain, int64_t nTest,
             int64_t d, int64_t k) {
  if (k > kKnnMaxK)
    throw rangeError("k: expected at most " + std::to_string(kKnnMaxK) + " neighbours on CUDA, got " + std::to_string(k));
  DeviceArray<float> trainT(nTrain * d), testN(nTest * d);
  normalizeRows(train, nTrain, d, trainT.ptr, nTrain, true, "train");
  normalizeRows(test, nTest, d, testN.ptr, d, false, "test");
  int sorted = 1;
  while (sorted < k) sorted <<= 1;
  // Test rows per chunk: their similarities to every training row fit the scratch bound.
  const int64_t chunk = std::max<int64_t>(
      1, std::min<int64_t>({nTest, kScratchBytes / (4 * nTrain), int64_t{65535} * kRowsPerThread}));
  DeviceArray<float> sims(chunk * nTrain);
  for (int64_t q0 = 0; q0 < nTest; q0 += chunk) {
    const int64_t rows = std::min<int64_t>(chunk, nTest - q0);
    const dim3 grid(static_cast<unsigned>((nTrain + kThreads - 1) / kThreads),
                    static_cast<unsigned>((rows + kRowsPerThread - 1) / kRowsPerThread));
    launchKernel("knnSimilarityKernel", knnSimilarityKernel, grid, kThreads, 0, stream(), testN.ptr + q0 * d, rows, d,
                 trainT.ptr, nTrain, sims.ptr);
    check(cudaGetLastError(), "computing the kNN similarities");
    launchKernel("knnSelectKernel", knnSelectKernel, static_cast<unsigned>(rows), kThreads,
                 static_cast<size_t>(sorted) * (sizeof(float) + sizeof(int32_t)), stream(), sims.ptr, nTrain, k, sorted,
                 index + q0 * k, similarity + q0 * k);
    check(cudaGetLastError(), "selecting the kNN neighbours");
  }
}

}  // namespace supcon::cuda
