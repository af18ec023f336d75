// Layer drivers: shapes, threading and the GEMM calls around the per-instruction-set inner
// loops of nn_kernel.inl.
#include "nn_cpu.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "../common/nn_rows.h"
#include "aligned_buffer.h"
#include "gemm.h"
#include "nn_kernels.h"
#include "isa.h"
#include "thread_pool.h"

namespace supcon::cpu {

const NnKernelTable& activeNn() { return SUPCON_ACTIVE_TABLE(kNnKernels); }

namespace {

// Element-wise work is split into chunks of this many elements (never by thread count).
constexpr int64_t kChunk = int64_t{1} << 15;
// Weight gradients of a convolution are summed over at most this many fixed chunks of
// image groups (partial sums, added in order).
constexpr int64_t kConvGroups = 4;

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

template <typename F>
void forChunks(int64_t n, int threads, F&& fn) {
  const int64_t chunks = ceilDiv(n, kChunk);
  ThreadPool::instance().parallelFor(chunks, threads, [&](int64_t c, int) {
    const int64_t b = c * kChunk;
    fn(b, std::min(kChunk, n - b));
  });
}

// Scratch of the calling thread, kept between calls and never cleared (slots 0, 1 and 4 per
// task; 2, 3 and 5 for what a layer shares between its tasks: packed weights, partial sums).
float* scratch(size_t floats, int slot) {
  thread_local AlignedBuffer<float> buffers[6];
  AlignedBuffer<float>& b = buffers[slot];
  if (b.size() < floats) b = AlignedBuffer<float>(floats);
  return b.data();
}

GemmDesc gemmDesc(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  GemmDesc g;
  g.transA = ta;
  g.transB = tb;
  g.M = M;
  g.N = N;
  g.K = K;
  g.A = A;
  g.lda = lda;
  g.B = B;
  g.ldb = ldb;
  g.beta = beta;
  g.C = C;
  g.ldc = ldc;
  return g;
}

// dx [C, H, W] += the columns of one image scattered back (the adjoint of im2col).
void col2imAdd(const nn::Conv2dDesc& d, const float* dcol, int64_t ld, int64_t col0, float* dx) {
  for (int64_t c = 0; c < d.C; ++c)
    for (int64_t r = 0; r < d.R; ++r)
      for (int64_t s = 0; s < d.S; ++s) {
        const float* in = dcol + ((c * d.R + r) * d.S + s) * ld + col0;
        float* plane = dx + c * d.H * d.W;
        const int64_t qLo = std::min(d.Q, std::max<int64_t>(0, ceilDiv(d.padW - s, d.strideW)));
        const int64_t qHi = std::max(qLo, std::min(d.Q, ceilDiv(d.W + d.padW - s, d.strideW)));
        for (int64_t p = 0; p < d.P; ++p) {
          const int64_t h = p * d.strideH - d.padH + r;
          if (h < 0 || h >= d.H) continue;
          float* dst = plane + h * d.W;
          const int64_t off = s - d.padW;
          const float* row = in + p * d.Q;
          if (d.strideW == 1)
            activeNn().addInto(dst + qLo + off, row + qLo, qHi - qLo);
          else
            for (int64_t q = qLo; q < qHi; ++q) dst[q * d.strideW + off] += row[q];
        }
      }
}

// out[m] = the im2col matrix of a group of images at row t = (c * R + r) * S + s and column
// j0 + m (column i * P * Q + p * Q + q), for m < n: runs along q (copies at stride 1, a loop
// of constant stride at stride 2), zeros where the tap is padding.
void im2colTapRange(const nn::Conv2dDesc& d, const float* x, int64_t t, int64_t j0, int64_t n, float* out) {
  const int64_t s = t % d.S, r = (t / d.S) % d.R, c = t / (d.R * d.S);
  const int64_t PQ = d.P * d.Q, CHW = d.C * d.H * d.W;
  const int64_t qLo = std::min(d.Q, std::max<int64_t>(0, ceilDiv(d.padW - s, d.strideW)));
  const int64_t qHi = std::max(qLo, std::min(d.Q, ceilDiv(d.W + d.padW - s, d.strideW)));
  const int64_t off = s - d.padW;
  int64_t i = j0 / PQ, p = (j0 % PQ) / d.Q, q0 = j0 % d.Q;
  for (int64_t done = 0; done < n;) {
    const int64_t len = std::min(d.Q - q0, n - done), q1 = q0 + len;
    float* dst = out + done;  // dst[q - q0] for q in [q0, q1)
    const int64_t h = p * d.strideH - d.padH + r;
    const int64_t a = std::max(q0, qLo), b = std::min(q1, qHi);
    if (h < 0 || h >= d.H || a >= b) {
      std::fill(dst, dst + len, 0.0f);
    } else {
      // Tap of column q: in[q * strideW + off], inside the row for q in [qLo, qHi).
      const float* in = x + i * CHW + (c * d.H + h) * d.W;
      std::fill(dst, dst + (a - q0), 0.0f);
      if (d.strideW == 1)
        std::copy(in + a + off, in + b + off, dst + (a - q0));
      else if (d.strideW == 2)
        for (int64_t q = a; q < b; ++q) dst[q - q0] = in[2 * q + off];
      else
        for (int64_t q = a; q < b; ++q) dst[q - q0] = in[q * d.strideW + off];
      std::fill(dst + (b - q0), dst + len, 0.0f);
    }
    done += len;
    q0 = 0;
    if (++p == d.P) {
      p = 0;
      ++i;
    }
  }
}

// The im2col rows of output rows [p0, p1) of one image x [C, H, W], unpacked: col[t * ldc +
// (p - p0) * Q + q] for tap t = (c * R + r) * S + s, zero where the tap is padding.
void im2colRows(const nn::Conv2dDesc& d, const float* x, int64_t p0, int64_t p1, float* col, int64_t ldc) {
  for (int64_t t = 0; t < d.C * d.R * d.S; ++t) im2colTapRange(d, x, t, p0 * d.Q, (p1 - p0) * d.Q, col + t * ldc);
}

// Convolutions with at most this many taps per output (C * R * S: the stems on 1 or 3
// channels) skip the GEMM: its tiles would be mostly padding (N = C R S in the weight
// gradient's product) and its packing would cost more than the products. They run on
// im2col blocks of whole output rows, about kFewTapsPixels pixels each.
constexpr int64_t kFewTaps = 32;
constexpr int64_t kFewTapsPixels = 1024;

bool fewTaps(const nn::Conv2dDesc& d) { return d.C * d.R * d.S <= kFewTaps; }
int64_t fewTapsRows(const nn::Conv2dDesc& d) { return std::max<int64_t>(1, std::min(d.P, kFewTapsPixels / d.Q)); }

void fewTapsForward(const nn::Conv2dDesc& d, const float* x, const float* w, const float* b, float* y,
                    int threads) {
  const int64_t T = d.C * d.R * d.S, PQ = d.P * d.Q, rows = fewTapsRows(d), blocks = ceilDiv(d.P, rows);
  ThreadPool::instance().parallelFor(d.N * blocks, threads, [&](int64_t task, int) {
    const int64_t n = task / blocks, p0 = (task % blocks) * rows, p1 = std::min(d.P, p0 + rows);
    const int64_t ldc = rows * d.Q;
    float* col = scratch(static_cast<size_t>(T * ldc), 0);
    im2colRows(d, x + n * d.C * d.H * d.W, p0, p1, col, ldc);
    activeNn().fewTapsForward(w, b, d.K, T, col, ldc, (p1 - p0) * d.Q, y + n * d.K * PQ + p0 * d.Q, PQ);
  });
}

// dw += the weight gradient, summed over a fixed number of chunks of images (partial sums
// added in order), so the bits do not depend on the thread count.
void fewTapsWeightGrad(const nn::Conv2dDesc& d, const float* x, const float* dy, float* dw, int threads) {
  const int64_t T = d.C * d.R * d.S, PQ = d.P * d.Q, KT = d.K * T, rows = fewTapsRows(d);
  const int64_t perChunk = ceilDiv(d.N, std::min(d.N, kConvGroups)), chunks = ceilDiv(d.N, perChunk);
  float* partial = scratch(static_cast<size_t>(chunks * KT), 3);
  std::fill(partial, partial + chunks * KT, 0.0f);
  ThreadPool::instance().parallelFor(chunks, threads, [&](int64_t c, int) {
    const int64_t ldc = rows * d.Q;
    float* col = scratch(static_cast<size_t>(T * ldc), 0);
    for (int64_t n = c * perChunk; n < std::min(d.N, (c + 1) * perChunk); ++n)
      for (int64_t p0 = 0; p0 < d.P; p0 += rows) {
        const int64_t p1 = std::min(d.P, p0 + rows);
        im2colRows(d, x + n * d.C * d.H * d.W, p0, p1, col, ldc);
        activeNn().fewTapsWeightGrad(dy + n * d.K * PQ + p0 * d.Q, PQ, d.K, T, col, ldc, (p1 - p0) * d.Q,
                                     partial + c * KT);
      }
  });
  for (int64_t c = 0; c < chunks; ++c) activeNn().addInto(dw, partial + c * KT, KT);
}

// Columns of `count` images (column i * P * Q + p * Q + q), row (c, r, s), packed for the
// GEMM: the im2col matrix [C * R * S, count * P * Q] without a separate packing pass.
void im2colPacked(const nn::Conv2dDesc& d, const float* x, int64_t count, const PackedBLayout& L,
                  float* dst) {
  // Each row built whole in a buffer (im2colTapRange), then copied into its panels nr floats
  // at a time; the buffer's columns past the last stay zero for the last panel's padding.
  const int64_t ld = count * d.P * d.Q, nr = L.nr;
  float* row = scratch(static_cast<size_t>(L.paddedN), 4);
  std::fill(row + ld, row + L.paddedN, 0.0f);
  for (int64_t k = 0; k < L.K; ++k) {
    im2colTapRange(d, x, k, 0, ld, row);
    const int64_t slice = k / L.kc, rows = std::min(L.kc, L.K - slice * L.kc);
    float* base = dst + slice * L.kc * L.paddedN + (k - slice * L.kc) * nr;
    for (int64_t j0 = 0; j0 < L.paddedN; j0 += nr) std::copy(row + j0, row + j0 + nr, base + (j0 / nr) * rows * nr);
  }
}

// The transposed im2col matrix of `count` images, [count * P * Q, C * R * S] (row
// i * P * Q + p * Q + q, column (c, r, s)), packed for the GEMM: the weight gradient's B
// operand. A panel's nr columns over a slice's rows are nr rows of the im2col matrix, built
// as runs into a tile in cache, then transposed into the panel in vector blocks.
void im2colTransposedPacked(const nn::Conv2dDesc& d, const float* x, int64_t count, const PackedBLayout& L,
                            float* dst) {
  const int64_t rowsTotal = count * d.P * d.Q, CRS = L.N, nr = L.nr;
  float* tile = scratch(static_cast<size_t>(nr * L.kc), 4);
  const float* rows[64];
  for (int64_t k0 = 0; k0 < rowsTotal; k0 += L.kc) {
    const int64_t kc = std::min(L.kc, rowsTotal - k0);
    for (int64_t t0 = 0; t0 < L.paddedN; t0 += nr) {
      const int taps = static_cast<int>(std::min(nr, CRS - t0));
      for (int lane = 0; lane < taps; ++lane) {
        im2colTapRange(d, x, t0 + lane, k0, kc, tile + lane * L.kc);
        rows[lane] = tile + lane * L.kc;
      }
      transposeRows(rows, taps, static_cast<int>(nr), kc, dst + k0 * L.paddedN + t0 * kc);
    }
  }
}

// [K, C, R S] weights (or their gradient) to [K, R S, C] (toLast) or back.
void reorderTaps(const float* src, float* dst, int64_t K, int64_t C, int64_t RS, bool toLast, int threads) {
  ThreadPool::instance().parallelFor(K, threads, [&](int64_t k, int) {
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < RS; ++t) {
        const int64_t plain = (k * C + c) * RS + t, last = (k * RS + t) * C + c;
        dst[toLast ? last : plain] = src[toLast ? plain : last];
      }
  });
}

// The same operand with the taps in (r, s, c) order (column (r * S + s) * C + c), for C a
// whole number of panels: the images are copied channels-last (16 x 16 blocks transposed in
// registers), and each panel of nr taps is then nr channels of one (r, s) at one input
// pixel, a vector copy. The weight gradient it gives is in the same order (see
// conv2dBackward).
bool tapsLast(const nn::Conv2dDesc& d) { return d.C % packedBLayout(1, 1).nr == 0 && d.R * d.S <= 64; }

void im2colTapsLastPacked(const nn::Conv2dDesc& d, const float* x, int64_t count, const PackedBLayout& L,
                          float* dst) {
  const int64_t C = d.C, H = d.H, W = d.W, PQ = d.P * d.Q, CHW = C * H * W, nr = L.nr;
  const int taps = static_cast<int>(d.R * d.S);
  const NnKernelTable& kt = activeNn();
  float* xn = scratch(static_cast<size_t>(count * CHW), 4);
  for (int64_t i = 0; i < count; ++i)
    for (int64_t h = 0; h < H; ++h) kt.toChannelsLast(x + i * CHW + h * W, H * W, C, W, xn + (i * H + h) * W * C);
  const float* src[64];
  const int64_t rowsTotal = count * PQ;
  for (int64_t k0 = 0; k0 < rowsTotal; k0 += L.kc) {
    const int64_t kc = std::min(L.kc, rowsTotal - k0);
    float* slice = dst + k0 * L.paddedN;
    for (int64_t kk = 0; kk < kc; ++kk) {
      const int64_t j = k0 + kk, i = j / PQ, p = (j % PQ) / d.Q, q = j % d.Q;
      for (int64_t r = 0; r < d.R; ++r) {
        const int64_t h = p * d.strideH - d.padH + r;
        for (int64_t s = 0; s < d.S; ++s) {
          const int64_t w = q * d.strideW - d.padW + s;
          src[r * d.S + s] = h >= 0 && h < H && w >= 0 && w < W ? xn + ((i * H + h) * W + w) * C : nullptr;
        }
      }
      kt.tapsLastRow(src, taps, C, static_cast<int>(nr), slice + kk * nr, kc * nr);
    }
  }
}

// Winograd F(2x2, 3x3) for the stride-1, pad-1 3x3 convolutions of enough channels (the
// forward pass and the data gradient, which is the same convolution of dy with the weights
// flipped and transposed): each 2x2 block of outputs (a tile) comes from its 4x4 input
// patch d as A^T [(G g G^T) . (B^T d B)] A, so the products become 16 GEMMs [Ko x Ci] x
// [Ci x tiles], 2.25x fewer multiply-adds than the 3x3 taps. Tiles go in blocks; each
// block's transformed inputs are written straight into the GEMM's packed layout, and each
// output is written by one task, so the bits do not depend on the thread count.
constexpr int64_t kWinogradMinChannels = 16;

bool winograd(const nn::Conv2dDesc& d) {
  return d.R == 3 && d.S == 3 && d.strideH == 1 && d.strideW == 1 && d.padH == 1 && d.padW == 1 &&
         d.C >= kWinogradMinChannels && d.K >= kWinogradMinChannels;
}

// Tiles per block: the block's transformed inputs (16 x Ci x tiles) stay near 1 MB.
int64_t winogradTiles(int64_t Ci) { return std::max<int64_t>(32, std::min<int64_t>(512, 16384 / Ci / 32 * 32)); }

// The 2x2 tiles of N images of H x W (tile t: image t / perImage, tile row th, column tw),
// and the gathers the transforms read.
struct WinogradTiles {
  int64_t H, W, TH, TW, perImage, T;
  WinogradTiles(int64_t N, int64_t h, int64_t w)
      : H(h), W(w), TH(ceilDiv(h, 2)), TW(ceilDiv(w, 2)), perImage(TH * TW), T(N * TH * TW) {}
  // fn(image, tile row, first tile column, count, j) for the tiles [j0, j0 + nt) in runs
  // along a row of tiles (j: the run's first tile, from j0).
  template <typename F>
  void forRuns(int64_t j0, int64_t nt, F&& fn) const {
    for (int64_t j = 0; j < nt;) {
      const int64_t tile = j0 + j, n = tile / perImage, th = (tile % perImage) / TW, tw0 = tile % TW;
      const int64_t count = std::min(TW - tw0, nt - j);
      fn(n, th, tw0, count, j);
      j += count;
    }
  }
  // d[(4 a + b) * ld + j] = the 4x4 input patch of each tile j < nt from j0 (rows 2 th - 1 + a,
  // columns 2 tw - 1 + b; zero outside), of channel c of images [N, C, H, W].
  void patches(const float* x, int64_t C, int64_t c, int64_t j0, int64_t nt, float* d, int64_t ld) const {
    forRuns(j0, nt, [&](int64_t n, int64_t th, int64_t tw0, int64_t count, int64_t j) {
      const float* plane = x + (n * C + c) * H * W;
      for (int a = 0; a < 4; ++a) {
        const int64_t h = 2 * th - 1 + a;
        float* dst[4];
        for (int b = 0; b < 4; ++b) dst[b] = d + (4 * a + b) * ld + j;
        if (h < 0 || h >= H) {
          for (int b = 0; b < 4; ++b) std::fill(dst[b], dst[b] + count, 0.0f);
          continue;
        }
        activeNn().winogradPatchRow(plane + h * W, W, 2 * tw0 - 1, count, dst[0], ld);
      }
    });
  }
};

// The 16 transformed weight matrices U_xi [Ko x Ci], each packed as the GEMM's A operand,
// in scratch slot 2: U = G g G^T with g = w[ko][ci] ([Ko, Ci, 3, 3]), or, transposed, g =
// w[ci][ko] turned by 180 degrees (w is [Ci, Ko, 3, 3]: the data gradient's convolution).
const float* winogradWeights(const float* w, int64_t Ko, int64_t Ci, bool transposed, int threads) {
  // The 16 matrices a cache line more than their size apart (K C is often a power of two).
  const int64_t KC = Ko * Ci + 16;
  float* plain = scratch(static_cast<size_t>(16 * KC), 3);
  ThreadPool::instance().parallelFor(Ko, threads, [&](int64_t ko, int) {
    for (int64_t ci = 0; ci < Ci; ++ci) {
      float g[3][3];
      for (int r = 0; r < 3; ++r)
        for (int s = 0; s < 3; ++s)
          g[r][s] = transposed ? w[(ci * Ko + ko) * 9 + (2 - r) * 3 + (2 - s)] : w[(ko * Ci + ci) * 9 + r * 3 + s];
      float t[4][3];
      for (int s = 0; s < 3; ++s) {
        t[0][s] = g[0][s];
        t[1][s] = 0.5f * (g[0][s] + g[1][s] + g[2][s]);
        t[2][s] = 0.5f * (g[0][s] - g[1][s] + g[2][s]);
        t[3][s] = g[2][s];
      }
      for (int i = 0; i < 4; ++i) {
        float* u = plain + (i * 4) * KC + ko * Ci + ci;
        u[0 * KC] = t[i][0];
        u[1 * KC] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
        u[2 * KC] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
        u[3 * KC] = t[i][2];
      }
    }
  });
  const int64_t packed = packedALayout(Ko, Ci).floats();
  float* up = scratch(static_cast<size_t>(16 * packed), 2);
  for (int xi = 0; xi < 16; ++xi)
    packA(gemmDesc(false, false, Ko, 0, Ci, plain + xi * KC, Ci, nullptr, 0, 0.0f, nullptr, 0), up + xi * packed,
          threads);
  return up;
}

// out [N, Ko, H, W] = (or, accumulating, +=) the convolution of in [N, Ci, H, W] with the
// weights of winogradWeights, plus bias [Ko] when not null.
void winogradConv(int64_t N, int64_t Ci, int64_t Ko, int64_t H, int64_t W, const float* in, const float* up,
                  const float* bias, float* out, bool accumulate, int threads) {
  const WinogradTiles tiles(N, H, W);
  const int64_t T = tiles.T, tb = winogradTiles(Ci), blocks = ceilDiv(T, tb);
  const int64_t packedA = packedALayout(Ko, Ci).floats();
  const NnKernelTable& kt = activeNn();
  ThreadPool::instance().parallelFor(blocks, threads, [&](int64_t blk, int) {
    const int64_t j0 = blk * tb, nt = std::min(tb, T - j0);
    const PackedBLayout LB = packedBLayout(Ci, nt);
    // The 16 matrices of V and of M lie a cache line more than their size apart: at a
    // power-of-two distance (16,384 floats, as tb makes it) the 16 streams of a transform
    // would share the cache sets.
    const int64_t vFloats = LB.floats() + 16, nr = LB.nr, KN = Ko * nt + 16;
    float* v = scratch(static_cast<size_t>(16 * vFloats), 0);
    float* m = scratch(static_cast<size_t>(16 * KN), 1);
    // The 4x4 patches of the block's tiles for one channel, d[xi * paddedN + j]; the
    // padding columns stay zero.
    float* patches = scratch(static_cast<size_t>(16 * LB.paddedN + 4 * nt), 4);
    float* yBuf = patches + 16 * LB.paddedN;
    for (int xi = 0; xi < 16; ++xi) std::fill(patches + xi * LB.paddedN + nt, patches + (xi + 1) * LB.paddedN, 0.0f);
    // V_xi [Ci x nt], packed: B^T d B of every (channel, tile), a panel at a time.
    for (int64_t c = 0; c < Ci; ++c) {
      tiles.patches(in, Ci, c, j0, nt, patches, LB.paddedN);
      const int64_t slice = c / LB.kc, sliceRows = std::min(LB.kc, Ci - slice * LB.kc);
      float* rowBase = v + slice * LB.kc * LB.paddedN + (c - slice * LB.kc) * nr;
      for (int64_t p0 = 0; p0 < LB.paddedN; p0 += nr)
        kt.winogradInputTransform(patches + p0, LB.paddedN, nr, rowBase + (p0 / nr) * sliceRows * nr, vFloats);
    }
    // M_xi [Ko x nt] = U_xi V_xi.
    for (int xi = 0; xi < 16; ++xi) {
      GemmDesc gd = gemmDesc(false, false, Ko, nt, Ci, up + xi * packedA, 0, v + xi * vFloats, 0, 0.0f,
                             m + xi * KN, nt);
      gd.packedA = true;
      gd.packedB = true;
      sgemm(gd, 1);
    }
    // A^T M A: each tile's 2x2 outputs.
    for (int64_t k = 0; k < Ko; ++k) {
      kt.winogradOutputTransform(m + k * nt, KN, nt, yBuf);
      const float bk = bias != nullptr ? bias[k] : 0.0f;
      tiles.forRuns(j0, nt, [&](int64_t n, int64_t th, int64_t tw0, int64_t count, int64_t j) {
        for (int a = 0; a < 2; ++a) {
          const int64_t h = 2 * th + a;
          if (h >= H) break;
          const float* y0 = yBuf + (2 * a) * nt + j;
          const float* y1 = yBuf + (2 * a + 1) * nt + j;
          float* row = out + ((n * Ko + k) * H + h) * W + 2 * tw0;
          // Tiles with both columns inside, then the last column of an odd width.
          const int64_t full = std::min(count, (W - 2 * tw0) / 2);
          if (accumulate) {
            for (int64_t i = 0; i < full; ++i) {
              row[2 * i] += y0[i];
              row[2 * i + 1] += y1[i];
            }
            if (full < count) row[2 * full] += y0[full];
          } else {
            for (int64_t i = 0; i < full; ++i) {
              row[2 * i] = y0[i] + bk;
              row[2 * i + 1] = y1[i] + bk;
            }
            if (full < count) row[2 * full] = y0[full] + bk;
          }
        }
      });
    }
  });
}

// dw [K, C, 3, 3] += the weight gradient of a Winograd-eligible convolution, through
// F(3x3, 2x2): each tile's 4x4 input patch d and 2x2 outputs g give dw as A^T [sum over
// tiles of (G' g G'^T) . (B^T d B)] A, so the sum over pixels becomes 16 GEMMs [K x tiles] x
// [tiles x C], 2.25x fewer multiply-adds. Each run of tiles along a tile row copies its 4
// input rows and 2 rows of dy channels-last (a pixel's channels contiguous, zeros outside;
// in-register transposes), transforms a tile's channels a vector at a time, and stores the
// results straight into the GEMM's packed panels of U_xi [K x tiles] and V_xi [tiles x C]
// (no packing pass, no scalar gathers). Blocks of tiles go in order, and each of the 16 sums
// is one task's, so the bits do not depend on the thread count.
constexpr int64_t kWinogradGradTiles = 256;

void winogradWeightGrad(const nn::Conv2dDesc& d, const float* x, const float* dy, float* dw, int threads) {
  const WinogradTiles tiles(d.N, d.H, d.W);
  const int64_t C = d.C, K = d.K, H = d.H, W = d.W, T = tiles.T, tb = std::min(T, kWinogradGradTiles);
  const int64_t blocks = ceilDiv(T, tb);
  // U_xi [K x tb] and V_xi [tb x C] of a block in the GEMM's packed layouts (A and B), a
  // cache line more than a power of two apart, and the 16 sums M_xi [K x C].
  const int64_t uStride = packedALayout(K, tb).floats() + 16, vStride = packedBLayout(tb, C).floats() + 16;
  const int64_t mStride = K * C + 16;
  float* u = scratch(static_cast<size_t>(16 * uStride), 5);
  float* v = scratch(static_cast<size_t>(16 * vStride), 2);
  float* m = scratch(static_cast<size_t>(16 * mStride), 3);
  const NnKernelTable& kt = activeNn();
  ThreadPool& pool = ThreadPool::instance();
  struct Run {
    int64_t n, th, tw0, count, j;
  };
  std::vector<Run> runs;
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t j0 = blk * tb, nt = std::min(tb, T - j0);
    const PackedALayout LA = packedALayout(K, nt);
    const PackedBLayout LB = packedBLayout(nt, C);
    runs.clear();
    tiles.forRuns(j0, nt, [&](int64_t n, int64_t th, int64_t tw0, int64_t count, int64_t j) {
      runs.push_back(Run{n, th, tw0, count, j});
    });
    pool.parallelFor(static_cast<int64_t>(runs.size()), threads, [&](int64_t r, int) {
      const Run& run = runs[static_cast<size_t>(r)];
      // Input columns 2 tw0 - 1 .. 2 (tw0 + count), rows 2 th - 1 .. 2 th + 2: xr[a][col][c].
      const int64_t cols = 2 * run.count + 2, xRow = cols * C, w0 = 2 * run.tw0 - 1;
      const int64_t gCols = 2 * run.count, gRow = gCols * K;
      float* xr = scratch(static_cast<size_t>(4 * xRow + 2 * gRow + 16 * (C + K)), 4);
      float* gr = xr + 4 * xRow;
      // One tile's 16 transformed rows of C (V) and K (U) values, then their packed panels.
      float* tv = gr + 2 * gRow;
      float* tu = tv + 16 * C;
      for (int a = 0; a < 4; ++a) {
        const int64_t h = 2 * run.th - 1 + a;
        float* dst = xr + a * xRow;
        if (h < 0 || h >= H) {
          std::fill(dst, dst + xRow, 0.0f);
          continue;
        }
        const int64_t lo = std::max<int64_t>(0, -w0), hi = std::min(cols, W - w0);
        for (int64_t col = 0; col < lo; ++col) std::fill(dst + col * C, dst + (col + 1) * C, 0.0f);
        for (int64_t col = std::max(hi, lo); col < cols; ++col) std::fill(dst + col * C, dst + (col + 1) * C, 0.0f);
        if (hi > lo) kt.toChannelsLast(x + (run.n * C * H + h) * W + w0 + lo, H * W, C, hi - lo, dst + lo * C);
      }
      for (int a = 0; a < 2; ++a) {
        const int64_t h = 2 * run.th + a, q0 = 2 * run.tw0;
        float* dst = gr + a * gRow;
        const int64_t hi = h < H ? std::min(gCols, W - q0) : 0;
        for (int64_t col = hi; col < gCols; ++col) std::fill(dst + col * K, dst + (col + 1) * K, 0.0f);
        if (hi > 0) kt.toChannelsLast(dy + (run.n * K * H + h) * W + q0, H * W, K, hi, dst);
      }
      for (int64_t i = 0; i < run.count; ++i) {
        kt.winogradInputTransformChannels(xr + 2 * i * C, xRow, C, tv, C);
        kt.winogradGradTransformChannels(gr + 2 * i * K, gRow, K, tu, K);
        // Tile t is row t of packed B (V) and column t of packed A (U): in slice t / kc, k
        // index t % kc of each panel.
        const int64_t t = run.j + i, k0 = t / LB.kc * LB.kc, rows = std::min(LB.kc, nt - k0);
        for (int xi = 0; xi < 16; ++xi) {
          kt.storePanels(tv + xi * C, C, static_cast<int>(LB.nr), v + xi * vStride + k0 * LB.paddedN + (t - k0) * LB.nr,
                         rows * LB.nr);
          kt.storePanels(tu + xi * K, K, static_cast<int>(LA.mr), u + xi * uStride + k0 * LA.paddedM + (t - k0) * LA.mr,
                         rows * LA.mr);
        }
      }
    });
    // M_xi += U_xi V_xi.
    pool.parallelFor(16, threads, [&](int64_t xi, int) {
      GemmDesc gd = gemmDesc(false, false, K, C, nt, u + xi * uStride, 0, v + xi * vStride, 0, blk == 0 ? 0.0f : 1.0f,
                             m + xi * mStride, C);
      gd.packedA = true;
      gd.packedB = true;
      sgemm(gd, 1);
    });
  }
  // dw[k][c] += A^T M A, A^T = [1 1 1 0; 0 1 -1 0; 0 1 1 1].
  pool.parallelFor(K, threads, [&](int64_t k, int) {
    for (int64_t c = 0; c < C; ++c) {
      float mm[4][4];
      for (int xi = 0; xi < 16; ++xi) mm[xi / 4][xi % 4] = m[xi * mStride + k * C + c];
      float t[3][4];
      for (int b = 0; b < 4; ++b) {
        t[0][b] = mm[0][b] + mm[1][b] + mm[2][b];
        t[1][b] = mm[1][b] - mm[2][b];
        t[2][b] = mm[1][b] + mm[2][b] + mm[3][b];
      }
      float* out = dw + (k * C + c) * 9;
      for (int r = 0; r < 3; ++r) {
        out[r * 3 + 0] += t[r][0] + t[r][1] + t[r][2];
        out[r * 3 + 1] += t[r][1] - t[r][2];
        out[r * 3 + 2] += t[r][1] + t[r][2] + t[r][3];
      }
    }
  });
}

