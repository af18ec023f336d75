// The CUDA twins of the element-wise, pooling, normalisation, loss, initialiser and
// optimizer kernels of native/cpu (nn_cuda.h). Reductions run in a fixed order: per-row
// and per-plane sums in one thread (as the CPU does), per-channel sums over fixed strides
// then a fixed tree, so results are the same bits run to run and never depend on timing.
#include <cuda_runtime.h>

#include <cmath>
#include <string>

#include "../common/nn_rows.h"
#include "check.cuh"
#include "launch.cuh"
#include "nn_cuda.h"
#include "runtime.h"

namespace supcon::cuda {
namespace {

constexpr int kThreads = 256;

unsigned blocksFor(int64_t n, int64_t perBlock = kThreads) {
  const int64_t b = (n + perBlock - 1) / perBlock;
  return static_cast<unsigned>(b < 1 ? 1 : (b > 65535 * 32 ? 65535 * 32 : b));
}

__device__ __forceinline__ int64_t globalIndex() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t globalStride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

void checkLaunch(const char* what) { check(cudaGetLastError(), what); }

// ---- element-wise

__global__ void reluForwardKernel(const float* x, float* y, int64_t n) {
  for (int64_t i = globalIndex(); i < n; i += globalStride()) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
__global__ void reluBackwardKernel(const float* y, const float* dy, float* dx, int64_t n) {
  for (int64_t i = globalIndex(); i < n; i += globalStride()) dx[i] += y[i] > 0.0f ? dy[i] : 0.0f;
}
__global__ void addKernel(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = globalIndex(); i < n; i += globalStride()) y[i] = a[i] + b[i];
}
__global__ void addIntoKernel(float* y, const float* x, int64_t n) {
  for (int64_t i = globalIndex(); i < n; i += globalStride()) y[i] += x[i];
}
__global__ void fillConstantKernel(float* x, int64_t n, float value) {
  for (int64_t i = globalIndex(); i < n; i += globalStride()) x[i] = value;
}

// The CPU's counter-based generator (native/cpu/nn_cpu.cc), element for element.
__device__ __forceinline__ uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
__device__ __forceinline__ double uniformAt(uint64_t seed, uint64_t i) {
  return (static_cast<double>(mix(mix(seed) ^ i) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}
__global__ void fillNormalKernel(float* x, int64_t n, float mean, float std, uint64_t seed) {
  const int64_t pairs = (n + 1) / 2;
  for (int64_t j = globalIndex(); j < pairs; j += globalStride()) {
    const double u1 = uniformAt(seed, 2 * j), u2 = uniformAt(seed, 2 * j + 1);
    const double rad = sqrt(-2.0 * log(u1)), ang = 6.283185307179586 * u2;
    x[2 * j] = static_cast<float>(mean + std * rad * cos(ang));
    if (2 * j + 1 < n) x[2 * j + 1] = static_cast<float>(mean + std * rad * sin(ang));
  }
}
__global__ void fillUniformKernel(float* x, int64_t n, float low, float high, uint64_t seed) {
  for (int64_t i = globalIndex(); i < n; i += globalStride())
    x[i] = static_cast<float>(low + (static_cast<double>(high) - low) * uniformAt(seed, i));
}

// ---- pooling

// One thread an output: the first maximum in window order; NaN wins at once (as the CPU).
__global__ void maxPoolForwardKernel(nn::Pool2dDesc d, const float* x, float* y, int32_t* indices) {
  const int64_t total = d.N * d.C * d.P * d.Q;
  for (int64_t o = globalIndex(); o < total; o += globalStride()) {
    const int64_t plane = o / (d.P * d.Q), pq = o % (d.P * d.Q), p = pq / d.Q, q = pq % d.Q;
    const float* xp = x + plane * d.H * d.W;
    float best = -INFINITY;
    int64_t at = -1;
    bool done = false;
    for (int64_t r = 0; r < d.R && !done; ++r) {
      const int64_t h = p * d.strideH - d.padH + r;
      if (h < 0 || h >= d.H) continue;
      for (int64_t s = 0; s < d.S; ++s) {
        const int64_t w = q * d.strideW - d.padW + s;
        if (w < 0 || w >= d.W) continue;
        const float v = xp[h * d.W + w];
        if (at < 0 || v > best || isnan(v)) {
          best = v;
          at = h * d.W + w;
          if (isnan(v)) {
            done = true;
            break;
          }
        }
      }
    }
    y[o] = best;
    indices[o] = static_cast<int32_t>(at);
  }
}

// One thread an input element: the outputs whose window covers it and that chose it, added
// in ascending output order (the CPU's order, so the same bits).
__global__ void maxPoolBackwardKernel(nn::Pool2dDesc d, const int32_t* indices, const float* dy, float* dx) {
  const int64_t total = d.N * d.C * d.H * d.W;
  for (int64_t e = globalIndex(); e < total; e += globalStride()) {
    const int64_t plane = e / (d.H * d.W), hw = e % (d.H * d.W), h = hw / d.W, w = hw % d.W;
    const int32_t* ip = indices + plane * d.P * d.Q;
    const float* dyp = dy + plane * d.P * d.Q;
    // p with p * strideH - padH <= h <= p * strideH - padH + R - 1.
    const int64_t pFirst = (h + d.padH - d.R + d.strideH) / d.strideH, pLast = (h + d.padH) / d.strideH;
    const int64_t qFirst = (w + d.padW - d.S + d.strideW) / d.strideW, qLast = (w + d.padW) / d.strideW;
    const int64_t pLo = pFirst > 0 ? pFirst : 0, pHi = pLast < d.P - 1 ? pLast : d.P - 1;
    const int64_t qLo = qFirst > 0 ? qFirst : 0, qHi = qLast < d.Q - 1 ? qLast : d.Q - 1;
    float acc = dx[e];
    bool any = false;
    for (int64_t p = pLo; p <= pHi; ++p)
      for (int64_t q = qLo; q <= qHi; ++q)
        if (ip[p * d.Q + q] == hw) {
          acc += dyp[p * d.Q + q];
          any = true;
        }
    if (any) dx[e] = acc;
  }
}

__global__ void avgPoolForwardKernel(const float* x, float* y, int64_t planes, int64_t L) {
  for (int64_t p = globalIndex(); p < planes; p += globalStride()) {
    double s = 0.0;
    for (int64_t i = 0; i < L; ++i) s += x[p * L + i];
    y[p] = static_cast<float>(s / static_cast<double>(L));
  }
}
__global__ void avgPoolBackwardKernel(const float* dy, float* dx, int64_t planes, int64_t L, float inv) {
  const int64_t total = planes * L;
  for (int64_t e = globalIndex(); e < total; e += globalStride()) dx[e] += dy[e / L] * inv;
}

// ---- rows: L2 normalisation, softmax cross-entropy (one thread a row, as the CPU)

__global__ void l2NormalizeForwardKernel(const float* x, float* y, float* norms, int64_t rows, int64_t dim,
                                         float eps) {
  for (int64_t r = globalIndex(); r < rows; r += globalStride())
    nn::l2NormalizeForwardRow(x + r * dim, y + r * dim, norms + r, dim, eps);
}
__global__ void l2NormalizeBackwardKernel(const float* y, const float* norms, const float* dy, float* dx,
                                          int64_t rows, int64_t dim, float eps) {
  for (int64_t r = globalIndex(); r < rows; r += globalStride())
    nn::l2NormalizeBackwardRow(y + r * dim, norms[r], dy + r * dim, dx + r * dim, dim, eps);
}

__global__ void crossEntropyRowsKernel(const float* logits, const int32_t* labels, int64_t rows, int64_t classes,
                                       double* rowLoss) {
  for (int64_t r = globalIndex(); r < rows; r += globalStride()) {
    const float* z = logits + r * classes;
    rowLoss[r] = nn::rowLogSumExp(z, classes) - z[labels[r]];
  }
}
// The mean in row order, in one thread (the CPU's order).
__global__ void meanKernel(const double* values, int64_t n, double* out) {
  if (globalIndex() != 0) return;
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += values[i];
  *out = s / static_cast<double>(n);
}
__global__ void crossEntropyBackwardKernel(const float* logits, const int32_t* labels, int64_t rows, int64_t classes,
                                           double g, float* dlogits) {
  for (int64_t r = globalIndex(); r < rows; r += globalStride()) {
    const float* z = logits + r * classes;
    float* out = dlogits + r * classes;
    const double lse = nn::rowLogSumExp(z, classes);
    for (int64_t k = 0; k < classes; ++k) {
      const double p = exp(static_cast<double>(z[k]) - lse);
      out[k] += static_cast<float>(g * (p - (k == labels[r] ? 1.0 : 0.0)));
    }
  }
}

// ---- batch normalisation: one block a channel; each thread sums a fixed stride of the
// channel's N * L values in double, then a fixed tree over the block.

constexpr int kBnThreads = 256;

__device__ double blockSum(double v, double* red) {
  red[threadIdx.x] = v;
  __syncthreads();
  for (int s = kBnThreads / 2; s > 0; s >>= 1) {
    if (static_cast<int>(threadIdx.x) < s) red[threadIdx.x] += red[threadIdx.x + s];
    __syncthreads();
  }
  const double total = red[0];
  __syncthreads();
  return total;
}

__global__ void __launch_bounds__(kBnThreads) batchNormForwardKernel(nn::BatchNormDesc d, int training,
                                                                   const float* x, const float* gamma,
                                                                   const float* beta, float* runningMean,
                                                                   float* runningVar, float* y, float* saveMean,
                                                                   float* saveInvStd) {
  __shared__ double red[kBnThreads];
  const int64_t c = blockIdx.x, count = d.N * d.L;
  float mean, invStd;
  if (training) {
    // Moments about the channel's first value (stable for large means), as the CPU.
    const float shift = x[c * d.L];
    double s = 0.0, q = 0.0;
    for (int64_t e = threadIdx.x; e < count; e += kBnThreads) {
      const int64_t n = e / d.L, l = e % d.L;
      const double v = static_cast<double>(x[(n * d.C + c) * d.L + l] - shift);
      s += v;
      q += v * v;
    }
    s = blockSum(s, red);
    q = blockSum(q, red);
    const double m = s / static_cast<double>(count);
    const double var = fmax(0.0, q / static_cast<double>(count) - m * m);
    mean = static_cast<float>(shift + m);
    invStd = static_cast<float>(1.0 / sqrt(var + d.eps));
    if (threadIdx.x == 0 && runningMean != nullptr) {
      const double unbiased = count > 1 ? var * count / (count - 1) : var;
      runningMean[c] = static_cast<float>((1.0 - d.momentum) * runningMean[c] + d.momentum * (shift + m));
      runningVar[c] = static_cast<float>((1.0 - d.momentum) * runningVar[c] + d.momentum * unbiased);
    }
  } else {
    mean = runningMean[c];
    invStd = static_cast<float>(1.0 / sqrt(static_cast<double>(runningVar[c]) + d.eps));
  }
  if (threadIdx.x == 0) {
    saveMean[c] = mean;
    saveInvStd[c] = invStd;
  }
  const float scale = gamma[c] * invStd, offset = beta[c] - mean * scale;
  for (int64_t e = threadIdx.x; e < count; e += kBnThreads) {
    const int64_t n = e / d.L, l = e % d.L, at = (n * d.C + c) * d.L + l;
    const float v = x[at] * scale + offset;
    y[at] = d.relu ? (v > 0.0f ? v : 0.0f) : v;
  }
}

// dy as batch norm's backward pass sees it: 0 where a fused ReLU's output y is not > 0.
__device__ inline float bnGrad(const nn::BatchNormDesc& d, const float* y, const float* dy, int64_t at) {
  return d.relu && !(y[at] > 0.0f) ? 0.0f : dy[at];
}

__global__ void __launch_bounds__(kBnThreads) batchNormBackwardKernel(nn::BatchNormDesc d, int training,
                                                                    const float* x, const float* gamma,
                                                                    const float* saveMean, const float* saveInvStd,
                                                                    const float* dy, const float* y, float* dx,
                                                                    float* dgamma, float* dbeta) {
  __shared__ double red[kBnThreads];
  const int64_t c = blockIdx.x, count = d.N * d.L;
  const float mean = saveMean[c], invStd = saveInvStd[c];
  double s = 0.0, q = 0.0;  // sum dy, sum dy (x - mean)
  for (int64_t e = threadIdx.x; e < count; e += kBnThreads) {
    const int64_t n = e / d.L, l = e % d.L, at = (n * d.C + c) * d.L + l;
    const float g = bnGrad(d, y, dy, at);
    s += g;
    q += static_cast<double>(g) * (x[at] - mean);
  }
  s = blockSum(s, red);
  q = blockSum(q, red);
  if (threadIdx.x == 0) {
    if (dbeta != nullptr) dbeta[c] += static_cast<float>(s);
    if (dgamma != nullptr) dgamma[c] += static_cast<float>(q * invStd);
  }
  if (dx == nullptr) return;
  const double n = static_cast<double>(count);
  const float k1 = gamma[c] * invStd;
  const float k2 = training ? static_cast<float>(-k1 * invStd * invStd * q / n) : 0.0f;
  const float k3 = training ? static_cast<float>(-k1 * s / n) : 0.0f;
  for (int64_t e = threadIdx.x; e < count; e += kBnThreads) {
    const int64_t i = e / d.L, l = e % d.L, at = (i * d.C + c) * d.L + l;
    const float g = bnGrad(d, y, dy, at);
    dx[at] += k1 * g + k2 * (x[at] - mean) + k3;
  }
}

// ---- optimizers (the CPU's update formulas, element-wise)

__global__ void sgdKernel(float* p, const float* g, float* buf, int64_t n, nn::SgdParams o) {
  const float lr = o.lr, wd = o.weightDecay, mu = o.momentum, damp = 1.0f - o.dampening;
  for (int64_t i = globalIndex(); i < n; i += globalStride()) {
    const float d = g[i] + wd * p[i];
    if (mu == 0.0f) {
      p[i] -= lr * d;
      continue;
    }
    const float b = o.firstStep ? d : mu * buf[i] + damp * d;
    buf[i] = b;
    p[i] -= o.nesterov ? lr * (d + mu * b) : lr * b;
  }
}

__global__ void larsKernel(float* p, const float* g, float* buf, int64_t n, float lr, float momentum,
                           float weightDecay, float scale) {
  for (int64_t i = globalIndex(); i < n; i += globalStride()) {
    buf[i] = momentum * buf[i] + scale * (g[i] + weightDecay * p[i]);
    p[i] -= lr * buf[i];
  }
}

__global__ void adamwKernel(float* p, const float* g, float* m, float* v, int64_t n, float b1, float b2, float eps,
                            float stepSize, float invSqrtBc2, float decay) {
  for (int64_t i = globalIndex(); i < n; i += globalStride()) {
    const float gi = g[i];
    m[i] = b1 * m[i] + (1.0f - b1) * gi;
    v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
    p[i] = p[i] * decay - stepSize * m[i] / (sqrtf(v[i]) * invSqrtBc2 + eps);
  }
}

__global__ void rmspropKernel(float* p, const float* g, float* sq, float* buf, int64_t n, nn::RmspropParams o) {
  for (int64_t i = globalIndex(); i < n; i += globalStride()) {
    const float gi = g[i] + o.weightDecay * p[i];
    sq[i] = o.alpha * sq[i] + (1.0f - o.alpha) * gi * gi;
    const float step = gi / (sqrtf(sq[i]) + o.eps);
    if (o.momentum > 0.0f) {
      buf[i] = o.momentum * buf[i] + step;
      p[i] -= o.lr * buf[i];
    } else {
      p[i] -= o.lr * step;
    }
  }
}

// Sum of squares: block b sums elements [b * 4096, (b + 1) * 4096) with a fixed stride per
// thread and a fixed tree; then one thread adds the blocks in order.
constexpr int64_t kNormChunk = 4096;
__global__ void __launch_bounds__(kBnThreads) sumSquaresKernel(const float* x, int64_t n, double* partial) {
  __shared__ double red[kBnThreads];
  const int64_t b0 = static_cast<int64_t>(blockIdx.x) * kNormChunk;
  double s = 0.0;
  for (int64_t i = b0 + threadIdx.x; i < n && i < b0 + kNormChunk; i += kBnThreads) s += static_cast<double>(x[i]) * x[i];
  s = blockSum(s, red);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}
__global__ void sumInOrderKernel(const double* values, int64_t n, double* out) {
  if (globalIndex() != 0) return;
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += values[i];
  *out = s;
}

double readDouble(const double* device) {
  double host = 0.0;
  copyToHost(&host, device, sizeof host);
  return host;
}

}  // namespace

void reluForward(const float* x, float* y, int64_t n) {
  if (n == 0) return;
  launchKernel("reluForwardKernel", reluForwardKernel, blocksFor(n), kThreads, 0, stream(), x, y, n);
  checkLaunch("running relu");
}
void reluBackward(const float* y, const float* dy, float* dx, int64_t n, bool overwriteDx) {
  if (n == 0) return;
  if (overwriteDx) memsetDevice(dx, 0, static_cast<size_t>(n) * sizeof(float));
  launchKernel("reluBackwardKernel", reluBackwardKernel, blocksFor(n), kThreads, 0, stream(), y, dy, dx, n);
  checkLaunch("running the relu backward pass");
}
void addForward(const float* a, const float* b, float* y, int64_t n) {
  if (n == 0) return;
  launchKernel("addKernel", addKernel, blocksFor(n), kThreads, 0, stream(), a, b, y, n);
  checkLaunch("running add");
}
void addInto(float* y, const float* x, int64_t n) {
  if (n == 0) return;
  launchKernel("addIntoKernel", addIntoKernel, blocksFor(n), kThreads, 0, stream(), y, x, n);
  checkLaunch("running addInto");
}
void fillConstant(float* x, int64_t n, float value) {
  if (n == 0) return;
  launchKernel("fillConstantKernel", fillConstantKernel, blocksFor(n), kThreads, 0, stream(), x, n, value);
  checkLaunch("filling a tensor");
}
void fillNormal(float* x, int64_t n, float mean, float std, uint64_t seed) {
  if (n == 0) return;
  launchKernel("fillNormalKernel", fillNormalKernel, blocksFor((n + 1) / 2), kThreads, 0, stream(), x, n, mean, std, seed);
  checkLaunch("filling a tensor with normal draws");
}
void fillUniform(float* x, int64_t n, float low, float high, uint64_t seed) {
  if (n == 0) return;
  launchKernel("fillUniformKernel", fillUniformKernel, blocksFor(n), kThreads, 0, stream(), x, n, low, high, seed);
  checkLaunch("filling a tensor with uniform draws");
}

void maxPool2dForward(const nn::Pool2dDesc& d, const float* x, float* y, int32_t* indices) {
  const int64_t total = d.N * d.C * d.P * d.Q;
  if (total == 0) return;
  launchKernel("maxPoolForwardKernel", maxPoolForwardKernel, blocksFor(total), kThreads, 0, stream(), d, x, y, indices);
  checkLaunch("running max pooling");
}
void maxPool2dBackward(const nn::Pool2dDesc& d, const int32_t* indices, const float* dy, float* dx) {
  const int64_t total = d.N * d.C * d.H * d.W;
  if (total == 0) return;
  launchKernel("maxPoolBackwardKernel", maxPoolBackwardKernel, blocksFor(total), kThreads, 0, stream(), d, indices, dy, dx);
  checkLaunch("running the max pooling backward pass");
}
void globalAvgPoolForward(const float* x, float* y, int64_t planes, int64_t L) {
  if (planes == 0) return;
  launchKernel("avgPoolForwardKernel", avgPoolForwardKernel, blocksFor(planes), kThreads, 0, stream(), x, y, planes, L);
  checkLaunch("running average pooling");
}
void globalAvgPoolBackward(const float* dy, float* dx, int64_t planes, int64_t L) {
  if (planes * L == 0) return;
  launchKernel("avgPoolBackwardKernel", avgPoolBackwardKernel, blocksFor(planes * L), kThreads, 0, stream(), dy, dx, planes,
               L, 1.0f / static_cast<float>(L));
  checkLaunch("running the average pooling backward pass");
}

void l2NormalizeForward(const float* x, float* y, float* norms, int64_t rows, int64_t dim, float eps) {
  if (rows == 0) return;
  launchKernel("l2NormalizeForwardKernel", l2NormalizeForwardKernel, blocksFor(rows), kThreads, 0, stream(), x, y, norms,
               rows, dim, eps);
  checkLaunch("running the L2 normalisation");
}
void l2NormalizeBackward(const float* y, const float* norms, const float* dy, float* dx, int64_t rows, int64_t dim,
                         float eps) {
  if (rows == 0) return;
  launchKernel("l2NormalizeBackwardKernel", l2NormalizeBackwardKernel, blocksFor(rows), kThreads, 0, stream(), y, norms, dy,
               dx, rows, dim, eps);
  checkLaunch("running the L2 normalisation backward pass");
}

double softmaxCrossEntropyForward(const float* logits, const int32_t* labels, int64_t rows, int64_t classes) {
  DeviceArray<double> rowLoss(rows), mean(1);
  launchKernel("crossEntropyRowsKernel", crossEntropyRowsKernel, blocksFor(rows), kThreads, 0, stream(), logits, labels, rows,
               classes, rowLoss.ptr);
  checkLaunch("running the cross-entropy");
  launchKernel("meanKernel", meanKernel, 1, 32, 0, stream(), static_cast<const double*>(rowLoss.ptr), rows, mean.ptr);
  checkLaunch("reducing the cross-entropy");
  return readDouble(mean.ptr);
}
void softmaxCrossEntropyBackward(const float* logits, const int32_t* labels, int64_t rows, int64_t classes,
                                 float gradLoss, float* dlogits) {
  const double g = static_cast<double>(gradLoss) / static_cast<double>(rows);
  launchKernel("crossEntropyBackwardKernel", crossEntropyBackwardKernel, blocksFor(rows), kThreads, 0, stream(), logits,
               labels, rows, classes, g, dlogits);
  checkLaunch("running the cross-entropy backward pass");
}

void batchNormForward(const nn::BatchNormDesc& d, bool training, const float* x, const float* gamma,
                      const float* beta, float* runningMean, float* runningVar, float* y, float* saveMean,
                      float* saveInvStd) {
  if (d.C == 0) return;
  launchKernel("batchNormForwardKernel", batchNormForwardKernel, static_cast<unsigned>(d.C), kBnThreads, 0, stream(), d,
               training ? 1 : 0, x, gamma, beta, runningMean, runningVar, y, saveMean, saveInvStd);
  checkLaunch("running batch normalisation");
}
void batchNormBackward(const nn::BatchNormDesc& d, bool training, const float* x, const float* gamma,
                       const float* saveMean, const float* saveInvStd, const float* dy, const float* y, float* dx,
                       float* dgamma, float* dbeta, bool overwriteDx) {
  if (d.C == 0) return;
  if (overwriteDx && dx != nullptr) memsetDevice(dx, 0, static_cast<size_t>(d.N * d.C * d.L) * sizeof(float));
  launchKernel("batchNormBackwardKernel", batchNormBackwardKernel, static_cast<unsigned>(d.C), kBnThreads, 0, stream(), d,
               training ? 1 : 0, x, gamma, saveMean, saveInvStd, dy, y, dx, dgamma, dbeta);
  checkLaunch("running the batch normalisation backward pass");
}

double l2Norm(const float* x, int64_t n) {
  if (n == 0) return 0.0;
  const int64_t blocks = (n + kNormChunk - 1) / kNormChunk;
  DeviceArray<double> partial(blocks), total(1);
  launchKernel("sumSquaresKernel", sumSquaresKernel, static_cast<unsigned>(blocks), kBnThreads, 0, stream(), x, n,
               partial.ptr);
  checkLaunch("summing squares");
  launchKernel("sumInOrderKernel", sumInOrderKernel, 1, 32, 0, stream(), static_cast<const double*>(partial.ptr), blocks,
               total.ptr);
  checkLaunch("summing squares");
  return std::sqrt(readDouble(total.ptr));
}

void sgdStep(float* p, const float* g, float* buf, int64_t n, const nn::SgdParams& o) {
  if (n == 0) return;
  launchKernel("sgdKernel", sgdKernel, blocksFor(n), kThreads, 0, stream(), p, g, buf, n, o);
  checkLaunch("running the SGD step");
}
void larsStep(float* p, const float* g, float* buf, int64_t n, const nn::LarsParams& o) {
  if (n == 0) return;
  float scale = 1.0f, wd = 0.0f;
  if (o.adapt) {
    wd = o.weightDecay;
    const double pn = l2Norm(p, n), gn = l2Norm(g, n);
    if (pn > 0.0 && gn > 0.0) scale = static_cast<float>(o.trustCoefficient * pn / (gn + o.weightDecay * pn + o.eps));
  }
  launchKernel("larsKernel", larsKernel, blocksFor(n), kThreads, 0, stream(), p, g, buf, n, o.lr, o.momentum, wd, scale);
  checkLaunch("running the LARS step");
}
void adamwStep(float* p, const float* g, float* m, float* v, int64_t n, const nn::AdamWParams& o) {
  if (n == 0) return;
  const double t = static_cast<double>(o.step);
  const float bc1 = static_cast<float>(1.0 - std::pow(static_cast<double>(o.beta1), t));
  const float bc2 = static_cast<float>(1.0 - std::pow(static_cast<double>(o.beta2), t));
  const float stepSize = o.lr / bc1, invSqrtBc2 = 1.0f / std::sqrt(bc2), decay = 1.0f - o.lr * o.weightDecay;
  launchKernel("adamwKernel", adamwKernel, blocksFor(n), kThreads, 0, stream(), p, g, m, v, n, o.beta1, o.beta2, o.eps,
               stepSize, invSqrtBc2, decay);
  checkLaunch("running the AdamW step");
}
void rmspropStep(float* p, const float* g, float* sq, float* buf, int64_t n, const nn::RmspropParams& o) {
  if (n == 0) return;
  launchKernel("rmspropKernel", rmspropKernel, blocksFor(n), kThreads, 0, stream(), p, g, sq, buf, n, o);
  checkLaunch("running the RMSProp step");
}

}  // namespace supcon::cuda
