// Augmentation parameters on the host: pipelines as plain data, drawn per (image, view)
// from Philox4x32-10 into ImageProgram structs that the CPU and CUDA pixel passes read.
#pragma once

#include <cstdint>
#include <string>

#include "../common/augment_types.h"

namespace supcon::augment {

struct Range {
  double lo, hi;
};

// Which of RandAugment / AutoAugment (if any) follows the colour ops.
enum class AutoKind : int32_t { None = 0, Rand = 1, AutoImageNet = 2, AutoCifar10 = 3 };

// torchvision's transforms in this order: RandomResizedCrop, RandomHorizontalFlip,
// RandomApply(ColorJitter), RandomGrayscale, RandAugment | AutoAugment, RandomApply
// (GaussianBlur), RandomSolarize. A transform with probability 0 (or null) is absent.
struct Pipeline {
  bool crop = false;  // without it the whole image is resized to the output size
  Range cropScale{0.08, 1.0}, cropRatio{3.0 / 4.0, 4.0 / 3.0};
  double flipP = 0.0;
  double jitterP = 0.0;
  Range brightness{1, 1}, contrast{1, 1}, saturation{1, 1}, hue{0, 0};
  double grayscaleP = 0.0;
  AutoKind autoKind = AutoKind::None;
  int32_t randOps = 2, randMagnitude = 9, randBins = 31;
  Interpolation autoInterpolation = Interpolation::Nearest;
  double blurP = 0.0;
  int32_t blurKernel = 3;
  Range blurSigma{0.1, 2.0};
  double solarizeP = 0.0;
  double solarizeThreshold = 0.5;
};

struct Geometry {
  int32_t channels, inH, inW, outH, outW;
};

// Throws ArgumentError (RangeError) naming the pipeline field when a value is out of range.
void validatePipeline(const Pipeline& p, const Geometry& g);

// programs[i * views + v] for sample indices[i] (or i when indices is null), drawn on up
// to `threads` threads (the result does not depend on it).
void drawPrograms(const Pipeline& p, const Geometry& g, uint64_t seed, uint32_t epoch,
                  const int32_t* indices, int64_t n, int32_t views, ImageProgram* programs,
                  int threads);

// torchvision _get_inverse_affine_matrix: the map from output to input coordinates
// centred on (cx, cy) (relative to the image centre), angles in degrees.
void inverseAffine(double cx, double cy, double angle, double tx, double ty, double scale,
                   double shearX, double shearY, float m[6]);

// RandAugment / AutoAugment operations (torchvision's names).
enum class AutoOp : int32_t {
  Identity, ShearX, ShearY, TranslateX, TranslateY, Rotate, Brightness, Color, Contrast,
  Sharpness, Posterize, Solarize, AutoContrast, Equalize, Invert
};

// Appends torchvision _apply_op(op, magnitude) to the program (Identity appends nothing).
void appendAutoOp(ImageProgram& prog, AutoOp op, double magnitude, const Geometry& g,
                  Interpolation mode);

// Adds one op; a RangeError naming `name` when the program is full.
void appendOp(ImageProgram& prog, const Op& op, const std::string& name);

}  // namespace supcon::augment
