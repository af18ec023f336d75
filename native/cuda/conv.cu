// Convolution on the GPU as implicit GEMM on the tile engines of mma.cuh: no im2col buffer
// in global memory; each 64 x 32 slice of the virtual column matrix is gathered from the
// image into shared memory (zero outside it) as the product walks its reduction dimension.
//
//   forward        y [N*P*Q, K]     = im2col(x) [N*P*Q, C*R*S] * w^T [C*R*S, K]   (+ b)
//   backward data  dx [N*H*W, C]   += gather(dy) [N*H*W, K*R*S] * w' [K*R*S, C]
//                  (the adjoint as a gather: each input pixel sums the output pixels whose
//                  window covers it, so every dx element is written by one thread)
//   backward wgt.  dw [K, C*R*S]   += dy^T [K, N*P*Q] * im2col(x) [N*P*Q, C*R*S]
//                  (the reduction over N*P*Q split into a fixed number of ranges, each
//                  into its own partial buffer, added in order: no atomics, the same bits
//                  run to run)
//   bias gradient  db [K]          += sum of dy over N, P, Q (a fixed tree per channel)
//
// A thread block computes a 64 x 64 output tile with 8 warps (the engines' layout); every
// load is bounds-checked, so any sizes, strides, paddings and kernel sizes work. The next
// slice is gathered into registers while the tensor cores multiply the current one.
#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "check.cuh"
#include "launch.cuh"
#include "mma.cuh"
#include "nn_cuda.h"
#include "runtime.h"

