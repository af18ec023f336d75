// Fused SupCon forward and backward on the GPU (flash-attention style: the B x B logits
// never leave the chip).
//
// A thread block owns BM = 64 rows. It streams column tiles of BN = 64 rows of Z:
//   1. S = Z_I Z_J^T / tau for the tile, by an engine (exact fp32 FMA, or tensor cores with
//      tf32 / bf16 inputs and fp32 accumulation), written to shared memory;
//   2. a row phase, 4 threads per row, 16 columns each: masks, the online log-sum-exp and
//      positive sums (forward), or H_ij = G_ij + G_ji (backward, in place of S);
//   3. backward only: dZ_I += H Z_J by the same engine, d in chunks of 64 columns, kept in
//      registers for d <= 256 (then scaled, taken back through the normalisation and
//      written to the gradient in place) and in global memory (owned by the block) above.
// Z is read from the features as given ([n, v, d], row r = view * n + sample), divided by
// |x_r| on the way in when normalising (a division, as on the CPU, so that a 1-d row becomes
// exactly +-1): no working copy, so the extra GPU memory is O(B) beyond the gradient itself. No atomics: the results are the same bits run to run.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "../common/contrast_classes.h"
#include "../common/errors.h"
#include "check.cuh"
#include "launch.cuh"
#include "runtime.h"
#include "mma.cuh"
#include "supcon_cuda.h"

