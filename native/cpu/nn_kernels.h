// The interface between the layer and optimizer drivers (nn_cpu.cc, optim_cpu.cc) and
// their per-instruction-set inner loops (nn_kernel.inl compiled once per instruction set).
// Each function works on one contiguous range; the drivers split the work over threads.
#pragma once

#include <cstdint>

#include "../common/nn_types.h"

namespace supcon::cpu {

struct NnKernelTable {
  const char* name;
  // y = max(x, 0)
  void (*reluForward)(const float* x, float* y, int64_t n);
  // dx += dy where y > 0
  void (*reluBackward)(const float* y, const float* dy, float* dx, int64_t n);
  // y = a + b
  void (*add)(const float* a, const float* b, float* y, int64_t n);
  // y += x
  void (*addInto)(float* y, const float* x, int64_t n);
  // y = x * scale + shift
  void (*scaleShift)(const float* x, float* y, int64_t n, float scale, float shift);
  // sums[0] += sum(x - shift), sums[1] += sum((x - shift)^2)
  void (*centeredMoments)(const float* x, int64_t n, float shift, double* sums);
  // sums[0] += sum(dy), sums[1] += sum(dy * (x - mean))
  void (*gradMoments)(const float* x, const float* dy, int64_t n, float mean, double* sums);
  // dx += k1 * dy + k2 * (x - mean) + k3
  void (*affineGrad)(const float* x, const float* dy, float* dx, int64_t n, float k1, float k2,
                     float mean, float k3);
  // sum(x^2)
  double (*sumSquares)(const float* x, int64_t n);
  // Optimizer updates of one parameter range (docs/LAYERS.md).
  void (*sgdUpdate)(float* p, const float* g, float* buf, int64_t n, const nn::SgdParams& o);
  // buf = momentum * buf + scale * (g + wd * p); p -= lr * buf
  void (*larsUpdate)(float* p, const float* g, float* buf, int64_t n, float lr, float momentum,
                     float weightDecay, float scale);
  void (*adamwUpdate)(float* p, const float* g, float* m, float* v, int64_t n,
                      const nn::AdamWParams& o);
  void (*rmspropUpdate)(float* p, const float* g, float* sq, float* buf, int64_t n,
                        const nn::RmspropParams& o);
};

namespace avx512 { extern const NnKernelTable kNnKernels; }
namespace avx2 { extern const NnKernelTable kNnKernels; }
namespace baseline { extern const NnKernelTable kNnKernels; }

// The table of the active kernel set (the one the loss and GEMM use).
const NnKernelTable& activeNn();

}  // namespace supcon::cpu