namespace supcon::cuda {
namespace {

constexpr int BM = 64, BN = 64, BK = 32, PAD = 4, kThreads = 256;
// Each thread stages 8 values of each operand per slice.
constexpr int kPerThread = BM * BK / kThreads;
static_assert(BM * BK % kThreads == 0 && BN * BK % kThreads == 0, "the tile loads divide evenly");

// A position in a three-digit mixed-radix number (hi, md, lw), md < mid and lw < lo: a
// reduction index j = (c, r, s) or an output pixel (n, p, q). Walking a tile's indices
// by a fixed step adds the step's digits with carries: no division in the inner loops.
struct Digits {
  int32_t hi, md, lw;
};

struct Radix {
  int32_t mid, lo;
  __host__ __device__ Digits of(int64_t v) const {
    const int64_t a = v / lo;
    return Digits{static_cast<int32_t>(a / mid), static_cast<int32_t>(a % mid), static_cast<int32_t>(v % lo)};
  }
  // d + step, both with md < mid and lw < lo: one carry per digit at most.
  __device__ __forceinline__ void advance(Digits& d, const Digits& step) const {
    d.lw += step.lw;
    if (d.lw >= lo) d.lw -= lo, ++d.md;
    d.md += step.md;
    if (d.md >= mid) d.md -= mid, ++d.hi;
    d.hi += step.hi;
  }
};

// Plain-value view of the descriptor, passed to the kernels by value.
struct ConvShape {
  int64_t N, C, H, W, K, R, S, sh, sw, ph, pw, P, Q;
  int64_t RS, CRS, PQ, HW;
  Radix tap;      // j = (c or k, r, s): radices R, S
  Radix pixel;    // o = (n, p, q): radices P, Q
  Radix flatTap;  // j = (k, rs): radices 1, R S
};

ConvShape shapeOf(const nn::Conv2dDesc& d) {
  ConvShape s{d.N, d.C, d.H, d.W, d.K, d.R, d.S, d.strideH, d.strideW, d.padH, d.padW, d.P, d.Q, 0, 0, 0, 0, {}, {}, {}};
  s.RS = d.R * d.S;
  s.CRS = d.C * s.RS;
  s.PQ = d.P * d.Q;
  s.HW = d.H * d.W;
  // The digits are 32-bit: every reduction length and plane must fit.
  constexpr int64_t kMax = 0x7fffffff;
  if (s.CRS > kMax || d.K * s.RS > kMax || s.PQ > kMax || s.HW > kMax || d.N > kMax)
    throw CudaError("conv2d: a plane or a reduction of more than 2^31 - 1 values is too large for the CUDA kernels", false);
  s.tap = Radix{static_cast<int32_t>(d.R), static_cast<int32_t>(d.S)};
  s.pixel = Radix{static_cast<int32_t>(d.P), static_cast<int32_t>(d.Q)};
  s.flatTap = Radix{1, static_cast<int32_t>(s.RS)};
  return s;
}

using Tile = float[BM][BK + PAD];

// acc += sa [64 x BK] * sb^T [BK x 64] for the warp's 16 x 32 block.
template <class E>
__device__ __forceinline__ void multiplySlice(float (&acc)[4][4], const Tile& sa, const Tile& sb, int wr, int wc, int g,
                                              int t) {
  const auto A = [&](int r, int k) { return sa[wr + r][k]; };
  const auto B = [&](int k, int c) { return sb[wc + c][k]; };
#pragma unroll
  for (int k = 0; k < BK; k += E::kStep) E::step(acc, A, B, k, g, t);
}

// The main loop of the three kernels over the reduction [begin, end) in slices of BK:
// load(j0, va, vb) gathers a slice's values of both operands into registers (and walks the
// kernel's indices on), store(va, vb) puts them in shared memory. The next slice's loads
// are issued before this slice's product, so their latency hides behind it.
template <class E, class Load, class Store>
__device__ __forceinline__ void mainLoop(float (&acc)[4][4], const Tile& sa, const Tile& sb, int64_t begin, int64_t end,
                                         Load&& load, Store&& store, int wr, int wc, int g, int t) {
  float va[kPerThread], vb[kPerThread];
  if (begin < end) load(begin, va, vb);
  for (int64_t j0 = begin; j0 < end; j0 += BK) {
    store(va, vb);
    __syncthreads();
    if (j0 + BK < end) load(j0 + BK, va, vb);
    multiplySlice<E>(acc, sa, sb, wr, wc, g, t);
    __syncthreads();
  }
}

// The forward and backward-data layout of a thread's values in a slice: A row ar at
// reduction positions ak + 4 i, B column bc + 8 i at reduction position bk.
__device__ __forceinline__ void storeByRows(Tile& sa, Tile& sb, int ar, int ak, int bc, int bk,
                                            const float (&va)[kPerThread], const float (&vb)[kPerThread]) {
#pragma unroll
  for (int i = 0; i < kPerThread; ++i) {
    sa[ar][ak + i * (kThreads / BM)] = va[i];
    sb[bc + i * (kThreads / BK)][bk] = vb[i];
  }
}

// ---------------------------------------------------------------------------------------
// Forward: rows m = (n, p, q), columns k, reduction j = (c, r, s).

template <class E>
__global__ void __launch_bounds__(kThreads)
    convForwardKernel(ConvShape s, const float* x, const float* w, const float* b, float* y) {
  __shared__ Tile sa;  // im2col(x) [m][j]
  __shared__ Tile sb;  // w [k][j]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int wr = 16 * (warp & 3), wc = 32 * (warp >> 2);
  const int64_t M = s.N * s.PQ;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * BM, n0 = static_cast<int64_t>(blockIdx.y) * BN;
  // The thread's A row (consecutive threads: consecutive output pixels) and B column slot.
  const int ar = tid % BM, ak = tid / BM;
  const int64_t m = m0 + ar;
  const bool rowValid = m < M;
  const int64_t img = rowValid ? m / s.PQ : 0, pq = rowValid ? m % s.PQ : 0;
  const int64_t h0 = (pq / s.Q) * s.sh - s.ph, w0 = (pq % s.Q) * s.sw - s.pw;
  const float* xn = x + img * s.C * s.HW;
  const int bk = tid % BK, bc = tid / BK;
  // (c, r, s) of the thread's first A value in the slice, and the steps between values.
  Digits base = s.tap.of(ak);
  const Digits along = s.tap.of(kThreads / BM), next = s.tap.of(BK);
  const auto load = [&](int64_t j0, float (&va)[kPerThread], float (&vb)[kPerThread]) {
    Digits at = base;
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) {
      const int kl = ak + i * (kThreads / BM);
      float v = 0.f;
      if (rowValid && j0 + kl < s.CRS) {
        const int64_t h = h0 + at.md, ww = w0 + at.lw;
        if (h >= 0 && h < s.H && ww >= 0 && ww < s.W) v = xn[(at.hi * s.H + h) * s.W + ww];
      }
      if (i + 1 < kPerThread) s.tap.advance(at, along);
      va[i] = v;
      const int64_t k = n0 + bc + i * (kThreads / BK), jb = j0 + bk;
      vb[i] = (k < s.K && jb < s.CRS) ? w[k * s.CRS + jb] : 0.f;
    }
    s.tap.advance(base, next);
  };
  const auto store = [&](const float (&va)[kPerThread], const float (&vb)[kPerThread]) {
    storeByRows(sa, sb, ar, ak, bc, bk, va, vb);
  };
  float acc[4][4] = {};
  mainLoop<E>(acc, sa, sb, 0, s.CRS, load, store, wr, wc, g, t);
  forEachHeld(acc, wr, wc, g, t, [&](int r, int c, float& value) {
    const int64_t mm = m0 + r, k = n0 + c;
    if (mm >= M || k >= s.K) return;
    const int64_t n = mm / s.PQ, p = mm % s.PQ;
    y[(n * s.K + k) * s.PQ + p] = b != nullptr ? value + b[k] : value;
  });
}

// ---------------------------------------------------------------------------------------
// Backward data: rows m = (n, h, w) of dx, columns c, reduction j = (k, r, s); the A value
// is dy at the output pixel whose window puts tap (r, s) on (h, w), if there is one.

template <class E>
__global__ void __launch_bounds__(kThreads)
    convBackwardDataKernel(ConvShape s, const float* w, const float* dy, float* dx) {
  __shared__ Tile sa;  // gather(dy) [m][j]
  __shared__ Tile sb;  // w [c][j]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int wr = 16 * (warp & 3), wc = 32 * (warp >> 2);
  const int64_t M = s.N * s.HW, KRS = s.K * s.RS;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * BM, n0 = static_cast<int64_t>(blockIdx.y) * BN;
  const int ar = tid % BM, ak = tid / BM;
  const int64_t m = m0 + ar;
  const bool rowValid = m < M;
  const int64_t img = rowValid ? m / s.HW : 0, hw = rowValid ? m % s.HW : 0;
  const int32_t hp = static_cast<int32_t>(hw / s.W + s.ph), wp = static_cast<int32_t>(hw % s.W + s.pw);  // padded
  const int32_t strideH = static_cast<int32_t>(s.sh), strideW = static_cast<int32_t>(s.sw);
  const float* dyn = dy + img * s.K * s.PQ;
  const int bk = tid % BK, bc = tid / BK;
  Digits base = s.tap.of(ak), wAt = s.flatTap.of(bk);  // (k, r, s) of A; (k, rs) of B
  const Digits along = s.tap.of(kThreads / BM), next = s.tap.of(BK), nextFlat = s.flatTap.of(BK);
  const auto load = [&](int64_t j0, float (&va)[kPerThread], float (&vb)[kPerThread]) {
    Digits at = base;
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) {
      const int kl = ak + i * (kThreads / BM);
      float v = 0.f;
      if (rowValid && j0 + kl < KRS) {
        // The output pixel (p, q) whose window puts tap (r, s) on this input pixel, if any.
        int32_t p = hp - at.md, q = wp - at.lw;
        bool hit = p >= 0 && q >= 0;
        if (strideH != 1) {
          hit = hit && p % strideH == 0;
          p /= strideH;
        }
        if (strideW != 1) {
          hit = hit && q % strideW == 0;
          q /= strideW;
        }
        if (hit && p < s.P && q < s.Q) v = dyn[(static_cast<int64_t>(at.hi) * s.P + p) * s.Q + q];
      }
      if (i + 1 < kPerThread) s.tap.advance(at, along);
      va[i] = v;
      const int64_t c = n0 + bc + i * (kThreads / BK);
      vb[i] = (c < s.C && j0 + bk < KRS) ? w[(static_cast<int64_t>(wAt.hi) * s.C + c) * s.RS + wAt.lw] : 0.f;
    }
    s.tap.advance(base, next);
    s.flatTap.advance(wAt, nextFlat);
  };
  const auto store = [&](const float (&va)[kPerThread], const float (&vb)[kPerThread]) {
    storeByRows(sa, sb, ar, ak, bc, bk, va, vb);
  };
  float acc[4][4] = {};
  mainLoop<E>(acc, sa, sb, 0, KRS, load, store, wr, wc, g, t);
  forEachHeld(acc, wr, wc, g, t, [&](int r, int c, float& value) {
    const int64_t mm = m0 + r, ch = n0 + c;
    if (mm >= M || ch >= s.C) return;
    const int64_t n = mm / s.HW, e = mm % s.HW;
    dx[(n * s.C + ch) * s.HW + e] += value;
  });
}

