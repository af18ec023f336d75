// Inner loops of the layers and optimizers for one instruction set. Element-wise loops are
// plain C++ that the compiler vectorises with this file's flags; reductions use explicit
// vectors (simd.h) so their order of summation is fixed.
//
// Included by nn_kernel_{avx512,avx2,baseline}.cc; SUPCON_SIMD_WIDTH and
// SUPCON_ISA_NAMESPACE are set there.
#include <cmath>

#include "nn_kernels.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include "simd.h"

namespace supcon::cpu::SUPCON_ISA_NAMESPACE {
namespace {

using namespace supcon::simd;
constexpr int W = kWidth;
// Partial sums in float over blocks of this many elements, then into double.
constexpr int64_t kBlock = 1024;

void reluForward(const float* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void reluBackward(const float* __restrict y, const float* __restrict dy, float* __restrict dx,
                  int64_t n, bool add) {
  if (add)
    for (int64_t i = 0; i < n; ++i) dx[i] += y[i] > 0.0f ? dy[i] : 0.0f;
  else
    for (int64_t i = 0; i < n; ++i) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void add(const float* __restrict a, const float* __restrict b, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

void addInto(float* __restrict y, const float* __restrict x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void scaleShift(const float* __restrict x, float* __restrict y, int64_t n, float scale,
                float shift) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale + shift;
}

void scaleShiftRelu(const float* __restrict x, float* __restrict y, int64_t n, float scale,
                    float shift) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i] * scale + shift;
    y[i] = v > 0.0f ? v : 0.0f;
  }
}

float hsum(VF v) {
  float s = 0.0f;
  for (int l = 0; l < W; ++l) s += v[l];
  return s;
}

// The n < W values from p in a vector, zeros after them.
inline VF loadTail(const float* p, int64_t n) {
  float buf[W] = {};
  for (int64_t i = 0; i < n; ++i) buf[i] = p[i];
  return load(buf);
}
// Lanes [0, n) set.
inline VI lanesBelow(int64_t n) {
  VI lane;
  for (int l = 0; l < W; ++l) lane[l] = l;
  return lane < splati(static_cast<int32_t>(n));
}

// Float partial sums of a channel's runs, added into double a block at a time: a block is
// whole runs (or one piece of a run longer than kBlock) of at most kBlock values. Short runs
// (the deep layers: 16 to 256 values) then share one horizontal sum per block instead of
// one each, which had cost more than their arithmetic.
// A run's last values (fewer than a vector) go through the same vector arithmetic, zeros
// after them, so that the sums of batch norm with and without its fused ReLU are the same
// bits (scalar tails were contracted into FMAs in one and not the other).
struct RunSums {
  VF s = splat(0.0f), q = splat(0.0f);
  int64_t count = 0;
  double* sums;
  explicit RunSums(double* out) : sums(out) {}
  // Before a piece of n values: closes the block when they would not fit.
  void makeRoom(int64_t n) {
    if (count + n > kBlock && count > 0) flush();
    count += n;
  }
  void flush() {
    sums[0] += hsum(s);
    sums[1] += hsum(q);
    s = q = splat(0.0f);
    count = 0;
  }
};

// fn(run start offset, piece start, piece end) over the runs, each cut into pieces of at
// most kBlock values.
template <typename F>
inline void forPieces(int64_t runs, int64_t stride, int64_t L, RunSums& acc, F&& fn) {
  for (int64_t r = 0; r < runs; ++r)
    for (int64_t b0 = 0; b0 < L; b0 += kBlock) {
      const int64_t b1 = b0 + kBlock < L ? b0 + kBlock : L;
      acc.makeRoom(b1 - b0);
      fn(r * stride, b0, b1);
    }
  acc.flush();
}

void centeredMoments(const float* x, int64_t runs, int64_t stride, int64_t L, float shift, double* sums) {
  RunSums acc(sums);
  forPieces(runs, stride, L, acc, [&](int64_t off, int64_t b0, int64_t b1) {
    const float* p = x + off;
    VF s = acc.s, q = acc.q;
    int64_t i = b0;
    for (; i + W <= b1; i += W) {
      const VF d = load(p + i) - shift;
      s += d;
      q += d * d;
    }
    if (i < b1) {
      const VF d = select(lanesBelow(b1 - i), loadTail(p + i, b1 - i) - shift, splat(0.0f));
      s += d;
      q += d * d;
    }
    acc.s = s, acc.q = q;
  });
}

// dy as the layer's gradient sees it: with a fused ReLU after it (Relu), 0 where the
// forward output y is not > 0.
template <bool Relu>
inline float gradAt(const float* y, const float* dy, int64_t i) {
  if constexpr (Relu) return y[i] > 0.0f ? dy[i] : 0.0f;
  return dy[i];
}
template <bool Relu>
inline VF gradVecAt(const float* y, const float* dy, int64_t i) {
  if constexpr (Relu) return select(load(y + i) > 0.0f, load(dy + i), splat(0.0f));
  return load(dy + i);
}

template <bool Relu>
void gradMomentsOf(const float* x, const float* y, const float* dy, int64_t runs, int64_t stride, int64_t L,
                   float mean, double* sums) {
  RunSums acc(sums);
  forPieces(runs, stride, L, acc, [&](int64_t off, int64_t b0, int64_t b1) {
    const float *px = x + off, *py = Relu ? y + off : nullptr, *pdy = dy + off;
    VF s = acc.s, q = acc.q;
    int64_t i = b0;
    for (; i + W <= b1; i += W) {
      const VF g = gradVecAt<Relu>(py, pdy, i);
      s += g;
      q += g * (load(px + i) - mean);
    }
    if (i < b1) {
      // Zeros after the run's values: g is 0 there (and y, with a ReLU), so they add nothing.
      const int64_t n = b1 - i;
      const VF dyt = loadTail(pdy + i, n);
      const VF g = Relu ? select(loadTail(py + i, n) > 0.0f, dyt, splat(0.0f)) : dyt;
      s += g;
      q += g * (loadTail(px + i, n) - mean);
    }
    acc.s = s, acc.q = q;
  });
}

template <bool Relu, bool Add>
void affineGradOf(const float* __restrict x, const float* __restrict y, const float* __restrict dy,
                  float* __restrict dx, int64_t n, float k1, float k2, float mean, float k3) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = k1 * gradAt<Relu>(y, dy, i) + k2 * (x[i] - mean) + k3;
    if constexpr (Add)
      dx[i] += v;
    else
      dx[i] = v;
  }
}

