// The augmentation pixel passes as CUDA kernels: one thread block per view runs the
// view's whole program (crop/resize/flip resampling, the ops in order, Normalize) on two
// planar buffers, in shared memory when they fit and in global scratch otherwise.
// CPU twin: native/cpu/augment_kernel.inl; both read the same ImageProgram structs and use
// the formulas of native/common/augment_pixel.h.
#include <cuda_runtime.h>

#include <string>

#include "../common/augment_pixel.h"
#include "augment_cuda.h"
#include "check.cuh"
#include "launch.cuh"
#include "runtime.h"

namespace supcon::cuda {
namespace {

using namespace supcon::augment;

constexpr int kThreads = 256;
// Dynamic shared memory for the two buffers; the static arrays of the kernel take ~2.4 KiB
// of the 48 KiB a block gets by default.
constexpr size_t kSharedLimit = 44 * 1024;

struct ViewImage {
  float* data;
  int32_t channels, h, w;
  int64_t hw, plane;
};

__device__ float blockSum(float x, float* red) {
  for (int o = 16; o > 0; o >>= 1) x += __shfl_down_sync(0xFFFFFFFFu, x, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) red[warp] = x;
  __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0.0f;
    for (int k = 0; k < (int)(blockDim.x >> 5); ++k) s += red[k];
    red[32] = s;
  }
  __syncthreads();
  return red[32];
}

__device__ float blockMin(float x, float* red) {
  for (int o = 16; o > 0; o >>= 1) x = fminf(x, __shfl_down_sync(0xFFFFFFFFu, x, o));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) red[warp] = x;
  __syncthreads();
  if (threadIdx.x == 0) {
    float s = red[0];
    for (int k = 1; k < (int)(blockDim.x >> 5); ++k) s = fminf(s, red[k]);
    red[32] = s;
  }
  __syncthreads();
  return red[32];
}

__device__ float blockMax(float x, float* red) { return -blockMin(-x, red); }

template <typename Pixel>
__device__ float inputValue(const Pixel* p, int64_t k);
template <>
__device__ float inputValue<uint8_t>(const uint8_t* p, int64_t k) { return static_cast<float>(p[k]) / 255.0f; }
template <>
__device__ float inputValue<float>(const float* p, int64_t k) { return p[k]; }

template <typename Pixel>
__device__ void resampleCrop(const Pixel* in, const Batch& b, const ImageProgram& prog, const ViewImage& img) {
  const int64_t inPlane = static_cast<int64_t>(b.inH) * b.inW;
  for (int64_t p = threadIdx.x; p < img.hw; p += blockDim.x) {
    const int32_t y = static_cast<int32_t>(p / img.w), x = static_cast<int32_t>(p % img.w);
    const ResizeTap tx = resizeTap(prog.flip ? img.w - 1 - x : x, prog.cropWidth, img.w);
    const ResizeTap ty = resizeTap(y, prog.cropHeight, img.h);
    const int64_t r0 = static_cast<int64_t>(ty.i0 + prog.cropTop) * b.inW + prog.cropLeft;
    const int64_t r1 = static_cast<int64_t>(ty.i1 + prog.cropTop) * b.inW + prog.cropLeft;
    const float wx1 = tx.w1, wx0 = 1.0f - tx.w1, wy1 = ty.w1, wy0 = 1.0f - ty.w1;
    for (int32_t c = 0; c < img.channels; ++c) {
      const Pixel* src = in + c * inPlane;
      const float p00 = inputValue(src, r0 + tx.i0), p01 = inputValue(src, r0 + tx.i1);
      const float p10 = inputValue(src, r1 + tx.i0), p11 = inputValue(src, r1 + tx.i1);
      img.data[c * img.plane + p] = wy0 * (wx0 * p00 + wx1 * p01) + wy1 * (wx0 * p10 + wx1 * p11);
    }
  }
}

__device__ float contrastMean(const ViewImage& img, float* red) {
  float s = 0.0f;
  for (int64_t p = threadIdx.x; p < img.hw; p += blockDim.x)
    s += img.channels == 3 ? luma(img.data[p], img.data[img.plane + p], img.data[2 * img.plane + p]) : img.data[p];
  return blockSum(s, red) / static_cast<float>(img.hw);
}

