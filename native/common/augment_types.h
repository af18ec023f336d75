// The augmentation problem as every backend sees it (CPU and CUDA alike): a batch of
// images, one drawn program per (image, view), and how the output is written.
//
// Random parameters are drawn on the host (native/cpu/augment_params.cc) into plain
// ImageProgram structs; the pixel passes only read them, so CPU and CUDA runs of one seed
// produce the same images. Formulas: docs/AUGMENT.md.
#pragma once

#include <cstdint>

namespace supcon::augment {

enum class OpKind : int32_t {
  Brightness = 0,    // f[0] = factor
  Contrast = 1,      // f[0] = factor (blend with the mean of the grayscale image)
  Saturation = 2,    // f[0] = factor (blend with the per-pixel grayscale)
  Hue = 3,           // f[0] = shift in [-0.5, 0.5]
  Grayscale = 4,     // every channel becomes the luma
  Solarize = 5,      // f[0] = threshold: x >= threshold -> 1 - x
  Posterize = 6,     // i0 = bits kept of the byte value
  Invert = 7,
  AutoContrast = 8,
  Equalize = 9,
  Sharpness = 10,    // f[0] = factor (blend with the 3x3 smoothed image)
  Affine = 11,       // f[0..5] = inverse map in centred coordinates; i0 = Interpolation
  GaussianBlur = 12, // f[0] = sigma; i0 = kernel size (odd)
};

enum class Interpolation : int32_t { Nearest = 0, Bilinear = 1 };

struct Op {
  OpKind kind;
  int32_t i0;
  float f[6];
};

constexpr int kMaxOps = 24;
constexpr int kMaxBlurKernel = 63;

// What one output view goes through: the crop box of the input (integers, as torchvision
// draws them) resized bilinearly to the output size and flipped when `flip`, then `ops`
// in order on the output-sized image.
struct ImageProgram {
  int32_t cropTop, cropLeft, cropHeight, cropWidth;
  int32_t flip;
  int32_t numOps;
  Op ops[kMaxOps];
};

struct OutputTransform {
  // (x - mean[c]) / std[c] when normalize.
  int32_t normalize;
  float mean[3], std[3];
  // Geometric ops read taps outside the image as 0 (torchvision's fill=None); with
  // hasFill they follow torchvision's fill path (the in-image mask blends toward fill).
  int32_t hasFill;
  float fill;
};

// A batch: input [n, channels, inH, inW] (uint8 scaled by 1/255, or float32), output
// [n, views, channels, outH, outW] float32, programs [n * views] (view-minor).
struct Batch {
  const void* input;
  int32_t inputUint8;
  int64_t n;
  int32_t channels, inH, inW, outH, outW, views;
  const ImageProgram* programs;
  OutputTransform transform;
  float* out;
  // Image i of the batch is input image select[i] (positions in an input of `total` images),
  // or image i when select is null. Host memory; the CUDA pass uploads it.
  const int32_t* select = nullptr;
  int64_t total = 0;
  // CUDA only: the input images and the output views already in device memory.
  int32_t inputOnDevice = 0, outputOnDevice = 0;
};

// One output coordinate of a bilinear resize: taps i0 and i1 of the input, weight w1 on i1.
struct ResizeTap {
  int32_t i0, i1;
  float w1;
};

}  // namespace supcon::augment