// ---------------------------------------------------------------------------------------
// Backward weights: rows k, columns j = (c, r, s), reduction over o = (n, p, q) in
// [oBegin, oEnd) of split blockIdx.z. One split adds into dw; several write partial
// buffers [split][K][CRS] that dwReduceKernel adds in order.

template <class E>
__global__ void __launch_bounds__(kThreads)
    convBackwardWeightKernel(ConvShape s, const float* x, const float* dy, float* dw, float* partial,
                             int64_t splitLength) {
  __shared__ Tile sa;  // dy [k][o]
  __shared__ Tile sb;  // im2col(x) [j][o]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int wr = 16 * (warp & 3), wc = 32 * (warp >> 2);
  const int64_t NPQ = s.N * s.PQ;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * BM, n0 = static_cast<int64_t>(blockIdx.y) * BN;
  const int64_t oBegin = static_cast<int64_t>(blockIdx.z) * splitLength;
  const int64_t oEnd = oBegin + splitLength < NPQ ? oBegin + splitLength : NPQ;
  // Consecutive threads walk o (contiguous in dy and, at stride 1, in x); each thread keeps
  // one o slot and 8 rows / columns, whose decodings are fixed for the block.
  const int ok = tid % BK, slot = tid / BK;
  int64_t xOff[kPerThread];
  int32_t hOff[kPerThread], wOff[kPerThread];
  bool colValid[kPerThread];
#pragma unroll
  for (int i = 0; i < kPerThread; ++i) {
    const int64_t j = n0 + slot + i * (kThreads / BK);
    colValid[i] = j < s.CRS;
    const int64_t jj = colValid[i] ? j : 0;
    const int64_t c = jj / s.RS, rs = jj - c * s.RS, r = rs / s.S;
    xOff[i] = c * s.HW;
    hOff[i] = static_cast<int32_t>(r - s.ph);
    wOff[i] = static_cast<int32_t>(rs - r * s.S - s.pw);
  }
  // (n, p, q) of the thread's o in the slice (past the end once o passes N*P*Q: unused).
  Digits at = s.pixel.of(oBegin + ok);
  const Digits next = s.pixel.of(BK);
  const auto load = [&](int64_t o0, float (&va)[kPerThread], float (&vb)[kPerThread]) {
    const bool oValid = o0 + ok < oEnd;
    const int64_t img = oValid ? at.hi : 0, pq = oValid ? static_cast<int64_t>(at.md) * s.Q + at.lw : 0;
    const int64_t hBase = static_cast<int64_t>(at.md) * s.sh, wBase = static_cast<int64_t>(at.lw) * s.sw;
    s.pixel.advance(at, next);
    const float* dyn = dy + img * s.K * s.PQ + pq;
    const float* xn = x + img * s.C * s.HW;
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) {
      const int64_t k = m0 + slot + i * (kThreads / BK);
      va[i] = (oValid && k < s.K) ? dyn[k * s.PQ] : 0.f;
      float v = 0.f;
      if (oValid && colValid[i]) {
        const int64_t h = hBase + hOff[i], ww = wBase + wOff[i];
        if (h >= 0 && h < s.H && ww >= 0 && ww < s.W) v = xn[xOff[i] + h * s.W + ww];
      }
      vb[i] = v;
    }
  };
  const auto store = [&](const float (&va)[kPerThread], const float (&vb)[kPerThread]) {
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) {
      const int row = slot + i * (kThreads / BK);
      sa[row][ok] = va[i];
      sb[row][ok] = vb[i];
    }
  };
  float acc[4][4] = {};
  mainLoop<E>(acc, sa, sb, oBegin, oEnd, load, store, wr, wc, g, t);
  float* out = partial != nullptr ? partial + static_cast<int64_t>(blockIdx.z) * s.K * s.CRS : dw;
  forEachHeld(acc, wr, wc, g, t, [&](int r, int c, float& value) {
    const int64_t k = m0 + r, j = n0 + c;
    if (k >= s.K || j >= s.CRS) return;
    float* e = out + k * s.CRS + j;
    *e = partial != nullptr ? value : *e + value;
  });
}

