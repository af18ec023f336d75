// The GEMM driver: packing, cache blocking and the thread split around the micro-kernels.
//
// Both operands are packed whole (in chunks only when they would pass kMaxPacked floats):
// A into MR-tall panels and B into NR-wide panels, k-major, in slices of KC values of k, in
// one parallel hand-out. Then tiles of C (about MC rows x kTilePanels panels) run in
// parallel, each over all K slices: per slice, the A micro-panel (MR x KC) stays in L1
// while the B panels of the tile stream from L2, and the C tile stays in the core's L2
// from slice to slice. Two hand-outs per product, and every C element belongs to one tile
// and sums its K slices in order, so the result is the same for any thread count.
#include "gemm.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "aligned_buffer.h"
#include "gemm_kernels.h"
#include "isa.h"
#include "thread_pool.h"

namespace supcon::cpu {
namespace {

constexpr int64_t KC = 256;         // K slice: an MR x KC panel of A sits in L1
constexpr int64_t MC = 256;         // rows per tile: MC x KC of A and KC x 8 NR of B fit in L2
constexpr int64_t kTilePanels = 8;  // B panels per tile
constexpr int64_t kTilesPerThread = 4;
// Floats of one packed operand at most (64 MiB); larger operands go in chunks of rows (A)
// or columns (B).
constexpr int64_t kMaxPacked = int64_t{1} << 24;
// Below this many multiply-adds the thread hand-off costs more than it saves.
constexpr double kParallelWork = 1 << 18;

const GemmKernelTable& activeGemm() { return SUPCON_ACTIVE_TABLE(kGemmKernels); }

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ap[p][k][i] = op(A)[i0 + p * mr + i][k0 + k], zero past the last row.
void packA(const GemmDesc& d, int64_t i0, int64_t mb, int64_t k0, int64_t kc, int mr,
           int64_t panel, float* ap) {
  float* dst = ap + panel * kc * mr;
  const int64_t r0 = i0 + panel * mr;
  const int rows = static_cast<int>(std::min<int64_t>(mr, i0 + mb - r0));
  if (d.transA) {
    // Stored K x M: row k of the stored matrix holds op(A)[.][k] contiguously.
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = d.A + (k0 + k) * d.lda + r0;
      float* out = dst + k * mr;
      for (int i = 0; i < rows; ++i) out[i] = src[i];
      for (int i = rows; i < mr; ++i) out[i] = 0.0f;
    }
    return;
  }
  // Stored M x K: gather one k from each of the panel's rows (mr sequential streams).
  const float* src[32];
  for (int i = 0; i < rows; ++i) src[i] = d.A + (r0 + i) * d.lda + k0;
  activeGemm().gatherRows(src, rows, mr, kc, dst);
}

// bp[p][k][j] = op(B)[k0 + k][j0 + p * nr + j], zero past the last column.
void packB(const GemmDesc& d, int64_t j0, int64_t nc, int64_t k0, int64_t kc, int nr,
           int64_t panel, float* bp) {
  float* dst = bp + panel * kc * nr;
  const int64_t c0 = j0 + panel * nr;
  const int cols = static_cast<int>(std::min<int64_t>(nr, j0 + nc - c0));
  if (!d.transB) {
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = d.B + (k0 + k) * d.ldb + c0;
      float* out = dst + k * nr;
      for (int j = 0; j < cols; ++j) out[j] = src[j];
      for (int j = cols; j < nr; ++j) out[j] = 0.0f;
    }
    return;
  }
  // Stored N x K: gather one k from each of the panel's rows (nr sequential streams).
  const float* src[64];
  for (int j = 0; j < cols; ++j) src[j] = d.B + (c0 + j) * d.ldb + k0;
  activeGemm().gatherRows(src, cols, nr, kc, dst);
}

// Packing buffers of the calling thread, kept between calls (no allocation, no page faults
// in steady state). Nested calls from pool workers use their own.
float* workspace(size_t floats) {
  thread_local AlignedBuffer<float> buffer;
  if (buffer.size() < floats) buffer = AlignedBuffer<float>(floats);
  return buffer.data();
}

void scaleC(const GemmDesc& d) {
  for (int64_t i = 0; i < d.M; ++i) {
    float* c = d.C + i * d.ldc;
    if (d.beta == 0.0f)
      std::fill(c, c + d.N, 0.0f);
    else
      for (int64_t j = 0; j < d.N; ++j) c[j] *= d.beta;
  }
}

}  // namespace