__device__ void sharpness(const ViewImage& img, float* dst, float factor) {
  for (int64_t p = threadIdx.x; p < img.hw; p += blockDim.x) {
    const int32_t y = static_cast<int32_t>(p / img.w), x = static_cast<int32_t>(p % img.w);
    for (int32_t c = 0; c < img.channels; ++c) {
      const float* s = img.data + c * img.plane;
      const float v = s[p];
      float smooth = v;
      if (y > 0 && y < img.h - 1 && x > 0 && x < img.w - 1) {
        const float sum = s[p - img.w - 1] + s[p - img.w] + s[p - img.w + 1] + s[p - 1] + s[p + 1] +
                          s[p + img.w - 1] + s[p + img.w] + s[p + img.w + 1];
        smooth = (sum + 5.0f * v) / 13.0f;
      }
      dst[c * img.plane + p] = blend(v, smooth, factor);
    }
  }
}

__device__ void blur(const ViewImage& img, float* tmp, int32_t k, float sigma, float* weights) {
  if (threadIdx.x == 0) gaussianKernel(k, sigma, weights);
  __syncthreads();
  const int32_t half = k / 2;
  for (int64_t p = threadIdx.x; p < img.hw; p += blockDim.x) {
    const int32_t y = static_cast<int32_t>(p / img.w), x = static_cast<int32_t>(p % img.w);
    for (int32_t c = 0; c < img.channels; ++c) {
      const float* row = img.data + c * img.plane + static_cast<int64_t>(y) * img.w;
      float acc = 0.0f;
      for (int32_t t = 0; t < k; ++t) acc += weights[t] * row[reflectIndex(x + t - half, img.w)];
      tmp[c * img.plane + p] = acc;
    }
  }
  __syncthreads();
  for (int64_t p = threadIdx.x; p < img.hw; p += blockDim.x) {
    const int32_t y = static_cast<int32_t>(p / img.w), x = static_cast<int32_t>(p % img.w);
    for (int32_t c = 0; c < img.channels; ++c) {
      const float* col = tmp + c * img.plane + x;
      float acc = 0.0f;
      for (int32_t t = 0; t < k; ++t) acc += weights[t] * col[static_cast<int64_t>(reflectIndex(y + t - half, img.h)) * img.w];
      img.data[c * img.plane + p] = acc;
    }
  }
}

__device__ void equalize(const ViewImage& img, int32_t* hist, int32_t* lut, int* changed) {
  for (int32_t c = 0; c < img.channels; ++c) {
    float* s = img.data + c * img.plane;
    for (int k = threadIdx.x; k < 256; k += blockDim.x) hist[k] = 0;
    __syncthreads();
    for (int64_t p = threadIdx.x; p < img.hw; p += blockDim.x) atomicAdd(&hist[toByte(s[p])], 1);
    __syncthreads();
    if (threadIdx.x == 0) *changed = equalizeLut(hist, lut) ? 1 : 0;
    __syncthreads();
    if (*changed)
      for (int64_t p = threadIdx.x; p < img.hw; p += blockDim.x)
        s[p] = static_cast<float>(lut[toByte(s[p])]) / 255.0f;
    __syncthreads();
  }
}

