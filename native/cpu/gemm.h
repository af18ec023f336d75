// Single-precision GEMM of our own: C = alpha * op(A) op(B) + beta * C, row-major.
//
// op(A) is M x K, op(B) is K x N, C is M x N. With transA, A is stored K x M (so op(A) =
// A^T); likewise transB. lda / ldb / ldc are the row strides of the stored matrices.
// beta = 0 never reads C (so C may hold anything, NaN included).
//
// Results do not depend on the thread count: every element of C is computed by one thread
// with a fixed order of summation.
#pragma once

#include <cstdint>

namespace supcon::cpu {

struct GemmDesc {
  bool transA = false;
  bool transB = false;
  // B is already in the packed layout of packedBLayout(K, N) (transB and ldb unused): a
  // producer such as im2col writes it there directly and saves the GEMM a pass.
  bool packedB = false;
  // A is already in the packed layout of packedALayout(M, K) (transA and lda unused), made
  // once by packA() and reused, e.g. a convolution's weights across groups of images.
  bool packedA = false;
  int64_t M = 0, N = 0, K = 0;
  float alpha = 1.0f;
  const float* A = nullptr;
  int64_t lda = 0;
  const float* B = nullptr;
  int64_t ldb = 0;
  float beta = 0.0f;
  float* C = nullptr;
  int64_t ldc = 0;
};

// Where element (k, j) of a K x N matrix lives in the packed layout the GEMM reads B in:
// slices of kc rows of k, each a run of panels of nr columns, each panel k-major. Columns
// past N (up to a whole panel) must hold zeros.
struct PackedBLayout {
  int64_t K, N, kc, nr, paddedN;
  int64_t floats() const { return K * paddedN; }
  int64_t offset(int64_t k, int64_t j) const {
    const int64_t slice = k / kc, kk = k - slice * kc;
    const int64_t rows = K - slice * kc < kc ? K - slice * kc : kc;
    return slice * kc * paddedN + (j / nr) * rows * nr + kk * nr + j % nr;
  }
};
PackedBLayout packedBLayout(int64_t K, int64_t N);

// The packed layout of an M x K matrix A: slices of kc columns of k, each a run of panels
// of mr rows, each panel k-major.
struct PackedALayout {
  int64_t M, K, kc, mr, paddedM;
  int64_t floats() const { return K * paddedM; }
};
PackedALayout packedALayout(int64_t M, int64_t K);
// Packs op(A) of d (A, lda, transA, M, K) into dst (packedALayout(d.M, d.K).floats()).
void packA(const GemmDesc& d, float* dst, int threads);

// out[k * width + i] = src[i][k] for i < n, 0 for n <= i < width, k < kc: the transposing
// copy the packs use (vector blocks of the active kernel set), for producers that write a
// packed operand themselves.
void transposeRows(const float* const* src, int n, int width, int64_t kc, float* out);

// Runs on up to `threads` threads of the shared pool (1: the calling thread only, which is
// what code already inside a parallelFor must pass).
void sgemm(const GemmDesc& d, int threads);

// Measured FMA throughput of this machine with the active kernel set: GFLOP/s over
// `threads` threads running independent FMA chains for about `seconds`.
double fmaPeakGflops(int threads, double seconds);

}  // namespace supcon::cpu