void gradMoments(const float* x, const float* dy, int64_t runs, int64_t stride, int64_t L, float mean, double* sums) {
  gradMomentsOf<false>(x, nullptr, dy, runs, stride, L, mean, sums);
}
void gradMomentsRelu(const float* x, const float* y, const float* dy, int64_t runs, int64_t stride, int64_t L,
                     float mean, double* sums) {
  gradMomentsOf<true>(x, y, dy, runs, stride, L, mean, sums);
}
void affineGrad(const float* x, const float* dy, float* dx, int64_t n, float k1, float k2, float mean, float k3,
                bool add) {
  if (add)
    affineGradOf<false, true>(x, nullptr, dy, dx, n, k1, k2, mean, k3);
  else
    affineGradOf<false, false>(x, nullptr, dy, dx, n, k1, k2, mean, k3);
}
void affineGradRelu(const float* x, const float* y, const float* dy, float* dx, int64_t n, float k1, float k2,
                    float mean, float k3, bool add) {
  if (add)
    affineGradOf<true, true>(x, y, dy, dx, n, k1, k2, mean, k3);
  else
    affineGradOf<true, false>(x, y, dy, dx, n, k1, k2, mean, k3);
}

double sumSquares(const float* x, int64_t n) {
  double total = 0.0;
  for (int64_t b0 = 0; b0 < n; b0 += kBlock) {
    const int64_t b1 = b0 + kBlock < n ? b0 + kBlock : n;
    VF q = splat(0.0f);
    int64_t i = b0;
    for (; i + W <= b1; i += W) {
      const VF v = load(x + i);
      q += v * v;
    }
    float qq = hsum(q);
    for (; i < b1; ++i) qq += x[i] * x[i];
    total += qq;
  }
  return total;
}

