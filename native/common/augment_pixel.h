// Pixel formulas shared by the CPU kernels and the CUDA kernels, written once.
//
// T is float (CUDA, and the scalar parts of the CPU kernels) or a GCC vector of floats
// (the CPU SIMD kernels). An includer that uses a vector type declares, before including
// this header, overloads of lit/pmin/pmax/pfloor/psel for it. Everything here has internal
// linkage (static), so kernels compiled for different instruction sets never share a copy.
// The formulas follow torchvision's tensor functions on float images in [0, 1]; each is
// named in docs/AUGMENT.md.
#pragma once

#include <math.h>

#include <cstdint>

#include "augment_types.h"

#if defined(__CUDACC__)
#define SUPCON_PIXEL static __host__ __device__ __forceinline__
#else
#define SUPCON_PIXEL static inline
#endif

namespace supcon::augment {

SUPCON_PIXEL float lit(float, float c) { return c; }
SUPCON_PIXEL float pmin(float a, float b) { return a < b ? a : b; }
SUPCON_PIXEL float pmax(float a, float b) { return a > b ? a : b; }
SUPCON_PIXEL float pfloor(float x) { return floorf(x); }
SUPCON_PIXEL float psel(bool m, float a, float b) { return m ? a : b; }

template <typename T>
SUPCON_PIXEL T clamp01(T x) {
  return pmin(pmax(x, lit(x, 0.0f)), lit(x, 1.0f));
}

// torchvision _blend: (ratio * a + (1 - ratio) * b).clamp(0, 1).
template <typename T>
SUPCON_PIXEL T blend(T a, T b, float ratio) {
  return clamp01(a * ratio + b * (1.0f - ratio));
}

// torchvision rgb_to_grayscale (ITU-R 601-2 luma).
template <typename T>
SUPCON_PIXEL T luma(T r, T g, T b) {
  return r * 0.2989f + g * 0.587f + b * 0.114f;
}

template <typename T>
SUPCON_PIXEL T solarize(T x, float threshold) {
  return psel(x >= threshold, 1.0f - x, x);
}

// x - floor(x): torch.remainder(x, 1) and fmod(x, 1) for x >= 0.
template <typename T>
SUPCON_PIXEL T fractional(T x) {
  return x - pfloor(x);
}

// torchvision adjust_hue: _rgb2hsv, h = (h + shift) % 1, _hsv2rgb.
template <typename T>
SUPCON_PIXEL void hueShift(T& r, T& g, T& b, float shift) {
  const T one = lit(r, 1.0f);
  const T maxc = pmax(pmax(r, g), b);
  const T minc = pmin(pmin(r, g), b);
  const auto flat = maxc == minc;
  const T cr = maxc - minc;
  const T s = cr / psel(flat, one, maxc);
  const T crd = psel(flat, one, cr);
  const T rc = (maxc - r) / crd, gc = (maxc - g) / crd, bc = (maxc - b) / crd;
  T h = psel(maxc == r, bc - gc, psel(maxc == g, 2.0f + rc - bc, 4.0f + gc - rc));
  h = fractional(h / 6.0f + 1.0f);
  h = fractional(h + shift);
  const T v = maxc;
  T i = pfloor(h * 6.0f);
  const T f = h * 6.0f - i;
  i = psel(i >= 6.0f, i - 6.0f, i);
  const T p = clamp01(v * (1.0f - s));
  const T q = clamp01(v * (1.0f - s * f));
  const T t = clamp01(v * (1.0f - s * (1.0f - f)));
  // Sectors 0..5 of (r, g, b): (v,t,p) (q,v,p) (p,v,t) (p,q,v) (t,p,v) (v,p,q).
  const auto s0 = i == 0.0f, s1 = i == 1.0f, s2 = i == 2.0f, s3 = i == 3.0f, s4 = i == 4.0f;
  r = psel(s0, v, psel(s1, q, psel(s2, p, psel(s3, p, psel(s4, t, v)))));
  g = psel(s0, t, psel(s1, v, psel(s2, v, psel(s3, q, psel(s4, p, p)))));
  b = psel(s0, p, psel(s1, p, psel(s2, t, psel(s3, v, psel(s4, v, q)))));
}

// The byte value of a [0, 1] float (round half up), for the ops torchvision defines on
// uint8 images (Posterize, Equalize).
SUPCON_PIXEL int32_t toByte(float x) {
  const float c = x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x);
  return static_cast<int32_t>(floorf(c * 255.0f + 0.5f));
}

// torchvision posterize: byte & (0xFF << (8 - bits)).
SUPCON_PIXEL float posterize(float x, int32_t bits) {
  const int32_t mask = (0xFF << (8 - bits)) & 0xFF;
  return static_cast<float>(toByte(x) & mask) * (1.0f / 255.0f);
}

// torchvision autocontrast per channel: scale = 1 / (max - min), or min = 0 and scale = 1
// when the channel is flat.
SUPCON_PIXEL void autoContrastCoefficients(float lo, float hi, float& offset, float& scale) {
  if (hi > lo) {
    offset = lo;
    scale = 1.0f / (hi - lo);
  } else {
    offset = 0.0f;
    scale = 1.0f;
  }
}

