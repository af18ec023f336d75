// Native checks of the CPU augmentation passes, built with AddressSanitizer and UBSan: random
// pipelines of every kind (all ops, both interpolations, fill or not) on odd sizes from 1x1,
// uint8 and float input, 1 and 3 channels, for every instruction set this machine has.
// Outputs stay finite and in [0, 1] (up to float rounding), do not depend on the thread
// count, and agree across instruction sets (where no thresholding op can turn a rounding
// difference into a large one); Philox matches the Random123 known answers.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "../common/philox.h"
#include "../cpu/augment_cpu.h"
#include "../cpu/augment_params.h"
#include "../cpu/supcon_cpu.h"

using namespace supcon;

namespace {

int failures = 0;
int checks = 0;

void expect(bool ok, const std::string& what) {
  ++checks;
  if (!ok && ++failures < 20) std::printf("FAIL %s\n", what.c_str());
}

void checkPhilox() {
  const uint32_t kat[3][10] = {
      {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
      {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
       0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
      {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
       0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
  };
  for (const auto& k : kat) {
    const Philox4x32 r = philox4x32_10(Philox4x32{{k[0], k[1], k[2], k[3]}}, k[4], k[5]);
    for (int w = 0; w < 4; ++w) expect(r.v[w] == k[6 + w], "philox known answer");
  }
}

struct Case {
  augment::Geometry g;
  augment::Pipeline p;
  augment::OutputTransform t;
  int64_t n;
  int32_t views;
  bool uint8;
  std::vector<uint8_t> bytes;
  std::vector<float> floats;
  std::vector<augment::ImageProgram> programs;
};

Case makeCase(std::mt19937& gen, int trial) {
  Case c{};
  c.g.channels = trial % 2 ? 3 : 1;
  c.g.inH = 1 + static_cast<int32_t>(gen() % 23);
  c.g.inW = 1 + static_cast<int32_t>(gen() % 23);
  c.g.outH = 1 + static_cast<int32_t>(gen() % 23);
  c.g.outW = 1 + static_cast<int32_t>(gen() % 23);
  augment::Pipeline& p = c.p;
  p.crop = trial % 3 != 0;
  p.cropScale = {0.05, 1.0};
  p.cropRatio = {0.2, 5.0};
  p.flipP = 0.5;
  p.jitterP = 0.9;
  p.brightness = {0.3, 1.7};
  p.contrast = {0.3, 1.7};
  p.saturation = {0.0, 2.0};
  p.hue = {-0.5, 0.5};
  p.grayscaleP = 0.3;
  p.autoKind = static_cast<augment::AutoKind>(trial % 4);
  p.randOps = 5;
  p.randMagnitude = static_cast<int32_t>(gen() % 31);
  p.autoInterpolation = static_cast<augment::Interpolation>((trial / 4) % 2);
  const int32_t side = std::min(c.g.outH, c.g.outW);
  if (side >= 2) {
    p.blurP = 0.5;
    p.blurKernel = 1 + 2 * static_cast<int32_t>(gen() % static_cast<uint32_t>(std::min(side, 10)));
    if (p.blurKernel / 2 >= side) p.blurKernel = 1;
  }
  p.solarizeP = trial % 8 < 4 ? 0.0 : 0.3;
  augment::validatePipeline(p, c.g);
  c.t.hasFill = trial % 3 == 0;
  c.t.fill = 0.3f;
  c.n = 1 + static_cast<int64_t>(gen() % 6);
  c.views = 1 + static_cast<int32_t>(gen() % 3);
  c.uint8 = trial % 5 < 2;
  const size_t count = static_cast<size_t>(c.n * c.g.channels * c.g.inH * c.g.inW);
  c.bytes.resize(count);
  c.floats.resize(count);
  for (size_t i = 0; i < count; ++i) {
    c.bytes[i] = static_cast<uint8_t>(gen() % 256);
    c.floats[i] = static_cast<float>(gen() % 100001) / 100000.0f;
  }
  c.programs.resize(static_cast<size_t>(c.n * c.views));
  augment::drawPrograms(p, c.g, gen(), static_cast<uint32_t>(trial), nullptr, c.n, c.views, c.programs.data(), 2);
  return c;
}

// Solarize, Posterize, Equalize and AutoContrast (of a nearly flat channel) are
// discontinuous: a last-bit difference between instruction sets may move a value far.
bool continuous(const Case& c) {
  for (const auto& prog : c.programs)
    for (int32_t k = 0; k < prog.numOps; ++k) {
      const augment::OpKind kind = prog.ops[k].kind;
      if (kind == augment::OpKind::Solarize || kind == augment::OpKind::Posterize ||
          kind == augment::OpKind::Equalize || kind == augment::OpKind::AutoContrast)
        return false;
    }
  return true;
}

std::vector<float> run(const Case& c, int threads) {
  std::vector<float> out(static_cast<size_t>(c.n * c.views * c.g.channels * c.g.outH * c.g.outW), -7.0f);
  const void* input = c.uint8 ? static_cast<const void*>(c.bytes.data()) : static_cast<const void*>(c.floats.data());
  augment::Batch b{input, c.uint8 ? 1 : 0, c.n, c.g.channels, c.g.inH, c.g.inW, c.g.outH, c.g.outW,
                   c.views, c.programs.data(), c.t, out.data()};
  cpu::augmentBatch(b, threads);
  return out;
}

}  // namespace

int main() {
  checkPhilox();
  const auto kernels = cpu::availableKernels();
  std::mt19937 gen(1);
  int compared = 0;
  for (int trial = 0; trial < 240; ++trial) {
    const Case c = makeCase(gen, trial);
    const std::string where = "trial " + std::to_string(trial);
    cpu::selectKernels(kernels.back());
    const std::vector<float> base = run(c, 1);
    compared += continuous(c);
    for (const std::string& k : kernels) {
      cpu::selectKernels(k);
      const std::vector<float> one = run(c, 1), two = run(c, 2);
      expect(one == two, where + " " + k + ": threads changed the result");
      float worst = 0.0f;
      bool inRange = true;
      for (size_t i = 0; i < one.size(); ++i) {
        inRange = inRange && one[i] >= -1e-6f && one[i] <= 1.0f + 1e-6f;
        worst = std::max(worst, std::fabs(one[i] - base[i]));
      }
      expect(inRange, where + " " + k + ": a value outside [0, 1] (or not finite)");
      if (continuous(c))
        expect(worst <= 1e-5f, where + " " + k + ": differs from " + kernels.back() + " by " + std::to_string(worst));
    }
  }
  cpu::selectKernels(kernels.front());
  expect(compared >= 30, "too few cases without thresholding ops: " + std::to_string(compared));
  std::printf("%d checks (%d cases compared across instruction sets), %d failures\n", checks, compared, failures);
  return failures == 0 ? 0 : 1;
}
