// lossForward / lossBackward: the SupCon loss for JavaScript. Checks every argument, then
// hands the work to native/cpu.
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "../cpu/supcon_cpu.h"
#include "../cpu/supcon_unfused.h"
#include "../cpu/thread_pool.h"
#include "addon_data.h"
#include "args.h"
#include "handles.h"
#include "async.h"
#include "storage.h"

#if defined(SUPCON_WITH_CUDA)
#include "../cuda/runtime.h"
#include "../cuda/supcon_cuda.h"
#endif

namespace supcon::binding {
namespace {

constexpr int64_t kMaxElements = int64_t{1} << 40;
constexpr napi_type_tag kLossContextTag = {0x3f61c2d9a8e04b17ull, 0xb2e75d04c19a6f38ull};

// The state a forward pass leaves for its backward pass, as a JavaScript object.
class LossContext : public Napi::ObjectWrap<LossContext> {
 public:
  // The members live on the prototype as plain functions, so that they work on a handle
  // whose native object dispose() has freed (storage.h says why it does).
  static Napi::Function define(Napi::Env env) {
    Napi::Function ctor = DefineClass(env, "LossContext", {});
    ctor.Get("prototype").As<Napi::Object>().DefineProperties({
        Napi::PropertyDescriptor::Value("dispose", Napi::Function::New(env, &LossContext::dispose, "dispose"), napi_default_method),
        Napi::PropertyDescriptor::Accessor<&LossContext::getLoss>("loss", napi_configurable),
        Napi::PropertyDescriptor::Accessor<&LossContext::getCounted>("counted", napi_configurable),
        Napi::PropertyDescriptor::Accessor<&LossContext::getBytes>("bytes", napi_configurable),
        Napi::PropertyDescriptor::Accessor<&LossContext::getDisposed>("disposed", napi_configurable),
        Napi::PropertyDescriptor::Accessor<&LossContext::getDevice>("device", napi_configurable),
    });
    return ctor;
  }
  explicit LossContext(const Napi::CallbackInfo& info) : Napi::ObjectWrap<LossContext>(info) {
    napi_type_tag_object(info.Env(), info.This(), &kLossContextTag);
  }
  // Whether `value` is a context made by this addon (a type tag: no JavaScript runs).
  static bool is(const Napi::Value& value) {
    bool tagged = false;
    return value.IsObject() &&
           napi_check_object_type_tag(value.Env(), value, &kLossContextTag, &tagged) == napi_ok && tagged;
  }
  // The context behind `value` (a LossContext handle); null when dispose() freed it.
  static LossContext* find(const Napi::Value& value) { return is(value) ? wrapped<LossContext>(value) : nullptr; }
  // The context behind a context argument named `name`: a TypeError for anything else, a
  // RangeError when it has been disposed.
  static LossContext& argument(const Napi::Value& value, const std::string& name) {
    if (!is(value)) throw typeError(name + ": expected the result of a forward pass, got " + describe(value));
    LossContext* c = wrapped<LossContext>(value);
    if (c == nullptr) throw rangeError(name + ": the loss context has been disposed");
    return *c;
  }

  void adopt(Napi::Env env, std::unique_ptr<cpu::LossState> state) {
    cpu_ = std::move(state);
    reported_ = static_cast<int64_t>(cpu_->bytes());
    Napi::MemoryManagement::AdjustExternalMemory(env, reported_);
  }
#if defined(SUPCON_WITH_CUDA)
  // `features`: the device storage the state reads (empty when the state holds a copy).
  void adopt(cuda::LossStateCudaPtr state, Napi::Object features) {
    cuda_ = std::move(state);
    if (!features.IsEmpty()) features_ = Napi::Persistent(features);
  }
  const cuda::LossStateCuda& cudaState(const std::string& name) const {
    const Storage* features = features_.IsEmpty() ? nullptr : Storage::find(features_.Value());
    if (!features_.IsEmpty() && (features == nullptr || features->disposed()))
      throw rangeError(name + ": the features tensor was disposed before the backward pass");
    return *cuda_;
  }
#endif
  // Whether the forward pass had a contrast set with gradient: true.
  bool contrastGradient() const {
#if defined(SUPCON_WITH_CUDA)
    if (cuda_) return cuda::stateContrastGradient(*cuda_);
#endif
    return cpu_ != nullptr && cpu_->contrastGradient;
  }
  // The CPU state, shared with a pending backward pass (which keeps it past dispose()).
  std::shared_ptr<const cpu::LossState> sharedCpuState() const { return cpu_; }
  // The CPU state, or null for a CUDA one; throws when disposed.
  const cpu::LossState* cpuState(const std::string& name) const {
    if (!live()) throw rangeError(name + ": the loss context has been disposed");
    return cpu_.get();
  }
  void Finalize(Napi::BasicEnv env) override { release(env); }

