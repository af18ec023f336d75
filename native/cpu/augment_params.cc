#include "augment_params.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "../common/augment_pixel.h"
#include "../common/errors.h"
#include "../common/philox.h"
#include "thread_pool.h"

namespace supcon::augment {
namespace {

constexpr double kPi = 3.14159265358979323846;

std::string num(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

void checkProbability(double p, const char* name) {
  if (!(p >= 0.0 && p <= 1.0))
    throw rangeError(std::string(name) + ": expected a probability in [0, 1], got " + num(p));
}

void checkRange(const Range& r, double lo, double hi, const char* name) {
  if (!(std::isfinite(r.lo) && std::isfinite(r.hi) && r.lo >= lo && r.hi <= hi && r.lo <= r.hi))
    throw rangeError(std::string(name) + ": expected [lo, hi] with " + num(lo) + " <= lo <= hi <= " +
                     num(hi) + ", got [" + num(r.lo) + ", " + num(r.hi) + "]");
}

// Python's round(): half to even (std::nearbyint in the default rounding mode).
int32_t roundHalfEven(double x) { return static_cast<int32_t>(std::nearbyint(x)); }

// torchvision RandomResizedCrop.get_params.
void drawCrop(const Pipeline& p, const Geometry& g, PhiloxStream& rng, ImageProgram& prog) {
  const double area = static_cast<double>(g.inH) * g.inW;
  const double logLo = std::log(p.cropRatio.lo), logHi = std::log(p.cropRatio.hi);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * rng.uniform(p.cropScale.lo, p.cropScale.hi);
    const double aspect = std::exp(rng.uniform(logLo, logHi));
    const int32_t w = roundHalfEven(std::sqrt(target * aspect));
    const int32_t h = roundHalfEven(std::sqrt(target / aspect));
    if (w > 0 && w <= g.inW && h > 0 && h <= g.inH) {
      prog.cropTop = static_cast<int32_t>(rng.below(static_cast<uint32_t>(g.inH - h + 1)));
      prog.cropLeft = static_cast<int32_t>(rng.below(static_cast<uint32_t>(g.inW - w + 1)));
      prog.cropHeight = h;
      prog.cropWidth = w;
      return;
    }
  }
  // Fallback: the central crop of the allowed aspect ratio.
  const double inRatio = static_cast<double>(g.inW) / g.inH;
  int32_t w = g.inW, h = g.inH;
  if (inRatio < p.cropRatio.lo) {
    h = roundHalfEven(w / p.cropRatio.lo);
  } else if (inRatio > p.cropRatio.hi) {
    w = roundHalfEven(h * p.cropRatio.hi);
  }
  h = std::max(1, std::min(h, g.inH));
  w = std::max(1, std::min(w, g.inW));
  prog.cropTop = (g.inH - h) / 2;
  prog.cropLeft = (g.inW - w) / 2;
  prog.cropHeight = h;
  prog.cropWidth = w;
}

void appendSimple(ImageProgram& prog, OpKind kind, float f0) {
  Op op{};
  op.kind = kind;
  op.f[0] = f0;
  appendOp(prog, op, "pipeline");
}

// torchvision ColorJitter.get_params + forward: factors, then the four ops in a random
// order (torch.randperm(4)).
void drawJitter(const Pipeline& p, PhiloxStream& rng, ImageProgram& prog) {
  int order[4] = {0, 1, 2, 3};
  for (int k = 3; k > 0; --k) std::swap(order[k], order[rng.below(static_cast<uint32_t>(k + 1))]);
  const double b = rng.uniform(p.brightness.lo, p.brightness.hi);
  const double c = rng.uniform(p.contrast.lo, p.contrast.hi);
  const double s = rng.uniform(p.saturation.lo, p.saturation.hi);
  const double h = rng.uniform(p.hue.lo, p.hue.hi);
  for (int k = 0; k < 4; ++k) {
    switch (order[k]) {
      case 0: if (p.brightness.lo != 1.0 || p.brightness.hi != 1.0) appendSimple(prog, OpKind::Brightness, static_cast<float>(b)); break;
      case 1: if (p.contrast.lo != 1.0 || p.contrast.hi != 1.0) appendSimple(prog, OpKind::Contrast, static_cast<float>(c)); break;
      case 2: if (p.saturation.lo != 1.0 || p.saturation.hi != 1.0) appendSimple(prog, OpKind::Saturation, static_cast<float>(s)); break;
      default: if (p.hue.lo != 0.0 || p.hue.hi != 0.0) appendSimple(prog, OpKind::Hue, static_cast<float>(h)); break;
    }
  }
}

struct PolicyStep {
  AutoOp op;
  float p;
  int32_t magnitude;  // bin of the 10-bin magnitude space; -1 when the op has none
};
struct SubPolicy {
  PolicyStep a, b;
};

using O = AutoOp;
// The AutoAugment policies (Cubuk et al. 2019) as torchvision lists them.
const SubPolicy kImageNetPolicy[25] = {
    {{O::Posterize, 0.4f, 8}, {O::Rotate, 0.6f, 9}},
    {{O::Solarize, 0.6f, 5}, {O::AutoContrast, 0.6f, -1}},
    {{O::Equalize, 0.8f, -1}, {O::Equalize, 0.6f, -1}},
    {{O::Posterize, 0.6f, 7}, {O::Posterize, 0.6f, 6}},
    {{O::Equalize, 0.4f, -1}, {O::Solarize, 0.2f, 4}},
    {{O::Equalize, 0.4f, -1}, {O::Rotate, 0.8f, 8}},
    {{O::Solarize, 0.6f, 3}, {O::Equalize, 0.6f, -1}},
    {{O::Posterize, 0.8f, 5}, {O::Equalize, 1.0f, -1}},
    {{O::Rotate, 0.2f, 3}, {O::Solarize, 0.6f, 8}},
    {{O::Equalize, 0.6f, -1}, {O::Posterize, 0.4f, 6}},
    {{O::Rotate, 0.8f, 8}, {O::Color, 0.4f, 0}},
    {{O::Rotate, 0.4f, 9}, {O::Equalize, 0.6f, -1}},
    {{O::Equalize, 0.0f, -1}, {O::Equalize, 0.8f, -1}},
    {{O::Invert, 0.6f, -1}, {O::Equalize, 1.0f, -1}},
    {{O::Color, 0.6f, 4}, {O::Contrast, 1.0f, 8}},
    {{O::Rotate, 0.8f, 8}, {O::Color, 1.0f, 2}},
    {{O::Color, 0.8f, 8}, {O::Solarize, 0.8f, 7}},
    {{O::Sharpness, 0.4f, 7}, {O::Invert, 0.6f, -1}},
    {{O::ShearX, 0.6f, 5}, {O::Equalize, 1.0f, -1}},
    {{O::Color, 0.4f, 0}, {O::Equalize, 0.6f, -1}},
    {{O::Equalize, 0.4f, -1}, {O::Solarize, 0.2f, 4}},
    {{O::Solarize, 0.6f, 5}, {O::AutoContrast, 0.6f, -1}},
    {{O::Invert, 0.6f, -1}, {O::Equalize, 1.0f, -1}},
    {{O::Color, 0.6f, 4}, {O::Contrast, 1.0f, 8}},
    {{O::Equalize, 0.8f, -1}, {O::Equalize, 0.6f, -1}},
};
const SubPolicy kCifar10Policy[25] = {
    {{O::Invert, 0.1f, -1}, {O::Contrast, 0.2f, 6}},
    {{O::Rotate, 0.7f, 2}, {O::TranslateX, 0.3f, 9}},
    {{O::Sharpness, 0.8f, 1}, {O::Sharpness, 0.9f, 3}},
    {{O::ShearY, 0.5f, 8}, {O::TranslateY, 0.7f, 9}},
    {{O::AutoContrast, 0.5f, -1}, {O::Equalize, 0.9f, -1}},
    {{O::ShearY, 0.2f, 7}, {O::Posterize, 0.3f, 7}},
    {{O::Color, 0.4f, 3}, {O::Brightness, 0.6f, 7}},
    {{O::Sharpness, 0.3f, 9}, {O::Brightness, 0.7f, 9}},
    {{O::Equalize, 0.6f, -1}, {O::Equalize, 0.5f, -1}},
    {{O::Contrast, 0.6f, 7}, {O::Sharpness, 0.6f, 5}},
    {{O::Color, 0.7f, 7}, {O::TranslateX, 0.5f, 8}},
    {{O::Equalize, 0.3f, -1}, {O::AutoContrast, 0.4f, -1}},
    {{O::TranslateY, 0.4f, 3}, {O::Sharpness, 0.2f, 6}},
    {{O::Brightness, 0.9f, 6}, {O::Color, 0.2f, 8}},
    {{O::Solarize, 0.5f, 2}, {O::Invert, 0.0f, -1}},
    {{O::Equalize, 0.2f, -1}, {O::AutoContrast, 0.6f, -1}},
    {{O::Equalize, 0.2f, -1}, {O::Equalize, 0.6f, -1}},
    {{O::Color, 0.9f, 9}, {O::Equalize, 0.6f, -1}},
    {{O::AutoContrast, 0.8f, -1}, {O::Solarize, 0.2f, 8}},
    {{O::Brightness, 0.1f, 3}, {O::Color, 0.7f, 0}},
    {{O::Solarize, 0.4f, 5}, {O::AutoContrast, 0.9f, -1}},
    {{O::TranslateY, 0.9f, 9}, {O::TranslateY, 0.7f, 9}},
    {{O::AutoContrast, 0.9f, -1}, {O::Solarize, 0.2f, 3}},
    {{O::Equalize, 0.8f, -1}, {O::Invert, 0.1f, -1}},
    {{O::TranslateY, 0.7f, 9}, {O::AutoContrast, 0.9f, -1}},
};

bool isSigned(AutoOp op) {
  switch (op) {
    case O::ShearX: case O::ShearY: case O::TranslateX: case O::TranslateY: case O::Rotate:
    case O::Brightness: case O::Color: case O::Contrast: case O::Sharpness:
      return true;
    default:
      return false;
  }
}

// torchvision's _augmentation_space for a float image: the value of bin `bin` of `bins`.
double magnitudeOf(AutoOp op, int32_t bin, int32_t bins, const Geometry& g) {
  const double t = bins > 1 ? static_cast<double>(bin) / (bins - 1) : 0.0;
  switch (op) {
    case O::ShearX: case O::ShearY: return 0.3 * t;
    case O::TranslateX: return 150.0 / 331.0 * g.outW * t;
    case O::TranslateY: return 150.0 / 331.0 * g.outH * t;
    case O::Rotate: return 30.0 * t;
    case O::Brightness: case O::Color: case O::Contrast: case O::Sharpness: return 0.9 * t;
    case O::Posterize: return 8 - roundHalfEven(static_cast<double>(bin) / ((bins - 1) / 4.0));
    case O::Solarize: return 1.0 - t;
    default: return 0.0;
  }
}

void drawRandAugment(const Pipeline& p, const Geometry& g, PhiloxStream& rng, ImageProgram& prog) {
  // RandAugment's 14 ops (no Invert).
  for (int32_t k = 0; k < p.randOps; ++k) {
    const AutoOp op = static_cast<AutoOp>(rng.below(14));
    double m = magnitudeOf(op, p.randMagnitude, p.randBins, g);
    if (isSigned(op) && rng.below(2) == 1) m = -m;
    appendAutoOp(prog, op, m, g, p.autoInterpolation);
  }
}

void drawAutoAugment(const Pipeline& p, const Geometry& g, PhiloxStream& rng, ImageProgram& prog) {
  const SubPolicy* policy = p.autoKind == AutoKind::AutoImageNet ? kImageNetPolicy : kCifar10Policy;
  const SubPolicy& sub = policy[rng.below(25)];
  const double probs[2] = {rng.uniform(), rng.uniform()};
  const uint32_t signs[2] = {rng.below(2), rng.below(2)};
  const PolicyStep steps[2] = {sub.a, sub.b};
  for (int k = 0; k < 2; ++k) {
    if (!(probs[k] <= steps[k].p)) continue;
    double m = steps[k].magnitude >= 0 ? magnitudeOf(steps[k].op, steps[k].magnitude, 10, g) : 0.0;
    if (isSigned(steps[k].op) && signs[k] == 0) m = -m;
    appendAutoOp(prog, steps[k].op, m, g, p.autoInterpolation);
  }
}

void drawProgram(const Pipeline& p, const Geometry& g, PhiloxStream rng, ImageProgram& prog) {
  prog = ImageProgram{};
  if (p.crop) {
    drawCrop(p, g, rng, prog);
  } else {
    prog.cropHeight = g.inH;
    prog.cropWidth = g.inW;
  }
  prog.flip = p.flipP > 0.0 && rng.bernoulli(p.flipP) ? 1 : 0;
  if (p.jitterP > 0.0 && rng.bernoulli(p.jitterP)) drawJitter(p, rng, prog);
  if (p.grayscaleP > 0.0 && rng.bernoulli(p.grayscaleP)) appendSimple(prog, OpKind::Grayscale, 0.0f);
  if (p.autoKind == AutoKind::Rand) drawRandAugment(p, g, rng, prog);
  if (p.autoKind == AutoKind::AutoImageNet || p.autoKind == AutoKind::AutoCifar10) drawAutoAugment(p, g, rng, prog);
  if (p.blurP > 0.0 && rng.bernoulli(p.blurP)) {
    Op blur{};
    blur.kind = OpKind::GaussianBlur;
    blur.i0 = p.blurKernel;
    blur.f[0] = static_cast<float>(rng.uniform(p.blurSigma.lo, p.blurSigma.hi));
    appendOp(prog, blur, "pipeline");
  }
  if (p.solarizeP > 0.0 && rng.bernoulli(p.solarizeP))
    appendSimple(prog, OpKind::Solarize, static_cast<float>(p.solarizeThreshold));
}

}  // namespace

void appendOp(ImageProgram& prog, const Op& op, const std::string& name) {
  if (prog.numOps >= kMaxOps)
    throw rangeError(name + ": expected at most " + std::to_string(kMaxOps) +
                     " operations per image after the crop, got more");
  prog.ops[prog.numOps++] = op;
}

void inverseAffine(double cx, double cy, double angle, double tx, double ty, double scale,
                   double shearX, double shearY, float m[6]) {
  const double rot = angle * kPi / 180.0, sx = shearX * kPi / 180.0, sy = shearY * kPi / 180.0;
  // RSS = R(rot) * S(scale) * SHy(sy) * SHx(sx) without the scale; its inverse below.
  const double a = std::cos(rot - sy) / std::cos(sy);
  const double b = -std::cos(rot - sy) * std::tan(sx) / std::cos(sy) - std::sin(rot);
  const double c = std::sin(rot - sy) / std::cos(sy);
  const double d = -std::sin(rot - sy) * std::tan(sx) / std::cos(sy) + std::cos(rot);
  double r[6] = {d / scale, -b / scale, 0.0, -c / scale, a / scale, 0.0};
  r[2] += r[0] * (-cx - tx) + r[1] * (-cy - ty);
  r[5] += r[3] * (-cx - tx) + r[4] * (-cy - ty);
  r[2] += cx;
  r[5] += cy;
  for (int k = 0; k < 6; ++k) m[k] = static_cast<float>(r[k]);
}

void appendAutoOp(ImageProgram& prog, AutoOp op, double m, const Geometry& g, Interpolation mode) {
  Op affine{};
  affine.kind = OpKind::Affine;
  affine.i0 = static_cast<int32_t>(mode);
  // center=[0, 0] (the top-left corner) in torchvision's shears, relative to the centre here.
  const double cornerX = -0.5 * g.outW, cornerY = -0.5 * g.outH;
  switch (op) {
    case O::Identity: return;
    case O::ShearX:
      inverseAffine(cornerX, cornerY, 0.0, 0.0, 0.0, 1.0, std::atan(m) * 180.0 / kPi, 0.0, affine.f);
      break;
    case O::ShearY:
      inverseAffine(cornerX, cornerY, 0.0, 0.0, 0.0, 1.0, 0.0, std::atan(m) * 180.0 / kPi, affine.f);
      break;
    case O::TranslateX:
      inverseAffine(0.0, 0.0, 0.0, std::trunc(m), 0.0, 1.0, 0.0, 0.0, affine.f);
      break;
    case O::TranslateY:
      inverseAffine(0.0, 0.0, 0.0, 0.0, std::trunc(m), 1.0, 0.0, 0.0, affine.f);
      break;
    case O::Rotate:
      inverseAffine(0.0, 0.0, -m, 0.0, 0.0, 1.0, 0.0, 0.0, affine.f);
      break;
    case O::Brightness: appendSimple(prog, OpKind::Brightness, static_cast<float>(1.0 + m)); return;
    case O::Color: appendSimple(prog, OpKind::Saturation, static_cast<float>(1.0 + m)); return;
    case O::Contrast: appendSimple(prog, OpKind::Contrast, static_cast<float>(1.0 + m)); return;
    case O::Sharpness: appendSimple(prog, OpKind::Sharpness, static_cast<float>(1.0 + m)); return;
    case O::Posterize: {
      Op post{};
      post.kind = OpKind::Posterize;
      post.i0 = static_cast<int32_t>(m);
      appendOp(prog, post, "pipeline");
      return;
    }
    case O::Solarize: appendSimple(prog, OpKind::Solarize, static_cast<float>(m)); return;
    case O::AutoContrast: appendSimple(prog, OpKind::AutoContrast, 0.0f); return;
    case O::Equalize: appendSimple(prog, OpKind::Equalize, 0.0f); return;
    case O::Invert: appendSimple(prog, OpKind::Invert, 0.0f); return;
  }
  appendOp(prog, affine, "pipeline");
}

void validatePipeline(const Pipeline& p, const Geometry& g) {
  if (p.crop) {
    checkRange(p.cropScale, 0.0, 1.0, "pipeline.crop.scale");
    if (!(p.cropScale.hi > 0.0)) throw rangeError("pipeline.crop.scale: expected hi > 0, got [" + num(p.cropScale.lo) + ", " + num(p.cropScale.hi) + "]");
    checkRange(p.cropRatio, 1e-3, 1e3, "pipeline.crop.ratio");
  }
  checkProbability(p.flipP, "pipeline.flip");
  checkProbability(p.jitterP, "pipeline.colorJitter.p");
  checkRange(p.brightness, 0.0, 1e6, "pipeline.colorJitter.brightness");
  checkRange(p.contrast, 0.0, 1e6, "pipeline.colorJitter.contrast");
  checkRange(p.saturation, 0.0, 1e6, "pipeline.colorJitter.saturation");
  checkRange(p.hue, -0.5, 0.5, "pipeline.colorJitter.hue");
  checkProbability(p.grayscaleP, "pipeline.grayscale");
  if (p.autoKind == AutoKind::Rand) {
    if (p.randBins < 2 || p.randBins > 1000)
      throw rangeError("pipeline.randAugment.bins: expected an integer in [2, 1000], got " + std::to_string(p.randBins));
    if (p.randMagnitude < 0 || p.randMagnitude >= p.randBins)
      throw rangeError("pipeline.randAugment.magnitude: expected an integer in [0, " + std::to_string(p.randBins - 1) +
                       "], got " + std::to_string(p.randMagnitude));
    if (p.randOps < 0 || p.randOps > 10)
      throw rangeError("pipeline.randAugment.ops: expected an integer in [0, 10], got " + std::to_string(p.randOps));
  }
  checkProbability(p.blurP, "pipeline.blur.p");
  if (p.blurP > 0.0) {
    if (p.blurKernel < 1 || p.blurKernel % 2 == 0 || p.blurKernel > kMaxBlurKernel)
      throw rangeError("pipeline.blur.kernelSize: expected an odd integer in [1, " + std::to_string(kMaxBlurKernel) +
                       "], got " + std::to_string(p.blurKernel));
    if (p.blurKernel / 2 >= std::min(g.outH, g.outW))
      throw rangeError("pipeline.blur.kernelSize: reflect padding of " + std::to_string(p.blurKernel / 2) +
                       " needs an output larger than that, got " + std::to_string(g.outH) + "x" + std::to_string(g.outW));
    checkRange(p.blurSigma, 1e-6, 1e6, "pipeline.blur.sigma");
  }
  checkProbability(p.solarizeP, "pipeline.solarize.p");
  if (!(p.solarizeThreshold >= 0.0 && p.solarizeThreshold <= 1.0))
    throw rangeError("pipeline.solarize.threshold: expected a number in [0, 1], got " + num(p.solarizeThreshold));
  // The op budget: 4 jitter + grayscale + RandAugment/AutoAugment + blur + solarize.
  const int32_t most = 7 + (p.autoKind == AutoKind::Rand ? p.randOps : 2);
  if (most > kMaxOps)
    throw rangeError("pipeline: expected at most " + std::to_string(kMaxOps) + " operations per image, got up to " +
                     std::to_string(most));
}

void drawPrograms(const Pipeline& p, const Geometry& g, uint64_t seed, uint32_t epoch,
                  const int32_t* indices, int64_t n, int32_t views, ImageProgram* programs, int threads) {
  // Every (sample, view) has its own stream, so the blocks are independent.
  constexpr int64_t kSamplesPerBlock = 64;
  const int64_t blocks = (n + kSamplesPerBlock - 1) / kSamplesPerBlock;
  cpu::ThreadPool::instance().parallelFor(blocks, threads, [&](int64_t block, int) {
    const int64_t end = std::min(n, (block + 1) * kSamplesPerBlock);
    for (int64_t i = block * kSamplesPerBlock; i < end; ++i)
      for (int32_t v = 0; v < views; ++v) {
        const uint32_t sample = static_cast<uint32_t>(indices != nullptr ? indices[i] : i);
        drawProgram(p, g, PhiloxStream(seed, epoch, sample, static_cast<uint32_t>(v)), programs[i * views + v]);
      }
  });
}

}  // namespace supcon::augment