namespace supcon::cuda {
namespace {

constexpr int BM = 64;       // rows per block
constexpr int BN = 64;       // columns per tile
constexpr int BK = 32;       // k per shared-memory stage of the logits
constexpr int DC = 64;       // gradient columns per chunk
constexpr int kThreads = 256;
constexpr int PAD = 4;       // shared-memory row padding (floats) against bank conflicts
constexpr float kNeg = -1e30f;

// A row's norm max(|x_r|, eps) as {scale, norm}: |x_r| = norm / scale with scale a power of
// two, 1 unless |x_r| passes the float32 range (rows near the float32 maximum: the loss is
// scale-invariant, and so is this). z = (x * scale) / norm: a division, as on the CPU, so
// that a 1-d row becomes exactly +-1; with scale 1 the multiplication is exact.
using RowNorm = float2;

__device__ __forceinline__ float normalized(float x, RowNorm n) { return (x * n.x) / n.y; }
// 1 / |x_r| (possibly below the float32 normal range for huge rows).
__device__ __forceinline__ float inverseNorm(RowNorm n) { return (1.0f / n.y) * n.x; }
// Whether the row was clamped to eps (dx = dz / eps then, as on the CPU).
__device__ __forceinline__ bool clamped(RowNorm n) { return n.x == 1.0f && n.y <= 1e-12f; }

// One set of rows of Z: the features' own rows (x [n, v, d], row r = view * n + sample) for
// r < own, then the rows of `extra` ([count - own, d], row-major). Norms when normalising,
// else null.
struct RowSet {
  const float* x;
  const RowNorm* norm;       // [own]
  const float* extra;
  const RowNorm* extraNorm;  // [count - own]
  int64_t n, v, own, count;
};

// One pass of a kernel: a block owns BM of `rows` and streams `cols`. The forward pass and
// the anchors' backward pass have the anchors as rows and the contrast rows (the anchors
// themselves without a contrast set) as columns; the contrast backward pass swaps them.
struct Params {
  RowSet rows, cols;
  int64_t d, ld, numAnchors;  // ld: d rounded up to BK (the k extent of the tiles)
  const int32_t* rowClass;    // [rows.count]: label, mask row (the sample) or mask column
  const int32_t* colClass;    // [cols.count]
  const int32_t* selfColumn;  // [B]: the anchor's own contrast row, or -1; null: the row itself
  const float* mask;          // [n, maskColumns] non-negative weights, or null
  int64_t maskColumns;
  bool symmetric;     // no contrast set: the backward pass forms H = G + G^T
  bool contrastPass;  // the rows are contrast rows and the columns the anchors
  bool rawOut;        // write the unscaled sums to dz (a later kernel finishes them)
  float invTau;
  Variant variant;
  Denominator denominator;
  PositiveTerm positiveTerm;
  // forward outputs, per anchor
  float* rowLoss;
  uint8_t* rowCounts;
  uint8_t* rowHasGrad;
  float *statA, *statB, *statC, *statG;
  // backward outputs: the gradient [n, v, d] (symmetric, d <= 256); dz [rows, ld] otherwise
  float* grad;
  float* dz;
};

__device__ __forceinline__ const float* rowPtr(const RowSet& s, int64_t r, int64_t d) {
  return r < s.own ? s.x + ((r % s.n) * s.v + r / s.n) * d : s.extra + (r - s.own) * d;
}

__device__ __forceinline__ const RowNorm* normPtr(const RowSet& s, int64_t r) {
  if (s.norm == nullptr) return nullptr;
  return r < s.own ? s.norm + r : s.extraNorm + (r - s.own);
}

// Four consecutive elements k..k+3 of row r of Z (zero past d or past the set).
__device__ __forceinline__ float4 loadZ4(const RowSet& s, int64_t d, int64_t r, int64_t k) {
  if (r >= s.count || k >= d) return make_float4(0.f, 0.f, 0.f, 0.f);
  const float* z = rowPtr(s, r, d) + k;
  float4 v;
  if ((d & 3) == 0) {
    v = *reinterpret_cast<const float4*>(z);
  } else {
    v.x = z[0];
    v.y = k + 1 < d ? z[1] : 0.f;
    v.z = k + 2 < d ? z[2] : 0.f;
    v.w = k + 3 < d ? z[3] : 0.f;
  }
  if (const RowNorm* np = normPtr(s, r)) {
    const RowNorm nr = *np;
    v.x = normalized(v.x, nr); v.y = normalized(v.y, nr); v.z = normalized(v.z, nr); v.w = normalized(v.w, nr);
  }
  return v;
}

struct Shared {
  float a[BM][BK + PAD];   // Z_I stage; with b, the Z_J chunk of the gradient product
  float b[BN][BK + PAD];
  float s[BM][BN + PAD];   // logits, then H
  int32_t colClass[BN], colSelf[BN];
  float colA[BN], colB[BN], colC[BN], colG[BN];
};
static_assert(sizeof(float) * 2 * BM * (BK + PAD) >= sizeof(float) * BN * (DC + PAD),
              "the gradient chunk must fit in the two stages");

// The weight of the pair (anchor of class a, contrast row of class c) (0: not a positive;
// labels give 0 or 1). The caller has excluded an anchor against itself.
__device__ __forceinline__ float pairWeight(const Params& p, int32_t a, int32_t c) {
  if (p.mask == nullptr) return a == c ? 1.f : 0.f;
  return p.mask[static_cast<int64_t>(a) * p.maskColumns + c];
}

// The contrast row that is anchor r itself, or -1.
__device__ __forceinline__ int64_t selfOf(const Params& p, int64_t r) {
  return p.selfColumn != nullptr ? p.selfColumn[r] : r;
}

// sh.s[r][c] = z_{row0 + r} . z_{col0 + c} / tau for the tile (rows past the sets read as zero).
template <class E>
__device__ void logitsTile(const Params& p, Shared& sh, int64_t row0, int64_t col0) {
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int wr = 16 * (warp & 3), wc = 32 * (warp >> 2);
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < p.ld; k0 += BK) {
    // 64 rows x 32 k for each of A and B: 2048 floats each, 8 per thread, as float4.
    for (int e = tid; e < BM * BK / 4; e += kThreads) {
      const int r = e / (BK / 4), c4 = (e % (BK / 4)) * 4;
      const float4 va = loadZ4(p.rows, p.d, row0 + r, k0 + c4);
      const float4 vb = loadZ4(p.cols, p.d, col0 + r, k0 + c4);
      sh.a[r][c4] = va.x; sh.a[r][c4 + 1] = va.y; sh.a[r][c4 + 2] = va.z; sh.a[r][c4 + 3] = va.w;
      sh.b[r][c4] = vb.x; sh.b[r][c4 + 1] = vb.y; sh.b[r][c4 + 2] = vb.z; sh.b[r][c4 + 3] = vb.w;
    }
    __syncthreads();
    const auto A = [&](int r, int k) { return sh.a[wr + r][k]; };
    const auto B = [&](int k, int c) { return sh.b[wc + c][k]; };
#pragma unroll
    for (int k = 0; k < BK; k += E::kStep) E::step(acc, A, B, k, g, t);
    __syncthreads();
  }
  forEachHeld(acc, wr, wc, g, t, [&](int r, int c, float& value) { sh.s[r][c] = value * p.invTau; });
  __syncthreads();
}

__device__ __forceinline__ float quadMax(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quadSum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

template <class E>
__global__ void __launch_bounds__(kThreads) forwardKernel(Params p) {
  __shared__ Shared sh;
  const int tid = threadIdx.x;
  const int row = tid >> 2, q = tid & 3;  // row phase: 4 threads a row, 16 columns each
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * BM;
  const int64_t i = row0 + row;
  const bool inRange = i < p.rows.count;
  const int32_t ci = inRange ? p.rowClass[i] : -1;
  const int64_t self = inRange ? selfOf(p, i) : -1;
  const bool denAll = p.denominator == Denominator::All;
  const bool needPosLse = p.positiveTerm == PositiveTerm::ExpIn;
  const bool onePositive = p.denominator == Denominator::OnePositive;

  float denM = kNeg, denS = 0.f, posM = kNeg, posS = 0.f, sumPos = 0.f, numPos = 0.f, cntPos = 0.f;
  const bool sigmoidIn = p.positiveTerm == PositiveTerm::SigmoidIn;
  float p2a = sigmoidIn ? kNeg : 0.f, p2b = 0.f, p2c = 0.f, a = 0.f;
  for (int pass = 0; pass < (onePositive ? 2 : 1); ++pass) {
    for (int64_t col0 = 0; col0 < p.cols.count; col0 += BN) {
      if (tid < BN) sh.colClass[tid] = col0 + tid < p.cols.count ? p.colClass[col0 + tid] : -1;
      logitsTile<E>(p, sh, row0, col0);
      float s[16], w[16];
      bool valid[16], pos[16];
#pragma unroll
      for (int u = 0; u < 16; ++u) {
        const int c = 16 * q + u;
        const int64_t j = col0 + c;
        s[u] = sh.s[row][c];
        valid[u] = inRange && j < p.cols.count && j != self;  // padding rows have no sample
        w[u] = valid[u] ? pairWeight(p, ci, sh.colClass[c]) : 0.f;
        pos[u] = w[u] > 0.f;
      }
      if (pass == 0) {
        float tileDen = kNeg, tilePos = kNeg;
#pragma unroll
        for (int u = 0; u < 16; ++u) {
          const bool den = denAll ? valid[u] : valid[u] && !pos[u];
          if (den) tileDen = fmaxf(tileDen, s[u]);
          if (needPosLse && pos[u]) tilePos = fmaxf(tilePos, s[u]);
        }
        const float dm = fmaxf(denM, quadMax(tileDen));
        denS *= expf(denM - dm);
        denM = dm;
        if (needPosLse) {
          const float pm = fmaxf(posM, quadMax(tilePos));
          posS *= expf(posM - pm);
          posM = pm;
        }
#pragma unroll
        for (int u = 0; u < 16; ++u) {
          const bool den = denAll ? valid[u] : valid[u] && !pos[u];
          if (den) denS += expf(s[u] - denM);
          // A weight of 1 multiplies exactly: 0/1 positives give the unweighted sums.
          if (needPosLse && pos[u]) posS += w[u] * expf(s[u] - posM);
          if (pos[u]) {
            sumPos += w[u] * s[u];
            numPos += w[u];
            cntPos += 1.f;
          }
        }
      } else if (!sigmoidIn) {
#pragma unroll
        for (int u = 0; u < 16; ++u) {
          if (!pos[u]) continue;
          p2a += w[u] * softplusScalar(a - s[u]);
          p2b += w[u] * sigmoidScalar(a - s[u]);
        }
      } else {
        // Online log-sum-exp of log w + log sigmoid(s - a) over the positives (see RowAccum;
        // log 1 is exactly 0).
        float y[16], tileMax = kNeg;
#pragma unroll
        for (int u = 0; u < 16; ++u) {
          y[u] = -softplusScalar(a - s[u]) + (pos[u] && p.mask != nullptr ? logf(w[u]) : 0.f);
          if (pos[u]) tileMax = fmaxf(tileMax, y[u]);
        }
        const float mx = fmaxf(p2a, quadMax(tileMax));
        const float rescale = expf(p2a - mx);
        p2b *= rescale;
        p2c *= rescale;
        p2a = mx;
#pragma unroll
        for (int u = 0; u < 16; ++u) {
          if (!pos[u]) continue;
          const float e = expf(y[u] - p2a);
          p2b += e;
          p2c += e * sigmoidScalar(a - s[u]);
        }
      }
      __syncthreads();  // the next tile overwrites sh.s and sh.colClass
    }
    if (pass == 0) {
      denS = quadSum(denS);
      posS = quadSum(posS);
      sumPos = quadSum(sumPos);
      numPos = quadSum(numPos);
      cntPos = quadSum(cntPos);
      a = denM + logf(fmaxf(denS, 1e-38f));
    }
  }
  if (!sigmoidIn) p2a = quadSum(p2a);  // for 'in' it is the shared running maximum
  p2b = quadSum(p2b);
  p2c = quadSum(p2c);
  if (q == 0 && i < p.numAnchors) {
    const RowAccum acc{denM, denS, posM, posS, sumPos, numPos, p2a, p2b, p2c};
    const float others = static_cast<float>(p.cols.count - (self >= 0 ? 1 : 0));
    const float numDen = denAll ? others : others - cntPos;
    const RowResult res = finishRow(acc, numDen, p.variant, p.denominator);
    p.rowLoss[i] = res.loss;
    p.rowCounts[i] = res.counts ? 1 : 0;
    p.rowHasGrad[i] = res.hasGradient ? 1 : 0;
    p.statA[i] = res.a;
    p.statB[i] = res.b;
    p.statC[i] = res.c;
  }
}

// dz[i][k] = sum_j H_ij z_j[k] over all column tiles, for the block's rows. In the anchors'
// pass H = G (+ G^T without a contrast set); in the contrast pass (rows: contrast rows c,
// columns: anchors i) H_ci = G_ic. kRegChunks chunks of 64 gradient columns live in
// registers; 0 means read-modify-write in global memory per tile (large d).
template <class E, int kRegChunks>
__global__ void __launch_bounds__(kThreads) backwardKernel(Params p) {
  __shared__ Shared sh;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int wr = 16 * (warp & 3), wc = 32 * (warp >> 2);
  const int row = tid >> 2, q = tid & 3;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * BM;
  const int64_t i = row0 + row;
  const bool inRange = i < p.rows.count;
  const int32_t ci = inRange ? p.rowClass[i] : -1;
  // The row's own coefficients: anchors only (the contrast pass takes the columns').
  const bool rowStats = inRange && !p.contrastPass;
  const float ai = rowStats ? p.statA[i] : 0.f, bi = rowStats ? p.statB[i] : 0.f;
  const float cci = rowStats ? p.statC[i] : 0.f, gi = rowStats ? p.statG[i] : 0.f;
  const int64_t self = rowStats ? selfOf(p, i) : -1;
  const bool colStats = p.symmetric || p.contrastPass;
  const bool denAll = p.denominator == Denominator::All;
  const int chunks = static_cast<int>((p.ld + DC - 1) / DC);
  float (*zc)[DC + PAD] = reinterpret_cast<float (*)[DC + PAD]>(&sh.a[0][0]);

  float regAcc[kRegChunks > 0 ? kRegChunks : 1][4][4] = {};
  for (int64_t col0 = 0; col0 < p.cols.count; col0 += BN) {
    if (tid < BN) {
      const int64_t j = col0 + tid;
      const bool in = j < p.cols.count;
      const bool st = in && colStats;
      sh.colClass[tid] = in ? p.colClass[j] : -1;
      sh.colSelf[tid] = in && p.contrastPass ? static_cast<int32_t>(selfOf(p, j)) : -1;
      sh.colA[tid] = st ? p.statA[j] : 0.f;
      sh.colB[tid] = st ? p.statB[j] : 0.f;
      sh.colC[tid] = st ? p.statC[j] : 0.f;
      sh.colG[tid] = st ? p.statG[j] : 0.f;
    }
    logitsTile<E>(p, sh, row0, col0);
    // H in place of the logits.
#pragma unroll 4
    for (int u = 0; u < 16; ++u) {
      const int c = 16 * q + u;
      const int64_t j = col0 + c;
      float h = 0.f;
      if (inRange && j < p.cols.count) {
        const float s = sh.s[row][c];
        const int32_t cj = sh.colClass[c];
        const float gj = sh.colG[c];
        if (p.contrastPass) {
          // Column j is the anchor, row i the contrast row.
          if (gj != 0.f && i != sh.colSelf[c]) {
            const float w = pairWeight(p, cj, ci);
            const bool pos = w > 0.f;
            h = gj * pairCoefficientScalar(p.positiveTerm, s, sh.colA[c], sh.colB[c], sh.colC[c], denAll || !pos, pos, w);
          }
        } else if (j != self) {
          if (gi != 0.f) {
            const float w = pairWeight(p, ci, cj);
            const bool pos = w > 0.f;
            h += gi * pairCoefficientScalar(p.positiveTerm, s, ai, bi, cci, denAll || !pos, pos, w);
          }
          if (gj != 0.f) {  // symmetric only: G_ji, row j as the anchor
            const float w = pairWeight(p, cj, ci);
            const bool pos = w > 0.f;
            h += gj * pairCoefficientScalar(p.positiveTerm, s, sh.colA[c], sh.colB[c], sh.colC[c], denAll || !pos, pos, w);
          }
        }
      }
      sh.s[row][c] = h;
    }
    __syncthreads();
    const auto A = [&](int r, int k) { return sh.s[wr + r][k]; };
    const auto B = [&](int k, int c) { return zc[k][wc + c]; };
    for (int ch = 0; ch < chunks; ++ch) {
      const int64_t k0 = static_cast<int64_t>(ch) * DC;
      for (int e = tid; e < BN * DC / 4; e += kThreads) {
        const int r = e / (DC / 4), c4 = (e % (DC / 4)) * 4;
        const float4 v = loadZ4(p.cols, p.d, col0 + r, k0 + c4);
        zc[r][c4] = v.x; zc[r][c4 + 1] = v.y; zc[r][c4 + 2] = v.z; zc[r][c4 + 3] = v.w;
      }
      __syncthreads();
      if constexpr (kRegChunks > 0) {
#pragma unroll
        for (int rc = 0; rc < kRegChunks; ++rc)
          if (rc == ch)
#pragma unroll
            for (int k = 0; k < BN; k += E::kStep) E::step(regAcc[rc], A, B, k, g, t);
      } else {
        float acc[4][4];
        const auto held = [&](int r, int c) { return row0 + r < p.rows.count && k0 + c < p.ld; };
        forEachHeld(acc, wr, wc, g, t, [&](int r, int c, float& value) {
          value = held(r, c) ? p.dz[(row0 + r) * p.ld + k0 + c] : 0.f;
        });
#pragma unroll
        for (int k = 0; k < BN; k += E::kStep) E::step(acc, A, B, k, g, t);
        forEachHeld(acc, wr, wc, g, t, [&](int r, int c, float& value) {
          if (held(r, c)) p.dz[(row0 + r) * p.ld + k0 + c] = value;
        });
      }
      __syncthreads();
    }
  }
  if constexpr (kRegChunks > 0) {
    if (p.rawOut) {
#pragma unroll
      for (int rc = 0; rc < kRegChunks; ++rc)
        forEachHeld(regAcc[rc], wr, wc, g, t, [&](int lr, int lc, float& value) {
          const int64_t r = row0 + lr, c = static_cast<int64_t>(rc) * DC + lc;
          if (r < p.rows.count && c < p.ld) p.dz[r * p.ld + c] = value;
        });
      return;
    }
    // Symmetric: dz_r * (1/tau), then back through the normalisation: dx = (dz - z (z . dz))
    // / |x|. A row's columns are spread over 2 warps x 4 lanes; their partial dots meet in
    // shared memory and are summed in a fixed order.
    const RowSet& R = p.rows;
    float* partial = &sh.s[0][0];  // [64 rows][8 slots]
    const int slot = 4 * (warp >> 2) + t;
    float dot[2] = {0.f, 0.f};
    if (R.norm != nullptr) {
#pragma unroll
      for (int rc = 0; rc < kRegChunks; ++rc)
        forEachHeld(regAcc[rc], wr, wc, g, t, [&](int lr, int lc, float& value) {
          const int64_t r = row0 + lr, c = static_cast<int64_t>(rc) * DC + lc;
          // A clamped row (|x| <= eps) has dx = dz / eps, as on the CPU.
          if (r < R.count && c < p.d && !clamped(R.norm[r]))
            dot[(lr - wr) >= 8] += normalized(rowPtr(R, r, p.d)[c], R.norm[r]) * (value * p.invTau);
        });
      partial[(wr + g) * 8 + slot] = dot[0];
      partial[(wr + g + 8) * 8 + slot] = dot[1];
      __syncthreads();
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int lr = wr + g + 8 * h;
        float sum = 0.f;
        for (int k = 0; k < 8; ++k) sum += partial[lr * 8 + k];
        dot[h] = sum;
      }
    }
#pragma unroll
    for (int rc = 0; rc < kRegChunks; ++rc)
      forEachHeld(regAcc[rc], wr, wc, g, t, [&](int lr, int lc, float& value) {
        const int64_t r = row0 + lr, c = static_cast<int64_t>(rc) * DC + lc;
        if (r >= R.count || c >= p.d) return;
        const float dz = value * p.invTau;
        float* out = p.grad + ((r % R.n) * R.v + r / R.n) * p.d + c;
        if (R.norm == nullptr) {
          *out = dz;
        } else {
          const float z = normalized(rowPtr(R, r, p.d)[c], R.norm[r]);
          *out = (dz - z * dot[(lr - wr) >= 8]) * inverseNorm(R.norm[r]);
        }
      });
  }
}

// One warp a row: max(|x_r|, eps) of the rows of a set when normalising (own rows into
// norm, the others into extraNorm), as a RowNorm. The sum of squares in double: a float32
// row's squares cannot overflow it.
__global__ void prepareKernel(RowSet s, int64_t d, RowNorm* norm, RowNorm* extraNorm) {
  const int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (r >= s.count) return;
  const float* src = rowPtr(s, r, d);
  double ss = 0.0;
  for (int64_t k = lane; k < d; k += 32) ss += static_cast<double>(src[k]) * src[k];
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  if (lane != 0) return;
  const double full = fmax(sqrt(ss), static_cast<double>(1e-12f));
  // A power of two that brings |x_r| below 2^126 (exact: the scale changes only the exponent).
  const int e = full >= 0x1p126 ? ilogb(full) - 125 : 0;
  const RowNorm nr = make_float2(ldexpf(1.0f, -e), static_cast<float>(ldexp(full, -e)));
  (r < s.own ? norm[r] : extraNorm[r - s.own]) = nr;
}

// Sum of the anchors' losses and the number that count, in a fixed order (one block).
__global__ void reduceKernel(const float* rowLoss, const uint8_t* rowCounts, int64_t anchors,
                             double* out) {
  __shared__ double sums[1024];
  __shared__ double counts[1024];
  double s = 0.0, c = 0.0;
  for (int64_t r = threadIdx.x; r < anchors; r += blockDim.x) {
    s += rowLoss[r];
    c += rowCounts[r];
  }
  sums[threadIdx.x] = s;
  counts[threadIdx.x] = c;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) {
      sums[threadIdx.x] += sums[threadIdx.x + stride];
      counts[threadIdx.x] += counts[threadIdx.x + stride];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    out[0] = sums[0];
    out[1] = counts[0];
  }
}