 private:
  bool live() const {
#if defined(SUPCON_WITH_CUDA)
    if (cuda_) return true;
#endif
    return cpu_ != nullptr;
  }
  double loss() const {
#if defined(SUPCON_WITH_CUDA)
    if (cuda_) return cuda::stateLoss(*cuda_);
#endif
    return cpu_->loss;
  }
  void release(Napi::BasicEnv env) {
#if defined(SUPCON_WITH_CUDA)
    cuda_.reset();
    if (!features_.IsEmpty()) features_.Reset();
#endif
    if (!cpu_) return;
    cpu_.reset();
    Napi::MemoryManagement::AdjustExternalMemory(env, -reported_);
    reported_ = 0;
  }
  // dispose(): frees the state (a pending backward pass keeps its share) and the native
  // object, and unwraps the handle. Disposing twice does nothing.
  static Napi::Value dispose(const Napi::CallbackInfo& info) {
    return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
      Napi::Env env = i.Env();
      if (!is(i.This()))
        throw typeError("LossContext.dispose: expected a loss context as this, got " + describe(i.This()));
      LossContext* c = wrapped<LossContext>(i.This());
      if (c == nullptr) return env.Undefined();
      c->release(env);
      detach(env, i.This(), c);
      return env.Undefined();
    });
  }
  // On CUDA the first read waits for the forward pass (and reports a loss that overflowed).
  static Napi::Value getLoss(const Napi::CallbackInfo& info) {
    return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
      const LossContext* c = find(i.This());
      return c != nullptr && c->live() ? Napi::Number::New(i.Env(), c->loss()) : i.Env().Undefined();
    });
  }
  // Anchors in the loss's mean: what shards combine by (docs/SHARDING.md).
  static Napi::Value getCounted(const Napi::CallbackInfo& info) {
    return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
      const LossContext* c = find(i.This());
      if (c == nullptr || !c->live()) return i.Env().Undefined();
#if defined(SUPCON_WITH_CUDA)
      if (c->cuda_) return Napi::Number::New(i.Env(), static_cast<double>(cuda::stateCounted(*c->cuda_)));
#endif
      return Napi::Number::New(i.Env(), static_cast<double>(c->cpu_->counted));
    });
  }
  static Napi::Value getBytes(const Napi::CallbackInfo& info) {
    const LossContext* c = find(info.This());
    if (c == nullptr) return Napi::Number::New(info.Env(), 0.0);
#if defined(SUPCON_WITH_CUDA)
    if (c->cuda_) return Napi::Number::New(info.Env(), static_cast<double>(cuda::stateBytes(*c->cuda_)));
#endif
    return Napi::Number::New(info.Env(), static_cast<double>(c->reported_));
  }
  static Napi::Value getDisposed(const Napi::CallbackInfo& info) {
    const LossContext* c = find(info.This());
    return Napi::Boolean::New(info.Env(), c == nullptr || !c->live());
  }
  static Napi::Value getDevice(const Napi::CallbackInfo& info) {
    const LossContext* c = find(info.This());
    if (c == nullptr) return info.Env().Null();
#if defined(SUPCON_WITH_CUDA)
    if (c->cuda_) return Napi::String::New(info.Env(), "cuda");
#endif
    return Napi::String::New(info.Env(), "cpu");
  }

  std::shared_ptr<cpu::LossState> cpu_;
#if defined(SUPCON_WITH_CUDA)
  cuda::LossStateCudaPtr cuda_;
  Napi::ObjectReference features_;
#endif
  int64_t reported_ = 0;
};

// Float data of `count` elements: a Float32Array (host) or a tensor storage (host or GPU).
struct FloatData {
  float* ptr;
  bool onDevice;
};

// For a storage, `offset` elements in (outputs written into a larger buffer).
FloatData floatData(const Napi::Value& value, const std::string& name, int64_t count, int64_t offset = 0) {
  if (value.IsTypedArray()) {
    if (offset != 0) throw rangeError(name + ": an offset needs a tensor storage, not a typed array");
    return {requireTypedArray<float>(value, name, count).Data(), false};
  }
  if (value.IsObject() && !value.IsArray()) {
    Storage& s = Storage::unwrap(value, name, static_cast<size_t>(count + offset) * sizeof(float));
    return {reinterpret_cast<float*>(s.data()) + offset, s.onDevice()};
  }
  throw typeError(name + ": expected a Float32Array or a float32 tensor, got " + describe(value));
}