PackedBLayout packedBLayout(int64_t K, int64_t N) {
  const int64_t nr = activeGemm().nr;
  return PackedBLayout{K, N, KC, nr, ceilDiv(N, nr) * nr};
}

PackedALayout packedALayout(int64_t M, int64_t K) {
  const int64_t mr = activeGemm().mr;
  return PackedALayout{M, K, KC, mr, ceilDiv(M, mr) * mr};
}

void transposeRows(const float* const* src, int n, int width, int64_t kc, float* out) {
  activeGemm().gatherRows(src, n, width, kc, out);
}

void packA(const GemmDesc& d, float* dst, int threads) {
  const int mr = activeGemm().mr;
  const PackedALayout L = packedALayout(d.M, d.K);
  const int64_t panels = ceilDiv(d.M, mr), slices = ceilDiv(d.K, KC);
  ThreadPool::instance().parallelFor(panels * slices, threads, [&](int64_t t, int) {
    const int64_t s = t / panels, p = t % panels, k0 = s * KC;
    packA(d, 0, d.M, k0, std::min(KC, d.K - k0), mr, p, dst + k0 * L.paddedM);
  });
}

void sgemm(const GemmDesc& d, int threads) {
  if (d.M <= 0 || d.N <= 0) return;
  if (d.K <= 0 || d.alpha == 0.0f) {
    scaleC(d);
    return;
  }
  const GemmKernelTable& kt = activeGemm();
  const int mr = kt.mr, nr = kt.nr;
  if (static_cast<double>(d.M) * d.N * d.K < kParallelWork) threads = 1;
  threads = std::max(1, threads);
  ThreadPool& pool = ThreadPool::instance();

  const int64_t slices = ceilDiv(d.K, KC);
  const int64_t paddedM = ceilDiv(d.M, mr) * mr, paddedN = ceilDiv(d.N, nr) * nr;
  // Rows of A and columns of B per chunk (whole panels); a pre-packed operand is one chunk.
  const int64_t mChunk = d.packedA ? d.M : std::min(d.M, std::max<int64_t>(mr, kMaxPacked / d.K / mr * mr));
  const int64_t nChunk = d.packedB ? d.N : std::min(d.N, std::max<int64_t>(nr, kMaxPacked / d.K / nr * nr));
  // B's panels are read with aligned vector loads: start them on a 64-byte boundary.
  const int64_t aFloats = d.packedA ? 0 : ceilDiv(d.K * ceilDiv(mChunk, mr) * mr, 16) * 16;
  const int64_t bFloats = d.packedB ? 0 : d.K * ceilDiv(nChunk, nr) * nr;
  float* const aWork = workspace(static_cast<size_t>(aFloats + bFloats));
  float* const bWork = aWork + aFloats;

  for (int64_t j0 = 0; j0 < d.N; j0 += nChunk) {
    const int64_t nc = std::min(nChunk, d.N - j0);
    const int64_t nPanels = ceilDiv(nc, nr);
    // Row stride of a slice of packed B: the whole matrix when pre-packed, else the chunk.
    const int64_t bPad = d.packedB ? paddedN : nPanels * nr;
    for (int64_t i0 = 0; i0 < d.M; i0 += mChunk) {
      const int64_t mb = std::min(mChunk, d.M - i0);
      const int64_t mPanels = ceilDiv(mb, mr);
      const int64_t aPad = d.packedA ? paddedM : mPanels * mr;
      // B is packed once per column chunk; A once, or per chunk when it is split.
      const int64_t aTasks = !d.packedA && (j0 == 0 || mChunk < d.M) ? mPanels * slices : 0;
      const int64_t bTasks = !d.packedB && i0 == 0 ? nPanels * slices : 0;
      pool.parallelFor(aTasks + bTasks, threads, [&](int64_t t, int) {
        if (t < aTasks) {
          const int64_t s = t / mPanels, k0 = s * KC;
          packA(d, i0, mb, k0, std::min(KC, d.K - k0), mr, t % mPanels, aWork + k0 * aPad);
        } else {
          t -= aTasks;
          const int64_t s = t / nPanels, k0 = s * KC;
          packB(d, j0, nc, k0, std::min(KC, d.K - k0), nr, t % nPanels, bWork + k0 * bPad);
        }
      });
      // Panel pa of A and pb of B in slice k0 (kc values of k).
      const float* const aBase = d.packedA ? d.A : aWork;
      const float* const bBase = d.packedB ? d.B : bWork;
      const int64_t bPanel0 = d.packedB ? j0 / nr : 0;

      // Row blocks of about MC rows (whole panels, balanced), column blocks of
      // kTilePanels panels.
      const int64_t colBlocks = ceilDiv(nPanels, kTilePanels);
      // Row blocks of at most MC rows; more (smaller) ones when that leaves fewer than
      // kTilesPerThread tiles a thread (a product with few columns and a long K: 512 x 256
      // x 6,272 made 3 tiles for 2 threads). The tiling never changes a sum: the same bits.
      int64_t rowBlocks = ceilDiv(mPanels * mr, MC);
      if (threads > 1)
        rowBlocks = std::max(rowBlocks, std::min(mPanels, ceilDiv(kTilesPerThread * threads, colBlocks)));
      const int64_t panelsPerRowBlock = ceilDiv(mPanels, rowBlocks);
      pool.parallelFor(rowBlocks * colBlocks, threads, [&](int64_t tile, int) {
        const int64_t rb = tile % rowBlocks, cb = tile / rowBlocks;
        const int64_t pa0 = rb * panelsPerRowBlock;
        const int64_t pa1 = std::min(mPanels, pa0 + panelsPerRowBlock);
        const int64_t pb0 = cb * kTilePanels;
        const int64_t pb1 = std::min(nPanels, pb0 + kTilePanels);
        alignas(64) float edge[16 * 32];
        for (int64_t k0 = 0; k0 < d.K; k0 += KC) {
          const int64_t kc = std::min(KC, d.K - k0);
          const float beta = k0 == 0 ? d.beta : 1.0f;
          for (int64_t pa = pa0; pa < pa1; ++pa) {
            const float* apanel = aBase + k0 * aPad + pa * kc * mr;
            const int64_t r0 = i0 + pa * mr;
            const int rows = static_cast<int>(std::min<int64_t>(mr, d.M - r0));
            for (int64_t pb = pb0; pb < pb1; ++pb) {
              const float* bpanel = bBase + k0 * bPad + (bPanel0 + pb) * kc * nr;
              const int64_t c0 = j0 + pb * nr;
              const int cols = static_cast<int>(std::min<int64_t>(nr, d.N - c0));
              float* c = d.C + r0 * d.ldc + c0;
              if (rows == mr && cols == nr) {
                kt.microKernel(kc, apanel, bpanel, c, d.ldc, d.alpha, beta);
                continue;
              }
              kt.microKernel(kc, apanel, bpanel, edge, nr, d.alpha, 0.0f);
              for (int i = 0; i < rows; ++i)
                for (int j = 0; j < cols; ++j) {
                  float& out = c[i * d.ldc + j];
                  out = beta == 0.0f ? edge[i * nr + j] : edge[i * nr + j] + beta * out;
                }
            }
          }
        }
      });
    }
  }
}