// The anchors in the loss's mean: all of them, or (excluding) those that counted.
__device__ __forceinline__ int64_t countedOf(const double* sums, bool exclude, int64_t anchors) {
  return exclude ? static_cast<int64_t>(sums[1]) : anchors;
}

// statG[r] = d loss / d l_r = scale gradLoss / counted for the anchors with a gradient, read
// from the forward pass's sums on the device (no read-back); the host's double arithmetic.
__global__ void setGradientWeights(const uint8_t* hasGrad, int64_t anchors, int64_t rows, double scaleGrad,
                                   const double* sums, bool exclude, float* statG) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const int64_t counted = countedOf(sums, exclude, anchors);
  const float g = counted > 0 ? static_cast<float>(scaleGrad / static_cast<double>(counted)) : 0.f;
  statG[r] = (r < anchors && hasGrad[r]) ? g : 0.f;
}

// out[0] = the loss as a float32 (scale * sum / counted, 0 when no anchor counts).
__global__ void lossValueKernel(const double* sums, double scale, bool exclude, int64_t anchors, float* out) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  const int64_t counted = countedOf(sums, exclude, anchors);
  out[0] = counted > 0 ? static_cast<float>(scale * sums[0] / static_cast<double>(counted)) : 0.f;
}

// Rows [first, first + count) of a set whose raw sums dz (and dz2 for the first dz2Rows)
// a backward pass left in global memory: scaled by 1 / tau, taken back through the
// normalisation and written out (own rows scattered to [n, v, d], the others row-major).
struct FinishArgs {
  RowSet set;
  int64_t first, count, d, ld;
  const float* dz;   // [count, ld]
  const float* dz2;  // [dz2Rows, ld], added to the first dz2Rows, or null
  int64_t dz2Rows;
  float invTau;
  float* out;        // own rows: the gradient [n, v, d]; other rows: [count, d]
};

