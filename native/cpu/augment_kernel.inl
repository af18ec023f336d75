// The augmentation pixel passes on the CPU, for one instruction set.
//
// Included by augment_kernel_{avx512,avx2,baseline}.cc, each compiled with its own flags;
// SUPCON_SIMD_WIDTH and SUPCON_ISA_NAMESPACE are set there. Each view is processed on a
// planar [channels][plane] float image that stays in L1/L2: one bilinear pass for the crop,
// resize and flip, then the program's ops in order (pointwise ops as SIMD loops over the
// planes, statistics first where an op needs them), then Normalize on the way out.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "simd.h"

namespace supcon::augment {
// Vector forms of the helpers the shared formulas use (declared before augment_pixel.h so
// that its templates see them). Internal linkage: one copy per instruction set.
using simd::VF;
using simd::VI;
static inline VF lit(VF, float c) { return simd::splat(c); }
static inline VF pmin(VF a, VF b) { return a < b ? a : b; }
static inline VF pmax(VF a, VF b) { return a > b ? a : b; }
static inline VF pfloor(VF x) {
  const VF t = __builtin_convertvector(__builtin_convertvector(x, VI), VF);
  return t > x ? t - 1.0f : t;
}
static inline VF psel(VI m, VF a, VF b) { return m ? a : b; }
}  // namespace supcon::augment

#include "../common/augment_pixel.h"
#include "augment_cpu_kernels.h"