// torchvision equalize (_scale_channel) from a 256-bin histogram of byte values: writes
// lut[256] (byte -> byte); returns false when the channel is left unchanged (step 0).
SUPCON_PIXEL bool equalizeLut(const int32_t* hist, int32_t* lut) {
  int64_t total = 0;
  int last = -1;
  for (int k = 0; k < 256; ++k) {
    total += hist[k];
    if (hist[k] != 0) last = k;
  }
  if (last < 0) return false;
  const int64_t step = (total - hist[last]) / 255;
  if (step == 0) return false;
  int64_t cum = 0;
  for (int k = 0; k < 256; ++k) {
    const int64_t value = (cum + step / 2) / step;  // lut shifted right by one bin
    lut[k] = static_cast<int32_t>(value > 255 ? 255 : value);
    cum += hist[k];
  }
  return true;
}

// PyTorch's bilinear resize source coordinate (align_corners=False) for output index d:
// scale * (d + 0.5) - 0.5, clamped below at 0; taps clamp at size - 1.
SUPCON_PIXEL ResizeTap resizeTap(int32_t d, int32_t inSize, int32_t outSize) {
  const float scale = static_cast<float>(inSize) / static_cast<float>(outSize);
  float src = scale * (static_cast<float>(d) + 0.5f) - 0.5f;
  if (src < 0.0f) src = 0.0f;
  int32_t i0 = static_cast<int32_t>(src);
  if (i0 > inSize - 1) i0 = inSize - 1;
  const int32_t i1 = i0 < inSize - 1 ? i0 + 1 : i0;
  return ResizeTap{i0, i1, src - static_cast<float>(i0)};
}

// torchvision _get_gaussian_kernel1d: pdf(linspace(-(k-1)/2, (k-1)/2, k)) normalised.
// k <= kMaxBlurKernel.
SUPCON_PIXEL void gaussianKernel(int32_t k, float sigma, float* w) {
  const float half = 0.5f * static_cast<float>(k - 1);
  float sum = 0.0f;
  for (int32_t t = 0; t < k; ++t) {
    const float x = (static_cast<float>(t) - half) / sigma;
    w[t] = expf(-0.5f * x * x);
    sum += w[t];
  }
  for (int32_t t = 0; t < k; ++t) w[t] /= sum;
}

// Reflect padding index (PyTorch 'reflect': the edge is not repeated); |i| < 2 * size - 1.
SUPCON_PIXEL int32_t reflectIndex(int32_t i, int32_t size) {
  if (i < 0) return -i;
  if (i >= size) return 2 * (size - 1) - i;
  return i;
}

// Where output pixel (x, y) of an affine op reads, in pixel indices of the image (same
// size): torchvision's affine grid (align_corners=False) with the inverse map m in
// coordinates centred on the image.
SUPCON_PIXEL void affineSource(const float* m, int32_t x, int32_t y, int32_t w, int32_t h,
                               float& sx, float& sy) {
  const float cx = static_cast<float>(x) + 0.5f - 0.5f * static_cast<float>(w);
  const float cy = static_cast<float>(y) + 0.5f - 0.5f * static_cast<float>(h);
  sx = m[0] * cx + m[1] * cy + m[2] + 0.5f * static_cast<float>(w) - 0.5f;
  sy = m[3] * cx + m[4] * cy + m[5] + 0.5f * static_cast<float>(h) - 0.5f;
}

// One affine-op sample of a planar image (channel stride `plane`), torchvision's
// grid_sample with zero padding, then its fill path when hasFill. Writes out[c * plane].
SUPCON_PIXEL void affineSample(const float* img, int32_t channels, int64_t plane, int32_t w,
                               int32_t h, float sx, float sy, Interpolation mode,
                               const OutputTransform& t, float* out) {
  // Far outside (or not finite): every tap is outside; also keeps the int casts defined.
  if (!(fabsf(sx) < 1e9f && fabsf(sy) < 1e9f)) {
    for (int32_t c = 0; c < channels; ++c) out[c * plane] = t.hasFill ? t.fill : 0.0f;
    return;
  }
  if (mode == Interpolation::Nearest) {
    // grid_sample 'nearest' rounds half to even.
    const int32_t ix = static_cast<int32_t>(rintf(sx)), iy = static_cast<int32_t>(rintf(sy));
    const bool inside = ix >= 0 && ix < w && iy >= 0 && iy < h;
    for (int32_t c = 0; c < channels; ++c) {
      const float v = inside ? img[c * plane + static_cast<int64_t>(iy) * w + ix] : 0.0f;
      out[c * plane] = (t.hasFill && !inside) ? t.fill : v;
    }
    return;
  }
  const float fx0 = floorf(sx), fy0 = floorf(sy);
  const int32_t x0 = static_cast<int32_t>(fx0), y0 = static_cast<int32_t>(fy0);
  const float ax = sx - fx0, ay = sy - fy0;
  const float wt[4] = {(1.0f - ax) * (1.0f - ay), ax * (1.0f - ay), (1.0f - ax) * ay, ax * ay};
  const int32_t tx[4] = {x0, x0 + 1, x0, x0 + 1}, ty[4] = {y0, y0, y0 + 1, y0 + 1};
  float mask = 0.0f;
  int64_t offset[4];
  bool inside[4];
  for (int k = 0; k < 4; ++k) {
    inside[k] = tx[k] >= 0 && tx[k] < w && ty[k] >= 0 && ty[k] < h;
    offset[k] = inside[k] ? static_cast<int64_t>(ty[k]) * w + tx[k] : 0;
    if (inside[k]) mask += wt[k];
  }
  for (int32_t c = 0; c < channels; ++c) {
    const float* p = img + c * plane;
    float v = 0.0f;
    for (int k = 0; k < 4; ++k)
      if (inside[k]) v += wt[k] * p[offset[k]];
    out[c * plane] = t.hasFill ? v * mask + (1.0f - mask) * t.fill : v;
  }
}

}  // namespace supcon::augment