// dw[i] += partial[0][i] + partial[1][i] + ... in split order.
__global__ void dwReduceKernel(const float* partial, int64_t splits, int64_t count, float* dw) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= count) return;
  float sum = 0.f;
  for (int64_t z = 0; z < splits; ++z) sum += partial[z * count + i];
  dw[i] += sum;
}

// db[k] += sum of dy[n][k][*] over n: block k, each thread a strided share, then a fixed tree.
constexpr int kSumThreads = 256;
__global__ void __launch_bounds__(kSumThreads) convBiasGradKernel(ConvShape s, const float* dy, float* db) {
  __shared__ float part[kSumThreads];
  const int64_t k = blockIdx.x;
  float sum = 0.f;
  for (int64_t n = 0; n < s.N; ++n) {
    const float* row = dy + (n * s.K + k) * s.PQ;
    for (int64_t e = threadIdx.x; e < s.PQ; e += kSumThreads) sum += row[e];
  }
  part[threadIdx.x] = sum;
  __syncthreads();
  for (int half = kSumThreads / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) db[k] += part[0];
}

// ---------------------------------------------------------------------------------------

int64_t tiles(int64_t n, int64_t tile) { return (n + tile - 1) / tile; }

void checkGrid(int64_t x, int64_t y, const char* what) {
  if (x > 0x7fffffff || y > 65535)
    throw CudaError(std::string(what) + ": the problem is too large for one launch", false);
}

