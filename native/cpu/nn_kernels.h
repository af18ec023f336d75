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
  // dx += dy where y > 0 (add), or dx = that (not add: dx is written, never read)
  void (*reluBackward)(const float* y, const float* dy, float* dx, int64_t n, bool add);
  // y = a + b
  void (*add)(const float* a, const float* b, float* y, int64_t n);
  // y += x
  void (*addInto)(float* y, const float* x, int64_t n);
  // y = x * scale + shift
  void (*scaleShift)(const float* x, float* y, int64_t n, float scale, float shift);
  // y = max(x * scale + shift, 0)
  void (*scaleShiftRelu)(const float* x, float* y, int64_t n, float scale, float shift);
  // The moments of a batch-norm channel: its `runs` runs of L values, `stride` apart (one an
  // image), summed in float over blocks of whole runs (or of a long run) of at most 1,024
  // values, each block then added into double. sums[0] += sum(x - shift), sums[1] +=
  // sum((x - shift)^2).
  void (*centeredMoments)(const float* x, int64_t runs, int64_t stride, int64_t L, float shift, double* sums);
  // sums[0] += sum(dy), sums[1] += sum(dy * (x - mean)), over the same runs of x and dy.
  void (*gradMoments)(const float* x, const float* dy, int64_t runs, int64_t stride, int64_t L, float mean,
                      double* sums);
  // dx += k1 * dy + k2 * (x - mean) + k3 (add), or dx = that (not add)
  void (*affineGrad)(const float* x, const float* dy, float* dx, int64_t n, float k1, float k2,
                     float mean, float k3, bool add);
  // gradMoments and affineGrad with dy taken as 0 where y <= 0 (a ReLU after the layer).
  void (*gradMomentsRelu)(const float* x, const float* y, const float* dy, int64_t runs, int64_t stride,
                          int64_t L, float mean, double* sums);
  void (*affineGradRelu)(const float* x, const float* y, const float* dy, float* dx, int64_t n,
                         float k1, float k2, float mean, float k3, bool add);
  // sum(x^2)
  double (*sumSquares)(const float* x, int64_t n);
  // A convolution with few taps T (C * R * S) on n pixels of an im2col block col [T, ldc]:
  // y[k * ldy + j] = sum_t w[k * T + t] * col[t * ldc + j] (+ bias[k] when not null), k < K.
  void (*fewTapsForward)(const float* w, const float* bias, int64_t K, int64_t T, const float* col,
                         int64_t ldc, int64_t n, float* y, int64_t ldy);
  // Its weight gradient: dw[k * T + t] += sum_j dy[k * ldy + j] * col[t * ldc + j], j < n.
  void (*fewTapsWeightGrad)(const float* dy, int64_t ldy, int64_t K, int64_t T, const float* col,
                            int64_t ldc, int64_t n, float* dw);
  // Winograd F(2x2, 3x3), the input transform of n tiles: from their 4x4 patches,
  // d[(4 a + b) * ldd + i] = patch element (a, b) of tile i, v[xi * ldv + i] = (B^T d B)[xi].
  void (*winogradInputTransform)(const float* d, int64_t ldd, int64_t n, float* v, int64_t ldv);
  // The output transform of n tiles: from m[xi * ldm + i], y[(2 a + b) * n + i] = (A^T m A)[a][b].
  void (*winogradOutputTransform)(const float* m, int64_t ldm, int64_t n, float* y);
  // The weight gradient's transforms of one tile for C (or K) channels at once, from a
  // channels-last buffer: the input transform with patch element (a, b) of channel c at
  // d[a * rs + b * C + c] (rs: a row of pixels), v[xi * ldv + c] = (B^T d B)[xi]; F(3x3,
  // 2x2) of dy's 2x2 outputs at g[a * rs + b * K + k], u[xi * ldu + k] = (G' g G'^T)[xi] with
  // G' = [1 0; 1/2 1/2; 1/2 -1/2; 0 -1] (so that the input side is the forward pass's).
  void (*winogradInputTransformChannels)(const float* d, int64_t rs, int64_t C, float* v, int64_t ldv);
  void (*winogradGradTransformChannels)(const float* g, int64_t rs, int64_t K, float* u, int64_t ldu);
  // n pixels of C channels (channel c's at src + c * cstride) channels-last: dst[j * C + c] =
  // src[c * cstride + j].
  void (*toChannelsLast)(const float* src, int64_t cstride, int64_t C, int64_t n, float* dst);
  // One k of a packed GEMM operand from a row of n values: panel p (width values, zeros past
  // n) at dst + p * panelStride gets src[p * width, p * width + width).
  void (*storePanels)(const float* src, int64_t n, int width, float* dst, int64_t panelStride);
  // One pixel's row of a weight gradient's packed operand with the taps channels-last: tap
  // t's C channels (from src[t], zeros where it is null; C a multiple of nr, nr a multiple
  // of the vector width) into the panels at dst + (t * C / nr + p) * panelStride.
  void (*tapsLastRow)(const float* const* src, int taps, int64_t C, int nr, float* dst, int64_t panelStride);
  // One row (a) of the 4x4 input patches of `count` Winograd tiles along a tile row:
  // out[b * ld + i] = row[w0 + 2 i + b], b < 4, zero outside [0, width).
  void (*winogradPatchRow)(const float* row, int64_t width, int64_t w0, int64_t count, float* out, int64_t ld);
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
