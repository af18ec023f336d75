// augmentPipeline / augmentOps / augmentDraw / philox4x32: augmentations for JavaScript.
// Checks every argument, draws the per-view programs (native/cpu/augment_params.cc) and
// hands the pixels to native/cpu (or native/cuda when asked and built).
#include <cmath>
#include <cstring>
#include <vector>

#include "../common/philox.h"
#include "../cpu/augment_cpu.h"
#include "../cpu/augment_params.h"
#include "../cpu/thread_pool.h"
#include "addon_data.h"
#include "args.h"
#include "async.h"
#include "storage.h"

#if defined(SUPCON_WITH_CUDA)
#include "../cuda/augment_cuda.h"
#endif

namespace supcon::binding {
namespace {

using augment::AutoKind;
using augment::Interpolation;
using augment::Op;
using augment::OpKind;

constexpr int64_t kMaxElements = int64_t{1} << 40;
constexpr int64_t kMaxSide = 1 << 15;

Napi::Value field(const Napi::Object& obj, const char* key) { return obj.Get(key); }

bool isAbsent(const Napi::Value& v) { return v.IsUndefined() || v.IsNull(); }

// Finite, and finite in float32 (the kernels' type): 1e300 is refused here, not turned into Infinity.
double finiteNumber(const Napi::Value& v, const std::string& name) {
  requireFloat32(v, name);
  return requireNumber(v, name);
}

double probability(const Napi::Value& v, const std::string& name) {
  const double p = requireNumber(v, name);
  if (!(p >= 0.0 && p <= 1.0)) throw rangeError(name + ": expected a probability in [0, 1], got " + describe(v));
  return p;
}

std::vector<double> numbers(const Napi::Value& v, const std::string& name, size_t length) {
  if (!v.IsArray()) throw typeError(name + ": expected an array of " + std::to_string(length) + " numbers, got " + describe(v));
  const Napi::Array a = v.As<Napi::Array>();
  if (a.Length() != length)
    throw rangeError(name + ": expected " + std::to_string(length) + " numbers, got " + std::to_string(a.Length()));
  std::vector<double> out(length);
  for (uint32_t k = 0; k < length; ++k) out[k] = finiteNumber(a.Get(k), name + "[" + std::to_string(k) + "]");
  return out;
}

augment::Range pair(const Napi::Value& v, const std::string& name) {
  const auto x = numbers(v, name, 2);
  return augment::Range{x[0], x[1]};
}

Interpolation interpolation(const Napi::Value& v, const std::string& name) {
  if (v.IsUndefined()) return Interpolation::Nearest;
  const std::string s = requireString(v, name);
  if (s == "nearest") return Interpolation::Nearest;
  if (s == "bilinear") return Interpolation::Bilinear;
  throw rangeError(name + ": expected 'nearest' or 'bilinear', got '" + s + "'");
}

augment::Pipeline parsePipeline(const Napi::Value& value) {
  const Napi::Object o = requireObject(value, "pipeline");
  augment::Pipeline p;
  if (const Napi::Value crop = field(o, "crop"); !isAbsent(crop)) {
    const Napi::Object c = requireObject(crop, "pipeline.crop");
    p.crop = true;
    p.cropScale = pair(field(c, "scale"), "pipeline.crop.scale");
    p.cropRatio = pair(field(c, "ratio"), "pipeline.crop.ratio");
  }
  p.flipP = probability(field(o, "flip"), "pipeline.flip");
  if (const Napi::Value j = field(o, "colorJitter"); !isAbsent(j)) {
    const Napi::Object c = requireObject(j, "pipeline.colorJitter");
    p.jitterP = probability(field(c, "p"), "pipeline.colorJitter.p");
    p.brightness = pair(field(c, "brightness"), "pipeline.colorJitter.brightness");
    p.contrast = pair(field(c, "contrast"), "pipeline.colorJitter.contrast");
    p.saturation = pair(field(c, "saturation"), "pipeline.colorJitter.saturation");
    p.hue = pair(field(c, "hue"), "pipeline.colorJitter.hue");
  }
  p.grayscaleP = probability(field(o, "grayscale"), "pipeline.grayscale");
  const Napi::Value ra = field(o, "randAugment"), aa = field(o, "autoAugment");
  if (!isAbsent(ra) && !isAbsent(aa))
    throw typeError("pipeline.randAugment: pass randAugment or autoAugment, not both");
  if (!isAbsent(ra)) {
    const Napi::Object r = requireObject(ra, "pipeline.randAugment");
    p.autoKind = AutoKind::Rand;
    p.randOps = static_cast<int32_t>(requireInteger(field(r, "ops"), "pipeline.randAugment.ops", 0, 10));
    p.randBins = static_cast<int32_t>(requireInteger(field(r, "bins"), "pipeline.randAugment.bins", 2, 1000));
    p.randMagnitude = static_cast<int32_t>(
        requireInteger(field(r, "magnitude"), "pipeline.randAugment.magnitude", 0, p.randBins - 1));
    p.autoInterpolation = interpolation(field(r, "interpolation"), "pipeline.randAugment.interpolation");
  }
  if (!isAbsent(aa)) {
    const Napi::Object a = requireObject(aa, "pipeline.autoAugment");
    const std::string policy = requireString(field(a, "policy"), "pipeline.autoAugment.policy");
    if (policy == "imagenet") p.autoKind = AutoKind::AutoImageNet;
    else if (policy == "cifar10") p.autoKind = AutoKind::AutoCifar10;
    else throw rangeError("pipeline.autoAugment.policy: expected 'imagenet' or 'cifar10', got '" + policy + "'");
    p.autoInterpolation = interpolation(field(a, "interpolation"), "pipeline.autoAugment.interpolation");
  }
  if (const Napi::Value b = field(o, "blur"); !isAbsent(b)) {
    const Napi::Object c = requireObject(b, "pipeline.blur");
    p.blurP = probability(field(c, "p"), "pipeline.blur.p");
    p.blurKernel = static_cast<int32_t>(requireInteger(field(c, "kernelSize"), "pipeline.blur.kernelSize", 1, augment::kMaxBlurKernel));
    p.blurSigma = pair(field(c, "sigma"), "pipeline.blur.sigma");
  }
  if (const Napi::Value s = field(o, "solarize"); !isAbsent(s)) {
    const Napi::Object c = requireObject(s, "pipeline.solarize");
    p.solarizeP = probability(field(c, "p"), "pipeline.solarize.p");
    p.solarizeThreshold = finiteNumber(field(c, "threshold"), "pipeline.solarize.threshold");
  }
  return p;
}

// Input images and the output geometry, from the `spec` object every call takes.
struct BatchSpec {
  const void* input = nullptr;  // set by resolveInput, after every other argument is read
  bool uint8 = false;
  int64_t n = 0;
  int64_t count = 0;     // input elements
  int64_t perImage = 0;  // elements per input image
  augment::Geometry g{};
  int32_t views = 1;
  int threads = 1;
  bool cuda = false;
  std::vector<int32_t> select;  // positions of the batch's images in the input (empty: 0..n-1)
  int64_t total = 0;            // images in the input
  bool inputOnDevice = false, outputOnDevice = false;
  bool timed = false;  // CUDA: time the copies and the kernel (the call then waits for them)
};

// The spec's values only: its getters may run any JavaScript, so no pointer is taken here.
BatchSpec parseSpec(const Napi::Value& specValue, bool withViews) {
  const Napi::Object s = requireObject(specValue, "spec");
  BatchSpec b;
  b.n = requireInteger(field(s, "n"), "spec.n", 0, kMaxElements);
  b.g.channels = static_cast<int32_t>(requireInteger(field(s, "channels"), "spec.channels", 1, 3));
  if (b.g.channels == 2) throw rangeError("spec.channels: expected 1 or 3, got 2");
  b.g.inH = static_cast<int32_t>(requireInteger(field(s, "height"), "spec.height", 1, kMaxSide));
  b.g.inW = static_cast<int32_t>(requireInteger(field(s, "width"), "spec.width", 1, kMaxSide));
  b.g.outH = static_cast<int32_t>(requireInteger(field(s, "outHeight"), "spec.outHeight", 1, kMaxSide));
  b.g.outW = static_cast<int32_t>(requireInteger(field(s, "outWidth"), "spec.outWidth", 1, kMaxSide));
  if (withViews) b.views = static_cast<int32_t>(requireInteger(field(s, "views"), "spec.views", 1, 64));
  const Napi::Value threads = field(s, "threads");
  b.threads = threadsOf(threads, "spec.threads");
  const Napi::Value device = field(s, "device");
  if (!device.IsUndefined()) {
    const std::string d = requireString(device, "spec.device");
    if (d == "cuda") b.cuda = true;
    else if (d != "cpu") throw rangeError("spec.device: expected 'cpu' or 'cuda', got '" + d + "'");
  }
  const Napi::Value timed = field(s, "timed");
  if (!isAbsent(timed)) {
    if (!timed.IsBoolean()) throw typeError("spec.timed: expected a boolean, got " + describe(timed));
    b.timed = timed.As<Napi::Boolean>().Value();
  }
  const std::string dtype = requireString(field(s, "dtype"), "spec.dtype");
  if (dtype != "uint8" && dtype != "float32")
    throw rangeError("spec.dtype: expected 'uint8' or 'float32', got '" + dtype + "'");
  b.uint8 = dtype == "uint8";
  b.perImage = checkedProduct(checkedProduct(b.g.channels, b.g.inH, "images", kMaxElements), b.g.inW,
                              "images", kMaxElements);
  b.total = b.n;
  const Napi::Value select = field(s, "select");
  if (!isAbsent(select)) {
    b.total = requireInteger(field(s, "total"), "spec.total", 0, kMaxElements);
    const Napi::TypedArrayOf<int32_t> positions = requireTypedArray<int32_t>(select, "options.select", b.n);
    b.select.assign(positions.Data(), positions.Data() + b.n);
    for (int64_t i = 0; i < b.n; ++i)
      if (b.select[i] < 0 || b.select[i] >= b.total)
        throw rangeError("options.select: expected positions in [0, " + std::to_string(b.total) + ") (the images), got " +
                         std::to_string(b.select[i]) + " at index " + std::to_string(i));
  }
  b.count = checkedProduct(b.total, b.perImage, "images", kMaxElements);
  return b;
}

// The input's pointer, checked: call it only when no more JavaScript will run before the
// work (a getter could dispose the tensor or detach the array).
void resolveInput(BatchSpec& b, const Napi::Value& inputValue) {
  if (inputValue.IsTypedArray()) {
    b.input = b.uint8 ? static_cast<const void*>(requireTypedArray<uint8_t>(inputValue, "images", b.count).Data())
                      : static_cast<const void*>(requireTypedArray<float>(inputValue, "images", b.count).Data());
  } else if (Storage::is(inputValue)) {
    Storage& st = Storage::unwrap(inputValue, "images", static_cast<size_t>(b.count) * (b.uint8 ? 1 : 4));
    if (st.onDevice()) {
      if (!b.cuda) throw rangeError("images: a tensor on 'cuda' needs options.device 'cuda' (or 'auto'), got 'cpu'");
      if (!b.uint8) throw rangeError("images: images on 'cuda' must be uint8 (the [0, 1] range of float images is checked on the host), got float32");
      b.input = st.data();
      b.inputOnDevice = true;
      return;
    }
    b.input = st.data();
  } else {
    throw typeError(std::string("images: expected ") + (b.uint8 ? "a Uint8Array" : "a Float32Array") +
                    " or a tensor, got " + describe(inputValue));
  }
  if (!b.uint8) {
    const float* x = static_cast<const float*>(b.input);
    for (int64_t e = 0; e < b.count; ++e)
      if (!(x[e] >= 0.0f && x[e] <= 1.0f))
        throw rangeError("images: expected float32 values in [0, 1] (pass uint8 images as a Uint8Array), got " +
                         (std::isnan(x[e]) ? std::string("NaN") : std::to_string(x[e])) + " at index " +
                         std::to_string(e) + " (image " + std::to_string(e / b.perImage) + ")");
  }
}

augment::OutputTransform parseTransform(const Napi::Value& value, int32_t channels) {
  augment::OutputTransform t{};
  if (value.IsUndefined()) return t;
  const Napi::Object o = requireObject(value, "transform");
  if (const Napi::Value nv = field(o, "normalize"); !isAbsent(nv)) {
    const Napi::Object nrm = requireObject(nv, "normalize");
    const auto mean = numbers(field(nrm, "mean"), "normalize.mean", static_cast<size_t>(channels));
    const auto sd = numbers(field(nrm, "std"), "normalize.std", static_cast<size_t>(channels));
    for (int32_t c = 0; c < channels; ++c) {
      if (!(sd[c] > 0.0)) throw rangeError("normalize.std[" + std::to_string(c) + "]: expected a number > 0, got " + std::to_string(sd[c]));
      // (x - mean) / std for x in [0, 1] must stay finite in float32 (a std of 1e-46 is 0 there).
      const double reach = std::max(std::fabs(mean[c]), std::fabs(1.0 - mean[c])) / static_cast<float>(sd[c]);
      if (!(static_cast<float>(sd[c]) > 0.0f) || !(reach <= 3.4028234663852886e38))
        throw rangeError("normalize.std[" + std::to_string(c) + "]: " + describeNumber(sd[c]) +
                         " is too small: (x - mean) / std would pass the float32 range");
      t.mean[c] = static_cast<float>(mean[c]);
      t.std[c] = static_cast<float>(sd[c]);
    }
    t.normalize = 1;
  }
  if (const Napi::Value fv = field(o, "fill"); !isAbsent(fv)) {
    const double fill = finiteNumber(fv, "fill");
    if (!(fill >= 0.0 && fill <= 1.0)) throw rangeError("fill: expected a number in [0, 1], got " + describe(fv));
    t.hasFill = 1;
    t.fill = static_cast<float>(fill);
  }
  return t;
}

float* outputData(BatchSpec& b, const Napi::Value& value, int64_t count) {
  if (value.IsTypedArray()) return requireTypedArray<float>(value, "out", count).Data();
  if (Storage::is(value)) {
    Storage& st = Storage::unwrap(value, "out", static_cast<size_t>(count) * sizeof(float));
    if (st.onDevice() && !b.cuda) throw rangeError("out: a tensor on 'cuda' needs options.device 'cuda' (or 'auto'), got 'cpu'");
    b.outputOnDevice = st.onDevice();
    return reinterpret_cast<float*>(st.data());
  }
  throw typeError("out: expected a Float32Array or a float32 tensor, got " + describe(value));
}

augment::Batch batchOf(const BatchSpec& b, const std::vector<augment::ImageProgram>& programs,
                       const augment::OutputTransform& t, float* out) {
  augment::Batch batch{b.input, b.uint8 ? 1 : 0, b.n, b.g.channels, b.g.inH, b.g.inW,
                       b.g.outH, b.g.outW, b.views, programs.data(), t, out};
  batch.select = b.select.empty() ? nullptr : b.select.data();
  batch.total = b.total;
  batch.inputOnDevice = b.inputOnDevice ? 1 : 0;
  batch.outputOnDevice = b.outputOnDevice ? 1 : 0;
  return batch;
}

// Runs the batch; on CUDA, returns the timing { copyInMs, kernelMs, copyOutMs }.
Napi::Value run(Napi::Env env, const BatchSpec& b, const std::vector<augment::ImageProgram>& programs,
                const augment::OutputTransform& t, float* out) {
  const augment::Batch batch = batchOf(b, programs, t, out);
  if (b.cuda) {
#if defined(SUPCON_WITH_CUDA)
    const cuda::AugmentTiming timing = cuda::augmentBatch(batch, b.timed);
    if (!b.timed) return env.Undefined();
    Napi::Object o = Napi::Object::New(env);
    o.Set("copyInMs", timing.copyInMs);
    o.Set("kernelMs", timing.kernelMs);
    o.Set("copyOutMs", timing.copyOutMs);
    return o;
#else
    throw rangeError("spec.device: 'cuda' needs a build with the CUDA kernels; this one is CPU-only");
#endif
  }
  cpu::augmentBatch(batch, b.threads);
  return env.Undefined();
}

// A CPU batch of an *Async call on the libuv pool (binding/async.h); a CUDA one runs at once
// (its stream orders the work) and the promise resolves with its timing.
Napi::Value runCall(Napi::Env env, bool async, BatchSpec& b, std::vector<augment::ImageProgram> programs,
                    const augment::OutputTransform& t, const Napi::Value& images, const Napi::Value& outValue,
                    float* out, int64_t outCount) {
  if (!async || b.cuda) return run(env, b, programs, t, out);
  auto hold = std::make_unique<AsyncHold>(env);
  b.input = hold->input(images, b.input, static_cast<size_t>(b.count) * (b.uint8 ? 1 : sizeof(float)));
  float* target = static_cast<float*>(hold->output(outValue, out, static_cast<size_t>(outCount) * sizeof(float), "out"));
  auto job = std::make_shared<std::pair<BatchSpec, std::vector<augment::ImageProgram>>>(std::move(b), std::move(programs));
  return queueWork(env, std::move(hold),
                   [job, t, target] { cpu::augmentBatch(batchOf(job->first, job->second, t, target), job->first.threads); },
                   [](Napi::Env e) -> Napi::Value { return e.Undefined(); });
}

int64_t outputCount(const BatchSpec& b) {
  const int64_t hw = checkedProduct(b.g.outH, b.g.outW, "out", kMaxElements);
  const int64_t view = checkedProduct(hw, b.g.channels, "out", kMaxElements);
  return checkedProduct(checkedProduct(b.n, b.views, "out", kMaxElements), view, "out", kMaxElements);
}

struct Keys {
  uint64_t seed = 0;
  uint32_t epoch = 0;
  std::vector<int32_t> indices;  // a copy: empty for 0..n-1
  const int32_t* data() const { return indices.empty() ? nullptr : indices.data(); }
};

Keys parseKeys(const Napi::Object& s, int64_t n) {
  Keys k;
  const uint64_t lo = static_cast<uint64_t>(requireInteger(field(s, "seedLow"), "spec.seedLow", 0, 0xFFFFFFFFll));
  const uint64_t hi = static_cast<uint64_t>(requireInteger(field(s, "seedHigh"), "spec.seedHigh", 0, 0xFFFFFFFFll));
  k.seed = lo | (hi << 32);
  k.epoch = static_cast<uint32_t>(requireInteger(field(s, "epoch"), "spec.epoch", 0, 0xFFFFFFFFll));
  const Napi::Value idx = field(s, "indices");
  if (!isAbsent(idx)) {
    const int32_t* src = requireTypedArray<int32_t>(idx, "options.indices", n).Data();
    k.indices.assign(src, src + n);
    for (int64_t i = 0; i < n; ++i)
      if (k.indices[i] < 0)
        throw rangeError("options.indices: expected sample indices >= 0, got " + std::to_string(k.indices[i]) + " at index " + std::to_string(i));
  }
  return k;
}

std::vector<augment::ImageProgram> drawn(const Napi::Value& pipelineValue, const Napi::Object& spec,
                                         const BatchSpec& b) {
  const augment::Pipeline p = parsePipeline(pipelineValue);
  augment::validatePipeline(p, b.g);
  const Keys k = parseKeys(spec, b.n);
  std::vector<augment::ImageProgram> programs(static_cast<size_t>(b.n * b.views));
  augment::drawPrograms(p, b.g, k.seed, k.epoch, k.data(), b.n, b.views, programs.data(), b.threads);
  return programs;
}

// augmentPipeline(images, spec, pipeline, transform, out) -> CUDA timing or undefined;
// `async`: augmentPipelineAsync, the same as a promise.
Napi::Value augmentPipelineCall(const Napi::CallbackInfo& info, bool async) {
  return guarded(info, [async](const Napi::CallbackInfo& i) -> Napi::Value {
    BatchSpec b = parseSpec(i[1], true);
    auto programs = drawn(i[2], i[1].As<Napi::Object>(), b);
    const augment::OutputTransform t = parseTransform(i[3], b.g.channels);
    const int64_t outCount = outputCount(b);
    resolveInput(b, i[0]);  // pointers last: no JavaScript runs from here on
    float* out = outputData(b, i[4], outCount);
    return runCall(i.Env(), async, b, std::move(programs), t, i[0], i[4], out, outCount);
  });
}
Napi::Value augmentPipeline(const Napi::CallbackInfo& info) { return augmentPipelineCall(info, false); }
Napi::Value augmentPipelineAsync(const Napi::CallbackInfo& info) {
  return promised(info, [](const Napi::CallbackInfo& i) { return augmentPipelineCall(i, true); });
}

OpKind simpleKind(const std::string& op, bool& known) {
  known = true;
  if (op == "brightness") return OpKind::Brightness;
  if (op == "contrast") return OpKind::Contrast;
  if (op == "saturation") return OpKind::Saturation;
  if (op == "hue") return OpKind::Hue;
  if (op == "grayscale") return OpKind::Grayscale;
  if (op == "solarize") return OpKind::Solarize;
  if (op == "posterize") return OpKind::Posterize;
  if (op == "invert") return OpKind::Invert;
  if (op == "autoContrast") return OpKind::AutoContrast;
  if (op == "equalize") return OpKind::Equalize;
  if (op == "sharpness") return OpKind::Sharpness;
  if (op == "gaussianBlur") return OpKind::GaussianBlur;
  known = false;
  return OpKind::Brightness;
}

const char* kOpNames =
    "'resizedCrop', 'hflip', 'brightness', 'contrast', 'saturation', 'hue', 'grayscale', 'solarize', "
    "'posterize', 'invert', 'autoContrast', 'equalize', 'sharpness', 'gaussianBlur', 'affine', "
    "'affineMatrix', 'rotate', 'shearX', 'shearY', 'translateX', 'translateY'";

// One program from an explicit op list (the same for every image).
augment::ImageProgram parseOps(const Napi::Value& value, const augment::Geometry& g) {
  if (!value.IsArray()) throw typeError("ops: expected an array of operations, got " + describe(value));
  const Napi::Array list = value.As<Napi::Array>();
  augment::ImageProgram prog{};
  prog.cropHeight = g.inH;
  prog.cropWidth = g.inW;
  bool resampledOnly = true;  // nothing but the crop so far: a flip folds into it
  const uint32_t length = list.Length();  // once: a getter could grow the array
  if (length > 4096) throw rangeError("ops: expected at most 4096 operations, got " + std::to_string(length));
  for (uint32_t k = 0; k < length; ++k) {
    const std::string name = "ops[" + std::to_string(k) + "]";
    const Napi::Object o = requireObject(list.Get(k), name);
    const std::string op = requireString(field(o, "op"), name + ".op");
    const auto number = [&](const char* key) { return finiteNumber(field(o, key), name + "." + key); };
    const auto nonNegative = [&](const char* key) {
      const double x = number(key);
      if (x < 0.0) throw rangeError(name + "." + key + ": expected a number >= 0, got " + describe(field(o, key)));
      return x;
    };
    if (op == "resizedCrop") {
      if (k != 0) throw rangeError(name + ": 'resizedCrop' must be the first operation");
      prog.cropTop = static_cast<int32_t>(requireInteger(field(o, "top"), name + ".top", 0, g.inH - 1));
      prog.cropLeft = static_cast<int32_t>(requireInteger(field(o, "left"), name + ".left", 0, g.inW - 1));
      prog.cropHeight = static_cast<int32_t>(requireInteger(field(o, "height"), name + ".height", 1, g.inH - prog.cropTop));
      prog.cropWidth = static_cast<int32_t>(requireInteger(field(o, "width"), name + ".width", 1, g.inW - prog.cropLeft));
      continue;
    }
    if (op == "hflip" && resampledOnly && !prog.flip) {
      prog.flip = 1;
      continue;
    }
    resampledOnly = false;
    Op out{};
    bool simple = false;
    out.kind = simpleKind(op, simple);
    const Interpolation mode = interpolation(field(o, "interpolation"), name + ".interpolation");
    if (simple) {
      switch (out.kind) {
        case OpKind::Brightness: case OpKind::Contrast: case OpKind::Saturation: case OpKind::Sharpness:
          out.f[0] = static_cast<float>(nonNegative("factor"));
          break;
        case OpKind::Hue: {
          const double h = number("factor");
          if (!(h >= -0.5 && h <= 0.5)) throw rangeError(name + ".factor: expected a hue shift in [-0.5, 0.5], got " + describe(field(o, "factor")));
          out.f[0] = static_cast<float>(h);
          break;
        }
        case OpKind::Solarize: {
          const double t = number("threshold");
          if (!(t >= 0.0 && t <= 1.0)) throw rangeError(name + ".threshold: expected a number in [0, 1], got " + describe(field(o, "threshold")));
          out.f[0] = static_cast<float>(t);
          break;
        }
        case OpKind::Posterize:
          out.i0 = static_cast<int32_t>(requireInteger(field(o, "bits"), name + ".bits", 0, 8));
          break;
        case OpKind::GaussianBlur: {
          out.i0 = static_cast<int32_t>(requireInteger(field(o, "kernelSize"), name + ".kernelSize", 1, augment::kMaxBlurKernel));
          if (out.i0 % 2 == 0) throw rangeError(name + ".kernelSize: expected an odd integer, got " + std::to_string(out.i0));
          if (out.i0 / 2 >= std::min(g.outH, g.outW))
            throw rangeError(name + ".kernelSize: reflect padding of " + std::to_string(out.i0 / 2) +
                             " needs an output larger than that, got " + std::to_string(g.outH) + "x" + std::to_string(g.outW));
          // The pipeline's range: below it the kernel's weights underflow (0 / 0).
          const double sigma = number("sigma");
          if (!(sigma >= 1e-6 && sigma <= 1e6))
            throw rangeError(name + ".sigma: expected a number in [1e-6, 1e6], got " + describeNumber(sigma));
          out.f[0] = static_cast<float>(sigma);
          break;
        }
        default:
          break;
      }
      augment::appendOp(prog, out, "ops");
      continue;
    }
    if (op == "hflip") {
      out.kind = OpKind::Affine;
      out.i0 = static_cast<int32_t>(Interpolation::Nearest);
      const float flipMap[6] = {-1.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f};
      std::memcpy(out.f, flipMap, sizeof flipMap);
      augment::appendOp(prog, out, "ops");
    } else if (op == "affineMatrix") {
      const auto m = numbers(field(o, "matrix"), name + ".matrix", 6);
      out.kind = OpKind::Affine;
      out.i0 = static_cast<int32_t>(mode);
      for (int e = 0; e < 6; ++e) out.f[e] = static_cast<float>(m[e]);
      augment::appendOp(prog, out, "ops");
    } else if (op == "affine" || op == "rotate") {
      const bool rotate = op == "rotate";
      const double angle = number("angle");
      double tx = 0, ty = 0, scale = 1, shx = 0, shy = 0, cx = 0, cy = 0;
      if (!rotate) {
        const auto t = numbers(field(o, "translate"), name + ".translate", 2);
        tx = t[0];
        ty = t[1];
        scale = number("scale");
        if (!(scale > 0.0)) throw rangeError(name + ".scale: expected a number > 0, got " + describe(field(o, "scale")));
        const auto sh = numbers(field(o, "shear"), name + ".shear", 2);
        shx = sh[0];
        shy = sh[1];
        if (std::fabs(shx) >= 89.0 || std::fabs(shy) >= 89.0)
          throw rangeError(name + ".shear: expected angles in (-89, 89) degrees, got [" + std::to_string(shx) + ", " + std::to_string(shy) + "]");
      }
      if (const Napi::Value c = field(o, "center"); !isAbsent(c)) {
        const auto cc = numbers(c, name + ".center", 2);
        cx = cc[0] - 0.5 * g.outW;  // torchvision: centre relative to the image centre
        cy = cc[1] - 0.5 * g.outH;
      }
      out.kind = OpKind::Affine;
      out.i0 = static_cast<int32_t>(mode);
      augment::inverseAffine(cx, cy, rotate ? -angle : angle, tx, ty, scale, shx, shy, out.f);
      augment::appendOp(prog, out, "ops");
    } else if (op == "shearX" || op == "shearY" || op == "translateX" || op == "translateY") {
      const double m = op[0] == 's' ? number("factor") : number("pixels");
      if (op[0] == 's' && std::fabs(m) > 50.0)
        throw rangeError(name + ".factor: expected a shear factor in [-50, 50], got " + describe(field(o, "factor")));
      const augment::AutoOp kind = op == "shearX" ? augment::AutoOp::ShearX
                                   : op == "shearY" ? augment::AutoOp::ShearY
                                   : op == "translateX" ? augment::AutoOp::TranslateX
                                                        : augment::AutoOp::TranslateY;
      augment::appendAutoOp(prog, kind, m, g, mode);
    } else {
      throw rangeError(name + ".op: expected one of " + std::string(kOpNames) + ", got '" + op + "'");
    }
  }
  return prog;
}

// augmentOps(images, spec, ops, transform, out): one op list for every image (one view);
// returns the CUDA timing or undefined. `async`: augmentOpsAsync.
Napi::Value augmentOpsCall(const Napi::CallbackInfo& info, bool async) {
  return guarded(info, [async](const Napi::CallbackInfo& i) -> Napi::Value {
    BatchSpec b = parseSpec(i[1], false);
    const augment::ImageProgram prog = parseOps(i[2], b.g);
    const augment::OutputTransform t = parseTransform(i[3], b.g.channels);
    const int64_t outCount = outputCount(b);
    std::vector<augment::ImageProgram> programs(static_cast<size_t>(b.n), prog);
    resolveInput(b, i[0]);  // pointers last: the op objects' getters have all run
    float* out = outputData(b, i[4], outCount);
    return runCall(i.Env(), async, b, std::move(programs), t, i[0], i[4], out, outCount);
  });
}
Napi::Value augmentOps(const Napi::CallbackInfo& info) { return augmentOpsCall(info, false); }
Napi::Value augmentOpsAsync(const Napi::CallbackInfo& info) {
  return promised(info, [](const Napi::CallbackInfo& i) { return augmentOpsCall(i, true); });
}

const char* opName(OpKind k) {
  switch (k) {
    case OpKind::Brightness: return "brightness";
    case OpKind::Contrast: return "contrast";
    case OpKind::Saturation: return "saturation";
    case OpKind::Hue: return "hue";
    case OpKind::Grayscale: return "grayscale";
    case OpKind::Solarize: return "solarize";
    case OpKind::Posterize: return "posterize";
    case OpKind::Invert: return "invert";
    case OpKind::AutoContrast: return "autoContrast";
    case OpKind::Equalize: return "equalize";
    case OpKind::Sharpness: return "sharpness";
    case OpKind::Affine: return "affineMatrix";
    case OpKind::GaussianBlur: return "gaussianBlur";
  }
  return "?";
}

// augmentDraw(spec, pipeline) -> the drawn programs as explicit op lists (per image, view).
Napi::Value augmentDraw(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Napi::Env env = i.Env();
    const Napi::Object s = requireObject(i[0], "spec");
    augment::Geometry g{};
    const int64_t n = requireInteger(field(s, "n"), "spec.n", 0, 1 << 20);
    g.channels = static_cast<int32_t>(requireInteger(field(s, "channels"), "spec.channels", 1, 3));
    g.inH = static_cast<int32_t>(requireInteger(field(s, "height"), "spec.height", 1, kMaxSide));
    g.inW = static_cast<int32_t>(requireInteger(field(s, "width"), "spec.width", 1, kMaxSide));
    g.outH = static_cast<int32_t>(requireInteger(field(s, "outHeight"), "spec.outHeight", 1, kMaxSide));
    g.outW = static_cast<int32_t>(requireInteger(field(s, "outWidth"), "spec.outWidth", 1, kMaxSide));
    BatchSpec b;
    b.n = n;
    b.g = g;
    b.views = static_cast<int32_t>(requireInteger(field(s, "views"), "spec.views", 1, 64));
    b.threads = cpu::ThreadPool::hardwareThreads();
    const auto programs = drawn(i[1], s, b);
    Napi::Array result = Napi::Array::New(env, programs.size());
    for (size_t k = 0; k < programs.size(); ++k) {
      const augment::ImageProgram& p = programs[k];
      Napi::Array ops = Napi::Array::New(env);
      uint32_t m = 0;
      Napi::Object crop = Napi::Object::New(env);
      crop.Set("op", "resizedCrop");
      crop.Set("top", p.cropTop);
      crop.Set("left", p.cropLeft);
      crop.Set("height", p.cropHeight);
      crop.Set("width", p.cropWidth);
      ops.Set(m++, crop);
      if (p.flip) {
        Napi::Object flip = Napi::Object::New(env);
        flip.Set("op", "hflip");
        ops.Set(m++, flip);
      }
      for (int32_t q = 0; q < p.numOps; ++q) {
        const Op& op = p.ops[q];
        Napi::Object o = Napi::Object::New(env);
        o.Set("op", opName(op.kind));
        switch (op.kind) {
          case OpKind::Brightness: case OpKind::Contrast: case OpKind::Saturation: case OpKind::Hue:
          case OpKind::Sharpness:
            o.Set("factor", op.f[0]);
            break;
          case OpKind::Solarize: o.Set("threshold", op.f[0]); break;
          case OpKind::Posterize: o.Set("bits", op.i0); break;
          case OpKind::GaussianBlur:
            o.Set("kernelSize", op.i0);
            o.Set("sigma", op.f[0]);
            break;
          case OpKind::Affine: {
            Napi::Array mat = Napi::Array::New(env, 6);
            for (uint32_t e = 0; e < 6; ++e) mat.Set(e, op.f[e]);
            o.Set("matrix", mat);
            o.Set("interpolation", op.i0 == static_cast<int32_t>(Interpolation::Nearest) ? "nearest" : "bilinear");
            break;
          }
          default: break;
        }
        ops.Set(m++, o);
      }
      result.Set(static_cast<uint32_t>(k), ops);
    }
    return result;
  });
}

