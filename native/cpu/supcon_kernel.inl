// Fused SupCon forward and backward over one block of rows, for one instruction set.
//
// Included by supcon_kernel_{avx512,avx2,baseline}.cc, each compiled with its own flags;
// SUPCON_SIMD_WIDTH and SUPCON_ISA_NAMESPACE are set there.
//
// Orientation: a block holds MB = 2 vectors of rows (the anchors I, one lane each). Its
// features are packed transposed (zt[k][i]) so that a tile of logits is computed as
// st[j][i] = sum_k z_j[k] * zt[k][i]: a broadcast of z_j[k] times a vector over i. All the
// row statistics (online log-sum-exp, positive counts, the backward coefficients) are then
// element-wise over i, with no horizontal reductions. The B x B matrix never exists: only
// a tile of NB columns at a time.
#include <algorithm>
#include <cmath>

#include "../common/supcon_types.h"
#include "simd.h"
#include "supcon_cpu_kernels.h"

namespace supcon::cpu::SUPCON_ISA_NAMESPACE {
namespace {

using namespace supcon::simd;

constexpr int W = kWidth;
// Register blocking of the logits micro-kernel: JR columns x MV vectors of rows in
// accumulators (24 of the 32 registers with AVX-512; 8 of 16 with AVX2 and the baseline).
constexpr int MV = W >= 16 ? 3 : 2;  // vectors of anchor rows per block
constexpr int MB = MV * W;           // rows per block
constexpr int JR = W >= 16 ? 8 : 4;  // columns per micro-kernel step
constexpr int NB = 128;              // columns per tile
constexpr int KR = W >= 16 ? 8 : 4;  // k values per step of the gradient accumulation
static_assert(W % KR == 0, "the padded width ld must hold whole steps");

constexpr float kNeg = -1e30f;  // "minus infinity" that keeps exp(kNeg - m) = 0 and no NaN

// A block of MB lanes: anchor rows (own rows r0 + i) or contrast rows (c0 + i).
struct Block {
  int64_t r0;
  int rows;       // valid lanes in the block (<= MB)
  VI laneIdx[MV];   // the lane's own index (own row or contrast row)
  VI laneSelf[MV];  // anchor lanes: the contrast row that is the lane itself, or -1
  VI laneCls[MV];   // the lane's class (label, mask row or mask column); -1 past the end
};

Block makeBlock(const KernelContext& ctx, int64_t r0) {
  Block blk;
  blk.r0 = r0;
  blk.rows = static_cast<int>(std::min<int64_t>(MB, ctx.B - r0));
  for (int m = 0; m < MV; ++m) {
    for (int l = 0; l < W; ++l) {
      const int64_t r = r0 + m * W + l;
      blk.laneIdx[m][l] = static_cast<int32_t>(r);
      blk.laneSelf[m][l] = r < ctx.B ? ctx.selfColumn[r] : -1;
      blk.laneCls[m][l] = r < ctx.B ? ctx.rowClass[r] : -1;
    }
  }
  return blk;
}

Block makeContrastBlock(const KernelContext& ctx, int64_t c0) {
  Block blk;
  blk.r0 = c0;
  blk.rows = static_cast<int>(std::min<int64_t>(MB, ctx.M - c0));
  for (int m = 0; m < MV; ++m) {
    for (int l = 0; l < W; ++l) {
      const int64_t c = c0 + m * W + l;
      blk.laneIdx[m][l] = static_cast<int32_t>(c);
      blk.laneSelf[m][l] = -1;
      blk.laneCls[m][l] = c < ctx.M ? ctx.colClass[c] : -1;
    }
  }
  return blk;
}

// zt[k * MB + i] = rows[r0 + i][k]; lanes past the end are zero.
void packBlock(const KernelContext& ctx, const Block& blk, const float* rows, float* zt) {
  for (int i = 0; i < MB; ++i) {
    if (i < blk.rows) {
      const float* z = rows + (blk.r0 + i) * ctx.ld;
      for (int64_t k = 0; k < ctx.ld; ++k) zt[k * MB + i] = z[k];
    } else {
      for (int64_t k = 0; k < ctx.ld; ++k) zt[k * MB + i] = 0.0f;
    }
  }
}

// st[jj * MB + i] = cols[j0 + jj] . lane i / tau for jj < jn.
void tileLogits(const KernelContext& ctx, const float* zt, const float* cols, int64_t j0, int jn,
                float* st) {
  const int64_t ld = ctx.ld;
  for (int jj = 0; jj < jn; jj += JR) {
    const float* zr[JR];
    for (int u = 0; u < JR; ++u) zr[u] = cols + (j0 + std::min(jj + u, jn - 1)) * ld;
    VF acc[JR][MV];
    for (int u = 0; u < JR; ++u)
      for (int m = 0; m < MV; ++m) acc[u][m] = splat(0.0f);
    for (int64_t k = 0; k < ld; ++k) {
      VF a[MV];
      for (int m = 0; m < MV; ++m) a[m] = load(zt + k * MB + m * W);
#pragma GCC unroll 16
      for (int u = 0; u < JR; ++u) {
        const float b = zr[u][k];
        for (int m = 0; m < MV; ++m) acc[u][m] += a[m] * b;
      }
    }
    const int un = std::min(JR, jn - jj);
    for (int u = 0; u < un; ++u)
      for (int m = 0; m < MV; ++m) store(st + (jj + u) * MB + m * W, acc[u][m] * ctx.invTau);
  }
}

// Positive flags and weights of a lane against one column: (anchor, contrast) pairs in the
// orientation of the pass.
struct PairMasks {
  VI pos[MV];     // anchor lanes: column j in P(i)
  VI posT[MV];    // symmetric: lane i in P(j); contrast lanes: lane c in P(column anchor i)
  VF w[MV], wT[MV];  // the weights of pos and posT (0 where not positive)
  VI valid[MV];   // the pair is not an anchor against itself
};

// Weight of (anchor class a, contrast class c) on vectors; a < 0 marks lanes past the end.
inline void pairWeights(const KernelContext& ctx, VI a, VI c, VI valid, VI& pos, VF& w) {
  if (ctx.mask == nullptr) {
    pos = (a == c) & valid;
    w = select(pos, splat(1.0f), splat(0.0f));
    return;
  }
  VF x;
  for (int l = 0; l < W; ++l)
    x[l] = a[l] >= 0 && c[l] >= 0 ? ctx.mask[static_cast<int64_t>(a[l]) * ctx.maskColumns + c[l]] : 0.0f;
  pos = (x > 0.0f) & valid;
  w = select(pos, x, splat(0.0f));
}

// Anchor lanes against contrast column j.
void pairMasks(const KernelContext& ctx, const Block& blk, int64_t j, PairMasks& pm) {
  const VI jv = splati(static_cast<int32_t>(j));
  const VI cj = splati(ctx.colClass[j]);
  for (int m = 0; m < MV; ++m) {
    pm.valid[m] = blk.laneSelf[m] != jv;
    pairWeights(ctx, blk.laneCls[m], cj, pm.valid[m], pm.pos[m], pm.w[m]);
    if (!ctx.symmetric) continue;
    if (ctx.mask == nullptr) {
      pm.posT[m] = pm.pos[m];
      pm.wT[m] = pm.w[m];
    } else {
      pairWeights(ctx, splati(ctx.rowClass[j]), blk.laneCls[m], pm.valid[m], pm.posT[m], pm.wT[m]);
    }
  }
}

// Contrast lanes against anchor column i.
void contrastPairMasks(const KernelContext& ctx, const Block& blk, int64_t i, PairMasks& pm) {
  const VI self = splati(ctx.selfColumn[i]);
  const VI ai = splati(ctx.rowClass[i]);
  for (int m = 0; m < MV; ++m) {
    pm.valid[m] = blk.laneIdx[m] != self;
    pairWeights(ctx, ai, blk.laneCls[m], pm.valid[m], pm.posT[m], pm.wT[m]);
  }
}

struct ForwardState {
  VF denMax[MV], denSum[MV], posMax[MV], posSum[MV], sumPos[MV], numPos[MV], cntPos[MV];
  VF p2a[MV], p2b[MV], p2c[MV];
};

// First pass: online log-sum-exp over den(i) (and over P(i) for 'in', weighted), the
// weighted sum of positive logits, n_i (the sum of the weights) and |P(i)|.
void forwardTile(const KernelContext& ctx, const Block& blk, int64_t j0, int jn,
                 const float* st, ForwardState& fs) {
  const bool denAll = ctx.options.denominator == Denominator::All;
  const bool needPosLse = ctx.positiveTerm == PositiveTerm::ExpIn;
  VF tileDen[MV], tilePos[MV];
  for (int m = 0; m < MV; ++m) tileDen[m] = tilePos[m] = splat(kNeg);
  PairMasks pm;
  for (int jj = 0; jj < jn; ++jj) {
    pairMasks(ctx, blk, j0 + jj, pm);
    for (int m = 0; m < MV; ++m) {
      const VF s = load(st + jj * MB + m * W);
      const VI den = denAll ? pm.valid[m] : (pm.valid[m] & ~pm.pos[m]);
      tileDen[m] = vmax(tileDen[m], select(den, s, splat(kNeg)));
      if (needPosLse) tilePos[m] = vmax(tilePos[m], select(pm.pos[m], s, splat(kNeg)));
    }
  }
  for (int m = 0; m < MV; ++m) {
    const VF dm = vmax(fs.denMax[m], tileDen[m]);
    fs.denSum[m] *= vexp(fs.denMax[m] - dm);
    fs.denMax[m] = dm;
    if (needPosLse) {
      const VF pmx = vmax(fs.posMax[m], tilePos[m]);
      fs.posSum[m] *= vexp(fs.posMax[m] - pmx);
      fs.posMax[m] = pmx;
    }
  }
  VF denPart[MV], posPart[MV], sumPart[MV], cntPart[MV], numPart[MV];
  for (int m = 0; m < MV; ++m)
    denPart[m] = posPart[m] = sumPart[m] = cntPart[m] = numPart[m] = splat(0.0f);
  for (int jj = 0; jj < jn; ++jj) {
    pairMasks(ctx, blk, j0 + jj, pm);
    for (int m = 0; m < MV; ++m) {
      const VF s = load(st + jj * MB + m * W);
      const VI den = denAll ? pm.valid[m] : (pm.valid[m] & ~pm.pos[m]);
      denPart[m] += select(den, vexp(s - fs.denMax[m]), splat(0.0f));
      // A weight of 1 multiplies exactly: 0/1 positives give the unweighted sums' bits.
      if (needPosLse) posPart[m] += select(pm.pos[m], pm.w[m] * vexp(s - fs.posMax[m]), splat(0.0f));
      sumPart[m] += select(pm.pos[m], pm.w[m] * s, splat(0.0f));
      numPart[m] += pm.w[m];
      cntPart[m] += select(pm.pos[m], splat(1.0f), splat(0.0f));
    }
  }
  for (int m = 0; m < MV; ++m) {
    fs.denSum[m] += denPart[m];
    fs.posSum[m] += posPart[m];
    fs.sumPos[m] += sumPart[m];
    fs.numPos[m] += numPart[m];
    fs.cntPos[m] += cntPart[m];
  }
}

// Second pass ('onePositive'): each positive against the negatives, given a = LSE over
// the negatives, weighted. For 'in', an online log-sum-exp of log w + log sigmoid(s - a)
// (see RowAccum).
void onePositiveTile(const KernelContext& ctx, const Block& blk, int64_t j0, int jn,
                     const float* st, const VF* a, ForwardState& fs) {
  const bool out = ctx.options.variant == Variant::Out;
  const bool weighted = ctx.mask != nullptr;
  const VF zero = splat(0.0f);
  PairMasks pm;
  if (out) {
    for (int jj = 0; jj < jn; ++jj) {
      pairMasks(ctx, blk, j0 + jj, pm);
      for (int m = 0; m < MV; ++m) {
        const VF s = load(st + jj * MB + m * W);
        fs.p2a[m] += select(pm.pos[m], pm.w[m] * vsoftplus(a[m] - s), zero);
        fs.p2b[m] += select(pm.pos[m], pm.w[m] * vsigmoid(a[m] - s), zero);
      }
    }
    return;
  }
  // log w_ij + log sigmoid(s - a); log 1 is exactly 0.
  auto logTerm = [&](const PairMasks& p, int m, VF s) {
    const VF y = -vsoftplus(a[m] - s);
    return weighted ? y + vlog(select(p.pos[m], p.w[m], splat(1.0f))) : y;
  };
  VF tileMax[MV];
  for (int m = 0; m < MV; ++m) tileMax[m] = splat(kNeg);
  for (int jj = 0; jj < jn; ++jj) {
    pairMasks(ctx, blk, j0 + jj, pm);
    for (int m = 0; m < MV; ++m) {
      const VF s = load(st + jj * MB + m * W);
      tileMax[m] = vmax(tileMax[m], select(pm.pos[m], logTerm(pm, m, s), splat(kNeg)));
    }
  }
  for (int m = 0; m < MV; ++m) {
    const VF mx = vmax(fs.p2a[m], tileMax[m]);
    const VF rescale = vexp(fs.p2a[m] - mx);
    fs.p2b[m] *= rescale;
    fs.p2c[m] *= rescale;
    fs.p2a[m] = mx;
  }
  for (int jj = 0; jj < jn; ++jj) {
    pairMasks(ctx, blk, j0 + jj, pm);
    for (int m = 0; m < MV; ++m) {
      const VF s = load(st + jj * MB + m * W);
      const VF e = select(pm.pos[m], vexp(logTerm(pm, m, s) - fs.p2a[m]), zero);
      fs.p2b[m] += e;
      fs.p2c[m] += e * vsigmoid(a[m] - s);
    }
  }
}

void forwardBlock(const KernelContext& ctx, int64_t r0, float* scratch) {
  const Block blk = makeBlock(ctx, r0);
  float* zt = scratch;
  float* st = zt + ctx.ld * MB;
  packBlock(ctx, blk, ctx.zw, zt);

  ForwardState fs;
  for (int m = 0; m < MV; ++m) {
    fs.denMax[m] = fs.posMax[m] = splat(kNeg);
    fs.denSum[m] = fs.posSum[m] = fs.sumPos[m] = fs.numPos[m] = fs.cntPos[m] = splat(0.0f);
    fs.p2a[m] = splat(ctx.positiveTerm == PositiveTerm::SigmoidIn ? kNeg : 0.0f);
    fs.p2b[m] = fs.p2c[m] = splat(0.0f);
  }
  for (int64_t j0 = 0; j0 < ctx.M; j0 += NB) {
    const int jn = static_cast<int>(std::min<int64_t>(NB, ctx.M - j0));
    tileLogits(ctx, zt, ctx.zc, j0, jn, st);
    forwardTile(ctx, blk, j0, jn, st, fs);
  }
  if (ctx.options.denominator == Denominator::OnePositive) {
    VF a[MV];
    for (int m = 0; m < MV; ++m) a[m] = fs.denMax[m] + vlog(vmax(fs.denSum[m], splat(1e-38f)));
    for (int64_t j0 = 0; j0 < ctx.M; j0 += NB) {
      const int jn = static_cast<int>(std::min<int64_t>(NB, ctx.M - j0));
      tileLogits(ctx, zt, ctx.zc, j0, jn, st);
      onePositiveTile(ctx, blk, j0, jn, st, a, fs);
    }
  }

  for (int i = 0; i < blk.rows; ++i) {
    const int64_t r = r0 + i;
    if (r >= ctx.numAnchors) break;
    const int m = i / W, l = i % W;
    RowAccum acc{fs.denMax[m][l], fs.denSum[m][l], fs.posMax[m][l], fs.posSum[m][l],
                 fs.sumPos[m][l], fs.numPos[m][l], fs.p2a[m][l],  fs.p2b[m][l], fs.p2c[m][l]};
    const float numOthers = static_cast<float>(ctx.M - (ctx.selfColumn[r] >= 0 ? 1 : 0));
    const float numDen = ctx.options.denominator == Denominator::All
                             ? numOthers
                             : numOthers - fs.cntPos[m][l];
    const RowResult res = finishRow(acc, numDen, ctx.options.variant, ctx.options.denominator);
    ctx.rowLoss[r] = res.loss;
    ctx.rowCounts[r] = res.counts ? 1 : 0;
    ctx.rowHasGrad[r] = res.hasGradient ? 1 : 0;
    ctx.statA[r] = res.a;
    ctx.statB[r] = res.b;
    ctx.statC[r] = res.c;
  }
}

// d l_x / d s_xy for anchor x against column y, on vectors: the row's coefficients a, b,
// c, whether y is in den(x) / P(x), and the pair's weight w.
inline VF pairCoefficient(PositiveTerm term, VF s, VF a, VF b, VF c, VI den, VI pos, VF w) {
  const VF zero = splat(0.0f);
  VF g = select(den, c * vexp(s - a), zero);
  VF p = zero;
  switch (term) {
    case PositiveTerm::ConstOut: p = b; break;
    case PositiveTerm::ExpIn: p = vexp(s - b); break;
    case PositiveTerm::SigmoidOut: p = b * vsigmoid(a - s); break;
    case PositiveTerm::SigmoidIn: p = vexp(-vsoftplus(a - s) - b) * vsigmoid(a - s); break;
  }
  return g - select(pos, w * p, zero);
}

// Turns a tile of logits st[j][i] (anchor lanes i, contrast columns j) into H[j][i] =
// G_ij (+ G_ji when symmetric), in place.
void backwardTile(const KernelContext& ctx, const Block& blk, int64_t j0, int jn, float* st) {
  const bool denAll = ctx.options.denominator == Denominator::All;
  const PositiveTerm term = ctx.positiveTerm;
  VF ai[MV], bi[MV], ci[MV], gi[MV];
  for (int m = 0; m < MV; ++m) {
    const int64_t r = blk.r0 + m * W;
    ai[m] = load(ctx.statA + r);
    bi[m] = load(ctx.statB + r);
    ci[m] = load(ctx.statC + r);
    gi[m] = load(ctx.statG + r);
  }
  PairMasks pm;
  for (int jj = 0; jj < jn; ++jj) {
    const int64_t j = j0 + jj;
    pairMasks(ctx, blk, j, pm);
    const float gjs = ctx.symmetric ? ctx.statG[j] : 0.0f;
    for (int m = 0; m < MV; ++m) {
      const VF s = load(st + jj * MB + m * W);
      const VI denIJ = denAll ? pm.valid[m] : (pm.valid[m] & ~pm.pos[m]);
      // Rows with g = 0 (not anchors, no valid terms, padding) contribute exactly zero,
      // whatever their coefficients are.
      VF h = select(gi[m] != 0.0f,
                    gi[m] * pairCoefficient(term, s, ai[m], bi[m], ci[m], denIJ, pm.pos[m], pm.w[m]),
                    splat(0.0f));
      if (gjs != 0.0f) {
        const VF aj = splat(ctx.statA[j]), bj = splat(ctx.statB[j]), cj = splat(ctx.statC[j]);
        const VI denJI = denAll ? pm.valid[m] : (pm.valid[m] & ~pm.posT[m]);
        h += gjs * pairCoefficient(term, s, aj, bj, cj, denJI, pm.posT[m], pm.wT[m]);
      }
      store(st + jj * MB + m * W, h);
    }
  }
}

// Turns a tile of logits st[i][c] (contrast lanes c, anchor columns i) into G_ic, in place.
void backwardContrastTile(const KernelContext& ctx, const Block& blk, int64_t i0, int in,
                          float* st) {
  const bool denAll = ctx.options.denominator == Denominator::All;
  const PositiveTerm term = ctx.positiveTerm;
  PairMasks pm;
  for (int ii = 0; ii < in; ++ii) {
    const int64_t i = i0 + ii;
    const float g = ctx.statG[i];
    if (g == 0.0f) {
      for (int m = 0; m < MV; ++m) store(st + ii * MB + m * W, splat(0.0f));
      continue;
    }
    contrastPairMasks(ctx, blk, i, pm);
    const VF a = splat(ctx.statA[i]), b = splat(ctx.statB[i]), c = splat(ctx.statC[i]);
    for (int m = 0; m < MV; ++m) {
      const VF s = load(st + ii * MB + m * W);
      const VI den = denAll ? pm.valid[m] : (pm.valid[m] & ~pm.posT[m]);
      store(st + ii * MB + m * W, g * pairCoefficient(term, s, a, b, c, den, pm.posT[m], pm.wT[m]));
    }
  }
}

// dzt[k][i] += sum_j cols_j[k] * h[j][i] over the tile.
void accumulateTile(const KernelContext& ctx, const float* cols, int64_t j0, int jn, const float* h,
                    float* dzt) {
  const int64_t ld = ctx.ld;
  for (int64_t k0 = 0; k0 < ld; k0 += KR) {
    VF acc[KR][MV];
    for (int u = 0; u < KR; ++u)
      for (int m = 0; m < MV; ++m) acc[u][m] = splat(0.0f);
    for (int jj = 0; jj < jn; ++jj) {
      const float* z = cols + (j0 + jj) * ld + k0;
      VF hv[MV];
      for (int m = 0; m < MV; ++m) hv[m] = load(h + jj * MB + m * W);
#pragma GCC unroll 8
      for (int u = 0; u < KR; ++u) {
        const float b = z[u];
        for (int m = 0; m < MV; ++m) acc[u][m] += hv[m] * b;
      }
    }
    for (int u = 0; u < KR; ++u)
      for (int m = 0; m < MV; ++m) {
        float* p = dzt + (k0 + u) * MB + m * W;
        store(p, load(p) + acc[u][m]);
      }
  }
}

void backwardBlock(const KernelContext& ctx, int64_t r0, float* scratch, float* dzt) {
  const Block blk = makeBlock(ctx, r0);
  float* zt = scratch;
  float* st = zt + ctx.ld * MB;
  packBlock(ctx, blk, ctx.zw, zt);
  std::fill(dzt, dzt + ctx.ld * MB, 0.0f);
  for (int64_t j0 = 0; j0 < ctx.M; j0 += NB) {
    const int jn = static_cast<int>(std::min<int64_t>(NB, ctx.M - j0));
    tileLogits(ctx, zt, ctx.zc, j0, jn, st);
    backwardTile(ctx, blk, j0, jn, st);
    accumulateTile(ctx, ctx.zc, j0, jn, st, dzt);
  }
}

// Each block of contrast rows owns its gradient and visits the anchors in order: no
// atomics, the same bits for any thread count.
void backwardContrastBlock(const KernelContext& ctx, int64_t c0, float* scratch, float* dzt) {
  const Block blk = makeContrastBlock(ctx, c0);
  float* zt = scratch;
  float* st = zt + ctx.ld * MB;
  packBlock(ctx, blk, ctx.zc, zt);
  std::fill(dzt, dzt + ctx.ld * MB, 0.0f);
  for (int64_t i0 = 0; i0 < ctx.numAnchors; i0 += NB) {
    const int in = static_cast<int>(std::min<int64_t>(NB, ctx.numAnchors - i0));
    tileLogits(ctx, zt, ctx.zw, i0, in, st);
    backwardContrastTile(ctx, blk, i0, in, st);
    accumulateTile(ctx, ctx.zw, i0, in, st, dzt);
  }
}

// ---- The symmetric triangle ----
//
// Row block I visits the columns [r0, B) in tiles of NT = TB whole row blocks: its own
// block as a square (the row side only), each block above once, for both orders of a pair:
// the row side into the block's registers, the column side into the upper block's entries
// of colDen... (forward) or dzAcc (backward), added in block order through the tickets, so
// a result does not depend on which thread ran which block. One exponential per pair,
// e = exp(s - shift) for a fixed shift >= every |s|: exp(s - a_i) = e exp(shift - a_i).
constexpr int TB = (NB + MB - 1) / MB;  // row blocks per triangle tile
constexpr int NT = TB * MB;             // columns per triangle tile

inline float hsum(VF v) {
#if SUPCON_SIMD_WIDTH == 16
  v += __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
  v += __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11);
  v += __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
  v += __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
#elif SUPCON_SIMD_WIDTH == 8
  v += __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3);
  v += __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5);
  v += __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6);