// Output channels per pass over an im2col block: one vector of pixels stays in a register
// for KB accumulators (AVX-512 has the registers for 8, AVX2 and SSE for 4).
constexpr int KB = W >= 16 ? 8 : 4;

void fewTapsForward(const float* __restrict w, const float* __restrict bias, int64_t K, int64_t T,
                    const float* __restrict col, int64_t ldc, int64_t n, float* __restrict y,
                    int64_t ldy) {
  for (int64_t k0 = 0; k0 < K; k0 += KB) {
    const int kb = static_cast<int>(K - k0 < KB ? K - k0 : KB);
    // Rows past K repeat the last one: computed, never stored.
    const float* wr[KB];
    for (int m = 0; m < KB; ++m) wr[m] = w + (k0 + (m < kb ? m : kb - 1)) * T;
    float b[KB];
    for (int m = 0; m < KB; ++m) b[m] = bias != nullptr && m < kb ? bias[k0 + m] : 0.0f;
    int64_t j = 0;
    for (; j + W <= n; j += W) {
      VF acc[KB];
#pragma GCC unroll 8
      for (int m = 0; m < KB; ++m) acc[m] = splat(0.0f);
      for (int64_t t = 0; t < T; ++t) {
        const VF v = load(col + t * ldc + j);
#pragma GCC unroll 8
        for (int m = 0; m < KB; ++m) acc[m] += v * wr[m][t];
      }
      for (int m = 0; m < kb; ++m) store(y + (k0 + m) * ldy + j, acc[m] + b[m]);
    }
    for (; j < n; ++j)
      for (int m = 0; m < kb; ++m) {
        float s = 0.0f;
        for (int64_t t = 0; t < T; ++t) s += col[t * ldc + j] * wr[m][t];
        y[(k0 + m) * ldy + j] = s + b[m];
      }
  }
}

// Weight gradient of few taps: TB taps of KK output channels at a time in KK * TB vector
// accumulators (each dy vector loaded once for TB products, each col vector for KK).
constexpr int kTapBlock = 12;
constexpr int KK = W >= 16 ? 2 : 1;

template <int TB>
void fewTapsWeightGradBlock(const float* __restrict dy, int64_t ldy, int64_t K, int64_t T, int64_t t0,
                            const float* __restrict col, int64_t ldc, int64_t n, float* __restrict dw) {
  const float* cr[TB];
  for (int m = 0; m < TB; ++m) cr[m] = col + (t0 + m) * ldc;
  for (int64_t k0 = 0; k0 < K; k0 += KK) {
    const int kk = static_cast<int>(K - k0 < KK ? K - k0 : KK);
    // A channel past K repeats the last one: computed, never added.
    const float* g[KK];
    for (int a = 0; a < KK; ++a) g[a] = dy + (k0 + (a < kk ? a : kk - 1)) * ldy;
    VF acc[KK][TB];
#pragma GCC unroll 12
    for (int m = 0; m < TB; ++m)
      for (int a = 0; a < KK; ++a) acc[a][m] = splat(0.0f);
    int64_t j = 0;
    for (; j + W <= n; j += W) {
      VF d[KK];
      for (int a = 0; a < KK; ++a) d[a] = load(g[a] + j);
#pragma GCC unroll 12
      for (int m = 0; m < TB; ++m) {
        const VF c = load(cr[m] + j);
        for (int a = 0; a < KK; ++a) acc[a][m] += d[a] * c;
      }
    }
    for (int a = 0; a < kk; ++a)
      for (int m = 0; m < TB; ++m) {
        float s = hsum(acc[a][m]);
        for (int64_t i = j; i < n; ++i) s += g[a][i] * cr[m][i];
        dw[(k0 + a) * T + t0 + m] += s;
      }
  }
}