// philox4x32(c0, c1, c2, c3, k0, k1) -> [4 words]: the raw generator, for known-answer tests.
Napi::Value philox4x32(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    uint32_t w[6];
    for (size_t k = 0; k < 6; ++k)
      w[k] = static_cast<uint32_t>(requireInteger(i[k], k < 4 ? "counter[" + std::to_string(k) + "]"
                                                                : "key[" + std::to_string(k - 4) + "]",
                                                  0, 0xFFFFFFFFll));
    const Philox4x32 r = philox4x32_10(Philox4x32{{w[0], w[1], w[2], w[3]}}, w[4], w[5]);
    Napi::Array out = Napi::Array::New(i.Env(), 4);
    for (uint32_t k = 0; k < 4; ++k) out.Set(k, static_cast<double>(r.v[k]));
    return out;
  });
}

}  // namespace

void registerAugment(Napi::Env env, Napi::Object exports) {
  exports.Set("augmentPipeline", Napi::Function::New(env, augmentPipeline, "augmentPipeline"));
  exports.Set("augmentOps", Napi::Function::New(env, augmentOps, "augmentOps"));
  exports.Set("augmentPipelineAsync", Napi::Function::New(env, augmentPipelineAsync, "augmentPipelineAsync"));
  exports.Set("augmentOpsAsync", Napi::Function::New(env, augmentOpsAsync, "augmentOpsAsync"));
  exports.Set("augmentDraw", Napi::Function::New(env, augmentDraw, "augmentDraw"));
  exports.Set("philox4x32", Napi::Function::New(env, philox4x32, "philox4x32"));
}

}  // namespace supcon::binding