#elif SUPCON_SIMD_WIDTH == 4
  v += __builtin_shufflevector(v, v, 2, 3, 0, 1);
  v += __builtin_shufflevector(v, v, 1, 0, 3, 2);
#else
#error "hsum: unsupported SIMD width"
#endif
  return v[0];
}

// The masks of block lanes against column j of the triangle: `own` when j is in the
// block's own rows (then lane j itself is excluded), else every live lane.
struct TriangleMasks {
  VI pos[MV], den[MV];
};

inline void triangleMasks(const KernelContext& ctx, const Block& blk, const VI* live, int64_t j,
                          bool own, TriangleMasks& tm) {
  const bool denAll = ctx.options.denominator == Denominator::All;
  const VI cj = splati(ctx.rowClass[j]);
  const VI jv = splati(static_cast<int32_t>(j));
  for (int m = 0; m < MV; ++m) {
    const VI valid = own ? (blk.laneIdx[m] != jv) & live[m] : live[m];
    tm.pos[m] = (blk.laneCls[m] == cj) & valid;
    tm.den[m] = denAll ? valid : (valid & ~tm.pos[m]);
  }
}

void liveLanes(const KernelContext& ctx, const Block& blk, VI* live) {
  const VI end = splati(static_cast<int32_t>(ctx.B));
  for (int m = 0; m < MV; ++m) live[m] = blk.laneIdx[m] < end;
}