void fewTapsWeightGrad(const float* __restrict dy, int64_t ldy, int64_t K, int64_t T,
                       const float* __restrict col, int64_t ldc, int64_t n, float* __restrict dw) {
  // Balanced blocks of at most kTapBlock taps (27 taps: three of 9).
  const int64_t blocks = (T + kTapBlock - 1) / kTapBlock, per = (T + blocks - 1) / blocks;
  for (int64_t t0 = 0; t0 < T; t0 += per) {
    const int64_t tb = T - t0 < per ? T - t0 : per;
    switch (tb) {
#define SUPCON_TAPS(N) \
  case N: fewTapsWeightGradBlock<N>(dy, ldy, K, T, t0, col, ldc, n, dw); break;
      SUPCON_TAPS(1) SUPCON_TAPS(2) SUPCON_TAPS(3) SUPCON_TAPS(4) SUPCON_TAPS(5) SUPCON_TAPS(6)
      SUPCON_TAPS(7) SUPCON_TAPS(8) SUPCON_TAPS(9) SUPCON_TAPS(10) SUPCON_TAPS(11) SUPCON_TAPS(12)
#undef SUPCON_TAPS
      default: break;
    }
  }
}

// The Winograd transforms work on W tiles at a time (one vector per matrix element), with
// a scalar tail: the same arithmetic through a generic lane type.
// Patch element (a, b) at d + a * rs + b * cs: rs = 4 ldd, cs = ldd for patches gathered one
// matrix element a row (d[(4 a + b) * ldd]), or a row and a pixel apart in a channels-last
// buffer; the same arithmetic either way.
template <typename V, typename Load, typename Store>
inline void inputTransformStep(const float* d, int64_t rs, int64_t cs, float* v, int64_t ldv, Load ld, Store st) {
  // t = B^T d (rows), then v = t B (columns); B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
  V t[4][4];
#pragma GCC unroll 4
  for (int b = 0; b < 4; ++b) {
    const V d0 = ld(d + b * cs), d1 = ld(d + rs + b * cs);
    const V d2 = ld(d + 2 * rs + b * cs), d3 = ld(d + 3 * rs + b * cs);
    t[0][b] = d0 - d2;
    t[1][b] = d1 + d2;
    t[2][b] = d2 - d1;
    t[3][b] = d1 - d3;
  }
#pragma GCC unroll 4
  for (int a = 0; a < 4; ++a) {
    st(v + (4 * a + 0) * ldv, t[a][0] - t[a][2]);
    st(v + (4 * a + 1) * ldv, t[a][1] + t[a][2]);
    st(v + (4 * a + 2) * ldv, t[a][2] - t[a][1]);
    st(v + (4 * a + 3) * ldv, t[a][1] - t[a][3]);
  }
}

template <typename V, typename Load, typename Store>
inline void outputTransformStep(const float* m, int64_t ldm, float* y, int64_t ldy, Load ld, Store st) {
  // t = A^T m (rows), then y = t A (columns); A^T = [1 1 1 0; 0 1 -1 -1].
  V t0[4], t1[4];
#pragma GCC unroll 4
  for (int b = 0; b < 4; ++b) {
    const V m0 = ld(m + (0 + b) * ldm), m1 = ld(m + (4 + b) * ldm);
    const V m2 = ld(m + (8 + b) * ldm), m3 = ld(m + (12 + b) * ldm);
    t0[b] = m0 + m1 + m2;
    t1[b] = m1 - m2 - m3;
  }
  st(y + 0 * ldy, t0[0] + t0[1] + t0[2]);
  st(y + 1 * ldy, t0[1] - t0[2] - t0[3]);
  st(y + 2 * ldy, t1[0] + t1[1] + t1[2]);
  st(y + 3 * ldy, t1[1] - t1[2] - t1[3]);
}

