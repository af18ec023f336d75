// Layer and optimizer problems as every backend sees them (CPU now, CUDA to slot in with
// the same descriptors). Tensors are dense, row-major, float32 unless noted; images are
// NCHW as in PyTorch. Backward kernels ADD into their gradient outputs (callers zero a
// gradient once, then every use accumulates), so a tensor used twice needs no extra pass.
#pragma once

#include <cstdint>

namespace supcon::nn {

// x [N, C, H, W] * w [K, C, R, S] (+ b [K]) -> y [N, K, P, Q],
// P = (H + 2 padH - R) / strideH + 1, Q likewise.
struct Conv2dDesc {
  int64_t N, C, H, W, K, R, S, strideH, strideW, padH, padW, P, Q;
};

// Max pooling with an R x S window; out-of-image taps never win. Indices are int32
// positions in the input plane (h * W + w).
struct Pool2dDesc {
  int64_t N, C, H, W, R, S, strideH, strideW, padH, padW, P, Q;
};

// Batch normalisation over x [N, C, L] (L = H * W for 2d, 1 for 1d), per channel c.
// Running statistics follow PyTorch: running = (1 - momentum) * running + momentum * batch,
// the variance unbiased (n / (n - 1)); normalisation uses the biased variance.
struct BatchNormDesc {
  int64_t N, C, L;
  float eps, momentum;
  // Fused with a ReLU after it: the forward pass writes max(y, 0), the backward pass takes
  // that output and lets dy through where it is > 0 (the bits of relu(batchNorm(x))).
  bool relu = false;
};

// One parameter tensor's update, fused. Hyper-parameters follow PyTorch's optimizers
// (docs/LAYERS.md gives the formulas).
struct SgdParams {
  float lr, momentum, dampening, weightDecay;
  bool nesterov;
  bool firstStep;  // the momentum buffer starts as the first gradient (as PyTorch)
};
struct LarsParams {
  float lr, momentum, weightDecay, trustCoefficient, eps;
  bool adapt;  // false for biases and BatchNorm parameters: plain SGD with momentum, no decay
};
struct AdamWParams {
  float lr, beta1, beta2, eps, weightDecay;
  int64_t step;  // 1 on the first update (bias correction)
};
struct RmspropParams {
  float lr, alpha, eps, weightDecay, momentum;
};

}  // namespace supcon::nn