void triangleForwardBlock(const KernelContext& ctx, int64_t r0, float* scratch) {
  const Block blk = makeBlock(ctx, r0);
  const int32_t self = static_cast<int32_t>(r0 / MB);
  float* zt = scratch;
  float* st = zt + ctx.ld * MB;
  packBlock(ctx, blk, ctx.zw, zt);
  VI live[MV];
  liveLanes(ctx, blk, live);
  const bool expIn = ctx.positiveTerm == PositiveTerm::ExpIn;
  const VF shift = splat(ctx.shift), zero = splat(0.0f), one = splat(1.0f);
  VF rowDen[MV], rowPos[MV], rowSum[MV], rowCnt[MV];
  for (int m = 0; m < MV; ++m) rowDen[m] = rowPos[m] = rowSum[m] = rowCnt[m] = zero;
  TriangleMasks tm;
  for (int64_t j0 = r0; j0 < ctx.B; j0 += NT) {
    const int jn = static_cast<int>(std::min<int64_t>(NT, ctx.B - j0));
    tileLogits(ctx, zt, ctx.zw, j0, jn, st);
    for (int jb = 0; jb < jn; jb += MB) {
      const int32_t b = static_cast<int32_t>((j0 + jb) / MB);
      const bool own = b == self;
      const int je = std::min(jb + MB, jn);
      if (!own) waitTicket(ctx.tickets[b], self);
      for (int jj = jb; jj < je; ++jj) {
        const int64_t j = j0 + jj;
        triangleMasks(ctx, blk, live, j, own, tm);
        VF colDen = zero, colPos = zero, colSum = zero, colCnt = zero;
        for (int m = 0; m < MV; ++m) {
          const VF s = load(st + jj * MB + m * W);
          const VF e = vexp(s - shift);
          const VF de = select(tm.den[m], e, zero);
          const VF ps = select(tm.pos[m], s, zero);
          const VF pc = select(tm.pos[m], one, zero);
          rowDen[m] += de;
          rowSum[m] += ps;
          rowCnt[m] += pc;
          colDen += de;
          colSum += ps;
          colCnt += pc;
          if (expIn) {
            const VF pe = select(tm.pos[m], e, zero);
            rowPos[m] += pe;
            colPos += pe;
          }
        }
        if (own) continue;
        ctx.colDen[j] += hsum(colDen);
        ctx.colSumPos[j] += hsum(colSum);
        ctx.colCount[j] += hsum(colCnt);
        if (expIn) ctx.colPosExp[j] += hsum(colPos);
      }
      if (!own) ctx.tickets[b].store(self + 1, std::memory_order_release);
    }
  }
  // Every lower block has added its share of this block's rows once the ticket reads `self`.
  waitTicket(ctx.tickets[self], self);
  const float numOthers = static_cast<float>(ctx.B - 1);
  for (int i = 0; i < blk.rows; ++i) {
    const int64_t r = r0 + i;
    const int m = i / W, l = i % W;
    const float cnt = ctx.colCount[r] + rowCnt[m][l];
    RowAccum acc{ctx.shift, ctx.colDen[r] + rowDen[m][l], ctx.shift, ctx.colPosExp[r] + rowPos[m][l],
                 ctx.colSumPos[r] + rowSum[m][l], cnt, 0.0f, 0.0f, 0.0f};
    const float numDen = ctx.options.denominator == Denominator::All ? numOthers : numOthers - cnt;
    const RowResult res = finishRow(acc, numDen, ctx.options.variant, ctx.options.denominator);
    ctx.rowLoss[r] = res.loss;
    ctx.rowCounts[r] = res.counts ? 1 : 0;
    ctx.rowHasGrad[r] = res.hasGradient ? 1 : 0;
    ctx.statA[r] = res.a;
    ctx.statB[r] = res.b;
    ctx.statC[r] = res.c;
  }
}