// The weight gradient's F(3x3, 2x2) transform of dy's 2x2 outputs: element (a, b) at g + a *
// rs + b * cs.
template <typename V, typename Load, typename Store>
inline void gradTransformStep(const float* g, int64_t rs, int64_t cs, float* u, int64_t ldu, Load ld, Store st) {
  // t = G' g (4 x 2), then u = t G'^T (4 x 4); G' = [1 0; 1/2 1/2; 1/2 -1/2; 0 -1].
  const V g00 = ld(g), g01 = ld(g + cs), g10 = ld(g + rs), g11 = ld(g + rs + cs);
  const V t[4][2] = {{g00, g01},
                     {(g00 + g10) * 0.5f, (g01 + g11) * 0.5f},
                     {(g00 - g10) * 0.5f, (g01 - g11) * 0.5f},
                     {-g10, -g11}};
#pragma GCC unroll 4
  for (int a = 0; a < 4; ++a) {
    st(u + (4 * a + 0) * ldu, t[a][0]);
    st(u + (4 * a + 1) * ldu, (t[a][0] + t[a][1]) * 0.5f);
    st(u + (4 * a + 2) * ldu, (t[a][0] - t[a][1]) * 0.5f);
    st(u + (4 * a + 3) * ldu, -t[a][1]);
  }
}

const auto vload = [](const float* p) { return load(p); };
const auto vstore = [](float* p, VF x) { store(p, x); };
const auto sload = [](const float* p) { return *p; };
const auto sstore = [](float* p, float x) { *p = x; };

void winogradInputTransform(const float* d, int64_t ldd, int64_t n, float* v, int64_t ldv) {
  int64_t i = 0;
  for (; i + W <= n; i += W) inputTransformStep<VF>(d + i, 4 * ldd, ldd, v + i, ldv, vload, vstore);
  for (; i < n; ++i) inputTransformStep<float>(d + i, 4 * ldd, ldd, v + i, ldv, sload, sstore);
}

void winogradInputTransformChannels(const float* d, int64_t rs, int64_t C, float* v, int64_t ldv) {
  int64_t c = 0;
  for (; c + W <= C; c += W) inputTransformStep<VF>(d + c, rs, C, v + c, ldv, vload, vstore);
  for (; c < C; ++c) inputTransformStep<float>(d + c, rs, C, v + c, ldv, sload, sstore);
}

void winogradOutputTransform(const float* m, int64_t ldm, int64_t n, float* y) {
  int64_t i = 0;
  for (; i + W <= n; i += W) outputTransformStep<VF>(m + i, ldm, y + i, n, vload, vstore);
  for (; i < n; ++i) outputTransformStep<float>(m + i, ldm, y + i, n, sload, sstore);
}

void winogradGradTransformChannels(const float* g, int64_t rs, int64_t K, float* u, int64_t ldu) {
  int64_t k = 0;
  for (; k + W <= K; k += W) gradTransformStep<VF>(g + k, rs, K, u + k, ldu, vload, vstore);
  for (; k < K; ++k) gradTransformStep<float>(g + k, rs, K, u + k, ldu, sload, sstore);
}

// A W x W block transposed in registers: dst[j * ldd + i] = src[i * lds + j].
inline void transposeBlock(const float* src, int64_t lds, float* dst, int64_t ldd) {
  VF r[W];
  for (int i = 0; i < W; ++i) r[i] = load(src + i * lds);
  transposeInPlace(r);
  for (int j = 0; j < W; ++j) store(dst + j * ldd, r[j]);
}

void toChannelsLast(const float* src, int64_t cstride, int64_t C, int64_t n, float* dst) {
  int64_t c0 = 0;
  for (; c0 + W <= C; c0 += W) {
    int64_t j = 0;
    for (; j + W <= n; j += W) transposeBlock(src + c0 * cstride + j, cstride, dst + j * C + c0, C);
    for (; j < n; ++j)
      for (int64_t c = c0; c < c0 + W; ++c) dst[j * C + c] = src[c * cstride + j];
  }
  for (int64_t c = c0; c < C; ++c)
    for (int64_t j = 0; j < n; ++j) dst[j * C + c] = src[c * cstride + j];
}