// One warp a row.
__global__ void finishGradient(FinishArgs a) {
  const int64_t k = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (k >= a.count) return;
  const int64_t r = a.first + k;
  const RowSet& s = a.set;
  float* out = r < s.own ? a.out + ((r % s.n) * s.v + r / s.n) * a.d : a.out + k * a.d;
  const float* g = a.dz + k * a.ld;
  const float* g2 = a.dz2 != nullptr && k < a.dz2Rows ? a.dz2 + k * a.ld : nullptr;
  const auto raw = [&](int64_t c) { return (g2 != nullptr ? g[c] + g2[c] : g[c]) * a.invTau; };
  const float* x = rowPtr(s, r, a.d);
  const RowNorm* np = normPtr(s, r);
  if (np == nullptr) {
    for (int64_t c = lane; c < a.d; c += 32) out[c] = raw(c);
    return;
  }
  const RowNorm nr = *np;
  const float inv = inverseNorm(nr);
  double dot = 0.0;
  if (!clamped(nr))
    for (int64_t c = lane; c < a.d; c += 32) dot += static_cast<double>(normalized(x[c], nr)) * raw(c);
  for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
  const float fdot = static_cast<float>(dot);
  for (int64_t c = lane; c < a.d; c += 32) out[c] = (raw(c) - normalized(x[c], nr) * fdot) * inv;
}