namespace supcon::cpu::SUPCON_ISA_NAMESPACE {
namespace {

using namespace supcon::simd;
using namespace supcon::augment;

constexpr int W = kWidth;

struct Image {
  float* data;
  int32_t channels, h, w;
  int64_t hw, plane;
  float* channel(int32_t c) const { return data + c * plane; }
};

// The byte -> [0, 1] table of ToTensor (x / 255 in float).
struct ByteTable {
  float v[256];
  ByteTable() {
    for (int k = 0; k < 256; ++k) v[k] = static_cast<float>(k) / 255.0f;
  }
};
const ByteTable kBytes;

// Crop box -> output size (bilinear, align_corners=False) -> optional flip, from the input.
// Separable: each output row first blends its two source rows across the crop, then each
// output pixel blends two entries of that row (2 taps per pixel instead of 4).
template <typename Pixel>
void resampleCrop(const Pixel* input, const Batch& bt, const ImageProgram& prog, const Image& img,
                  AugmentScratch& s) {
  for (int32_t x = 0; x < img.w; ++x) s.xTaps[x] = resizeTap(prog.flip ? img.w - 1 - x : x, prog.cropWidth, img.w);
  for (int32_t y = 0; y < img.h; ++y) s.yTaps[y] = resizeTap(y, prog.cropHeight, img.h);
  const int64_t inPlane = static_cast<int64_t>(bt.inH) * bt.inW;
  const int32_t cw = prog.cropWidth;
  float* row = s.row.data();
  for (int32_t c = 0; c < img.channels; ++c) {
    const Pixel* src = input + c * inPlane + prog.cropLeft;
    float* dst = img.channel(c);
    for (int32_t y = 0; y < img.h; ++y) {
      const ResizeTap ty = s.yTaps[y];
      const Pixel* r0 = src + static_cast<int64_t>(ty.i0 + prog.cropTop) * bt.inW;
      const Pixel* r1 = src + static_cast<int64_t>(ty.i1 + prog.cropTop) * bt.inW;
      const float wy1 = ty.w1, wy0 = 1.0f - ty.w1;
      for (int32_t k = 0; k < cw; ++k) {
        if constexpr (sizeof(Pixel) == 1)
          row[k] = kBytes.v[r0[k]] * wy0 + kBytes.v[r1[k]] * wy1;
        else
          row[k] = r0[k] * wy0 + r1[k] * wy1;
      }
      float* out = dst + static_cast<int64_t>(y) * img.w;
      for (int32_t x = 0; x < img.w; ++x) {
        const ResizeTap tx = s.xTaps[x];
        out[x] = row[tx.i0] * (1.0f - tx.w1) + row[tx.i1] * tx.w1;
      }
    }
  }
}

// f(v) over every vector of channel c.
template <typename F>
void mapChannel(const Image& img, int32_t c, F f) {
  float* p = img.channel(c);
  for (int64_t k = 0; k < img.plane; k += W) store(p + k, f(load(p + k)));
}

double channelSum(const float* p, int64_t hw) {
  const int64_t full = hw / W * W;
  VF acc = splat(0.0f);
  for (int64_t k = 0; k < full; k += W) acc += load(p + k);
  double sum = 0.0;
  for (int l = 0; l < W; ++l) sum += acc[l];
  for (int64_t k = full; k < hw; ++k) sum += p[k];
  return sum;
}

// torchvision adjust_contrast: the mean of the grayscale image (of the image for one channel).
float contrastMean(const Image& img) {
  if (img.channels == 1) return static_cast<float>(channelSum(img.channel(0), img.hw) / img.hw);
  float* r = img.channel(0);
  float* g = img.channel(1);
  float* b = img.channel(2);
  const int64_t full = img.hw / W * W;
  VF acc = splat(0.0f);
  for (int64_t k = 0; k < full; k += W) acc += luma(load(r + k), load(g + k), load(b + k));
  double sum = 0.0;
  for (int l = 0; l < W; ++l) sum += acc[l];
  for (int64_t k = full; k < img.hw; ++k) sum += luma(r[k], g[k], b[k]);
  return static_cast<float>(sum / img.hw);
}

void opSaturation(const Image& img, float factor) {
  float* r = img.channel(0);
  float* g = img.channel(1);
  float* b = img.channel(2);
  for (int64_t k = 0; k < img.plane; k += W) {
    const VF vr = load(r + k), vg = load(g + k), vb = load(b + k);
    const VF l = luma(vr, vg, vb);
    store(r + k, blend(vr, l, factor));
    store(g + k, blend(vg, l, factor));
    store(b + k, blend(vb, l, factor));
  }
}

void opHue(const Image& img, float shift) {
  float* r = img.channel(0);
  float* g = img.channel(1);
  float* b = img.channel(2);
  for (int64_t k = 0; k < img.plane; k += W) {
    VF vr = load(r + k), vg = load(g + k), vb = load(b + k);
    hueShift(vr, vg, vb, shift);
    store(r + k, vr);
    store(g + k, vg);
    store(b + k, vb);
  }
}

void opGrayscale(const Image& img) {
  float* r = img.channel(0);
  float* g = img.channel(1);
  float* b = img.channel(2);
  for (int64_t k = 0; k < img.plane; k += W) {
    const VF l = luma(load(r + k), load(g + k), load(b + k));
    store(r + k, l);
    store(g + k, l);
    store(b + k, l);
  }
}

void opAutoContrast(const Image& img) {
  for (int32_t c = 0; c < img.channels; ++c) {
    const float* p = img.channel(c);
    float lo = p[0], hi = p[0];
    for (int64_t k = 1; k < img.hw; ++k) {
      lo = std::min(lo, p[k]);
      hi = std::max(hi, p[k]);
    }
    float offset, scale;
    autoContrastCoefficients(lo, hi, offset, scale);
    mapChannel(img, c, [&](VF x) { return clamp01((x - offset) * scale); });
  }
}

void opEqualize(const Image& img) {
  int32_t hist[256], lut[256];
  for (int32_t c = 0; c < img.channels; ++c) {
    float* p = img.channel(c);
    std::memset(hist, 0, sizeof hist);
    for (int64_t k = 0; k < img.hw; ++k) ++hist[toByte(p[k])];
    if (!equalizeLut(hist, lut)) continue;
    for (int64_t k = 0; k < img.hw; ++k) p[k] = kBytes.v[lut[toByte(p[k])]];
  }
}

void opPosterize(const Image& img, int32_t bits) {
  for (int32_t c = 0; c < img.channels; ++c) {
    float* p = img.channel(c);
    for (int64_t k = 0; k < img.hw; ++k) p[k] = posterize(p[k], bits);
  }
}

// torchvision adjust_sharpness: blend with the image smoothed by [[1,1,1],[1,5,1],[1,1,1]]/13
// inside, the image itself on the border.
void opSharpness(const Image& img, const Image& tmp, float factor) {
  if (img.w <= 2 || img.h <= 2) return;
  for (int32_t c = 0; c < img.channels; ++c) {
    const float* p = img.channel(c);
    float* q = tmp.channel(c);
    for (int32_t y = 0; y < img.h; ++y) {
      const float* row = p + static_cast<int64_t>(y) * img.w;
      float* out = q + static_cast<int64_t>(y) * img.w;
      if (y == 0 || y == img.h - 1) {
        for (int32_t x = 0; x < img.w; ++x) out[x] = blend(row[x], row[x], factor);
        continue;
      }
      const float* up = row - img.w;
      const float* down = row + img.w;
      out[0] = blend(row[0], row[0], factor);
      out[img.w - 1] = blend(row[img.w - 1], row[img.w - 1], factor);
      for (int32_t x = 1; x < img.w - 1; ++x) {
        const float sum = up[x - 1] + up[x] + up[x + 1] + row[x - 1] + row[x + 1] + down[x - 1] +
                          down[x] + down[x + 1];
        const float smooth = (sum + 5.0f * row[x]) / 13.0f;
        out[x] = blend(row[x], smooth, factor);
      }
    }
  }
}

// torchvision gaussian_blur: reflect padding, the normalised 1-d kernel along x then y.
void opBlur(const Image& img, const Image& tmp, int32_t k, float sigma) {
  float wt[kMaxBlurKernel];
  gaussianKernel(k, sigma, wt);
  const int32_t half = k / 2;
  for (int32_t c = 0; c < img.channels; ++c) {
    const float* p = img.channel(c);
    float* q = tmp.channel(c);
    for (int32_t y = 0; y < img.h; ++y) {
      const float* row = p + static_cast<int64_t>(y) * img.w;
      float* out = q + static_cast<int64_t>(y) * img.w;
      for (int32_t x = 0; x < img.w; ++x) {
        float acc = 0.0f;
        for (int32_t t = 0; t < k; ++t) acc += wt[t] * row[reflectIndex(x + t - half, img.w)];
        out[x] = acc;
      }
    }
    float* dst = img.channel(c);
    for (int32_t y = 0; y < img.h; ++y) {
      float* out = dst + static_cast<int64_t>(y) * img.w;
      const int32_t full = img.w / W * W;
      for (int32_t x = 0; x < full; x += W) {
        VF acc = splat(0.0f);
        for (int32_t t = 0; t < k; ++t)
          acc += wt[t] * load(q + static_cast<int64_t>(reflectIndex(y + t - half, img.h)) * img.w + x);
        store(out + x, acc);
      }
      for (int32_t x = full; x < img.w; ++x) {
        float acc = 0.0f;
        for (int32_t t = 0; t < k; ++t)
          acc += wt[t] * q[static_cast<int64_t>(reflectIndex(y + t - half, img.h)) * img.w + x];
        out[x] = acc;
      }
    }
  }
}

void opAffine(const Image& img, const Image& tmp, const Op& op, const OutputTransform& t) {
  const Interpolation mode = static_cast<Interpolation>(op.i0);
  for (int32_t y = 0; y < img.h; ++y) {
    for (int32_t x = 0; x < img.w; ++x) {
      float sx, sy;
      affineSource(op.f, x, y, img.w, img.h, sx, sy);
      affineSample(img.data, img.channels, img.plane, img.w, img.h, sx, sy, mode, t,
                   tmp.data + static_cast<int64_t>(y) * img.w + x);
    }
  }
}

void runView(const Batch& bt, int64_t index, AugmentScratch& s) {
  const ImageProgram& prog = bt.programs[index];
  const int64_t sample = index / bt.views;
  const int64_t image = bt.select != nullptr ? bt.select[sample] : sample;
  const int64_t hw = static_cast<int64_t>(bt.outH) * bt.outW;
  Image img{s.a.data(), bt.channels, bt.outH, bt.outW, hw, s.plane};
  Image tmp{s.b.data(), bt.channels, bt.outH, bt.outW, hw, s.plane};
  const int64_t inImage = static_cast<int64_t>(bt.channels) * bt.inH * bt.inW;
  if (bt.inputUint8)
    resampleCrop(static_cast<const uint8_t*>(bt.input) + image * inImage, bt, prog, img, s);
  else
    resampleCrop(static_cast<const float*>(bt.input) + image * inImage, bt, prog, img, s);

  const bool rgb = bt.channels == 3;
  for (int32_t k = 0; k < prog.numOps; ++k) {
    const Op& op = prog.ops[k];
    const float f = op.f[0];
    switch (op.kind) {
      case OpKind::Brightness:
        for (int32_t c = 0; c < img.channels; ++c) mapChannel(img, c, [&](VF x) { return clamp01(x * f); });
        break;
      case OpKind::Contrast: {
        const float mean = contrastMean(img);
        for (int32_t c = 0; c < img.channels; ++c)
          mapChannel(img, c, [&](VF x) { return blend(x, splat(mean), f); });
        break;
      }
      case OpKind::Saturation: if (rgb) opSaturation(img, f); break;
      case OpKind::Hue: if (rgb) opHue(img, f); break;
      case OpKind::Grayscale: if (rgb) opGrayscale(img); break;
      case OpKind::Solarize:
        for (int32_t c = 0; c < img.channels; ++c) mapChannel(img, c, [&](VF x) { return solarize(x, f); });
        break;
      case OpKind::Posterize: opPosterize(img, op.i0); break;
      case OpKind::Invert:
        for (int32_t c = 0; c < img.channels; ++c) mapChannel(img, c, [&](VF x) { return 1.0f - x; });
        break;
      case OpKind::AutoContrast: opAutoContrast(img); break;
      case OpKind::Equalize: opEqualize(img); break;
      case OpKind::Sharpness:
        if (img.w > 2 && img.h > 2) {
          opSharpness(img, tmp, f);
          std::swap(img.data, tmp.data);
        }
        break;
      case OpKind::Affine:
        opAffine(img, tmp, op, bt.transform);
        std::swap(img.data, tmp.data);
        break;
      case OpKind::GaussianBlur: opBlur(img, tmp, op.i0, f); break;
    }
  }

  float* out = bt.out + index * bt.channels * hw;
  const OutputTransform& t = bt.transform;
  for (int32_t c = 0; c < bt.channels; ++c) {
    const float* p = img.channel(c);
    float* o = out + c * hw;
    if (t.normalize) {
      const float mean = t.mean[c], sd = t.std[c];
      const int64_t full = hw / W * W;
      for (int64_t k = 0; k < full; k += W) store(o + k, (load(p + k) - mean) / sd);
      for (int64_t k = full; k < hw; ++k) o[k] = (p[k] - mean) / sd;
    } else {
      std::memcpy(o, p, static_cast<size_t>(hw) * sizeof(float));
    }
  }
}

void run(const Batch& bt, int64_t first, int64_t count, AugmentScratch& s) {
  for (int64_t i = first; i < first + count; ++i) runView(bt, i, s);
}

}  // namespace

const AugmentKernelTable kAugmentKernels = {SUPCON_ISA_LABEL, run};

}  // namespace supcon::cpu::SUPCON_ISA_NAMESPACE