double fmaPeakGflops(int threads, double seconds) {
  const GemmKernelTable& kt = activeGemm();
  threads = std::max(1, threads);
  // Calibrate one block to about 5 ms on one thread, then run enough blocks.
  float sink = 1.0f;
  int64_t iterations = 1 << 16;
  for (;;) {
    const auto t0 = std::chrono::steady_clock::now();
    kt.fmaLoop(iterations, &sink);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (dt > 2e-3 || iterations > (int64_t{1} << 40)) {
      iterations = std::max<int64_t>(1, static_cast<int64_t>(iterations * 5e-3 / dt));
      break;
    }
    iterations *= 4;
  }
  const int64_t blocks = std::max<int64_t>(threads, static_cast<int64_t>(seconds / 5e-3) * threads);
  std::vector<float> sinks(static_cast<size_t>(threads), 1.0f);
  std::vector<double> flops(static_cast<size_t>(threads), 0.0);
  const auto t0 = std::chrono::steady_clock::now();
  ThreadPool::instance().parallelFor(blocks, threads, [&](int64_t, int worker) {
    flops[static_cast<size_t>(worker)] += kt.fmaLoop(iterations, &sinks[static_cast<size_t>(worker)]);
  });
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double total = 0.0;
  for (double f : flops) total += f;
  return total / dt * 1e-9;
}

}  // namespace supcon::cpu