void checkLaunch(const char* what) { check(cudaGetLastError(), what); }

// An owning device buffer from the caching allocator.
template <typename T>
struct DeviceBuffer {
  T* ptr = nullptr;
  size_t count = 0;
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t n) : ptr(static_cast<T*>(deviceAlloc(n * sizeof(T)))), count(n) {}
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr(o.ptr), count(o.count) { o.ptr = nullptr; o.count = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(ptr, o.ptr);
    std::swap(count, o.count);
    return *this;
  }
  ~DeviceBuffer() { deviceFree(ptr); }
  size_t bytes() const { return count * sizeof(T); }
};

}  // namespace

struct LossStateCuda {
  int64_t n = 0, v = 0, d = 0, ld = 0, B = 0, numAnchors = 0;
  int64_t m = 0;    // contrast rows given by the caller (0 without a contrast set)
  int64_t own = 0;  // own rows among the contrast rows (B without a contrast set or withAnchors)
  int64_t M = 0;    // contrast rows: own + m
  int64_t maskColumns = 0;
  bool symmetric = true;
  bool contrastGradient = false;
  LossOptions options;
  Precision precision = Precision::Fp32;
  // The forward pass leaves the sum of the anchors' losses and their count on the device;
  // they are read back (and the loss checked) only when asked for (readLoss).
  DeviceBuffer<double> sums;
  mutable bool read = false;
  mutable double loss = 0.0;
  mutable int64_t counted = 0;
  const float* x = nullptr;      // the features (the caller keeps them alive and unchanged)
  DeviceBuffer<float> upload;    // the features, when they came from host memory
  DeviceBuffer<float> contrast;  // the contrast rows [m, d] (a copy)
  DeviceBuffer<RowNorm> norm, contrastNorm;
  DeviceBuffer<float> statA, statB, statC;
  DeviceBuffer<uint8_t> hasGrad;
  DeviceBuffer<float> mask;
  DeviceBuffer<int32_t> rowClass, colClass, selfColumn;
};

