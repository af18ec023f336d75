// Layers, element-wise ops, initialisers and optimizer steps on the GPU: the CUDA twins of
// native/cpu/nn_cpu.h, with the same descriptors (native/common/nn_types.h) and the same
// semantics. Every pointer is device memory, dense float32 of the size its descriptor
// implies (checked by the caller). Backward functions ADD into their gradient outputs; a
// null gradient output is skipped. Everything runs on the addon's stream (runtime.h), in a
// fixed order of summation: the same bits run to run. Plain C++ header.
#pragma once

#include <cstdint>

#include "../common/nn_types.h"
#include "supcon_cuda.h"

namespace supcon::cuda {

// y [N, out] = x [N, in] w^T + b (b may be null), by the GEMM of gemm_cuda.h.
void linearForward(const float* x, const float* w, const float* b, float* y, int64_t N, int64_t in, int64_t out,
                   Precision precision);
// The backward passes add into their gradients, except dx with overwriteDx: then dx is
// cleared first (as the CPU's, which writes it).
void linearBackward(const float* x, const float* w, const float* dy, float* dx, float* dw, float* db, int64_t N,
                    int64_t in, int64_t out, bool overwriteDx, Precision precision);

// Implicit GEMM on the tile engines of mma.cuh (no im2col buffer).
void conv2dForward(const nn::Conv2dDesc& d, const float* x, const float* w, const float* b, float* y,
                   Precision precision);
void conv2dBackward(const nn::Conv2dDesc& d, const float* x, const float* w, const float* dy, float* dx, float* dw,
                    float* db, bool overwriteDx, Precision precision);

void batchNormForward(const nn::BatchNormDesc& d, bool training, const float* x, const float* gamma,
                      const float* beta, float* runningMean, float* runningVar, float* y, float* saveMean,
                      float* saveInvStd);
void batchNormBackward(const nn::BatchNormDesc& d, bool training, const float* x, const float* gamma,
                       const float* saveMean, const float* saveInvStd, const float* dy, const float* y, float* dx,
                       float* dgamma, float* dbeta, bool overwriteDx);

void reluForward(const float* x, float* y, int64_t n);
void reluBackward(const float* y, const float* dy, float* dx, int64_t n, bool overwriteDx);
void addForward(const float* a, const float* b, float* y, int64_t n);
void addInto(float* y, const float* x, int64_t n);

void maxPool2dForward(const nn::Pool2dDesc& d, const float* x, float* y, int32_t* indices);
void maxPool2dBackward(const nn::Pool2dDesc& d, const int32_t* indices, const float* dy, float* dx);

void globalAvgPoolForward(const float* x, float* y, int64_t planes, int64_t L);
void globalAvgPoolBackward(const float* dy, float* dx, int64_t planes, int64_t L);

void l2NormalizeForward(const float* x, float* y, float* norms, int64_t rows, int64_t dim, float eps);
void l2NormalizeBackward(const float* y, const float* norms, const float* dy, float* dx, int64_t rows, int64_t dim,
                         float eps);

// Labels in device memory; the loss comes back to the host (the one read-back).
double softmaxCrossEntropyForward(const float* logits, const int32_t* labels, int64_t rows, int64_t classes);
void softmaxCrossEntropyBackward(const float* logits, const int32_t* labels, int64_t rows, int64_t classes,
                                 float gradLoss, float* dlogits);

// The CPU's counter-based draws, element for element: the same values as native/cpu.
void fillNormal(float* x, int64_t n, float mean, float std, uint64_t seed);
void fillUniform(float* x, int64_t n, float low, float high, uint64_t seed);
void fillConstant(float* x, int64_t n, float value);

void sgdStep(float* p, const float* g, float* buf, int64_t n, const nn::SgdParams& o);
void larsStep(float* p, const float* g, float* buf, int64_t n, const nn::LarsParams& o);
void adamwStep(float* p, const float* g, float* m, float* v, int64_t n, const nn::AdamWParams& o);
void rmspropStep(float* p, const float* g, float* sq, float* buf, int64_t n, const nn::RmspropParams& o);
// sqrt(sum x^2), in a fixed order (read back to the host).
double l2Norm(const float* x, int64_t n);

}  // namespace supcon::cuda
