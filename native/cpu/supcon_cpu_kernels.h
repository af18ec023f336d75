// The interface between the CPU loss driver (supcon_cpu.cc) and the per-instruction-set
// kernels (supcon_kernel.inl compiled once per instruction set).
#pragma once

#include <cstdint>

#include "../common/supcon_types.h"

namespace supcon::cpu {

struct KernelContext {
  const float* zw;         // [B, ld] rows, view-major, zero-padded to ld, normalised if asked
  int64_t n, B, ld, numAnchors;
  const int32_t* rowClass;  // [B]: the row's label, or its sample index in mask mode
  const uint8_t* mask;      // [n, n] or null
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
  // dzt[k * rowBlock + i] = sum_j H_ij z_j[k] for rows r0 + i (not yet divided by tau).
  void (*backwardBlock)(const KernelContext& ctx, int64_t r0, float* scratch, float* dzt);
  int64_t (*scratchFloats)(int64_t ld);
};

namespace avx512 { extern const KernelTable kKernels; }
namespace avx2 { extern const KernelTable kKernels; }
namespace baseline { extern const KernelTable kKernels; }

}  // namespace supcon::cpu