#if defined(SUPCON_WITH_CUDA)
// A temporary device buffer (upload of host input, staging of host output); none for 0 bytes.
struct DeviceTemp {
  void* ptr = nullptr;
  explicit DeviceTemp(size_t bytes) : ptr(bytes > 0 ? cuda::deviceAlloc(bytes) : nullptr) {}
  ~DeviceTemp() { cuda::deviceFree(ptr); }
  DeviceTemp(const DeviceTemp&) = delete;
  DeviceTemp& operator=(const DeviceTemp&) = delete;
};
#endif

template <typename E>
E requireEnum(const Napi::Object& opts, const char* key,
              std::initializer_list<std::pair<const char*, E>> choices, E fallback) {
  const Napi::Value v = opts.Get(key);  // read once
  const std::string name = std::string("options.") + key;
  if (v.IsUndefined()) return fallback;
  const std::string s = requireString(v, name);
  std::string list;
  for (const auto& [label, value] : choices) {
    if (s == label) return value;
    list += (list.empty() ? "'" : ", '") + std::string(label) + "'";
  }
  throw rangeError(name + ": expected one of " + list + ", got '" + s + "'");
}

double optionalPositive(const Napi::Object& opts, const char* key, double fallback) {
  const Napi::Value v = opts.Get(key);
  return v.IsUndefined() ? fallback : requirePositive(v, std::string("options.") + key);
}

bool optionalBoolean(const Napi::Object& opts, const char* key, bool fallback) {
  const Napi::Value v = opts.Get(key);
  return v.IsUndefined() ? fallback : requireBoolean(v, std::string("options.") + key);
}

LossOptions parseOptions(const Napi::Object& opts) {
  LossOptions o;
  const double tau = optionalPositive(opts, "temperature", o.temperature);
  const double base = optionalPositive(opts, "baseTemperature", o.baseTemperature);
  if (tau < 1e-6 || base < 1e-6)
    throw rangeError("options.temperature: expected temperatures >= 1e-6, got " +
                     std::to_string(tau < 1e-6 ? tau : base));
  o.temperature = static_cast<float>(tau);
  o.baseTemperature = static_cast<float>(base);
  o.contrastMode = requireEnum<ContrastMode>(
      opts, "contrastMode", {{"all", ContrastMode::All}, {"one", ContrastMode::One}}, o.contrastMode);
  o.variant = requireEnum<Variant>(opts, "variant", {{"out", Variant::Out}, {"in", Variant::In}},
                                   o.variant);
  o.denominator = requireEnum<Denominator>(
      opts, "denominator",
      {{"all", Denominator::All},
       {"onePositive", Denominator::OnePositive},
       {"onlyNegatives", Denominator::OnlyNegatives}},
      o.denominator);
  o.normalize = optionalBoolean(opts, "normalize", o.normalize);
  o.excludeAnchorsWithoutPositives =
      optionalBoolean(opts, "excludeAnchorsWithoutPositives", o.excludeAnchorsWithoutPositives);
  return o;
}

// Host features must be finite (device features are the caller's to check: reading them
// back would cost a copy).
void checkFinite(const float* x, int64_t count, int64_t v, int64_t d) {
  for (int64_t e = 0; e < count; ++e) {
    if (!std::isfinite(x[e])) {
      const int64_t s = e / (v * d), view = (e / d) % v, k = e % d;
      throw rangeError("features: expected finite values, got " +
                       std::string(std::isnan(x[e]) ? "NaN" : "Infinity") + " at index " +
                       std::to_string(e) + " (sample " + std::to_string(s) + ", view " +
                       std::to_string(view) + ", dim " + std::to_string(k) + ")");
    }
  }
}

// A gradient that overflowed float32 (finite features whose logits z_i . z_j / temperature
// are near the float32 maximum: the loss fits, its gradient does not) is a RangeError.
void checkFiniteGradient(const float* g, int64_t count) {
  for (int64_t e = 0; e < count; ++e)
    if (!std::isfinite(g[e]))
      throw rangeError("features: the gradient overflowed float32 at index " + std::to_string(e) +
                       "; the logits z_i . z_j / temperature are too large (scale the features down, raise the "
                       "temperature or pass normalize: true)");
}

// options.contrast as plain values: everything read (getters run) before any pointer.
struct ContrastArgs {
  bool given = false;
  Napi::Value features, labels, positions;
  int64_t m = 0;
  bool withAnchors = false, gradient = true;
};

ContrastArgs readContrast(const Napi::Object& opts) {
  ContrastArgs c;
  const Napi::Value v = opts.Get("contrast");
  if (v.IsUndefined() || v.IsNull()) return c;
  const Napi::Object o = requireObject(v, "options.contrast");
  c.given = true;
  c.features = o.Get("features");
  const Napi::Value m = o.Get("m");
  if (m.IsNumber() && m.As<Napi::Number>().DoubleValue() == 0)
    throw rangeError("options.contrast.m: expected at least one contrast row, got 0");
  c.m = requireInteger(m, "options.contrast.m", 1, kMaxElements);
  c.labels = o.Get("labels");
  c.positions = o.Get("positions");
  c.withAnchors = optionalBoolean(o, "withAnchors", false);
  c.gradient = optionalBoolean(o, "gradient", true);
  return c;
}

