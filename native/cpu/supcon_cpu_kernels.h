// The interface between the CPU loss driver (supcon_cpu.cc) and the per-instruction-set
// kernels (supcon_kernel.inl compiled once per instruction set).
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#include "../common/supcon_types.h"

namespace supcon::cpu {

// Two sets of rows: the features' own rows ([B, ld], view-major; the anchors are the first
// numAnchors) and the contrast rows ([M, ld]). Without a contrast set the contrast rows are
// the own rows (zc == zw, selfColumn[r] == r) and the backward pass is symmetric.
struct KernelContext {
  const float* zw;          // [B, ld] own rows, zero-padded to ld, normalised if asked
  const float* zc;          // [M, ld] contrast rows, likewise
  int64_t n, B, M, ld, numAnchors;
  const int32_t* rowClass;  // [B]: the row's label, or its mask row (its sample)
  const int32_t* colClass;  // [M]: the contrast row's label, or its mask column
  const int32_t* selfColumn;  // [B]: the contrast row that is this row itself, or -1
  const float* mask;        // [n, maskColumns] non-negative weights, or null (labels)
  int64_t maskColumns;
  bool symmetric;           // contrast rows == own rows: backwardBlock forms G + G^T
  float invTau;
  LossOptions options;
  PositiveTerm positiveTerm;
  // Forward outputs, per anchor row.
  float* rowLoss;
  uint8_t* rowCounts;
  uint8_t* rowHasGrad;
  // Per-row coefficients (written by the forward pass; statG by the driver). Each array has
  // room for B rounded up to a whole block, zero past B.
  float* statA;
  float* statB;
  float* statC;
  float* statG;
  // The symmetric triangle (triangleForwardBlock / triangleBackwardBlock): every pair of
  // rows in different row blocks is visited once, by the lower block, which adds the upper
  // block's share into these arrays in block order (tickets[b] = the lower blocks that have
  // added theirs to block b). Null outside it.
  float shift = 0.0f;           // the fixed log-sum-exp shift: every |s_ij| <= shift
  float* colDen = nullptr;      // [B] sum over den(r) of exp(s - shift), from lower blocks
  float* colPosExp = nullptr;   // [B] sum over P(r) of exp(s - shift) ('in')
  float* colSumPos = nullptr;   // [B] sum over P(r) of s
  float* colCount = nullptr;    // [B] |P(r)|
  const float* rowA = nullptr;  // [padded] g c exp(shift - a): G's den term is rowA * exp(s - shift)
  const float* rowP = nullptr;  // [padded] g b ('out'), g exp(shift - b) ('in'): its positive term
  float* dzAcc = nullptr;       // [B, ld] the gradient's share from lower blocks (not yet / tau)
  std::atomic<int32_t>* tickets = nullptr;  // [row blocks]
};

// Waits until a block's ticket reaches `want` (the lower blocks before it have added theirs).
inline void waitTicket(const std::atomic<int32_t>& ticket, int32_t want) {
  for (int spin = 0; ticket.load(std::memory_order_acquire) != want; ++spin)
    if (spin >= 64) std::this_thread::yield();
}

struct KernelTable {
  const char* name;
  int width;     // floats per vector
  int rowBlock;  // rows per block
  // Statistics of the anchor rows [r0, r0 + rowBlock).
  void (*forwardBlock)(const KernelContext& ctx, int64_t r0, float* scratch);
  // dzt[k * rowBlock + i] = sum_j H_ij zc_j[k] for own rows r0 + i (not yet divided by tau);
  // H = G + G^T when symmetric, else G.
  void (*backwardBlock)(const KernelContext& ctx, int64_t r0, float* scratch, float* dzt);
  // dzt[k * rowBlock + c] = sum_i G_ic z_i[k] over the anchors, for contrast rows c0 + c.
  void (*backwardContrastBlock)(const KernelContext& ctx, int64_t c0, float* scratch, float* dzt);
  int64_t (*scratchFloats)(int64_t ld);
  // The symmetric triangle without a mask, for contrastMode 'all' and the denominators
  // 'all' and 'onlyNegatives', when every logit is within [-shift, shift] and exp(-2 shift)
  // stays a normal float. Row block r0 / rowBlock visits the columns [r0, B): its own block
  // as a square, the blocks above once for both orders of each pair. The forward pass
  // writes the block's row results once tickets[block] == block (the driver need not wait).
  void (*triangleForwardBlock)(const KernelContext& ctx, int64_t r0, float* scratch);
  // dzt as backwardBlock's, for the pairs it visits; the upper blocks' share goes into
  // dzAcc. A row's gradient is dzAcc + dzt once tickets[block] == block.
  void (*triangleBackwardBlock)(const KernelContext& ctx, int64_t r0, float* scratch, float* dzt);
};

namespace avx512 { extern const KernelTable kKernels; }
namespace avx2 { extern const KernelTable kKernels; }
namespace baseline { extern const KernelTable kKernels; }

}  // namespace supcon::cpu