void LossStateCudaDeleter::operator()(LossStateCuda* s) const { delete s; }

namespace {
// temperature / baseTemperature, the loss's scale: one expression for the loss read back,
// the loss written on the device and the gradient weights, so that they agree to the bit.
double lossScale(const LossStateCuda& s) {
  return static_cast<double>(s.options.temperature) / s.options.baseTemperature;
}

// Reads the loss back once (waits for the forward pass).
void readLoss(const LossStateCuda& s) {
  if (s.read) return;
  double host[2];
  copyToHost(host, s.sums.ptr, sizeof host);
  const int64_t counted = s.options.excludeAnchorsWithoutPositives ? static_cast<int64_t>(host[1]) : s.numAnchors;
  const double loss = counted > 0 ? lossScale(s) * host[0] / static_cast<double>(counted) : 0.0;
  if (!std::isfinite(loss))
    throw rangeError(
        "features: the loss overflowed float32; the logits z_i . z_j / temperature are too "
        "large (scale the features down, raise the temperature or pass normalize: true)");
  s.counted = counted;
  s.loss = loss;
  s.read = true;
}
}  // namespace

double stateLoss(const LossStateCuda& s) {
  readLoss(s);
  return s.loss;
}
int64_t stateCounted(const LossStateCuda& s) {
  if (!s.options.excludeAnchorsWithoutPositives) return s.numAnchors;
  readLoss(s);
  return s.counted;
}
void lossValueInto(const LossStateCuda& s, float* out) {
  launchKernel("lossValueKernel", lossValueKernel, 1, 32, 0, stream(), s.sums.ptr, lossScale(s),
               s.options.excludeAnchorsWithoutPositives, s.numAnchors, out);
  check(cudaGetLastError(), "writing the loss");
}
int64_t stateRows(const LossStateCuda& s) { return s.B; }
int64_t stateDim(const LossStateCuda& s) { return s.d; }
int64_t stateContrastRows(const LossStateCuda& s) { return s.m; }
bool stateContrastGradient(const LossStateCuda& s) { return s.contrastGradient; }
size_t stateBytes(const LossStateCuda& s) {
  return s.upload.bytes() + s.contrast.bytes() + s.norm.bytes() + s.contrastNorm.bytes() + s.statA.bytes() +
         s.statB.bytes() + s.statC.bytes() + s.hasGrad.bytes() + s.mask.bytes() + s.rowClass.bytes() +
         s.colClass.bytes() + s.selfColumn.bytes();
}

namespace {

RowSet anchorRows(const LossStateCuda& s) {
  return RowSet{s.x, s.norm.count > 0 ? s.norm.ptr : nullptr, nullptr, nullptr, s.n, s.v, s.B, s.B};
}

RowSet contrastRows(const LossStateCuda& s) {
  if (s.symmetric) return anchorRows(s);
  const bool normalized = s.norm.count > 0;
  return RowSet{s.x, normalized ? s.norm.ptr : nullptr, s.contrast.ptr, normalized ? s.contrastNorm.ptr : nullptr,
                s.n, s.v, s.own, s.M};
}

// The forward pass's (and the anchors' backward pass's) parameters.
Params makeParams(const LossStateCuda& s) {
  Params p{};
  p.rows = anchorRows(s);
  p.cols = contrastRows(s);
  p.d = s.d;
  p.ld = s.ld;
  p.numAnchors = s.numAnchors;
  p.rowClass = s.rowClass.ptr;
  p.colClass = s.symmetric ? s.rowClass.ptr : s.colClass.ptr;
  p.selfColumn = s.symmetric ? nullptr : s.selfColumn.ptr;
  p.mask = s.mask.count > 0 ? s.mask.ptr : nullptr;
  p.maskColumns = s.maskColumns;
  p.symmetric = s.symmetric;
  p.invTau = 1.0f / s.options.temperature;
  p.variant = s.options.variant;
  p.denominator = s.options.denominator;
  p.positiveTerm = positiveTermOf(s.options.variant, s.options.denominator);
  p.statA = s.statA.ptr;
  p.statB = s.statB.ptr;
  p.statC = s.statC.ptr;
  return p;
}

template <class E>
void launchForward(const Params& p, int64_t blocks) {
  launchKernel(std::string("forwardKernel<") + E::kName + ">", forwardKernel<E>, static_cast<unsigned>(blocks), kThreads, 0,
               stream(), p);
}

template <class E>
void launchBackward(const Params& p, int64_t blocks) {
  const int64_t chunks = (p.ld + DC - 1) / DC;
  const dim3 grid(static_cast<unsigned>(blocks));
  const int regChunks = chunks == 1 ? 1 : chunks == 2 ? 2 : chunks <= 4 ? 4 : 0;
  const std::string name = std::string("backwardKernel<") + E::kName + "," + std::to_string(regChunks) + ">";
  if (regChunks == 1) launchKernel(name, backwardKernel<E, 1>, grid, kThreads, 0, stream(), p);
  else if (regChunks == 2) launchKernel(name, backwardKernel<E, 2>, grid, kThreads, 0, stream(), p);
  else if (regChunks == 4) launchKernel(name, backwardKernel<E, 4>, grid, kThreads, 0, stream(), p);
  else launchKernel(name, backwardKernel<E, 0>, grid, kThreads, 0, stream(), p);
}

void launchBackwardIn(Precision precision, const Params& p, int64_t blocks) {
  switch (precision) {
    case Precision::Fp32: launchBackward<Fp32Engine>(p, blocks); break;
    case Precision::Tf32: launchBackward<Tf32Engine>(p, blocks); break;
    case Precision::Bf16: launchBackward<Bf16Engine>(p, blocks); break;
  }
  checkLaunch("running the backward kernel");
}

void launchFinish(const FinishArgs& a) {
  if (a.count <= 0) return;
  launchKernel("finishGradient", finishGradient, static_cast<unsigned>((a.count + 7) / 8), 256, 0, stream(), a);
  checkLaunch("finishing the gradient");
}

}  // namespace