bool present(const Napi::Value& v) { return !v.IsNull() && !v.IsUndefined(); }

// The mask as weights: a Uint8Array of 0/1, or a Float32Array of finite weights >= 0.
std::vector<float> readMask(const Napi::Value& value, int64_t count, int64_t columns) {
  const std::string name = "options.mask";
  std::vector<float> w(static_cast<size_t>(count));
  if (value.IsTypedArray() && value.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array) {
    const float* x = requireTypedArray<float>(value, name, count).Data();
    for (int64_t e = 0; e < count; ++e) {
      if (!(std::isfinite(x[e]) && x[e] >= 0.0f))
        throw rangeError(name + ": expected finite weights >= 0, got " +
                         (std::isnan(x[e]) ? std::string("NaN") : describeNumber(x[e])) + " at index " +
                         std::to_string(e) + " (row " + std::to_string(e / columns) + ", column " +
                         std::to_string(e % columns) + ")");
      w[static_cast<size_t>(e)] = x[e];
    }
    return w;
  }
  const uint8_t* x = requireTypedArray<uint8_t>(value, name, count).Data();
  for (int64_t e = 0; e < count; ++e) {
    if (x[e] > 1)
      throw rangeError(name + ": expected 0 or 1, got " + std::to_string(x[e]) + " at index " + std::to_string(e));
    w[static_cast<size_t>(e)] = x[e];
  }
  return w;
}

// Contrast positions [n * v]: each -1 or a contrast row in [0, m), no row twice.
const int32_t* readPositions(const Napi::Value& value, int64_t count, int64_t m) {
  const int32_t* p = requireTypedArray<int32_t>(value, "options.contrast.positions", count).Data();
  std::vector<int64_t> owner(static_cast<size_t>(m), -1);
  for (int64_t e = 0; e < count; ++e) {
    if (p[e] < -1 || p[e] >= m)
      throw rangeError("options.contrast.positions: expected -1 or a contrast row in [0, " + std::to_string(m) +
                       "), got " + std::to_string(p[e]) + " at index " + std::to_string(e));
    if (p[e] < 0) continue;
    int64_t& o = owner[static_cast<size_t>(p[e])];
    if (o >= 0)
      throw rangeError("options.contrast.positions: expected each contrast row at most once, got row " +
                       std::to_string(p[e]) + " at indices " + std::to_string(o) + " and " + std::to_string(e));
    o = e;
  }
  return p;
}

// The CPU forward pass of lossForwardAsync on the libuv pool; resolves with the context.
// Every pointer of `in` is held here (pinned or copied): a new input field needs its line.
// `contrastFeatures`: the value holding in.contrast->features; `maskCount`: the mask's weights.
Napi::Value forwardOnPool(Napi::Env env, LossContext* context, const Napi::Value& features,
                          const Napi::Value& contrastFeatures, cpu::LossInput in, int64_t maskCount,
                          const LossOptions& o, int threads) {
  auto hold = std::make_unique<AsyncHold>(env);
  in.features = static_cast<const float*>(hold->input(features, in.features, static_cast<size_t>(in.n * in.v * in.d) * sizeof(float)));
  in.labels = hold->copy(in.labels, static_cast<size_t>(in.n));
  in.mask = hold->copy(in.mask, in.mask == nullptr ? 0 : static_cast<size_t>(maskCount));
  // The contrast set: its description copied into the work, its rows pinned or copied.
  std::shared_ptr<cpu::ContrastInput> contrast;
  if (in.contrast != nullptr) {
    contrast = std::make_shared<cpu::ContrastInput>(*in.contrast);
    contrast->features = static_cast<const float*>(
        hold->input(contrastFeatures, contrast->features, static_cast<size_t>(contrast->m * in.d) * sizeof(float)));
    contrast->labels = hold->copy(contrast->labels, static_cast<size_t>(contrast->m));
    contrast->positions = hold->copy(contrast->positions, static_cast<size_t>(in.n * in.v));
    in.contrast = contrast.get();
  }
  hold->keep(context->Value());
  auto state = std::make_shared<std::unique_ptr<cpu::LossState>>();
  // `contrast` is named in the capture: in.contrast points into it until the pass ends.
  return queueWork(env, std::move(hold), [in, o, threads, state, contrast] { *state = cpu::lossForward(in, o, threads); },
                   [=](Napi::Env e) -> Napi::Value {
                     context->adopt(e, std::move(*state));
                     return context->Value();
                   });
}

