// The linear layer on the GPU: its products are the GEMM of gemm_cuda.h (gradients added
// with beta = 1); the bias is broadcast and its gradient summed by two small kernels, each
// output written by one thread in a fixed order (the same bits run to run).
#include <cuda_runtime.h>

#include "check.cuh"
#include "gemm_cuda.h"
#include "launch.cuh"
#include "nn_cuda.h"
#include "runtime.h"

namespace supcon::cuda {
namespace {

constexpr int kThreads = 256;

// y [rows, cols] = b broadcast over the rows.
__global__ void broadcastRowsKernel(const float* b, float* y, int64_t rows, int64_t cols) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * cols) return;
  y[i] = b[i % cols];
}

// db [cols] += the column sums of dy [rows, cols], row by row (consecutive threads read
// consecutive columns).
__global__ void columnSumKernel(const float* dy, float* db, int64_t rows, int64_t cols) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= cols) return;
  float sum = 0.f;
  for (int64_t i = 0; i < rows; ++i) sum += dy[i * cols + j];
  db[j] += sum;
}

unsigned blocksFor(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  if (blocks > 0x7fffffff) throw CudaError("linear: the problem is too large for one launch", false);
  return static_cast<unsigned>(blocks);
}

GemmArgs product(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                 int64_t ldb, float beta, float* C, int64_t ldc) {
  return GemmArgs{ta, tb, M, N, K, 1.f, A, lda, B, ldb, beta, C, ldc};
}

}  // namespace

void linearForward(const float* x, const float* w, const float* b, float* y, int64_t N, int64_t in, int64_t out,
                   Precision precision) {
  if (b != nullptr) {
    launchKernel("broadcastRowsKernel", broadcastRowsKernel, dim3(blocksFor(N * out)), kThreads, 0, stream(), b, y, N,
                 out);
    check(cudaGetLastError(), "broadcasting the linear layer's bias");
  }
  // y [N, out] (+)= x [N, in] w^T.
  gemm(product(false, true, N, out, in, x, in, w, in, b != nullptr ? 1.f : 0.f, y, out), precision);
}

void linearBackward(const float* x, const float* w, const float* dy, float* dx, float* dw, float* db, int64_t N,
                    int64_t in, int64_t out, bool overwriteDx, Precision precision) {
  if (overwriteDx && dx != nullptr) memsetDevice(dx, 0, static_cast<size_t>(N * in) * sizeof(float));
  // dx [N, in] += dy [N, out] w [out, in]; dw [out, in] += dy^T x.
  if (dx != nullptr) gemm(product(false, false, N, in, out, dy, out, w, in, 1.f, dx, in), precision);
  if (dw != nullptr) gemm(product(true, false, out, in, N, dy, out, x, in, 1.f, dw, in), precision);
  if (db != nullptr) {
    launchKernel("columnSumKernel", columnSumKernel, dim3(blocksFor(out)), kThreads, 0, stream(), dy, db, N, out);
    check(cudaGetLastError(), "summing the linear layer's bias gradient");
  }
}

}  // namespace supcon::cuda