// Images go through the GEMMs in groups wide enough (G * P * Q columns) for the
// micro-kernels; small late-stage feature maps would otherwise give skinny products. 512:
// the ConvNet's 14 x 14 maps go two images a group (392 columns, 13 panels of 32, 94% of
// them used, where one image used 7 panels at 88%).
constexpr int64_t kConvColumns = 512;

int64_t imagesPerGroup(const nn::Conv2dDesc& d) {
  return std::max<int64_t>(1, std::min(d.N, kConvColumns / (d.P * d.Q)));
}

}  // namespace

void linearForward(const float* x, const float* w, const float* b, float* y, int64_t N,
                   int64_t in, int64_t out, int threads) {
  if (b != nullptr) {
    for (int64_t i = 0; i < N; ++i) std::copy(b, b + out, y + i * out);
  }
  sgemm(gemmDesc(false, true, N, out, in, x, in, w, in, b != nullptr ? 1.0f : 0.0f, y, out),
        threads);
}

void linearBackward(const float* x, const float* w, const float* dy, float* dx, float* dw,
                    float* db, int64_t N, int64_t in, int64_t out, bool overwriteDx, int threads) {
  // dx [N, in] += dy [N, out] w [out, in] (= with overwriteDx: beta 0 never reads dx); dw [out, in] += dy^T x.
  if (dx != nullptr)
    sgemm(gemmDesc(false, false, N, in, out, dy, out, w, in, overwriteDx ? 0.0f : 1.0f, dx, in), threads);
  if (dw != nullptr) sgemm(gemmDesc(true, false, out, in, N, dy, out, x, in, 1.0f, dw, in), threads);
  if (db != nullptr) {
    const int64_t blocks = ceilDiv(out, 256);
    ThreadPool::instance().parallelFor(blocks, threads, [&](int64_t blk, int) {
      const int64_t j0 = blk * 256, j1 = std::min(out, j0 + 256);
      for (int64_t j = j0; j < j1; ++j) {
        double s = 0.0;
        for (int64_t i = 0; i < N; ++i) s += dy[i * out + j];
        db[j] += static_cast<float>(s);
      }
    });
  }
}