// Lanes [lo, hi) of a mask (clamped to [0, 16)).
#if defined(__AVX512F__)
inline __mmask16 lanesBetween(int64_t lo, int64_t hi) {
  lo = lo < 0 ? 0 : lo;
  hi = hi > 16 ? 16 : hi;
  if (hi <= lo) return 0;
  const uint32_t upTo = (1u << hi) - 1, below = (1u << lo) - 1;
  return static_cast<__mmask16>(upTo & ~below);
}
#endif

// Panels of a packed GEMM operand from one row of n values: panel p gets
// src[p * width, p * width + width) at dst + p * panelStride, zeros past n. The AVX-512 path
// moves a panel in masked vectors (widths such as 14 are not a whole vector); the others
// copy.
void storePanels(const float* src, int64_t n, int width, float* dst, int64_t panelStride) {
  for (int64_t p = 0; p * width < n; ++p) {
    const float* in = src + p * width;
    float* out = dst + p * panelStride;
    const int64_t valid = n - p * width < width ? n - p * width : width;
#if defined(__AVX512F__)
    for (int o = 0; o < width; o += 16)
      _mm512_mask_storeu_ps(out + o, lanesBetween(0, width - o), _mm512_maskz_loadu_ps(lanesBetween(0, valid - o), in + o));
#else
    for (int64_t i = 0; i < valid; ++i) out[i] = in[i];
    for (int64_t i = valid; i < width; ++i) out[i] = 0.0f;
#endif
  }
}

void tapsLastRow(const float* const* src, int taps, int64_t C, int nr, float* dst, int64_t panelStride) {
  const int64_t panels = C / nr;
  for (int t = 0; t < taps; ++t)
    for (int64_t p = 0; p < panels; ++p) {
      float* out = dst + (t * panels + p) * panelStride;
      if (src[t] == nullptr) {
        for (int o = 0; o < nr; o += W) store(out + o, splat(0.0f));
      } else {
        const float* in = src[t] + p * nr;
        for (int o = 0; o < nr; o += W) store(out + o, load(in + o));
      }
    }
}

// One row of the 4x4 patches of `count` Winograd tiles: out[b * ld + i] = row[w0 + 2 i + b]
// for b < 4 (w0 = 2 tw0 - 1), zero outside [0, W). The AVX-512 path takes 16 tiles from two
// pairs of masked loads (the masks are the padding: nothing outside the row is read) and
// even/odd permutes, for whole vectors of tiles; the rest is the scalar loop. Copies: the same bits on every path.

void winogradPatchRow(const float* row, int64_t width, int64_t w0, int64_t count, float* out, int64_t ld) {
  int64_t i = 0;
#if defined(__AVX512F__)
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  // Whole vectors of tiles (rows of 32 pixels and wider): at 8 tiles (16 x 16 images) the
  // half-empty vectors measured no faster than the scalar copies.
  for (; count - i >= 16; i += 16)
    for (int half = 0; half < 2; ++half) {
      // Lane j of the pair is column b0 + j; the row's columns [0, width) are the ones loaded.
      const int64_t b0 = w0 + 2 * i + 2 * half;
      const __m512 lo = _mm512_maskz_loadu_ps(lanesBetween(-b0, width - b0), row + b0);
      const __m512 hi = _mm512_maskz_loadu_ps(lanesBetween(-b0 - 16, width - b0 - 16), row + b0 + 16);
      _mm512_storeu_ps(out + (2 * half) * ld + i, _mm512_permutex2var_ps(lo, even, hi));
      _mm512_storeu_ps(out + (2 * half + 1) * ld + i, _mm512_permutex2var_ps(lo, odd, hi));
    }
#endif
  for (; i < count; ++i) {
    const int64_t c0 = w0 + 2 * i;
    for (int b = 0; b < 4; ++b) out[b * ld + i] = c0 + b >= 0 && c0 + b < width ? row[c0 + b] : 0.0f;
  }
}

