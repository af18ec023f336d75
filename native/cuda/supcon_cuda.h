// The fused SupCon loss on an NVIDIA GPU: the CUDA twin of native/cpu/supcon_cpu.h, with
// the same semantics (docs/LOSS.md). Plain C++: no CUDA headers, so the binding compiles
// with the host compiler.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "../common/precision.h"
#include "../common/supcon_types.h"

namespace supcon::cuda {

// The precision of the products (native/common/precision.h).
using ::supcon::Precision;

// Contrast rows given apart from the anchors (docs/LOSS.md, "The contrast set"), as in
// native/cpu/supcon_cpu.h: the rows in device or host memory (copied into the state either
// way), labels and positions in host memory.
struct DeviceContrast {
  const float* features;      // device [m, d], or null
  const float* hostFeatures;  // host [m, d], or null
  int64_t m;
  const int32_t* labels;      // [m], with the anchors' labels; or null
  const int32_t* positions;   // [n * v] sample-major: the contrast row that is the anchor row, or -1; or null
  bool withAnchors;           // the contrast set is the own rows (view-major) then these rows
  bool gradient;              // also d loss / d contrast rows
};

// Features [n, v, d] in device memory (kept alive and unchanged by the caller until the
// state is gone) or in host memory (then copied into the state); labels [n] or mask
// (non-negative weights: [n, n], or [n, m] / [n, n + m] with a contrast set) in host
// memory, or neither.
struct DeviceLossInput {
  const float* features;      // device, or null
  const float* hostFeatures;  // host, or null
  int64_t n, v, d;
  const int32_t* labels;
  const float* mask;
  const DeviceContrast* contrast = nullptr;
};

// Device buffers kept between the forward and backward passes: O(B + M (+ the mask)), plus
// the features when they came from the host and the contrast rows.
struct LossStateCuda;
struct LossStateCudaDeleter {
  void operator()(LossStateCuda* s) const;
};
using LossStateCudaPtr = std::unique_ptr<LossStateCuda, LossStateCudaDeleter>;

// Queues the forward pass and returns without waiting for the GPU: the loss stays on the
// device until stateLoss() reads it back (once; a loss that overflowed float32 is a
// RangeError there), or lossValueInto() writes it into device memory.
LossStateCudaPtr lossForward(const DeviceLossInput& input, const LossOptions& options,
                             Precision precision);
double stateLoss(const LossStateCuda& state);
int64_t stateCounted(const LossStateCuda& state);  // anchors in the mean (reads back when excluding)
// out[0] (device memory) = the loss as float32, queued on the stream (no read-back).
void lossValueInto(const LossStateCuda& state, float* out);
int64_t stateRows(const LossStateCuda& state);   // B
int64_t stateDim(const LossStateCuda& state);    // d
int64_t stateContrastRows(const LossStateCuda& state);      // m (0 without a contrast set)
bool stateContrastGradient(const LossStateCuda& state);     // whether d loss / d contrast rows comes back
size_t stateBytes(const LossStateCuda& state);
// Queued, no read-back (the count of anchors comes from the device).
// grad [n, v, d] (device memory) = gradLoss * d loss / d features; contrastGrad [m, d]
// (device memory) = gradLoss * d loss / d contrast rows, when the state has a contrast set
// with gradient (else ignored; null: not wanted).
void lossBackward(const LossStateCuda& state, float gradLoss, float* grad, float* contrastGrad);

// Forward + backward on device features: one untimed warm-up, then `repeats` runs timed
// with CUDA events (uploads and the loss read-back outside the intervals).
struct LossTiming {
  std::vector<float> forwardMs, backwardMs;
  int64_t peakExtraBytes;  // device memory the loss allocated at its peak
  double loss;
};
LossTiming timeLoss(const DeviceLossInput& input, const LossOptions& options, Precision precision,
                    float* grad, int repeats);

}  // namespace supcon::cuda