const char* conv2dAlgorithm(const nn::Conv2dDesc& d, int pass) {
  if (winograd(d)) return "winograd";
  if (pass != 1 && fewTaps(d)) return "direct";
  return "im2col-gemm";
}

void conv2dForward(const nn::Conv2dDesc& d, const float* x, const float* w, const float* b,
                   float* y, int threads) {
  if (fewTaps(d)) {
    fewTapsForward(d, x, w, b, y, threads);
    return;
  }
  if (winograd(d)) {
    winogradConv(d.N, d.C, d.K, d.H, d.W, x, winogradWeights(w, d.K, d.C, false, threads), b, y, false, threads);
    return;
  }
  const int64_t CRS = d.C * d.R * d.S, PQ = d.P * d.Q, CHW = d.C * d.H * d.W;
  const int64_t G = imagesPerGroup(d), groups = ceilDiv(d.N, G);
  // The weights, packed once for every group.
  float* wp = scratch(static_cast<size_t>(packedALayout(d.K, CRS).floats()), 2);
  packA(gemmDesc(false, false, d.K, 0, CRS, w, CRS, nullptr, 0, 0.0f, nullptr, 0), wp, threads);
  auto group = [&](int64_t g, int gemmThreads) {
    const int64_t n0 = g * G, count = std::min(G, d.N - n0), ld = count * PQ;
    // col [CRS, count * P * Q] (image-major columns, packed) -> out [K, count * P * Q] -> y.
    const PackedBLayout L = packedBLayout(CRS, ld);
    float* col = scratch(static_cast<size_t>(L.floats()), 0);
    // One image: its output [K, P * Q] is the product itself; several: a buffer, then copies.
    float* out = count == 1 ? y + n0 * d.K * PQ : scratch(static_cast<size_t>(d.K * ld), 1);
    im2colPacked(d, x + n0 * CHW, count, L, col);
    GemmDesc gd = gemmDesc(false, false, d.K, ld, CRS, wp, 0, col, 0, 0.0f, out, ld);
    gd.packedA = true;
    gd.packedB = true;
    sgemm(gd, gemmThreads);
    for (int64_t i = 0; i < count; ++i)
      for (int64_t k = 0; k < d.K; ++k) {
        const float* src = out + k * ld + i * PQ;
        float* dst = y + ((n0 + i) * d.K + k) * PQ;
        const float bias = b != nullptr ? b[k] : 0.0f;
        if (src == dst) {
          if (b != nullptr)
            for (int64_t e = 0; e < PQ; ++e) dst[e] += bias;
        } else {
          for (int64_t e = 0; e < PQ; ++e) dst[e] = src[e] + bias;
        }
      }
  };
  if (groups >= threads) {
    ThreadPool::instance().parallelFor(groups, threads, [&](int64_t g, int) { group(g, 1); });
  } else {
    for (int64_t g = 0; g < groups; ++g) group(g, threads);
  }
}