// How the weight gradient's reduction over N*P*Q is split: a function of the shape only
// (never of the device), so the summation order, and the bits, are the same everywhere.
// Enough splits to give about 512 blocks, each at least kMinSplit long.
constexpr int64_t kTargetBlocks = 512, kMinSplit = 256, kMaxSplits = 64;
int64_t splitLengthOf(const ConvShape& s, int64_t tileCount) {
  const int64_t NPQ = s.N * s.PQ;
  int64_t splits = std::min({tiles(kTargetBlocks, tileCount), tiles(NPQ, kMinSplit), kMaxSplits});
  splits = std::max<int64_t>(splits, 1);
  return tiles(tiles(NPQ, splits), BK) * BK;  // a whole number of slices
}

struct Scratch {
  float* p = nullptr;
  explicit Scratch(size_t floats) : p(floats ? static_cast<float*>(deviceAlloc(floats * sizeof(float))) : nullptr) {}
  ~Scratch() {
    if (p != nullptr) deviceFree(p);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

template <class E>
void forward(const ConvShape& s, const float* x, const float* w, const float* b, float* y) {
  const int64_t gx = tiles(s.N * s.PQ, BM), gy = tiles(s.K, BN);
  checkGrid(gx, gy, "conv2dForward");
  launchKernel(std::string("convForwardKernel<") + E::kName + ">", convForwardKernel<E>,
               dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy)), kThreads, 0, stream(), s, x, w, b, y);
  check(cudaGetLastError(), "running the convolution forward kernel");
}