// Register blocking of the column side of the backward pass: JC columns x KV vectors of k.
constexpr int JC = W >= 16 ? 3 : 2;
constexpr int KV = W >= 16 ? 8 : 4;

// out[c][k] += sum_i h[c * MB + i] * z_i[k] for c < C, k < V * W, i < rows.
template <int C, int V>
inline void columnMicro(const float* h, const float* z, int64_t ld, int rows, float* out) {
  VF acc[C][V];
  for (int c = 0; c < C; ++c)
    for (int v = 0; v < V; ++v) acc[c][v] = splat(0.0f);
  for (int i = 0; i < rows; ++i) {
    VF zv[V];
    for (int v = 0; v < V; ++v) zv[v] = load(z + i * ld + v * W);
    for (int c = 0; c < C; ++c) {
      const float hv = h[c * MB + i];
      for (int v = 0; v < V; ++v) acc[c][v] += zv[v] * hv;
    }
  }
  for (int c = 0; c < C; ++c)
    for (int v = 0; v < V; ++v) {
      float* p = out + c * ld + v * W;
      store(p, load(p) + acc[c][v]);
    }
}

template <int C>
inline void columnRows(const float* h, const float* z, int64_t ld, int rows, float* out) {
  int64_t k = 0;
  for (; k + KV * W <= ld; k += KV * W) columnMicro<C, KV>(h, z + k, ld, rows, out + k);
  for (; k < ld; k += W) columnMicro<C, 1>(h, z + k, ld, rows, out + k);
}