void conv2dBackward(const nn::Conv2dDesc& d, const float* x, const float* w, const float* dy,
                    float* dx, float* dw, float* db, bool overwriteDx, int threads) {
  if (dw != nullptr && fewTaps(d)) {
    fewTapsWeightGrad(d, x, dy, dw, threads);
    dw = nullptr;
  }
  if (dx != nullptr && winograd(d)) {
    winogradConv(d.N, d.K, d.C, d.H, d.W, dy, winogradWeights(w, d.C, d.K, true, threads), nullptr, dx, !overwriteDx,
                 threads);
    dx = nullptr;
  }
  if (dw != nullptr && winograd(d)) {
    winogradWeightGrad(d, x, dy, dw, threads);
    dw = nullptr;
  }
  const int64_t CRS = d.C * d.R * d.S, PQ = d.P * d.Q, KCRS = d.K * CRS, CHW = d.C * d.H * d.W;
  const int64_t G = imagesPerGroup(d), groups = ceilDiv(d.N, G);
  // Weight gradients: each of a fixed number of chunks of image groups sums into its own
  // buffer (chunk 0 straight into dw), then the chunks are added in order.
  const int64_t perChunk = ceilDiv(groups, std::min(groups, kConvGroups));
  const int64_t chunks = ceilDiv(groups, perChunk);  // none of them empty
  // With the taps channels-last (im2colTapsLastPacked), chunk 0 sums into dw reordered to
  // [K, R, S, C] and the others into their own buffers; the same additions in the same order
  // as into dw itself, so the same bits, then dw gets its order back.
  const bool last = dw != nullptr && tapsLast(d);
  float* partial = dw != nullptr && (chunks > 1 || last)
                       ? scratch(static_cast<size_t>((last ? chunks : chunks - 1) * KCRS), 3)
                       : nullptr;
  const int64_t RS = d.R * d.S;
  if (last) reorderTaps(dw, partial, d.K, d.C, RS, true, threads);
  float* dwBase = last ? partial : dw;
  float* partials = last ? partial + KCRS : partial;
  // The data gradient with the taps channels-last (C a whole number of panels): dcol^T
  // [G P Q, R S C] = dy_g^T w' with w' = w as [K, R, S, C]; each output pixel's row adds
  // a C-vector per tap into the image's dx held channels-last, taps in the plain path's
  // order (so the same bits), then dx goes back to [C, H, W]. Otherwise w^T [CRS, K],
  // packed once for every group.
  const bool dataLast = dx != nullptr && tapsLast(d);
  float* wl = nullptr;
  if (dataLast) {
    wl = scratch(static_cast<size_t>(KCRS), 5);
    reorderTaps(w, wl, d.K, d.C, RS, true, threads);
  }
  float* wtp = nullptr;
  if (dx != nullptr && !dataLast) {
    wtp = scratch(static_cast<size_t>(packedALayout(CRS, d.K).floats()), 2);
    packA(gemmDesc(true, false, CRS, 0, d.K, w, CRS, nullptr, 0, 0.0f, nullptr, 0), wtp, threads);
  }
  auto chunk = [&](int64_t c, int gemmThreads) {
    if (dw == nullptr && dx == nullptr) return;
    float* dwc = dw == nullptr ? nullptr : (c == 0 ? dwBase : partials + (c - 1) * KCRS);
    // col: the transposed, packed im2col matrix of a group (weights), then w^T dy (data).
    const int64_t colFloats = std::max(CRS * G * PQ, packedBLayout(G * PQ, CRS).floats());
    float* col = scratch(static_cast<size_t>(colFloats), 0);
    float* dygBuffer = scratch(static_cast<size_t>(d.K * G * PQ), 1);
    const int64_t g1 = std::min(groups, (c + 1) * perChunk);
    for (int64_t g = c * perChunk; g < g1; ++g) {
      const int64_t n0 = g * G, count = std::min(G, d.N - n0), ld = count * PQ;
      // dy of the group as [K, count * P * Q]: one image's dy already is.
      const float* dyg = dy + n0 * d.K * PQ;
      if (count > 1) {
        for (int64_t i = 0; i < count; ++i)
          for (int64_t k = 0; k < d.K; ++k)
            std::copy(dy + ((n0 + i) * d.K + k) * PQ, dy + ((n0 + i) * d.K + k + 1) * PQ, dygBuffer + k * ld + i * PQ);
        dyg = dygBuffer;
      }
      if (dwc != nullptr) {
        if (last)
          im2colTapsLastPacked(d, x + n0 * CHW, count, packedBLayout(ld, CRS), col);
        else
          im2colTransposedPacked(d, x + n0 * CHW, count, packedBLayout(ld, CRS), col);
        // dw [K, CRS] += dy_g [K, ld] col^T.
        // Chunk 0 adds into dw; the others start their partial sums with their first group.
        const float beta = c == 0 || g > c * perChunk ? 1.0f : 0.0f;
        GemmDesc gd = gemmDesc(false, false, d.K, CRS, ld, dyg, ld, col, 0, beta, dwc, CRS);
        gd.packedB = true;
        sgemm(gd, gemmThreads);
      }
      if (dataLast) {
        sgemm(gemmDesc(true, false, ld, CRS, d.K, dyg, ld, wl, CRS, 0.0f, col, CRS), gemmThreads);
        const NnKernelTable& kt = activeNn();
        const int64_t HW = d.H * d.W;
        float* xn = scratch(static_cast<size_t>(CHW), 4);
        for (int64_t i = 0; i < count; ++i) {
          float* dxi = dx + (n0 + i) * CHW;
          if (overwriteDx)
            std::fill(xn, xn + CHW, 0.0f);
          else
            kt.toChannelsLast(dxi, HW, d.C, HW, xn);
          for (int64_t r = 0; r < d.R; ++r)
            for (int64_t s = 0; s < d.S; ++s)
              for (int64_t p = 0; p < d.P; ++p) {
                const int64_t h = p * d.strideH - d.padH + r;
                if (h < 0 || h >= d.H) continue;
                const float* row = col + (i * PQ + p * d.Q) * CRS + (r * d.S + s) * d.C;
                for (int64_t q = 0; q < d.Q; ++q) {
                  const int64_t wq = q * d.strideW - d.padW + s;
                  if (wq >= 0 && wq < d.W) kt.addInto(xn + (h * d.W + wq) * d.C, row + q * CRS, d.C);
                }
              }
          kt.toChannelsLast(xn, d.C, HW, d.C, dxi);
        }
      } else if (dx != nullptr) {
        // dcol [CRS, ld] = w^T dy_g, scattered back image by image.
        GemmDesc gd = gemmDesc(false, false, CRS, ld, d.K, wtp, 0, dyg, ld, 0.0f, col, ld);
        gd.packedA = true;
        sgemm(gd, gemmThreads);
        for (int64_t i = 0; i < count; ++i) {
          // A fresh dx is cleared an image at a time, just before its sums (in cache then).
          if (overwriteDx) std::fill(dx + (n0 + i) * CHW, dx + (n0 + i + 1) * CHW, 0.0f);
          col2imAdd(d, col, ld, i * PQ, dx + (n0 + i) * CHW);
        }
      }
    }
  };
  if (chunks >= threads) {
    ThreadPool::instance().parallelFor(chunks, threads, [&](int64_t c, int) { chunk(c, 1); });
  } else {
    for (int64_t c = 0; c < chunks; ++c) chunk(c, threads);
  }
  if (dw != nullptr && chunks > 1) {
    forChunks(KCRS, threads, [&](int64_t b0, int64_t len) {
      for (int64_t c = 1; c < chunks; ++c) activeNn().addInto(dwBase + b0, partials + (c - 1) * KCRS + b0, len);
    });
  }
  if (last) reorderTaps(partial, dw, d.K, d.C, RS, false, threads);
  if (db != nullptr) {
    ThreadPool::instance().parallelFor(d.K, threads, [&](int64_t k, int) {
      double s = 0.0;
      for (int64_t n = 0; n < d.N; ++n) {
        const float* row = dy + (n * d.K + k) * PQ;
        for (int64_t i = 0; i < PQ; ++i) s += row[i];
      }
      db[k] += static_cast<float>(s);
    });
  }
}

