// Layers, element-wise ops, initialisers and optimizer steps on the CPU. Every pointer is
// dense float32 of the size its descriptor implies (checked by the caller). Backward
// functions ADD into their gradient outputs; a null gradient output is skipped. Results do
// not depend on the thread count.
#pragma once

#include <cstdint>

#include "../common/nn_types.h"

namespace supcon::cpu {

// y [N, out] = x [N, in] w^T + b, with w [out, in] and b [out] (b may be null).
void linearForward(const float* x, const float* w, const float* b, float* y, int64_t N,
                   int64_t in, int64_t out, int threads);
// The backward passes add into their gradients, except dx with overwriteDx: then dx is
// written (a fresh buffer whose contents are not read; see docs/ARCHITECTURE.md, "Memory").
void linearBackward(const float* x, const float* w, const float* dy, float* dx, float* dw,
                    float* db, int64_t N, int64_t in, int64_t out, bool overwriteDx, int threads);

void conv2dForward(const nn::Conv2dDesc& d, const float* x, const float* w, const float* b,
                   float* y, int threads);
void conv2dBackward(const nn::Conv2dDesc& d, const float* x, const float* w, const float* dy,
                    float* dx, float* dw, float* db, bool overwriteDx, int threads);
// The algorithm a pass of this convolution takes on the CPU (pass 0: forward, 1: data
// gradient, 2: weight gradient): "winograd" (F(2x2, 3x3); F(3x3, 2x2) for the weights),
// "direct" (at most 32 taps), or "im2col-gemm".
const char* conv2dAlgorithm(const nn::Conv2dDesc& d, int pass);

// Training: batch statistics (saved to saveMean / saveInvStd [C]) and, when runningMean is
// not null, the running statistics updated. Evaluation: the running statistics, also
// copied to saveMean / saveInvStd for the backward pass.
void batchNormForward(const nn::BatchNormDesc& d, bool training, const float* x,
                      const float* gamma, const float* beta, float* runningMean,
                      float* runningVar, float* y, float* saveMean, float* saveInvStd,
                      int threads);
// With d.relu, y is the forward pass's output (dy counts where y > 0); else unused (null).
void batchNormBackward(const nn::BatchNormDesc& d, bool training, const float* x,
                       const float* gamma, const float* saveMean, const float* saveInvStd,
                       const float* dy, const float* y, float* dx, float* dgamma, float* dbeta,
                       bool overwriteDx, int threads);

void reluForward(const float* x, float* y, int64_t n, int threads);
void reluBackward(const float* y, const float* dy, float* dx, int64_t n, bool overwriteDx, int threads);
void addForward(const float* a, const float* b, float* y, int64_t n, int threads);
void addInto(float* y, const float* x, int64_t n, int threads);

void maxPool2dForward(const nn::Pool2dDesc& d, const float* x, float* y, int32_t* indices,
                      int threads);
void maxPool2dBackward(const nn::Pool2dDesc& d, const int32_t* indices, const float* dy,
                       float* dx, int threads);

// x [planes, L] -> y [planes]: the mean of each plane.
void globalAvgPoolForward(const float* x, float* y, int64_t planes, int64_t L, int threads);
void globalAvgPoolBackward(const float* dy, float* dx, int64_t planes, int64_t L, int threads);

// y = x / max(|x|, eps) per row of x [rows, dim]; norms [rows] keeps |x|.
void l2NormalizeForward(const float* x, float* y, float* norms, int64_t rows, int64_t dim,
                        float eps, int threads);
void l2NormalizeBackward(const float* y, const float* norms, const float* dy, float* dx,
                         int64_t rows, int64_t dim, float eps, int threads);

// mean over rows of logsumexp(z_i) - z_i[label_i]; labels in [0, classes).
double softmaxCrossEntropyForward(const float* logits, const int32_t* labels, int64_t rows,
                                  int64_t classes, int threads);
void softmaxCrossEntropyBackward(const float* logits, const int32_t* labels, int64_t rows,
                                 int64_t classes, float gradLoss, float* dlogits, int threads);

// Counter-based draws: element i depends only on (seed, i), so any thread split gives the
// same values.
void fillNormal(float* x, int64_t n, float mean, float std, uint64_t seed, int threads);
void fillUniform(float* x, int64_t n, float low, float high, uint64_t seed, int threads);
void fillConstant(float* x, int64_t n, float value, int threads);

void sgdStep(float* p, const float* g, float* buf, int64_t n, const nn::SgdParams& o,
             int threads);
void larsStep(float* p, const float* g, float* buf, int64_t n, const nn::LarsParams& o,
              int threads);
void adamwStep(float* p, const float* g, float* m, float* v, int64_t n,
               const nn::AdamWParams& o, int threads);
void rmspropStep(float* p, const float* g, float* sq, float* buf, int64_t n,
                 const nn::RmspropParams& o, int threads);
// sqrt(sum x^2), in a fixed order.
double l2Norm(const float* x, int64_t n, int threads);

}  // namespace supcon::cpu