// The CPU backward pass of lossBackwardAsync on the libuv pool.
// `contrastValue` / `contrastGrad`: options.contrastOut, or null.
Napi::Value backwardOnPool(Napi::Env env, std::shared_ptr<const cpu::LossState> state, const Napi::Value& outValue,
                           float* out, const Napi::Value& contrastValue, float* contrastGrad, float gradLoss,
                           int threads) {
  auto hold = std::make_unique<AsyncHold>(env);
  const int64_t count = state->B * state->d, contrastCount = state->m * state->d;
  float* target = static_cast<float*>(hold->output(outValue, out, static_cast<size_t>(count) * sizeof(float), "out"));
  float* contrastTarget =
      contrastGrad == nullptr
          ? nullptr
          : static_cast<float*>(hold->output(contrastValue, contrastGrad, static_cast<size_t>(contrastCount) * sizeof(float),
                                             "options.contrastOut"));
  return queueWork(env, std::move(hold),
                   [=] {
                     cpu::lossBackward(*state, gradLoss, target, threads, contrastTarget);
                     checkFiniteGradient(target, count);
                     if (contrastTarget != nullptr) checkFiniteGradient(contrastTarget, contrastCount);
                   },
                   [](Napi::Env e) -> Napi::Value { return e.Undefined(); });
}

// The contrast set's rows (host rows checked finite), labels and positions, once the
// options are read: pointers only, nothing that runs JavaScript.
struct ContrastRows {
  FloatData x;
  const int32_t* labels;
  const int32_t* positions;
};
ContrastRows contrastRows(const ContrastArgs& ca, int64_t d, int64_t B, bool hasLabels) {
  const int64_t cc = checkedProduct(ca.m, d, "options.contrast.features", kMaxElements);
  const FloatData cx = floatData(ca.features, "options.contrast.features", cc);
  if (!cx.onDevice)
    for (int64_t e = 0; e < cc; ++e)
      if (!std::isfinite(cx.ptr[e]))
        throw rangeError("options.contrast.features: expected finite values, got " +
                         std::string(std::isnan(cx.ptr[e]) ? "NaN" : "Infinity") + " at index " + std::to_string(e) +
                         " (row " + std::to_string(e / d) + ", dim " + std::to_string(e % d) + ")");
  return ContrastRows{cx, hasLabels ? requireTypedArray<int32_t>(ca.labels, "options.contrast.labels", ca.m).Data() : nullptr,
                      present(ca.positions) ? readPositions(ca.positions, B, ca.m) : nullptr};
}