void batchNormForward(const nn::BatchNormDesc& d, bool training, const float* x,
                      const float* gamma, const float* beta, float* runningMean,
                      float* runningVar, float* y, float* saveMean, float* saveInvStd,
                      int threads) {
  const NnKernelTable& kt = activeNn();
  const int64_t count = d.N * d.L;
  ThreadPool::instance().parallelFor(d.C, threads, [&](int64_t c, int) {
    float mean, invStd;
    if (training) {
      // Moments about the channel's first value (stable for large means).
      const float shift = x[c * d.L];
      double sums[2] = {0.0, 0.0};
      kt.centeredMoments(x + c * d.L, d.N, d.C * d.L, d.L, shift, sums);
      const double m = sums[0] / static_cast<double>(count);
      const double var = std::max(0.0, sums[1] / static_cast<double>(count) - m * m);
      mean = static_cast<float>(shift + m);
      invStd = static_cast<float>(1.0 / std::sqrt(var + d.eps));
      if (runningMean != nullptr) {
        const double unbiased = count > 1 ? var * count / (count - 1) : var;
        runningMean[c] = static_cast<float>((1.0 - d.momentum) * runningMean[c] + d.momentum * (shift + m));
        runningVar[c] = static_cast<float>((1.0 - d.momentum) * runningVar[c] + d.momentum * unbiased);
      }
    } else {
      mean = runningMean[c];
      invStd = static_cast<float>(1.0 / std::sqrt(static_cast<double>(runningVar[c]) + d.eps));
    }
    saveMean[c] = mean;
    saveInvStd[c] = invStd;
    const float scale = gamma[c] * invStd, shift = beta[c] - mean * scale;
    for (int64_t n = 0; n < d.N; ++n) {
      const int64_t off = (n * d.C + c) * d.L;
      (d.relu ? kt.scaleShiftRelu : kt.scaleShift)(x + off, y + off, d.L, scale, shift);
    }
  });
}