template <typename Pixel>
__global__ void __launch_bounds__(kThreads) augmentKernel(Batch b, float* scratch, int useShared) {
  float* smem = dynamicShared<float>();
  __shared__ float red[33];
  __shared__ int32_t hist[256], lut[256];
  __shared__ float weights[kMaxBlurKernel];
  __shared__ int changed;
  const int64_t index = blockIdx.x;
  const ImageProgram& prog = b.programs[index];
  const int64_t hw = static_cast<int64_t>(b.outH) * b.outW;
  const int64_t plane = (hw + 15) / 16 * 16;
  float* base = useShared ? smem : scratch + index * 2 * b.channels * plane;
  ViewImage img{base, b.channels, b.outH, b.outW, hw, plane};
  float* other = base + b.channels * plane;
  const int64_t sample = index / b.views;
  const int64_t image = b.select != nullptr ? b.select[sample] : sample;
  const Pixel* in = static_cast<const Pixel*>(b.input) + image * b.channels * static_cast<int64_t>(b.inH) * b.inW;
  resampleCrop(in, b, prog, img);
  __syncthreads();
  const bool rgb = b.channels == 3;
  for (int32_t k = 0; k < prog.numOps; ++k) {
    const Op& op = prog.ops[k];
    const float f = op.f[0];
    switch (op.kind) {
      case OpKind::Contrast: {
        const float mean = contrastMean(img, red);
        for (int64_t p = threadIdx.x; p < hw; p += blockDim.x)
          for (int32_t c = 0; c < b.channels; ++c) img.data[c * plane + p] = blend(img.data[c * plane + p], mean, f);
        break;
      }
      case OpKind::AutoContrast:
        for (int32_t c = 0; c < b.channels; ++c) {
          float lo = INFINITY, hi = -INFINITY;
          for (int64_t p = threadIdx.x; p < hw; p += blockDim.x) {
            lo = fminf(lo, img.data[c * plane + p]);
            hi = fmaxf(hi, img.data[c * plane + p]);
          }
          lo = blockMin(lo, red);
          hi = blockMax(hi, red);
          float offset, scale;
          autoContrastCoefficients(lo, hi, offset, scale);
          for (int64_t p = threadIdx.x; p < hw; p += blockDim.x)
            img.data[c * plane + p] = clamp01((img.data[c * plane + p] - offset) * scale);
          __syncthreads();
        }
        break;
      case OpKind::Equalize: equalize(img, hist, lut, &changed); break;
      case OpKind::Sharpness:
        if (b.outW > 2 && b.outH > 2) {
          sharpness(img, other, f);
          __syncthreads();
          float* t = img.data; img.data = other; other = t;
        }
        break;
      case OpKind::Affine:
        for (int64_t p = threadIdx.x; p < hw; p += blockDim.x) {
          float sx, sy;
          affineSource(op.f, static_cast<int32_t>(p % b.outW), static_cast<int32_t>(p / b.outW), b.outW, b.outH, sx, sy);
          affineSample(img.data, b.channels, plane, b.outW, b.outH, sx, sy, static_cast<Interpolation>(op.i0),
                       b.transform, other + p);
        }
        __syncthreads();
        { float* t = img.data; img.data = other; other = t; }
        break;
      case OpKind::GaussianBlur: blur(img, other, op.i0, f, weights); break;
      default:
        // Pointwise ops: each thread owns whole pixels (all channels).
        for (int64_t p = threadIdx.x; p < hw; p += blockDim.x) {
          float* px = img.data + p;
          switch (op.kind) {
            case OpKind::Brightness:
              for (int32_t c = 0; c < b.channels; ++c) px[c * plane] = clamp01(px[c * plane] * f);
              break;
            case OpKind::Saturation:
              if (rgb) {
                const float l = luma(px[0], px[plane], px[2 * plane]);
                for (int32_t c = 0; c < 3; ++c) px[c * plane] = blend(px[c * plane], l, f);
              }
              break;
            case OpKind::Hue:
              if (rgb) hueShift(px[0], px[plane], px[2 * plane], f);
              break;
            case OpKind::Grayscale:
              if (rgb) {
                const float l = luma(px[0], px[plane], px[2 * plane]);
                for (int32_t c = 0; c < 3; ++c) px[c * plane] = l;
              }
              break;
            case OpKind::Solarize:
              for (int32_t c = 0; c < b.channels; ++c) px[c * plane] = solarize(px[c * plane], f);
              break;
            case OpKind::Posterize:
              for (int32_t c = 0; c < b.channels; ++c) px[c * plane] = posterize(px[c * plane], op.i0);
              break;
            case OpKind::Invert:
              for (int32_t c = 0; c < b.channels; ++c) px[c * plane] = 1.0f - px[c * plane];
              break;
            default:
              break;
          }
        }
        break;
    }
    __syncthreads();
  }
  float* out = b.out + index * b.channels * hw;
  for (int64_t p = threadIdx.x; p < hw; p += blockDim.x)
    for (int32_t c = 0; c < b.channels; ++c) {
      const float v = img.data[c * plane + p];
      out[c * hw + p] = b.transform.normalize ? (v - b.transform.mean[c]) / b.transform.std[c] : v;
    }
}

// A device buffer from the caching allocator (runtime.h), for one call.
struct Scratch {
  void* ptr;
  explicit Scratch(size_t bytes) : ptr(bytes > 0 ? deviceAlloc(bytes) : nullptr) {}
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() { deviceFree(ptr); }
};