// lossForward(features, n, v, d, labels | null, mask | null, options) -> LossContext.
// options.device ('cpu' | 'cuda'; default: where the features are) and options.precision
// ('fp32' | 'tf32' | 'bf16'; the last two only on 'cuda'). `async`: lossForwardAsync, the same
// checks, the CPU pass on the libuv pool (binding/async.h).
Napi::Value lossForwardCall(const Napi::CallbackInfo& info, bool async) {
  return guarded(info, [async](const Napi::CallbackInfo& i) -> Napi::Value {
    Napi::Env env = i.Env();
    // Every value first (options run getters), then the pointers: nothing that runs
    // JavaScript may come after a pointer is taken.
    const int64_t n = requireInteger(i[1], "n", 1, kMaxElements);
    const int64_t v = requireInteger(i[2], "v", 1, kMaxElements);
    const int64_t d = requireInteger(i[3], "d", 1, kMaxElements);
    const int64_t B = checkedProduct(n, v, "features", kMaxElements);
    const int64_t count = checkedProduct(B, d, "features", kMaxElements);
    if (B > (int64_t{1} << 31) - 1024)
      throw rangeError("features: expected at most 2^31 - 1024 rows (n * v), got " + std::to_string(B));
    const Napi::Object opts = i[6].IsUndefined() ? Napi::Object::New(env) : requireObject(i[6], "options");
    const LossOptions o = parseOptions(opts);
    const std::string askedDevice = requireEnum<std::string>(opts, "device", {{"cpu", "cpu"}, {"cuda", "cuda"}}, "");
    const Precision precision = precisionOf(opts.Get("precision"), "options.precision");
    const int threads = threadsOf(opts.Get("threads"), "options.threads");
    const ContrastArgs ca = readContrast(opts);
    const bool hasLabels = present(i[4]);
    const bool hasMask = present(i[5]);
    if (hasLabels && hasMask)
      throw typeError("labels: pass labels or options.mask, not both");
    if (ca.given) {
      if (ca.withAnchors && present(ca.positions))
        throw typeError("options.contrast.positions: withAnchors places the anchors first; pass no positions with it");
      if (hasLabels && !present(ca.labels))
        throw typeError("options.contrast.labels: expected an Int32Array of " + std::to_string(ca.m) +
                        " labels (the anchors have labels), got " + describe(ca.labels));
      if (!hasLabels && present(ca.labels))
        throw typeError(std::string("options.contrast.labels: contrast labels need labels for the anchors too, got ") +
                        (hasMask ? "options.mask" : "no labels"));
    }

    // Pointers from here on.
    const FloatData x = floatData(i[0], "features", count);
    const int32_t* labels = nullptr;
    std::vector<float> mask;
    if (hasLabels) labels = requireTypedArray<int32_t>(i[4], "labels", n).Data();
    const int64_t maskColumns = !ca.given ? n : (ca.withAnchors ? n : 0) + ca.m;
    if (hasMask) mask = readMask(i[5], checkedProduct(n, maskColumns, "options.mask", kMaxElements), maskColumns);
    const std::string device = !askedDevice.empty() ? askedDevice : x.onDevice ? "cuda" : "cpu";
    Napi::Object handle = AddonData::of(env).lossContext.New({});
    LossContext* context = LossContext::find(handle);

    if (device == "cpu") {
      if (x.onDevice) throw typeError("features: a CUDA tensor needs options.device 'cuda'");
      if (precision != Precision::Fp32)
        throw rangeError("options.precision: '" + std::string(precisionName(precision)) +
                         "' runs on tensor cores: it needs options.device 'cuda'");
      checkFinite(x.ptr, count, v, d);
      cpu::ContrastInput contrast{};
      if (ca.given) {
        const ContrastRows rows = contrastRows(ca, d, B, hasLabels);
        if (rows.x.onDevice) throw typeError("options.contrast.features: expected host memory for a CPU loss, got a CUDA tensor");
        contrast = cpu::ContrastInput{rows.x.ptr, ca.m, rows.labels, rows.positions, ca.withAnchors, ca.gradient};
      }
      const cpu::LossInput input{x.ptr, n, v, d, labels, hasMask ? mask.data() : nullptr, ca.given ? &contrast : nullptr};
      if (async)
        return forwardOnPool(env, context, i[0], ca.given ? ca.features : Napi::Value(), input,
                             hasMask ? n * maskColumns : 0, o, threads);
      context->adopt(env, cpu::lossForward(input, o, threads));
      return handle;
    }
    const float* maskWeights = hasMask ? mask.data() : nullptr;
#if defined(SUPCON_WITH_CUDA)
    // The contrast rows are copied into the state (from the host or the device).
    cuda::DeviceContrast contrast{};
    if (ca.given) {
      const ContrastRows rows = contrastRows(ca, d, B, hasLabels);
      contrast = cuda::DeviceContrast{rows.x.onDevice ? rows.x.ptr : nullptr, rows.x.onDevice ? nullptr : rows.x.ptr,
                                      ca.m, rows.labels, rows.positions, ca.withAnchors, ca.gradient};
    }
    const cuda::DeviceContrast* cin = ca.given ? &contrast : nullptr;
    if (x.onDevice) {
      // The state reads the features in place: hold the storage until the context goes.
      context->adopt(cuda::lossForward(cuda::DeviceLossInput{x.ptr, nullptr, n, v, d, labels, maskWeights, cin}, o, precision),
                     i[0].As<Napi::Object>());
    } else {
      checkFinite(x.ptr, count, v, d);
      context->adopt(cuda::lossForward(cuda::DeviceLossInput{nullptr, x.ptr, n, v, d, labels, maskWeights, cin}, o, precision),
                     Napi::Object());
    }
    return handle;
#else
    throw rangeError("options.device: 'cuda' is not available: this build has no CUDA kernels");
#endif
  });
}

Napi::Value lossForward(const Napi::CallbackInfo& info) { return lossForwardCall(info, false); }
Napi::Value lossForwardAsync(const Napi::CallbackInfo& info) {
  return promised(info, [](const Napi::CallbackInfo& i) { return lossForwardCall(i, true); });
}