void batchNormBackward(const nn::BatchNormDesc& d, bool training, const float* x,
                       const float* gamma, const float* saveMean, const float* saveInvStd,
                       const float* dy, const float* y, float* dx, float* dgamma, float* dbeta,
                       bool overwriteDx, int threads) {
  const NnKernelTable& kt = activeNn();
  const double count = static_cast<double>(d.N * d.L);
  ThreadPool::instance().parallelFor(d.C, threads, [&](int64_t c, int) {
    const float mean = saveMean[c], invStd = saveInvStd[c];
    double sums[2] = {0.0, 0.0};  // sum dy, sum dy (x - mean)
    if (d.relu)
      kt.gradMomentsRelu(x + c * d.L, y + c * d.L, dy + c * d.L, d.N, d.C * d.L, d.L, mean, sums);
    else
      kt.gradMoments(x + c * d.L, dy + c * d.L, d.N, d.C * d.L, d.L, mean, sums);
    if (dbeta != nullptr) dbeta[c] += static_cast<float>(sums[0]);
    if (dgamma != nullptr) dgamma[c] += static_cast<float>(sums[1] * invStd);
    if (dx == nullptr) return;
    // Training: dx = g s (dy - mean(dy) - xhat mean(dy xhat)), xhat = (x - mean) s.
    const float k1 = gamma[c] * invStd;
    const float k2 = training ? static_cast<float>(-k1 * invStd * invStd * sums[1] / count) : 0.0f;
    const float k3 = training ? static_cast<float>(-k1 * sums[0] / count) : 0.0f;
    for (int64_t n = 0; n < d.N; ++n) {
      const int64_t off = (n * d.C + c) * d.L;
      if (d.relu)
        kt.affineGradRelu(x + off, y + off, dy + off, dx + off, d.L, k1, k2, mean, k3, !overwriteDx);
      else
        kt.affineGrad(x + off, dy + off, dx + off, d.L, k1, k2, mean, k3, !overwriteDx);
    }
  });
}