namespace {

// Device buffers the forward pass needs only while it runs.
struct ForwardScratch {
  DeviceBuffer<float> rowLoss;
  DeviceBuffer<uint8_t> rowCounts;
};

template <typename T>
DeviceBuffer<T> uploaded(const std::vector<T>& host) {
  DeviceBuffer<T> b(host.size());
  if (!host.empty()) copyToDevice(b.ptr, host.data(), b.bytes());
  return b;
}

// The state with its buffers allocated and the inputs uploaded (host copies end here).
LossStateCudaPtr prepareForward(const DeviceLossInput& in, const LossOptions& options, Precision precision,
                                ForwardScratch& scratch) {
  std::string reason;
  if (!usable(&reason)) throw CudaError("the CUDA loss cannot run here: " + reason, false);
  LossStateCudaPtr st(new LossStateCuda);
  LossStateCuda& s = *st;
  const DeviceContrast* c = in.contrast;
  s.n = in.n;
  s.v = in.v;
  s.d = in.d;
  s.B = in.n * in.v;
  s.ld = (in.d + BK - 1) / BK * BK;
  s.numAnchors = options.contrastMode == ContrastMode::All ? s.B : s.n;
  s.symmetric = c == nullptr;
  s.m = c != nullptr ? c->m : 0;
  s.own = c == nullptr || c->withAnchors ? s.B : 0;
  s.M = s.own + s.m;
  s.contrastGradient = c != nullptr && c->gradient;
  s.maskColumns = s.symmetric ? s.n : (c->withAnchors ? s.n : 0) + s.m;
  s.options = options;
  s.precision = precision;
  if (s.B > (int64_t{1} << 31) - BM) throw rangeError("features: too many rows for the GPU kernels");
  if (s.M > (int64_t{1} << 31) - BM) throw rangeError("options.contrast.features: too many contrast rows for the GPU kernels");

  if (in.hostFeatures != nullptr) {
    s.upload = DeviceBuffer<float>(static_cast<size_t>(s.B * s.d));
    copyToDevice(s.upload.ptr, in.hostFeatures, s.upload.bytes());
    s.x = s.upload.ptr;
  } else {
    s.x = in.features;
  }
  if (c != nullptr) {
    s.contrast = DeviceBuffer<float>(static_cast<size_t>(s.m * s.d));
    if (c->hostFeatures != nullptr) copyToDevice(s.contrast.ptr, c->hostFeatures, s.contrast.bytes());
    else copyOnDevice(s.contrast.ptr, c->features, s.contrast.bytes());
  }
  if (options.normalize) {
    s.norm = DeviceBuffer<RowNorm>(static_cast<size_t>(s.B));
    if (s.m > 0) s.contrastNorm = DeviceBuffer<RowNorm>(static_cast<size_t>(s.m));
  }
  s.statA = DeviceBuffer<float>(static_cast<size_t>(s.B));
  s.statB = DeviceBuffer<float>(static_cast<size_t>(s.B));
  s.statC = DeviceBuffer<float>(static_cast<size_t>(s.B));
  s.hasGrad = DeviceBuffer<uint8_t>(static_cast<size_t>(s.B));
  const ContrastClasses classes =
      contrastClasses(s.n, s.v, in.labels, in.mask != nullptr, c != nullptr ? c->m : -1, c != nullptr ? c->labels : nullptr,
                      c != nullptr ? c->positions : nullptr, c != nullptr && c->withAnchors);
  s.rowClass = uploaded(classes.rowClass);
  if (!s.symmetric) {
    s.colClass = uploaded(classes.colClass);
    s.selfColumn = uploaded(classes.selfColumn);
  }
  if (in.mask != nullptr) {
    s.mask = DeviceBuffer<float>(static_cast<size_t>(s.n * s.maskColumns));
    copyToDevice(s.mask.ptr, in.mask, s.mask.bytes());
  }
  scratch.rowLoss = DeviceBuffer<float>(static_cast<size_t>(s.B));
  scratch.rowCounts = DeviceBuffer<uint8_t>(static_cast<size_t>(s.B));
  s.sums = DeviceBuffer<double>(2);
  return st;
}

// The forward kernels, queued on the stream; no host synchronisation.
void launchForwardPass(const LossStateCuda& s, const ForwardScratch& scratch) {
  memsetDevice(s.statA.ptr, 0, s.statA.bytes());
  memsetDevice(s.statB.ptr, 0, s.statB.bytes());
  memsetDevice(s.statC.ptr, 0, s.statC.bytes());
  memsetDevice(s.hasGrad.ptr, 0, s.hasGrad.bytes());
  if (s.options.normalize) {
    // The own rows, then the contrast set's.
    RowSet all{s.x, nullptr, s.contrast.ptr, nullptr, s.n, s.v, s.B, s.B + s.m};
    const int64_t warpsPerBlock = 8;
    const unsigned prepBlocks = static_cast<unsigned>((all.count + warpsPerBlock - 1) / warpsPerBlock);
    launchKernel("prepareKernel", prepareKernel, prepBlocks, static_cast<unsigned>(32 * warpsPerBlock), 0, stream(), all,
                 s.d, s.norm.ptr, s.contrastNorm.ptr);
    checkLaunch("preparing the features");
  }

  Params p = makeParams(s);
  p.rowLoss = scratch.rowLoss.ptr;
  p.rowCounts = scratch.rowCounts.ptr;
  p.rowHasGrad = s.hasGrad.ptr;
  const int64_t blocks = (s.numAnchors + BM - 1) / BM;
  switch (s.precision) {
    case Precision::Fp32: launchForward<Fp32Engine>(p, blocks); break;
    case Precision::Tf32: launchForward<Tf32Engine>(p, blocks); break;
    case Precision::Bf16: launchForward<Bf16Engine>(p, blocks); break;
  }
  checkLaunch("running the forward kernel");
  launchKernel("reduceKernel", reduceKernel, 1, 1024, 0, stream(), scratch.rowLoss.ptr, scratch.rowCounts.ptr,
               s.numAnchors, s.sums.ptr);
  checkLaunch("reducing the loss");
}

}  // namespace