// lossBackward(context, gradLoss, out, options?) writes gradLoss * d loss / d features to
// out (a Float32Array, or a tensor storage on the context's device or the host, from
// options.outOffset elements in). `async`: lossBackwardAsync (a pending pass keeps the
// context's state past its dispose()).
Napi::Value lossBackwardCall(const Napi::CallbackInfo& info, bool async) {
  return guarded(info, [async](const Napi::CallbackInfo& i) -> Napi::Value {
    Napi::Env env = i.Env();
    LossContext* context = &LossContext::argument(i[0], "context");
    context->cpuState("context");  // a disposed context fails before the options are read
    const double gradLoss = requireNumber(i[1], "gradLoss");
    if (!std::isfinite(gradLoss)) throw rangeError("gradLoss: expected a finite number, got " + describe(i[1]));
    const Napi::Object opts = i[3].IsUndefined() ? Napi::Object::New(env) : requireObject(i[3], "options");
    const Napi::Value offsetValue = opts.Get("outOffset");
    const int64_t offset = offsetValue.IsUndefined() ? 0 : requireInteger(offsetValue, "options.outOffset", 0, kMaxElements);
    const int threads = threadsOf(opts.Get("threads"), "options.threads");
    const Napi::Value contrastOut = opts.Get("contrastOut");
    // The options' getters may have disposed the context: look again.
    const cpu::LossState* cpuState = context->cpuState("context");
    if (present(contrastOut) && !context->contrastGradient())
      throw typeError("options.contrastOut: the forward pass has no contrast set with gradient: true");
    if (cpuState != nullptr) {
      const FloatData out = floatData(i[2], "out", cpuState->B * cpuState->d, offset);
      if (out.onDevice) throw typeError("out: expected host memory for a CPU loss, got a CUDA tensor");
      const int64_t cc = cpuState->m * cpuState->d;
      float* contrastGrad = nullptr;
      if (present(contrastOut)) {
        const FloatData co = floatData(contrastOut, "options.contrastOut", cc);
        if (co.onDevice) throw typeError("options.contrastOut: expected host memory for a CPU loss, got a CUDA tensor");
        contrastGrad = co.ptr;
      }
      if (async)
        return backwardOnPool(env, context->sharedCpuState(), i[2], out.ptr, contrastOut, contrastGrad,
                              static_cast<float>(gradLoss), threads);
      cpu::lossBackward(*cpuState, static_cast<float>(gradLoss), out.ptr, threads, contrastGrad);
      checkFiniteGradient(out.ptr, cpuState->B * cpuState->d);
      if (contrastGrad != nullptr) checkFiniteGradient(contrastGrad, cc);
      return env.Undefined();
    }
#if defined(SUPCON_WITH_CUDA)
    const cuda::LossStateCuda& cs = context->cudaState("features");
    const int64_t count = cuda::stateRows(cs) * cuda::stateDim(cs);
    const int64_t cc = cuda::stateContrastRows(cs) * cuda::stateDim(cs);
    const FloatData out = floatData(i[2], "out", count, offset);
    FloatData co{nullptr, false};
    if (present(contrastOut)) co = floatData(contrastOut, "options.contrastOut", cc);
    // Host outputs go through device staging buffers.
    DeviceTemp staging(out.onDevice ? 0 : static_cast<size_t>(count) * sizeof(float));
    DeviceTemp contrastStaging(co.ptr == nullptr || co.onDevice ? 0 : static_cast<size_t>(cc) * sizeof(float));
    float* target = out.onDevice ? out.ptr : static_cast<float*>(staging.ptr);
    float* contrastTarget = co.ptr == nullptr ? nullptr : co.onDevice ? co.ptr : static_cast<float*>(contrastStaging.ptr);
    cuda::lossBackward(cs, static_cast<float>(gradLoss), target, contrastTarget);
    if (!out.onDevice) cuda::copyToHost(out.ptr, staging.ptr, static_cast<size_t>(count) * sizeof(float));
    if (co.ptr != nullptr && !co.onDevice) cuda::copyToHost(co.ptr, contrastStaging.ptr, static_cast<size_t>(cc) * sizeof(float));
#endif
    return env.Undefined();
  });
}

Napi::Value lossBackward(const Napi::CallbackInfo& info) { return lossBackwardCall(info, false); }
Napi::Value lossBackwardAsync(const Napi::CallbackInfo& info) {
  return promised(info, [](const Napi::CallbackInfo& i) { return lossBackwardCall(i, true); });
}

// lossValueInto(context, out): out[0] = the loss as float32, for a CUDA context and a CUDA
// storage: queued on the GPU, no read-back (a training step's loss stays on the device).
Napi::Value lossValueInto(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    LossContext* context = &LossContext::argument(i[0], "context");
    if (context->cpuState("context") != nullptr) throw typeError("context: expected a CUDA loss, got a CPU one");
    const FloatData out = floatData(i[1], "out", 1);
    if (!out.onDevice) throw typeError("out: expected a CUDA storage, got host memory");
#if defined(SUPCON_WITH_CUDA)
    cuda::lossValueInto(context->cudaState("features"), out.ptr);
#endif
    return i.Env().Undefined();
  });
}