void reluForward(const float* x, float* y, int64_t n, int threads) {
  const NnKernelTable& kt = activeNn();
  forChunks(n, threads, [&](int64_t b, int64_t len) { kt.reluForward(x + b, y + b, len); });
}

void reluBackward(const float* y, const float* dy, float* dx, int64_t n, bool overwriteDx, int threads) {
  const NnKernelTable& kt = activeNn();
  forChunks(n, threads, [&](int64_t b, int64_t len) { kt.reluBackward(y + b, dy + b, dx + b, len, !overwriteDx); });
}

void addForward(const float* a, const float* b, float* y, int64_t n, int threads) {
  const NnKernelTable& kt = activeNn();
  forChunks(n, threads, [&](int64_t o, int64_t len) { kt.add(a + o, b + o, y + o, len); });
}

void addInto(float* y, const float* x, int64_t n, int threads) {
  const NnKernelTable& kt = activeNn();
  forChunks(n, threads, [&](int64_t o, int64_t len) { kt.addInto(y + o, x + o, len); });
}

void maxPool2dForward(const nn::Pool2dDesc& d, const float* x, float* y, int32_t* indices,
                      int threads) {
  ThreadPool::instance().parallelFor(d.N * d.C, threads, [&](int64_t plane, int) {
    const float* xp = x + plane * d.H * d.W;
    float* yp = y + plane * d.P * d.Q;
    int32_t* ip = indices + plane * d.P * d.Q;
    for (int64_t p = 0; p < d.P; ++p)
      for (int64_t q = 0; q < d.Q; ++q) {
        float best = -std::numeric_limits<float>::infinity();
        int64_t at = -1;
        for (int64_t r = 0; r < d.R; ++r) {
          const int64_t h = p * d.strideH - d.padH + r;
          if (h < 0 || h >= d.H) continue;
          for (int64_t s = 0; s < d.S; ++s) {
            const int64_t w = q * d.strideW - d.padW + s;
            if (w < 0 || w >= d.W) continue;
            const float v = xp[h * d.W + w];
            if (at < 0 || v > best || std::isnan(v)) {
              best = v;
              at = h * d.W + w;
              if (std::isnan(v)) break;
            }
          }
        }
        yp[p * d.Q + q] = best;
        ip[p * d.Q + q] = static_cast<int32_t>(at);
      }
  });
}