LossStateCudaPtr lossForward(const DeviceLossInput& in, const LossOptions& options,
                             Precision precision) {
  ForwardScratch scratch;
  LossStateCudaPtr st = prepareForward(in, options, precision, scratch);
  launchForwardPass(*st, scratch);
  return st;
}

void lossBackward(const LossStateCuda& s, float gradLoss, float* grad, float* contrastGrad) {
  DeviceBuffer<float> statG(static_cast<size_t>(s.B));
  launchKernel("setGradientWeights", setGradientWeights, static_cast<unsigned>((s.B + 255) / 256), 256, 0, stream(),
               s.hasGrad.ptr, s.numAnchors, s.B, lossScale(s) * gradLoss, s.sums.ptr,
               s.options.excludeAnchorsWithoutPositives, statG.ptr);
  checkLaunch("setting the gradient weights");
  Params p = makeParams(s);
  p.statG = statG.ptr;
  p.grad = grad;
  const float invTau = 1.0f / s.options.temperature;
  const bool inRegisters = (s.ld + DC - 1) / DC <= 4;
  if (s.symmetric) {
    DeviceBuffer<float> dz;
    if (!inRegisters) {
      dz = DeviceBuffer<float>(static_cast<size_t>(s.B * s.ld));
      memsetDevice(dz.ptr, 0, dz.bytes());
      p.dz = dz.ptr;
    }
    launchBackwardIn(s.precision, p, (s.B + BM - 1) / BM);
    if (!inRegisters) launchFinish(FinishArgs{p.rows, 0, s.B, s.d, s.ld, dz.ptr, nullptr, 0, invTau, grad});
    return;
  }
  // With a contrast set: the anchors' sums over the contrast rows, then the contrast rows'
  // sums over the anchors (the own rows among them add into the features' gradient), each
  // pass writing its raw sums; then both are finished.
  DeviceBuffer<float> dzAnchors(static_cast<size_t>(s.B * s.ld));
  memsetDevice(dzAnchors.ptr, 0, dzAnchors.bytes());
  p.dz = dzAnchors.ptr;
  p.rawOut = true;
  launchBackwardIn(s.precision, p, (s.numAnchors + BM - 1) / BM);
  const bool withContrastGrad = s.contrastGradient && contrastGrad != nullptr;
  const int64_t rowsC = withContrastGrad ? s.M : s.own;
  DeviceBuffer<float> dzContrast;
  if (rowsC > 0) {
    dzContrast = DeviceBuffer<float>(static_cast<size_t>(rowsC * s.ld));
    memsetDevice(dzContrast.ptr, 0, dzContrast.bytes());
    Params q = p;
    q.rows = contrastRows(s);
    q.rows.count = rowsC;
    q.cols = anchorRows(s);
    q.cols.count = s.numAnchors;
    q.rowClass = s.colClass.ptr;
    q.colClass = s.rowClass.ptr;
    q.contrastPass = true;
    q.dz = dzContrast.ptr;
    launchBackwardIn(s.precision, q, (rowsC + BM - 1) / BM);
  }
  launchFinish(FinishArgs{anchorRows(s), 0, s.B, s.d, s.ld, dzAnchors.ptr, dzContrast.ptr, s.own, invTau, grad});
  if (withContrastGrad)
    launchFinish(FinishArgs{contrastRows(s), s.own, s.m, s.d, s.ld, dzContrast.ptr + s.own * s.ld, nullptr, 0, invTau,
                            contrastGrad});
}

LossTiming timeLoss(const DeviceLossInput& input, const LossOptions& options, Precision precision,
                    float* grad, int repeats) {
  struct Events {
    cudaEvent_t e[4] = {nullptr, nullptr, nullptr, nullptr};
    Events() {
      for (auto& x : e) check(cudaEventCreate(&x), "creating timing events");
    }
    ~Events() {
      for (auto& x : e)
        if (x != nullptr) cudaEventDestroy(x);
    }
  } ev;
  LossTiming timing{{}, {}, 0, 0.0};
  synchronize();
  const int64_t before = allocatorStats().inUseBytes;
  resetPeak();
  // One untimed warm-up, then `repeats` timed runs. The uploads (features from the host,
  // labels, mask) and the loss read-back sit outside the timed intervals.
  for (int r = -1; r < repeats; ++r) {
    ForwardScratch scratch;
    LossStateCudaPtr state = prepareForward(input, options, precision, scratch);
    synchronize();
    check(cudaEventRecord(ev.e[0], stream()), "recording an event");
    launchForwardPass(*state, scratch);
    check(cudaEventRecord(ev.e[1], stream()), "recording an event");
    readLoss(*state);
    check(cudaEventRecord(ev.e[2], stream()), "recording an event");
    lossBackward(*state, 1.0f, grad, nullptr);
    check(cudaEventRecord(ev.e[3], stream()), "recording an event");
    check(cudaEventSynchronize(ev.e[3]), "waiting for an event");
    if (r < 0) continue;
    float f = 0.f, b = 0.f;
    check(cudaEventElapsedTime(&f, ev.e[0], ev.e[1]), "reading an event");
    check(cudaEventElapsedTime(&b, ev.e[2], ev.e[3]), "reading an event");
    timing.forwardMs.push_back(f);
    timing.backwardMs.push_back(b);
    timing.loss = state->loss;
  }
  timing.peakExtraBytes = allocatorStats().peakInUseBytes - before;
  return timing;
}

}  // namespace supcon::cuda
