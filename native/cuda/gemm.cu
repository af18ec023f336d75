// SGEMM on the GPU. A thread block computes a 64 x 64 tile of C with 8 warps, staging
// 64 x 32 slices of op(A) and op(B) through shared memory; the warp products are the
// engines of mma.cuh. Loads are bounds-checked (any M, N, K, strides and transposes).
#include <cuda_runtime.h>

#include "check.cuh"
#include "launch.cuh"
#include "gemm_cuda.h"
#include "mma.cuh"
#include "runtime.h"

namespace supcon::cuda {
namespace {

constexpr int BM = 64, BN = 64, BK = 32, PAD = 4, kThreads = 256;

template <class E>
__global__ void __launch_bounds__(kThreads) gemmKernel(GemmArgs p) {
  __shared__ float sa[BM][BK + PAD];  // op(A)[m][k]
  __shared__ float sb[BN][BK + PAD];  // op(B)[k][n], stored [n][k]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int wr = 16 * (warp & 3), wc = 32 * (warp >> 2);
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * BM, n0 = static_cast<int64_t>(blockIdx.x) * BN;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < p.K; k0 += BK) {
    for (int e = tid; e < BM * BK; e += kThreads) {
      // Consecutive threads walk the contiguous dimension of the stored matrix.
      const int r = p.transA ? e % BM : e / BK, k = p.transA ? e / BM : e % BK;
      const int64_t m = m0 + r, kk = k0 + k;
      sa[r][k] = (m < p.M && kk < p.K) ? (p.transA ? p.A[kk * p.lda + m] : p.A[m * p.lda + kk]) : 0.f;
      const int c = p.transB ? e / BK : e % BN, kb = p.transB ? e % BK : e / BN;
      const int64_t n = n0 + c, kb0 = k0 + kb;
      sb[c][kb] = (n < p.N && kb0 < p.K) ? (p.transB ? p.B[n * p.ldb + kb0] : p.B[kb0 * p.ldb + n]) : 0.f;
    }
    __syncthreads();
    const auto A = [&](int r, int k) { return sa[wr + r][k]; };
    const auto B = [&](int k, int c) { return sb[wc + c][k]; };
#pragma unroll
    for (int k = 0; k < BK; k += E::kStep) E::step(acc, A, B, k, g, t);
    __syncthreads();
  }
  forEachHeld(acc, wr, wc, g, t, [&](int r, int c, float& value) {
    const int64_t m = m0 + r, n = n0 + c;
    if (m >= p.M || n >= p.N) return;
    float* out = p.C + m * p.ldc + n;
    *out = p.beta == 0.f ? p.alpha * value : fmaf(p.beta, *out, p.alpha * value);
  });
}

// Benchmark operands: uniform in [-0.5, 0.5) from a hash of (seed, index).
__global__ void fillUniform(float* x, int64_t n, uint32_t seed) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  uint32_t h = static_cast<uint32_t>(i) * 0x9e3779b9u ^ seed * 0x85ebca6bu ^ static_cast<uint32_t>(i >> 32);
  h ^= h >> 16;
  h *= 0x7feb352du;
  h ^= h >> 15;
  h *= 0x846ca68bu;
  h ^= h >> 16;
  x[i] = static_cast<float>(h >> 8) * (1.0f / 16777216.0f) - 0.5f;
}

template <class E>
void launch(const GemmArgs& p) {
  const dim3 grid(static_cast<unsigned>((p.N + BN - 1) / BN), static_cast<unsigned>((p.M + BM - 1) / BM));
  launchKernel(std::string("gemmKernel<") + E::kName + ">", gemmKernel<E>, grid, kThreads, 0, stream(), p);
}

}  // namespace

void gemm(const GemmArgs& p, Precision precision) {
  if (p.M == 0 || p.N == 0) return;
  if ((p.M + BM - 1) / BM > 65535) throw CudaError("gemm: M is too large for one launch (at most 4194240 rows)", false);
  switch (precision) {
    case Precision::Fp32: launch<Fp32Engine>(p); break;
    case Precision::Tf32: launch<Tf32Engine>(p); break;
    case Precision::Bf16: launch<Bf16Engine>(p); break;
  }
  check(cudaGetLastError(), "running the GEMM kernel");
}

std::vector<float> timeGemm(int64_t M, int64_t N, int64_t K, Precision precision, int repeats) {
  std::string reason;
  if (!usable(&reason)) throw CudaError("the CUDA GEMM cannot run here: " + reason, false);
  struct Buffer {
    float* p;
    size_t bytes;
    explicit Buffer(size_t n) : p(static_cast<float*>(deviceAlloc(n * sizeof(float)))), bytes(n * sizeof(float)) {}
    ~Buffer() { deviceFree(p); }
  } a(static_cast<size_t>(M * K)), b(static_cast<size_t>(K * N)), c(static_cast<size_t>(M * N));
  launchKernel("fillUniform", fillUniform, static_cast<unsigned>((M * K + 255) / 256), 256, 0, stream(), a.p, M * K, 1u);
  launchKernel("fillUniform", fillUniform, static_cast<unsigned>((K * N + 255) / 256), 256, 0, stream(), b.p, K * N, 2u);
  check(cudaGetLastError(), "filling the GEMM operands");
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  check(cudaEventCreate(&e0), "creating timing events");
  check(cudaEventCreate(&e1), "creating timing events");
  std::vector<float> ms;
  try {
    const GemmArgs args{false, false, M, N, K, 1.f, a.p, K, b.p, N, 0.f, c.p, N};
    gemm(args, precision);  // warm-up
    for (int r = 0; r < repeats; ++r) {
      check(cudaEventRecord(e0, stream()), "recording an event");
      gemm(args, precision);
      check(cudaEventRecord(e1, stream()), "recording an event");
      check(cudaEventSynchronize(e1), "waiting for an event");
      float t = 0.f;
      check(cudaEventElapsedTime(&t, e0, e1), "reading an event");
      ms.push_back(t);
    }
  } catch (...) {
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    throw;
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  return ms;
}

}  // namespace supcon::cuda
