// The CUDA twins of nn.* (conv2d, linear): the same arguments as the CPU bindings of
// nn.cc, with device storages and a precision in place of a thread count. Every scalar and
// the descriptor are read and checked first, then the storages unwrapped, then
// native/cuda runs.
#include "addon_data.h"
#include "args.h"
#include "cuda_args.h"
#include "storage.h"

#if defined(SUPCON_WITH_CUDA)
#include "../common/nn_types.h"
#include "../cuda/nn_cuda.h"
#endif

namespace supcon::binding {

#if defined(SUPCON_WITH_CUDA)
namespace {

constexpr int64_t kMaxElements = int64_t{1} << 40;
constexpr int64_t kMaxDim = int64_t{1} << 31;

int64_t positiveDim(const Napi::Value& value, const std::string& name) { return requireInteger(value, name, 1, kMaxDim); }

// The product of dims, or a RangeError naming `what` past kMaxElements.
int64_t count(std::initializer_list<int64_t> dims, const std::string& what) {
  int64_t n = 1;
  for (const int64_t d : dims) n = checkedProduct(n, d, what, kMaxElements);
  return n;
}

// One output side of a window: (in + 2 pad - k) / stride + 1, refused when the window does
// not fit the padded input.
int64_t windowOutput(int64_t in, int64_t k, int64_t stride, int64_t pad, const std::string& name) {
  if (in + 2 * pad < k)
    throw rangeError(name + ": the window (" + std::to_string(k) + ") is larger than the padded input (" +
                     std::to_string(in) + " + 2 * " + std::to_string(pad) + ")");
  return (in + 2 * pad - k) / stride + 1;
}

// The descriptor as nn.cc reads it (the same limits), with P and Q computed and every
// tensor size overflow-checked.
nn::Conv2dDesc readConvDesc(const Napi::Value& value) {
  const Napi::Object o = requireObject(value, "desc");
  nn::Conv2dDesc d{};
  d.N = positiveDim(o.Get("N"), "desc.N");
  d.C = positiveDim(o.Get("C"), "desc.C");
  d.H = positiveDim(o.Get("H"), "desc.H");
  d.W = positiveDim(o.Get("W"), "desc.W");
  d.K = positiveDim(o.Get("K"), "desc.K");
  d.R = positiveDim(o.Get("R"), "desc.R");
  d.S = positiveDim(o.Get("S"), "desc.S");
  d.strideH = positiveDim(o.Get("strideH"), "desc.strideH");
  d.strideW = positiveDim(o.Get("strideW"), "desc.strideW");
  d.padH = requireInteger(o.Get("padH"), "desc.padH", 0, d.R - 1);
  d.padW = requireInteger(o.Get("padW"), "desc.padW", 0, d.S - 1);
  d.P = windowOutput(d.H, d.R, d.strideH, d.padH, "desc.R");
  d.Q = windowOutput(d.W, d.S, d.strideW, d.padW, "desc.S");
  count({d.N, d.C, d.H, d.W}, "x");
  count({d.K, d.C, d.R, d.S}, "weight");
  count({d.N, d.K, d.P, d.Q}, "y");
  return d;
}

struct ConvSizes {
  int64_t x, w, y;
  explicit ConvSizes(const nn::Conv2dDesc& d)
      : x(d.N * d.C * d.H * d.W), w(d.K * d.C * d.R * d.S), y(d.N * d.K * d.P * d.Q) {}
};

struct LinearDims {
  int64_t N, in, out;
};

LinearDims readLinearDims(const Napi::Value& n, const Napi::Value& in, const Napi::Value& out) {
  LinearDims l{positiveDim(n, "N"), positiveDim(in, "inF"), positiveDim(out, "outF")};
  count({l.N, l.in}, "x");
  count({l.out, l.in}, "weight");
  count({l.N, l.out}, "y");
  return l;
}

// conv2dForward(desc, x, w, b | null, y, precision?)
Napi::Value conv2dForward(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    const nn::Conv2dDesc d = readConvDesc(i[0]);
    const cuda::Precision precision = precisionOf(i[5]);
    const ConvSizes n(d);
    const float* x = deviceFloats(i[1], "x", n.x);
    const float* w = deviceFloats(i[2], "weight", n.w);
    const float* b = deviceFloatsOrNull(i[3], "bias", d.K);
    float* y = deviceFloats(i[4], "y", n.y);
    cuda::conv2dForward(d, x, w, b, y, precision);
    return i.Env().Undefined();
  });
}

// conv2dBackward(desc, x, w, dy, dx | null, dw | null, db | null, precision?)
Napi::Value conv2dBackward(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    const nn::Conv2dDesc d = readConvDesc(i[0]);
    const cuda::Precision precision = precisionOf(i[7]);
    const ConvSizes n(d);
    const float* x = deviceFloats(i[1], "x", n.x);
    const float* w = deviceFloats(i[2], "weight", n.w);
    const float* dy = deviceFloats(i[3], "dy", n.y);
    float* dx = deviceFloatsOrNull(i[4], "dx", n.x);
    float* dw = deviceFloatsOrNull(i[5], "dweight", n.w);
    float* db = deviceFloatsOrNull(i[6], "dbias", d.K);
    cuda::conv2dBackward(d, x, w, dy, dx, dw, db, precision);
    return i.Env().Undefined();
  });
}

// linearForward(x, w, b | null, y, N, inF, outF, precision?)
Napi::Value linearForward(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    const LinearDims l = readLinearDims(i[4], i[5], i[6]);
    const cuda::Precision precision = precisionOf(i[7]);
    const float* x = deviceFloats(i[0], "x", l.N * l.in);
    const float* w = deviceFloats(i[1], "weight", l.out * l.in);
    const float* b = deviceFloatsOrNull(i[2], "bias", l.out);
    float* y = deviceFloats(i[3], "y", l.N * l.out);
    cuda::linearForward(x, w, b, y, l.N, l.in, l.out, precision);
    return i.Env().Undefined();
  });
}

// linearBackward(x, w, dy, dx | null, dw | null, db | null, N, inF, outF, precision?)
Napi::Value linearBackward(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    const LinearDims l = readLinearDims(i[6], i[7], i[8]);
    const cuda::Precision precision = precisionOf(i[9]);
    const float* x = deviceFloats(i[0], "x", l.N * l.in);
    const float* w = deviceFloats(i[1], "weight", l.out * l.in);
    const float* dy = deviceFloats(i[2], "dy", l.N * l.out);
    float* dx = deviceFloatsOrNull(i[3], "dx", l.N * l.in);
    float* dw = deviceFloatsOrNull(i[4], "dweight", l.out * l.in);
    float* db = deviceFloatsOrNull(i[5], "dbias", l.out);
    cuda::linearBackward(x, w, dy, dx, dw, db, l.N, l.in, l.out, precision);
    return i.Env().Undefined();
  });
}

}  // namespace

// Registered into the cudaNn namespace, which exists in CUDA builds only (addon.cc).
void registerCudaConv(Napi::Env env, Napi::Object cudaNn) {
  cudaNn.Set("conv2dForward", Napi::Function::New(env, conv2dForward, "conv2dForward"));
  cudaNn.Set("conv2dBackward", Napi::Function::New(env, conv2dBackward, "conv2dBackward"));
  cudaNn.Set("linearForward", Napi::Function::New(env, linearForward, "linearForward"));
  cudaNn.Set("linearBackward", Napi::Function::New(env, linearBackward, "linearBackward"));
}
#else
void registerCudaConv(Napi::Env, Napi::Object) {}
#endif

}  // namespace supcon::binding
