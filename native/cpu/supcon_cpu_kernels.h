// The interface between the CPU loss driver (supcon_cpu.cc) and the per-instruction-set
// kernels (supcon_kernel.inl compiled once per instruction set).
#pragma once

#include <cstdint>

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
};

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
};

namespace avx512 { extern const KernelTable kKernels; }
namespace avx2 { extern const KernelTable kKernels; }
namespace baseline { extern const KernelTable kKernels; }

}  // namespace supcon::cpu