struct Events {
  cudaEvent_t e[4] = {nullptr, nullptr, nullptr, nullptr};
  Events() {
    for (auto& x : e) check(cudaEventCreate(&x), "creating timing events");
  }
  Events(const Events&) = delete;
  Events& operator=(const Events&) = delete;
  ~Events() {
    for (auto& x : e)
      if (x != nullptr) cudaEventDestroy(x);
  }
};

}  // namespace

AugmentTiming augmentBatch(const Batch& batch, bool timed) {
  AugmentTiming timing{0.0f, 0.0f, 0.0f};
  const int64_t views = batch.n * batch.views;
  if (views == 0) return timing;
  std::string reason;
  if (!usable(&reason)) throw CudaError("the CUDA augmentation cannot run here: " + reason, false);
  const int64_t hw = static_cast<int64_t>(batch.outH) * batch.outW;
  const int64_t plane = (hw + 15) / 16 * 16;
  const int64_t images = batch.select != nullptr ? batch.total : batch.n;
  const size_t inBytes = static_cast<size_t>(images) * batch.channels * batch.inH * batch.inW * (batch.inputUint8 ? 1 : 4);
  const size_t progBytes = static_cast<size_t>(views) * sizeof(ImageProgram);
  const size_t outBytes = static_cast<size_t>(views) * batch.channels * hw * sizeof(float);
  const size_t viewScratch = static_cast<size_t>(2 * batch.channels * plane) * sizeof(float);
  const bool useShared = viewScratch <= kSharedLimit;

  // Device-resident images and views are used in place; host ones go through scratch.
  const size_t selectBytes = batch.select != nullptr ? static_cast<size_t>(batch.n) * sizeof(int32_t) : 0;
  Scratch input(batch.inputOnDevice ? 0 : inBytes), programs(progBytes), output(batch.outputOnDevice ? 0 : outBytes);
  Scratch select(selectBytes), scratch(useShared ? 0 : viewScratch * views);
  Batch dev = batch;
  dev.input = batch.inputOnDevice ? batch.input : input.ptr;
  dev.programs = static_cast<const ImageProgram*>(programs.ptr);
  dev.out = batch.outputOnDevice ? batch.out : static_cast<float*>(output.ptr);
  dev.select = static_cast<const int32_t*>(select.ptr);

  Events ev;
  cudaStream_t s = stream();
  check(cudaEventRecord(ev.e[0], s), "recording an event");
  if (!batch.inputOnDevice)
    check(cudaMemcpyAsync(input.ptr, batch.input, inBytes, cudaMemcpyHostToDevice, s), "copying the images to the GPU");
  // The positions and programs through the staging ring (runtime.h): the host vectors may
  // go as soon as this returns.
  if (selectBytes > 0) copyToDevice(select.ptr, batch.select, selectBytes);
  copyToDevice(programs.ptr, batch.programs, progBytes);
  check(cudaEventRecord(ev.e[1], s), "recording an event");
  const size_t shared = useShared ? viewScratch : 0;
  float* global = static_cast<float*>(scratch.ptr);
  if (batch.inputUint8)
    launchKernel("augmentKernel<uint8>", augmentKernel<uint8_t>, static_cast<unsigned>(views), kThreads, shared, s, dev,
                 global, useShared ? 1 : 0);
  else
    launchKernel("augmentKernel<float>", augmentKernel<float>, static_cast<unsigned>(views), kThreads, shared, s, dev,
                 global, useShared ? 1 : 0);
  check(cudaGetLastError(), "running the augmentation kernel");
  check(cudaEventRecord(ev.e[2], s), "recording an event");
  if (!batch.outputOnDevice)
    check(cudaMemcpyAsync(batch.out, output.ptr, outBytes, cudaMemcpyDeviceToHost, s), "copying the views from the GPU");
  check(cudaEventRecord(ev.e[3], s), "recording an event");
  // Views left on the device: nothing to wait for (the scratch goes back to the
  // stream-ordered allocator), unless the timing is asked for.
  if (batch.outputOnDevice && !timed) return timing;
  noteHostWait();
  check(cudaEventSynchronize(ev.e[3]), "waiting for the augmentation");
  check(cudaEventElapsedTime(&timing.copyInMs, ev.e[0], ev.e[1]), "reading an event");
  check(cudaEventElapsedTime(&timing.kernelMs, ev.e[1], ev.e[2]), "reading an event");
  check(cudaEventElapsedTime(&timing.copyOutMs, ev.e[2], ev.e[3]), "reading an event");
  return timing;
}

}  // namespace supcon::cuda