// cudaTimeLoss(features (CUDA storage), n, v, d, labels | null, options, grad (CUDA
// storage), repeats) -> { forwardMs[], backwardMs[], peakExtraBytes, loss }: CUDA events.
Napi::Value cudaTimeLoss(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
#if defined(SUPCON_WITH_CUDA)
    Napi::Env env = i.Env();
    const int64_t n = requireInteger(i[1], "n", 1, kMaxElements);
    const int64_t v = requireInteger(i[2], "v", 1, kMaxElements);
    const int64_t d = requireInteger(i[3], "d", 1, kMaxElements);
    const int64_t count = checkedProduct(checkedProduct(n, v, "features", kMaxElements), d, "features", kMaxElements);
    const Napi::Object opts = requireObject(i[5], "options");
    const Precision precision = precisionOf(opts.Get("precision"), "options.precision");
    const LossOptions lossOptions = parseOptions(opts);
    const int repeats = static_cast<int>(requireInteger(i[7], "repeats", 1, 1000));
    const FloatData x = floatData(i[0], "features", count);
    const FloatData grad = floatData(i[6], "grad", count);
    if (!x.onDevice || !grad.onDevice) throw typeError("features, grad: expected CUDA tensors");
    const int32_t* labels = (i[4].IsNull() || i[4].IsUndefined()) ? nullptr : requireTypedArray<int32_t>(i[4], "labels", n).Data();
    const cuda::LossTiming t = cuda::timeLoss(cuda::DeviceLossInput{x.ptr, nullptr, n, v, d, labels, nullptr},
                                              lossOptions, precision, grad.ptr, repeats);
    Napi::Object o = Napi::Object::New(env);
    Napi::Array f = Napi::Array::New(env), b = Napi::Array::New(env);
    for (uint32_t k = 0; k < t.forwardMs.size(); ++k) {
      f.Set(k, t.forwardMs[k]);
      b.Set(k, t.backwardMs[k]);
    }
    o.Set("forwardMs", f);
    o.Set("backwardMs", b);
    o.Set("peakExtraBytes", static_cast<double>(t.peakExtraBytes));
    o.Set("loss", t.loss);
    return o;
#else
    throw rangeError("cudaTimeLoss: this build has no CUDA kernels");
    return i.Env().Undefined();
#endif
  });
}

// lossUnfused(features, n, v, d, labels | null, temperature, baseTemperature, out, threads?)
// -> loss. The materialising implementation, for benchmarks and cross-checks.
Napi::Value lossUnfused(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    const int64_t n = requireInteger(i[1], "n", 1, kMaxElements);
    const int64_t v = requireInteger(i[2], "v", 1, kMaxElements);
    const int64_t d = requireInteger(i[3], "d", 1, kMaxElements);
    const int64_t B = checkedProduct(n, v, "features", int64_t{1} << 20);
    checkedProduct(B, B, "features (B x B matrices)", int64_t{1} << 34);
    const int64_t count = checkedProduct(B, d, "features", kMaxElements);
    const FloatData x = floatData(i[0], "features", count);
    if (x.onDevice) throw typeError("features: expected host memory, got a CUDA tensor");
    const int32_t* labels = (i[4].IsNull() || i[4].IsUndefined()) ? nullptr : requireTypedArray<int32_t>(i[4], "labels", n).Data();
    const double tau = requirePositive(i[5], "temperature");
    const double base = requirePositive(i[6], "baseTemperature");
    const FloatData out = floatData(i[7], "out", count);
    if (out.onDevice) throw typeError("out: expected host memory, got a CUDA tensor");
    const int threads = threadsOf(i[8]);
    const double loss = cpu::unfusedLoss(x.ptr, n, v, d, labels, static_cast<float>(tau),
                                         static_cast<float>(base), out.ptr, threads);
    return Napi::Number::New(i.Env(), loss);
  });
}

}  // namespace

void registerLoss(Napi::Env env, Napi::Object exports) {
  AddonData::of(env).lossContext = Napi::Persistent(LossContext::define(env));
  exports.Set("lossForward", Napi::Function::New(env, lossForward, "lossForward"));
  exports.Set("lossBackward", Napi::Function::New(env, lossBackward, "lossBackward"));
  exports.Set("lossForwardAsync", Napi::Function::New(env, lossForwardAsync, "lossForwardAsync"));
  exports.Set("lossBackwardAsync", Napi::Function::New(env, lossBackwardAsync, "lossBackwardAsync"));
  exports.Set("lossUnfused", Napi::Function::New(env, lossUnfused, "lossUnfused"));
  exports.Set("lossValueInto", Napi::Function::New(env, lossValueInto, "lossValueInto"));
  exports.Set("cudaTimeLoss", Napi::Function::New(env, cudaTimeLoss, "cudaTimeLoss"));
}

}  // namespace supcon::binding