// dzAcc[j][k] += sum_i h[j][i] z_i[k] over the block's rows, for the tile's columns [jb, je).
void columnSide(const KernelContext& ctx, const Block& blk, int64_t j0, int jb, int je,
                const float* h) {
  const int64_t ld = ctx.ld;
  const float* z = ctx.zw + blk.r0 * ld;
  int jj = jb;
  for (; jj + JC <= je; jj += JC)
    columnRows<JC>(h + jj * MB, z, ld, blk.rows, ctx.dzAcc + (j0 + jj) * ld);
  for (; jj < je; ++jj) columnRows<1>(h + jj * MB, z, ld, blk.rows, ctx.dzAcc + (j0 + jj) * ld);
}

void triangleBackwardBlock(const KernelContext& ctx, int64_t r0, float* scratch, float* dzt) {
  const Block blk = makeBlock(ctx, r0);
  const int32_t self = static_cast<int32_t>(r0 / MB);
  float* zt = scratch;
  float* st = zt + ctx.ld * MB;
  packBlock(ctx, blk, ctx.zw, zt);
  std::fill(dzt, dzt + ctx.ld * MB, 0.0f);
  VI live[MV];
  liveLanes(ctx, blk, live);
  const bool expIn = ctx.positiveTerm == PositiveTerm::ExpIn;
  const VF shift = splat(ctx.shift), zero = splat(0.0f);
  VF ai[MV], pi[MV];
  for (int m = 0; m < MV; ++m) {
    ai[m] = load(ctx.rowA + r0 + m * W);
    pi[m] = load(ctx.rowP + r0 + m * W);
  }
  TriangleMasks tm;
  for (int64_t j0 = r0; j0 < ctx.B; j0 += NT) {
    const int jn = static_cast<int>(std::min<int64_t>(NT, ctx.B - j0));
    tileLogits(ctx, zt, ctx.zw, j0, jn, st);
    // H_ij = G_ij + G_ji in place: e (rowA_i + rowA_j) over den, minus the positive terms.
    for (int jj = 0; jj < jn; ++jj) {
      const int64_t j = j0 + jj;
      triangleMasks(ctx, blk, live, j, j < r0 + MB, tm);
      const VF aj = splat(ctx.rowA[j]), pj = splat(ctx.rowP[j]);
      for (int m = 0; m < MV; ++m) {
        const VF s = load(st + jj * MB + m * W);
        const VF e = vexp(s - shift);
        const VF p = expIn ? e * (pi[m] + pj) : pi[m] + pj;
        store(st + jj * MB + m * W,
              select(tm.den[m], e * (ai[m] + aj), zero) - select(tm.pos[m], p, zero));
      }
    }
    accumulateTile(ctx, ctx.zw, j0, jn, st, dzt);
    for (int jb = 0; jb < jn; jb += MB) {
      const int32_t b = static_cast<int32_t>((j0 + jb) / MB);
      if (b == self) continue;
      waitTicket(ctx.tickets[b], self);
      columnSide(ctx, blk, j0, jb, std::min(jb + MB, jn), st);
      ctx.tickets[b].store(self + 1, std::memory_order_release);
    }
  }
}

}  // namespace

extern const KernelTable kKernels = {
    SUPCON_ISA_LABEL, W, MB, forwardBlock, backwardBlock, backwardContrastBlock,
    [](int64_t ld) -> int64_t { return ld * MB + static_cast<int64_t>(std::max(NB, NT)) * MB; },
    triangleForwardBlock, triangleBackwardBlock,
};

}  // namespace supcon::cpu::SUPCON_ISA_NAMESPACE