void sgdUpdate(float* __restrict p, const float* __restrict g, float* __restrict buf, int64_t n,
               const nn::SgdParams& o) {
  const float lr = o.lr, wd = o.weightDecay, mu = o.momentum, damp = 1.0f - o.dampening;
  if (mu == 0.0f) {
    for (int64_t i = 0; i < n; ++i) p[i] -= lr * (g[i] + wd * p[i]);
    return;
  }
  if (o.firstStep) {
    for (int64_t i = 0; i < n; ++i) buf[i] = g[i] + wd * p[i];
  } else {
    for (int64_t i = 0; i < n; ++i) buf[i] = mu * buf[i] + damp * (g[i] + wd * p[i]);
  }
  if (o.nesterov) {
    for (int64_t i = 0; i < n; ++i) p[i] -= lr * (g[i] + wd * p[i] + mu * buf[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) p[i] -= lr * buf[i];
  }
}

void larsUpdate(float* __restrict p, const float* __restrict g, float* __restrict buf, int64_t n,
                float lr, float momentum, float weightDecay, float scale) {
  for (int64_t i = 0; i < n; ++i) {
    buf[i] = momentum * buf[i] + scale * (g[i] + weightDecay * p[i]);
    p[i] -= lr * buf[i];
  }
}

void adamwUpdate(float* __restrict p, const float* __restrict g, float* __restrict m,
                 float* __restrict v, int64_t n, const nn::AdamWParams& o) {
  const double t = static_cast<double>(o.step);
  const float bc1 = static_cast<float>(1.0 - std::pow(static_cast<double>(o.beta1), t));
  const float bc2 = static_cast<float>(1.0 - std::pow(static_cast<double>(o.beta2), t));
  const float stepSize = o.lr / bc1, invSqrtBc2 = 1.0f / std::sqrt(bc2);
  const float decay = 1.0f - o.lr * o.weightDecay, b1 = o.beta1, b2 = o.beta2, eps = o.eps;
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    m[i] = b1 * m[i] + (1.0f - b1) * gi;
    v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
    p[i] = p[i] * decay - stepSize * m[i] / (std::sqrt(v[i]) * invSqrtBc2 + eps);
  }
}

void rmspropUpdate(float* __restrict p, const float* __restrict g, float* __restrict sq,
                   float* __restrict buf, int64_t n, const nn::RmspropParams& o) {
  const float a = o.alpha, wd = o.weightDecay, eps = o.eps, lr = o.lr, mu = o.momentum;
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i] + wd * p[i];
    sq[i] = a * sq[i] + (1.0f - a) * gi * gi;
    const float step = gi / (std::sqrt(sq[i]) + eps);
    if (mu > 0.0f) {
      buf[i] = mu * buf[i] + step;
      p[i] -= lr * buf[i];
    } else {
      p[i] -= lr * step;
    }
  }
}

}  // namespace

extern const NnKernelTable kNnKernels = {
    SUPCON_ISA_LABEL,
    reluForward,
    reluBackward,
    add,
    addInto,
    scaleShift,
    scaleShiftRelu,
    centeredMoments,
    gradMoments,
    affineGrad,
    gradMomentsRelu,
    affineGradRelu,
    sumSquares,
    fewTapsForward,
    fewTapsWeightGrad,
    winogradInputTransform,
    winogradOutputTransform,
    winogradInputTransformChannels,
    winogradGradTransformChannels,
    toChannelsLast,
    storePanels,
    tapsLastRow,
    winogradPatchRow,
    sgdUpdate,
    larsUpdate,
    adamwUpdate,
    rmspropUpdate,
};

}  // namespace supcon::cpu::SUPCON_ISA_NAMESPACE