template <class E>
void backward(const ConvShape& s, const float* x, const float* w, const float* dy, float* dx, float* dw, float* db) {
  if (dx != nullptr) {
    const int64_t gx = tiles(s.N * s.HW, BM), gy = tiles(s.C, BN);
    checkGrid(gx, gy, "conv2dBackward (data)");
    launchKernel(std::string("convBackwardDataKernel<") + E::kName + ">", convBackwardDataKernel<E>,
                 dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy)), kThreads, 0, stream(), s, w, dy, dx);
    check(cudaGetLastError(), "running the convolution backward-data kernel");
  }
  if (dw != nullptr) {
    const int64_t gx = tiles(s.K, BM), gy = tiles(s.CRS, BN);
    checkGrid(gx, gy, "conv2dBackward (weights)");
    const int64_t length = splitLengthOf(s, gx * gy), splits = tiles(s.N * s.PQ, length);
    Scratch partial(splits > 1 ? static_cast<size_t>(splits * s.K * s.CRS) : 0);
    launchKernel(std::string("convBackwardWeightKernel<") + E::kName + ">", convBackwardWeightKernel<E>,
                 dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy), static_cast<unsigned>(splits)), kThreads, 0,
                 stream(), s, x, dy, dw, partial.p, length);
    check(cudaGetLastError(), "running the convolution backward-weights kernel");
    if (splits > 1) {
      const int64_t count = s.K * s.CRS;
      launchKernel("dwReduceKernel", dwReduceKernel, dim3(static_cast<unsigned>(tiles(count, 256))), 256, 0, stream(),
                   static_cast<const float*>(partial.p), splits, count, dw);
      check(cudaGetLastError(), "adding the convolution's weight-gradient partial sums");
    }
  }
  if (db != nullptr) {
    checkGrid(s.K, 1, "conv2dBackward (bias)");
    launchKernel("convBiasGradKernel", convBiasGradKernel, dim3(static_cast<unsigned>(s.K)), kSumThreads, 0, stream(), s,
                 dy, db);
    check(cudaGetLastError(), "running the convolution bias-gradient kernel");
  }
}

}  // namespace

void conv2dForward(const nn::Conv2dDesc& d, const float* x, const float* w, const float* b, float* y,
                   Precision precision) {
  const ConvShape s = shapeOf(d);
  switch (precision) {
    case Precision::Fp32: forward<Fp32Engine>(s, x, w, b, y); break;
    case Precision::Tf32: forward<Tf32Engine>(s, x, w, b, y); break;
    case Precision::Bf16: forward<Bf16Engine>(s, x, w, b, y); break;
  }
}

void conv2dBackward(const nn::Conv2dDesc& d, const float* x, const float* w, const float* dy, float* dx, float* dw,
                    float* db, bool overwriteDx, Precision precision) {
  const ConvShape s = shapeOf(d);
  if (overwriteDx && dx != nullptr) memsetDevice(dx, 0, static_cast<size_t>(d.N * d.C * d.H * d.W) * sizeof(float));
  switch (precision) {
    case Precision::Fp32: backward<Fp32Engine>(s, x, w, dy, dx, dw, db); break;
    case Precision::Tf32: backward<Tf32Engine>(s, x, w, dy, dx, dw, db); break;
    case Precision::Bf16: backward<Bf16Engine>(s, x, w, dy, dx, dw, db); break;
  }
}

}  // namespace supcon::cuda