void maxPool2dBackward(const nn::Pool2dDesc& d, const int32_t* indices, const float* dy,
                       float* dx, int threads) {
  ThreadPool::instance().parallelFor(d.N * d.C, threads, [&](int64_t plane, int) {
    float* dxp = dx + plane * d.H * d.W;
    const float* dyp = dy + plane * d.P * d.Q;
    const int32_t* ip = indices + plane * d.P * d.Q;
    for (int64_t o = 0; o < d.P * d.Q; ++o) dxp[ip[o]] += dyp[o];
  });
}

void globalAvgPoolForward(const float* x, float* y, int64_t planes, int64_t L, int threads) {
  const int64_t blocks = ceilDiv(planes, 64);
  ThreadPool::instance().parallelFor(blocks, threads, [&](int64_t blk, int) {
    const int64_t p1 = std::min(planes, (blk + 1) * 64);
    for (int64_t p = blk * 64; p < p1; ++p) {
      double s = 0.0;
      for (int64_t i = 0; i < L; ++i) s += x[p * L + i];
      y[p] = static_cast<float>(s / static_cast<double>(L));
    }
  });
}

void globalAvgPoolBackward(const float* dy, float* dx, int64_t planes, int64_t L, int threads) {
  const int64_t blocks = ceilDiv(planes, 64);
  const float inv = 1.0f / static_cast<float>(L);
  ThreadPool::instance().parallelFor(blocks, threads, [&](int64_t blk, int) {
    const int64_t p1 = std::min(planes, (blk + 1) * 64);
    for (int64_t p = blk * 64; p < p1; ++p) {
      const float g = dy[p] * inv;
      for (int64_t i = 0; i < L; ++i) dx[p * L + i] += g;
    }
  });
}

void l2NormalizeForward(const float* x, float* y, float* norms, int64_t rows, int64_t dim,
                        float eps, int threads) {
  ThreadPool::instance().parallelFor(rows, threads, [&](int64_t r, int) {
    nn::l2NormalizeForwardRow(x + r * dim, y + r * dim, norms + r, dim, eps);
  });
}

void l2NormalizeBackward(const float* y, const float* norms, const float* dy, float* dx,
                         int64_t rows, int64_t dim, float eps, int threads) {
  ThreadPool::instance().parallelFor(rows, threads, [&](int64_t r, int) {
    nn::l2NormalizeBackwardRow(y + r * dim, norms[r], dy + r * dim, dx + r * dim, dim, eps);
  });
}

double softmaxCrossEntropyForward(const float* logits, const int32_t* labels, int64_t rows,
                                  int64_t classes, int threads) {
  std::vector<double> rowLoss(static_cast<size_t>(rows));
  ThreadPool::instance().parallelFor(rows, threads, [&](int64_t r, int) {
    const float* z = logits + r * classes;
    rowLoss[static_cast<size_t>(r)] = nn::rowLogSumExp(z, classes) - z[labels[r]];
  });
  double sum = 0.0;
  for (double l : rowLoss) sum += l;
  return sum / static_cast<double>(rows);
}

void softmaxCrossEntropyBackward(const float* logits, const int32_t* labels, int64_t rows,
                                 int64_t classes, float gradLoss, float* dlogits, int threads) {
  const double g = static_cast<double>(gradLoss) / static_cast<double>(rows);
  ThreadPool::instance().parallelFor(rows, threads, [&](int64_t r, int) {
    const float* z = logits + r * classes;
    float* out = dlogits + r * classes;
    const double lse = nn::rowLogSumExp(z, classes);
    for (int64_t k = 0; k < classes; ++k) {
      const double p = std::exp(static_cast<double>(z[k]) - lse);
      out[k] += static_cast<float>(g * (p - (k == labels[r] ? 1.0 : 0.0)));
    }
  });
}

namespace {
uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
// A uniform double in (0, 1) from (seed, counter).
double uniformAt(uint64_t seed, uint64_t i) {
  return (static_cast<double>(mix(mix(seed) ^ i) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}
}  // namespace

void fillNormal(float* x, int64_t n, float mean, float std, uint64_t seed, int threads) {
  // Box-Muller: elements 2j and 2j + 1 come from the pair of uniforms (2j, 2j + 1).
  const int64_t pairs = ceilDiv(n, 2);
  forChunks(pairs, threads, [&](int64_t b, int64_t len) {
    for (int64_t j = b; j < b + len; ++j) {
      const double u1 = uniformAt(seed, 2 * j), u2 = uniformAt(seed, 2 * j + 1);
      const double rad = std::sqrt(-2.0 * std::log(u1)), ang = 6.283185307179586 * u2;
      x[2 * j] = static_cast<float>(mean + std * rad * std::cos(ang));
      if (2 * j + 1 < n) x[2 * j + 1] = static_cast<float>(mean + std * rad * std::sin(ang));
    }
  });
}

void fillUniform(float* x, int64_t n, float low, float high, uint64_t seed, int threads) {
  forChunks(n, threads, [&](int64_t b, int64_t len) {
    for (int64_t i = b; i < b + len; ++i)
      x[i] = static_cast<float>(low + (static_cast<double>(high) - low) * uniformAt(seed, i));
  });
}

void fillConstant(float* x, int64_t n, float value, int threads) {
  forChunks(n, threads, [&](int64_t b, int64_t len) { std::fill(x + b, x + b + len, value); });
}

}  // namespace supcon::cpu
