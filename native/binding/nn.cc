// Layers, GEMM, initialisers and optimizer steps for JavaScript: every argument checked,
// then the work handed to native/cpu, or to native/cuda when the tensors are on the GPU
// (one entry point per op; the tensors' device picks the kernel). Tensors arrive as storages (or typed arrays for the
// GEMM) and are checked against the sizes their shapes imply.
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "../common/nn_types.h"
#include "../cpu/gemm.h"
#include "../cpu/knn.h"
#include "../cpu/nn_cpu.h"
#include "../cpu/thread_pool.h"
#include "addon_data.h"
#include "args.h"
#include "storage.h"

#if defined(SUPCON_WITH_CUDA)
#include "../cuda/knn_cuda.h"
#include "../cuda/nn_cuda.h"
#include "../cuda/runtime.h"
#endif

namespace supcon::binding {
namespace {

constexpr int64_t kMaxElements = int64_t{1} << 40;
constexpr int64_t kMaxDim = int64_t{1} << 31;
constexpr double kMinL2Eps = 1.1754943508222875e-38;  // FLT_MIN

// The tensors of one call and where they live: all in host memory (host storages or typed
// arrays) or all on the GPU (CUDA storages); the op then runs on that backend.
class Operands {
 public:
  float* floats(const Napi::Value& value, const std::string& name, int64_t count) {
    return data<float>(value, name, count, "a float32 tensor");
  }
  float* optionalFloats(const Napi::Value& value, const std::string& name, int64_t count) {
    return value.IsNull() || value.IsUndefined() ? nullptr : floats(value, name, count);
  }
  int32_t* ints(const Napi::Value& value, const std::string& name, int64_t count) {
    return data<int32_t>(value, name, count, "an int32 tensor");
  }
  bool cuda() const { return cuda_; }

 private:
  void note(bool onDevice, const std::string& name) {
    if (seen_ && onDevice != cuda_)
      throw rangeError(name + ": expected a tensor on '" + (cuda_ ? "cuda" : "cpu") +
                       "' like the other operands, got one on '" + (onDevice ? "cuda" : "cpu") + "'");
    seen_ = true;
    cuda_ = onDevice;
  }
  template <typename T>
  T* data(const Napi::Value& value, const std::string& name, int64_t count, const char* what) {
    if (value.IsTypedArray()) {
      auto ta = requireTypedArray<T>(value, name, -1);
      if (static_cast<int64_t>(ta.ElementLength()) < count)
        throw rangeError(name + ": expected at least " + std::to_string(count) + (std::is_same_v<T, float> ? " floats" : " int32 values") + ", got " +
                         std::to_string(ta.ElementLength()));
      note(false, name);
      return ta.Data();
    }
    if (value.IsObject() && !value.IsArray()) {
      Storage& st = Storage::unwrap(value, name, static_cast<size_t>(count) * sizeof(T));
      note(st.onDevice(), name);
      return reinterpret_cast<T*>(st.data());
    }
    throw typeError(name + ": expected " + what + ", got " + describe(value));
  }
  bool seen_ = false, cuda_ = false;
};

// Runs an op on the backend of its tensors (`at`): the arguments are evaluated once, the
// thread count (read first) goes to the CPU kernel only.
#if defined(SUPCON_WITH_CUDA)
#define SUPCON_ON_CUDA(call) call
#else
#define SUPCON_ON_CUDA(call) throw rangeError("this build has no CUDA kernels")
#endif
#define SUPCON_DISPATCH(name, threadsArg, ...)                                     \
  [&, threads_ = (threadsArg)](auto&&... a) -> decltype(auto) {      \
    if (at.cuda()) {                                                               \
      SUPCON_ON_CUDA(return cuda::name(a...));                                     \
    }                                                                              \
    return cpu::name(a..., threads_);                                              \
  }(__VA_ARGS__)
// As SUPCON_DISPATCH, with the precision of the layers' products (convolutions, linear
// layers; precisionOf) last for the CUDA kernel: 'fp32', 'tf32' or 'bf16' on CUDA, and
// 'fp32' only on the CPU.
#define SUPCON_DISPATCH_PRODUCTS(name, threadsArg, precisionArg, ...)                          \
  [&, threads_ = (threadsArg), products_ = (precisionArg)](auto&&... a) {                      \
    if (at.cuda()) {                                                                           \
      SUPCON_ON_CUDA(cuda::name(a..., products_));                                             \
      return;                                                                                  \
    }                                                                                          \
    if (products_ != Precision::Fp32)                                                          \
      throw rangeError("precision: '" + std::string(precisionName(products_)) +                  \
                       "' runs on GPU tensor cores; on the CPU the layers compute in 'fp32'");  \
    cpu::name(a..., threads_);                                                                 \
  }(__VA_ARGS__)
// Ops whose CUDA kernels are not in this build: CUDA tensors are refused.
#define SUPCON_CPU_ONLY(name, threadsArg, ...)                                      \
  [&, threads_ = (threadsArg)](auto&&... a) -> decltype(auto) {      \
    if (at.cuda()) throw rangeError(#name ": expected tensors on the CPU (no CUDA kernel for it in this build), got tensors on 'cuda'"); \
    return cpu::name(a..., threads_);                                              \
  }(__VA_ARGS__)


int64_t dim(const Napi::Value& value, const std::string& name, int64_t min = 1) {
  return requireInteger(value, name, min, kMaxDim);
}

// The last argument of the backward passes that can write dx instead of adding into it:
// true for a fresh gradient buffer (its contents are never read), undefined or false to add.
bool overwriteOf(const Napi::Value& value) {
  if (value.IsUndefined()) return false;
  if (!value.IsBoolean()) throw typeError("overwrite: expected a boolean or undefined, got " + describe(value));
  return value.As<Napi::Boolean>().Value();
}

// The kernels compute in float32: a value must stay finite there (1e300 would be Infinity).
float finite(const Napi::Value& value, const std::string& name) { return requireFloat32(value, name); }

float nonNegative(const Napi::Value& value, const std::string& name) {
  const float x = finite(value, name);
  if (x < 0.0f) throw rangeError(name + ": expected a number >= 0, got " + describe(value));
  return x;
}

int64_t elements(std::initializer_list<int64_t> dims, const std::string& name) {
  int64_t n = 1;
  for (int64_t d : dims) n = checkedProduct(n, d, name, kMaxElements);
  return n;
}

// Output size of a window: (in + 2 pad - k) / stride + 1, at least 1.
int64_t outSize(int64_t in, int64_t k, int64_t stride, int64_t pad, const std::string& what) {
  if (in + 2 * pad < k)
    throw rangeError(what + ": the window (" + std::to_string(k) + ") is larger than the padded input (" +
                     std::to_string(in) + " + 2 * " + std::to_string(pad) + ")");
  return (in + 2 * pad - k) / stride + 1;
}

// gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threads?)
Napi::Value gemm(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    cpu::GemmDesc d;
    d.transA = requireBoolean(i[0], "transA");
    d.transB = requireBoolean(i[1], "transB");
    d.M = dim(i[2], "M", 0);
    d.N = dim(i[3], "N", 0);
    d.K = dim(i[4], "K", 0);
    d.alpha = finite(i[5], "alpha");
    const int64_t aRows = d.transA ? d.K : d.M, aCols = d.transA ? d.M : d.K;
    const int64_t bRows = d.transB ? d.N : d.K, bCols = d.transB ? d.K : d.N;
    d.lda = requireInteger(i[7], "lda", std::max<int64_t>(1, aCols), kMaxDim);
    d.ldb = requireInteger(i[9], "ldb", std::max<int64_t>(1, bCols), kMaxDim);
    d.ldc = requireInteger(i[12], "ldc", std::max<int64_t>(1, d.N), kMaxDim);
    auto need = [](int64_t rows, int64_t cols, int64_t ld, const std::string& name) {
      return rows == 0 || cols == 0 ? 0 : checkedProduct(rows - 1, ld, name, kMaxElements) + cols;
    };
    d.A = at.floats(i[6], "A", need(aRows, aCols, d.lda, "A"));
    d.B = at.floats(i[8], "B", need(bRows, bCols, d.ldb, "B"));
    d.beta = finite(i[10], "beta");
    d.C = at.floats(i[11], "C", need(d.M, d.N, d.ldc, "C"));
    SUPCON_CPU_ONLY(sgemm, threadsOf(i[13]), d);
    return i.Env().Undefined();
  });
}

// fmaPeak(threads, seconds) -> GFLOP/s
Napi::Value fmaPeak(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const int threads = threadsOf(i[0]);
    const double seconds = requirePositive(i[1], "seconds");
    if (seconds > 10) throw rangeError("seconds: expected at most 10, got " + describe(i[1]));
    return Napi::Number::New(i.Env(), cpu::fmaPeakGflops(threads, seconds));
  });
}

// linearForward(x, w, b | null, y, N, in, out, threads?, precision?)
Napi::Value linearForward(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const int64_t N = dim(i[4], "N"), in = dim(i[5], "in"), out = dim(i[6], "out");
    const float* x = at.floats(i[0], "x", elements({N, in}, "x"));
    const float* w = at.floats(i[1], "weight", elements({out, in}, "weight"));
    const float* b = at.optionalFloats(i[2], "bias", out);
    float* y = at.floats(i[3], "y", elements({N, out}, "y"));
    SUPCON_DISPATCH_PRODUCTS(linearForward, threadsOf(i[7]), precisionOf(i[8]), x, w, b, y, N, in, out);
    return i.Env().Undefined();
  });
}

// linearBackward(x, w, dy, dx | null, dw | null, db | null, N, in, out, threads?, precision?,
//                overwrite?): overwrite, dx is written rather than added into (overwriteOf)
Napi::Value linearBackward(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const int64_t N = dim(i[6], "N"), in = dim(i[7], "in"), out = dim(i[8], "out");
    const float* x = at.floats(i[0], "x", elements({N, in}, "x"));
    const float* w = at.floats(i[1], "weight", elements({out, in}, "weight"));
    const float* dy = at.floats(i[2], "dy", elements({N, out}, "dy"));
    float* dx = at.optionalFloats(i[3], "dx", N * in);
    float* dw = at.optionalFloats(i[4], "dweight", out * in);
    float* db = at.optionalFloats(i[5], "dbias", out);
    const bool overwrite = overwriteOf(i[11]);
    SUPCON_DISPATCH_PRODUCTS(linearBackward, threadsOf(i[9]), precisionOf(i[10]), x, w, dy, dx, dw, db, N, in, out, overwrite);
    return i.Env().Undefined();
  });
}

nn::Conv2dDesc convDesc(const Napi::Value& value) {
  const Napi::Object o = requireObject(value, "desc");
  nn::Conv2dDesc d;
  d.N = dim(o.Get("N"), "desc.N");
  d.C = dim(o.Get("C"), "desc.C");
  d.H = dim(o.Get("H"), "desc.H");
  d.W = dim(o.Get("W"), "desc.W");
  d.K = dim(o.Get("K"), "desc.K");
  d.R = dim(o.Get("R"), "desc.R");
  d.S = dim(o.Get("S"), "desc.S");
  d.strideH = dim(o.Get("strideH"), "desc.strideH");
  d.strideW = dim(o.Get("strideW"), "desc.strideW");
  d.padH = requireInteger(o.Get("padH"), "desc.padH", 0, d.R - 1);
  d.padW = requireInteger(o.Get("padW"), "desc.padW", 0, d.S - 1);
  d.P = outSize(d.H, d.R, d.strideH, d.padH, "desc.R");
  d.Q = outSize(d.W, d.S, d.strideW, d.padW, "desc.S");
  elements({d.N, d.C, d.H, d.W}, "x");
  elements({d.K, d.C, d.R, d.S}, "weight");
  elements({d.N, d.K, d.P, d.Q}, "y");
  elements({d.C, d.R, d.S, d.P, d.Q}, "the column buffer");
  return d;
}

// conv2dForward(desc, x, w, b | null, y, threads?, precision?)
Napi::Value conv2dForward(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const nn::Conv2dDesc d = convDesc(i[0]);
    const float* x = at.floats(i[1], "x", d.N * d.C * d.H * d.W);
    const float* w = at.floats(i[2], "weight", d.K * d.C * d.R * d.S);
    const float* b = at.optionalFloats(i[3], "bias", d.K);
    float* y = at.floats(i[4], "y", d.N * d.K * d.P * d.Q);
    SUPCON_DISPATCH_PRODUCTS(conv2dForward, threadsOf(i[5]), precisionOf(i[6]), d, x, w, b, y);
    return i.Env().Undefined();
  });
}

// conv2dBackward(desc, x, w, dy, dx | null, dw | null, db | null, threads?, precision?, overwrite?)
Napi::Value conv2dBackward(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const nn::Conv2dDesc d = convDesc(i[0]);
    const float* x = at.floats(i[1], "x", d.N * d.C * d.H * d.W);
    const float* w = at.floats(i[2], "weight", d.K * d.C * d.R * d.S);
    const float* dy = at.floats(i[3], "dy", d.N * d.K * d.P * d.Q);
    float* dx = at.optionalFloats(i[4], "dx", d.N * d.C * d.H * d.W);
    float* dw = at.optionalFloats(i[5], "dweight", d.K * d.C * d.R * d.S);
    float* db = at.optionalFloats(i[6], "dbias", d.K);
    const bool overwrite = overwriteOf(i[9]);
    SUPCON_DISPATCH_PRODUCTS(conv2dBackward, threadsOf(i[7]), precisionOf(i[8]), d, x, w, dy, dx, dw, db, overwrite);
    return i.Env().Undefined();
  });
}

// conv2dAlgorithm(desc, pass): the CPU's algorithm for a pass ('forward', 'data' or 'weights').
Napi::Value conv2dAlgorithm(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    const nn::Conv2dDesc d = convDesc(i[0]);
    const std::string pass = requireString(i[1], "pass");
    const int p = pass == "forward" ? 0 : pass == "data" ? 1 : pass == "weights" ? 2 : -1;
    if (p < 0) throw rangeError("pass: expected 'forward', 'data' or 'weights', got '" + pass + "'");
    return Napi::String::New(i.Env(), cpu::conv2dAlgorithm(d, p));
  });
}

nn::BatchNormDesc bnDesc(const Napi::Value& value) {
  const Napi::Object o = requireObject(value, "desc");
  nn::BatchNormDesc d;
  d.N = dim(o.Get("N"), "desc.N");
  d.C = dim(o.Get("C"), "desc.C");
  d.L = dim(o.Get("L"), "desc.L");
  d.eps = requirePositiveFloat32(o.Get("eps"), "desc.eps");
  d.momentum = nonNegative(o.Get("momentum"), "desc.momentum");
  if (d.momentum > 1.0f) throw rangeError("desc.momentum: expected a number in [0, 1], got " + describe(o.Get("momentum")));
  const Napi::Value relu = o.Get("relu");
  d.relu = relu.IsUndefined() ? false : requireBoolean(relu, "desc.relu");
  elements({d.N, d.C, d.L}, "x");
  return d;
}

// batchNormForward(desc, training, x, gamma, beta, runningMean | null, runningVar | null,
//                  y, saveMean, saveInvStd, threads?)
Napi::Value batchNormForward(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const nn::BatchNormDesc d = bnDesc(i[0]);
    const bool training = requireBoolean(i[1], "training");
    const int64_t n = d.N * d.C * d.L;
    const float* x = at.floats(i[2], "x", n);
    const float* gamma = at.floats(i[3], "weight", d.C);
    const float* beta = at.floats(i[4], "bias", d.C);
    float* rm = at.optionalFloats(i[5], "runningMean", d.C);
    float* rv = at.optionalFloats(i[6], "runningVar", d.C);
    if ((rm == nullptr) != (rv == nullptr))
      throw typeError("runningVar: pass both running statistics or neither");
    if (!training && rm == nullptr)
      throw typeError("runningMean: evaluation mode needs the running statistics, got null");
    if (training && d.N * d.L < 2)
      throw rangeError("x: training needs more than one value per channel, got N * L = " +
                       std::to_string(d.N * d.L));
    float* y = at.floats(i[7], "y", n);
    float* sm = at.floats(i[8], "saveMean", d.C);
    float* si = at.floats(i[9], "saveInvStd", d.C);
    SUPCON_DISPATCH(batchNormForward, threadsOf(i[10]), d, training, x, gamma, beta, rm, rv, y, sm, si);
    return i.Env().Undefined();
  });
}

// batchNormBackward(desc, training, x, gamma, saveMean, saveInvStd, dy, dx | null,
//                   dgamma | null, dbeta | null, threads?, y?, overwrite?): y, the forward
//                   pass's output, when desc.relu (and only then)
Napi::Value batchNormBackward(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const nn::BatchNormDesc d = bnDesc(i[0]);
    const bool training = requireBoolean(i[1], "training");
    const int64_t n = d.N * d.C * d.L;
    const float* x = at.floats(i[2], "x", n);
    const float* gamma = at.floats(i[3], "weight", d.C);
    const float* sm = at.floats(i[4], "saveMean", d.C);
    const float* si = at.floats(i[5], "saveInvStd", d.C);
    const float* dy = at.floats(i[6], "dy", n);
    float* dx = at.optionalFloats(i[7], "dx", n);
    float* dg = at.optionalFloats(i[8], "dweight", d.C);
    float* db = at.optionalFloats(i[9], "dbias", d.C);
    const float* y = nullptr;
    if (d.relu)
      y = at.floats(i[11], "y", n);
    else if (!i[11].IsUndefined() && !i[11].IsNull())
      throw typeError("y: only a fused ReLU (desc.relu) takes the forward output, got " + describe(i[11]));
    const bool overwrite = overwriteOf(i[12]);
    SUPCON_DISPATCH(batchNormBackward, threadsOf(i[10]), d, training, x, gamma, sm, si, dy, y, dx, dg, db, overwrite);
    return i.Env().Undefined();
  });
}

// Element-wise: reluForward(x, y, n), reluBackward(y, dy, dx, n, threads?, overwrite?),
// add(a, b, y, n), addInto(y, x, n), each with threads? after the sizes.
Napi::Value reluForward(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const int64_t n = requireInteger(i[2], "n", 0, kMaxElements);
    SUPCON_DISPATCH(reluForward, threadsOf(i[3]), at.floats(i[0], "x", n), at.floats(i[1], "y", n), n);
    return i.Env().Undefined();
  });
}

Napi::Value reluBackward(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const int64_t n = requireInteger(i[3], "n", 0, kMaxElements);
    const float* y = at.floats(i[0], "y", n);
    const float* dy = at.floats(i[1], "dy", n);
    float* dx = at.floats(i[2], "dx", n);
    const bool overwrite = overwriteOf(i[5]);
    SUPCON_DISPATCH(reluBackward, threadsOf(i[4]), y, dy, dx, n, overwrite);
    return i.Env().Undefined();
  });
}

Napi::Value add(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const int64_t n = requireInteger(i[3], "n", 0, kMaxElements);
    SUPCON_DISPATCH(addForward, threadsOf(i[4]), at.floats(i[0], "a", n), at.floats(i[1], "b", n), at.floats(i[2], "y", n), n);
    return i.Env().Undefined();
  });
}

Napi::Value addInto(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const int64_t n = requireInteger(i[2], "n", 0, kMaxElements);
    SUPCON_DISPATCH(addInto, threadsOf(i[3]), at.floats(i[0], "y", n), at.floats(i[1], "x", n), n);
    return i.Env().Undefined();
  });
}

// copyFloats(src, dst, n): dst[0, n) = src[0, n).
Napi::Value copyFloats(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const int64_t n = requireInteger(i[2], "n", 0, kMaxElements);
    const float* src = at.floats(i[0], "src", n);
    float* dst = at.floats(i[1], "dst", n);
    if (n == 0) return i.Env().Undefined();
    if (at.cuda()) {
      SUPCON_ON_CUDA(cuda::copyOnDevice(dst, src, static_cast<size_t>(n) * sizeof(float)));
    } else {
      std::memmove(dst, src, static_cast<size_t>(n) * sizeof(float));
    }
    return i.Env().Undefined();
  });
}

// fill(x, n, value, threads?)
Napi::Value fill(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const int64_t n = requireInteger(i[1], "n", 0, kMaxElements);
    SUPCON_DISPATCH(fillConstant, threadsOf(i[3]), at.floats(i[0], "x", n), n, finite(i[2], "value"));
    return i.Env().Undefined();
  });
}

nn::Pool2dDesc poolDesc(const Napi::Value& value) {
  const Napi::Object o = requireObject(value, "desc");
  nn::Pool2dDesc d;
  d.N = dim(o.Get("N"), "desc.N");
  d.C = dim(o.Get("C"), "desc.C");
  d.H = dim(o.Get("H"), "desc.H");
  d.W = dim(o.Get("W"), "desc.W");
  d.R = dim(o.Get("R"), "desc.R");
  d.S = dim(o.Get("S"), "desc.S");
  d.strideH = dim(o.Get("strideH"), "desc.strideH");
  d.strideW = dim(o.Get("strideW"), "desc.strideW");
  // At most half the window, as PyTorch: every window then holds an input pixel.
  d.padH = requireInteger(o.Get("padH"), "desc.padH", 0, d.R / 2);
  d.padW = requireInteger(o.Get("padW"), "desc.padW", 0, d.S / 2);
  d.P = outSize(d.H, d.R, d.strideH, d.padH, "desc.R");
  d.Q = outSize(d.W, d.S, d.strideW, d.padW, "desc.S");
  elements({d.N, d.C, d.H, d.W}, "x");
  return d;
}

// maxPool2dForward(desc, x, y, indices, threads?)
Napi::Value maxPool2dForward(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const nn::Pool2dDesc d = poolDesc(i[0]);
    const int64_t out = d.N * d.C * d.P * d.Q;
    SUPCON_DISPATCH(maxPool2dForward, threadsOf(i[4]), d, at.floats(i[1], "x", d.N * d.C * d.H * d.W), at.floats(i[2], "y", out),
                          at.ints(i[3], "indices", out));
    return i.Env().Undefined();
  });
}

// maxPool2dBackward(desc, indices, dy, dx, threads?)
Napi::Value maxPool2dBackward(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const nn::Pool2dDesc d = poolDesc(i[0]);
    const int64_t out = d.N * d.C * d.P * d.Q, plane = d.H * d.W;
    const int32_t* idx = at.ints(i[1], "indices", out);
    // Each output's position lies in its own window (as the forward pass writes them). On the
    // GPU the kernel gathers over the windows, so a position outside them is never read
    // there; on the CPU it is refused here.
    for (int64_t e = 0; !at.cuda() && e < out; ++e) {
      const int64_t pq = e % (d.P * d.Q), p = pq / d.Q, q = pq % d.Q;
      const int64_t h = idx[e] / d.W, w = idx[e] % d.W, h0 = p * d.strideH - d.padH, w0 = q * d.strideW - d.padW;
      if (idx[e] < 0 || idx[e] >= plane || h < h0 || h >= h0 + d.R || w < w0 || w >= w0 + d.S)
        throw rangeError("indices: expected each output's position inside its window (as maxPool2dForward writes them), got " +
                         std::to_string(idx[e]) + " at index " + std::to_string(e));
    }
    SUPCON_DISPATCH(maxPool2dBackward, threadsOf(i[4]), d, idx, at.floats(i[2], "dy", out), at.floats(i[3], "dx", d.N * d.C * plane));
    return i.Env().Undefined();
  });
}

// globalAvgPoolForward(x, y, planes, L, threads?), globalAvgPoolBackward(dy, dx, planes, L, threads?)
Napi::Value globalAvgPoolForward(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const int64_t planes = dim(i[2], "planes"), L = dim(i[3], "L");
    SUPCON_DISPATCH(globalAvgPoolForward, threadsOf(i[4]), at.floats(i[0], "x", elements({planes, L}, "x")), at.floats(i[1], "y", planes),
                              planes, L);
    return i.Env().Undefined();
  });
}

Napi::Value globalAvgPoolBackward(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const int64_t planes = dim(i[2], "planes"), L = dim(i[3], "L");
    SUPCON_DISPATCH(globalAvgPoolBackward, threadsOf(i[4]), at.floats(i[0], "dy", planes), at.floats(i[1], "dx", elements({planes, L}, "dx")),
                               planes, L);
    return i.Env().Undefined();
  });
}

// eps of an L2 normalisation: a normal float32 (5e-324 would round to 0, and 0 / 0 is NaN).
float l2Eps(const Napi::Value& value) {
  const double eps = requirePositive(value, "eps");
  if (!(eps >= kMinL2Eps && eps <= 3.4028234663852886e38))
    throw rangeError("eps: expected a number in [1.1754943508222875e-38, 3.4e38] (a normal float32), got " + describe(value));
  return static_cast<float>(eps);
}

// l2NormalizeForward(x, y, norms, rows, dim, eps, threads?)
Napi::Value l2NormalizeForward(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const int64_t rows = dim(i[3], "rows"), d = dim(i[4], "dim");
    const int64_t n = elements({rows, d}, "x");
    const float eps = l2Eps(i[5]);
    SUPCON_DISPATCH(l2NormalizeForward, threadsOf(i[6]), at.floats(i[0], "x", n), at.floats(i[1], "y", n), at.floats(i[2], "norms", rows),
                            rows, d, eps);
    return i.Env().Undefined();
  });
}

// l2NormalizeBackward(y, norms, dy, dx, rows, dim, eps, threads?)
Napi::Value l2NormalizeBackward(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const int64_t rows = dim(i[4], "rows"), d = dim(i[5], "dim");
    const int64_t n = elements({rows, d}, "y");
    const float eps = l2Eps(i[6]);
    SUPCON_DISPATCH(l2NormalizeBackward, threadsOf(i[7]), at.floats(i[0], "y", n), at.floats(i[1], "norms", rows), at.floats(i[2], "dy", n),
                             at.floats(i[3], "dx", n), rows, d, eps);
    return i.Env().Undefined();
  });
}

const int32_t* checkedLabels(Operands& at, const Napi::Value& value, int64_t rows, int64_t classes) {
  const int32_t* labels = at.ints(value, "labels", rows);
  const int32_t* host = labels;
#if defined(SUPCON_WITH_CUDA)
  std::vector<int32_t> copy;
  if (at.cuda()) {
    copy.resize(static_cast<size_t>(rows));
    cuda::copyToHost(copy.data(), labels, static_cast<size_t>(rows) * sizeof(int32_t));
    host = copy.data();
  }
#endif
  for (int64_t r = 0; r < rows; ++r)
    if (host[r] < 0 || host[r] >= classes)
      throw rangeError("labels: expected class indices in [0, " + std::to_string(classes) + "), got " +
                       std::to_string(host[r]) + " at index " + std::to_string(r));
  return labels;
}

// crossEntropyForward(logits, labels, rows, classes, threads?) -> mean loss
Napi::Value crossEntropyForward(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const int64_t rows = dim(i[2], "rows"), classes = dim(i[3], "classes");
    const float* z = at.floats(i[0], "logits", elements({rows, classes}, "logits"));
    const int32_t* labels = checkedLabels(at, i[1], rows, classes);
    return Napi::Number::New(i.Env(), SUPCON_DISPATCH(softmaxCrossEntropyForward, threadsOf(i[4]), z, labels, rows, classes));
  });
}

// crossEntropyBackward(logits, labels, rows, classes, gradLoss, dlogits, threads?)
Napi::Value crossEntropyBackward(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const int64_t rows = dim(i[2], "rows"), classes = dim(i[3], "classes");
    const int64_t n = elements({rows, classes}, "logits");
    const float* z = at.floats(i[0], "logits", n);
    const int32_t* labels = checkedLabels(at, i[1], rows, classes);
    const float g = finite(i[4], "gradLoss");
    SUPCON_DISPATCH(softmaxCrossEntropyBackward, threadsOf(i[6]), z, labels, rows, classes, g, at.floats(i[5], "dlogits", n));
    return i.Env().Undefined();
  });
}

uint64_t seedOf(const Napi::Value& value) {
  return static_cast<uint64_t>(requireInteger(value, "seed", 0, (int64_t{1} << 53) - 1));
}

// fillNormal(x, n, mean, std, seed, threads?), fillUniform(x, n, low, high, seed, threads?)
Napi::Value fillNormal(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const int64_t n = requireInteger(i[1], "n", 0, kMaxElements);
    SUPCON_DISPATCH(fillNormal, threadsOf(i[5]), at.floats(i[0], "x", n), n, finite(i[2], "mean"), nonNegative(i[3], "std"), seedOf(i[4]));
    return i.Env().Undefined();
  });
}

Napi::Value fillUniform(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const int64_t n = requireInteger(i[1], "n", 0, kMaxElements);
    const float low = finite(i[2], "low"), high = finite(i[3], "high");
    if (!(low <= high)) throw rangeError("high: expected a number >= low (" + describe(i[2]) + "), got " + describe(i[3]));
    SUPCON_DISPATCH(fillUniform, threadsOf(i[5]), at.floats(i[0], "x", n), n, low, high, seedOf(i[4]));
    return i.Env().Undefined();
  });
}

float optionNumber(const Napi::Object& o, const char* key, const char* owner) {
  return nonNegative(o.Get(key), std::string(owner) + "." + key);
}

// sgdStep(p, g, buf | null, n, {lr, momentum, dampening, weightDecay, nesterov, firstStep}, threads?)
Napi::Value sgdStep(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const int64_t n = requireInteger(i[3], "n", 0, kMaxElements);
    const Napi::Object o = requireObject(i[4], "options");
    nn::SgdParams s;
    s.lr = optionNumber(o, "lr", "options");
    s.momentum = optionNumber(o, "momentum", "options");
    s.dampening = optionNumber(o, "dampening", "options");
    s.weightDecay = optionNumber(o, "weightDecay", "options");
    s.nesterov = requireBoolean(o.Get("nesterov"), "options.nesterov");
    s.firstStep = requireBoolean(o.Get("firstStep"), "options.firstStep");
    float* buf = s.momentum > 0.0f ? at.floats(i[2], "buffer", n) : nullptr;
    SUPCON_DISPATCH(sgdStep, threadsOf(i[5]), at.floats(i[0], "param", n), at.floats(i[1], "grad", n), buf, n, s);
    return i.Env().Undefined();
  });
}

// larsStep(p, g, buf, n, {lr, momentum, weightDecay, trustCoefficient, eps, adapt}, threads?)
Napi::Value larsStep(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const int64_t n = requireInteger(i[3], "n", 0, kMaxElements);
    const Napi::Object o = requireObject(i[4], "options");
    nn::LarsParams s;
    s.lr = optionNumber(o, "lr", "options");
    s.momentum = optionNumber(o, "momentum", "options");
    s.weightDecay = optionNumber(o, "weightDecay", "options");
    s.trustCoefficient = optionNumber(o, "trustCoefficient", "options");
    s.eps = optionNumber(o, "eps", "options");
    s.adapt = requireBoolean(o.Get("adapt"), "options.adapt");
    SUPCON_DISPATCH(larsStep, threadsOf(i[5]), at.floats(i[0], "param", n), at.floats(i[1], "grad", n), at.floats(i[2], "buffer", n), n, s);
    return i.Env().Undefined();
  });
}

// adamwStep(p, g, m, v, n, {lr, beta1, beta2, eps, weightDecay, step}, threads?)
Napi::Value adamwStep(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const int64_t n = requireInteger(i[4], "n", 0, kMaxElements);
    const Napi::Object o = requireObject(i[5], "options");
    nn::AdamWParams s;
    s.lr = optionNumber(o, "lr", "options");
    s.beta1 = optionNumber(o, "beta1", "options");
    s.beta2 = optionNumber(o, "beta2", "options");
    if (s.beta1 >= 1.0f || s.beta2 >= 1.0f) throw rangeError("options.beta1: expected betas in [0, 1), got " + std::to_string(std::max(s.beta1, s.beta2)));
    s.eps = requirePositiveFloat32(o.Get("eps"), "options.eps");
    s.weightDecay = optionNumber(o, "weightDecay", "options");
    s.step = requireInteger(o.Get("step"), "options.step", 1, kMaxElements);
    SUPCON_DISPATCH(adamwStep, threadsOf(i[6]), at.floats(i[0], "param", n), at.floats(i[1], "grad", n), at.floats(i[2], "expAvg", n),
                   at.floats(i[3], "expAvgSq", n), n, s);
    return i.Env().Undefined();
  });
}

// rmspropStep(p, g, sq, buf | null, n, {lr, alpha, eps, weightDecay, momentum}, threads?)
Napi::Value rmspropStep(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const int64_t n = requireInteger(i[4], "n", 0, kMaxElements);
    const Napi::Object o = requireObject(i[5], "options");
    nn::RmspropParams s;
    s.lr = optionNumber(o, "lr", "options");
    s.alpha = optionNumber(o, "alpha", "options");
    if (s.alpha > 1.0f) throw rangeError("options.alpha: expected a number in [0, 1], got " + describe(o.Get("alpha")));
    s.eps = requirePositiveFloat32(o.Get("eps"), "options.eps");
    s.weightDecay = optionNumber(o, "weightDecay", "options");
    s.momentum = optionNumber(o, "momentum", "options");
    float* buf = s.momentum > 0.0f ? at.floats(i[3], "buffer", n) : nullptr;
    SUPCON_DISPATCH(rmspropStep, threadsOf(i[6]), at.floats(i[0], "param", n), at.floats(i[1], "grad", n), at.floats(i[2], "squareAvg", n), buf, n,
                     s);
    return i.Env().Undefined();
  });
}

// l2Norm(x, n, threads?) -> sqrt(sum x^2)
Napi::Value l2Norm(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const int64_t n = requireInteger(i[1], "n", 0, kMaxElements);
    return Napi::Number::New(i.Env(), SUPCON_DISPATCH(l2Norm, threadsOf(i[2]), at.floats(i[0], "x", n), n));
  });
}

// knnTopK(train, test, index, similarity, nTrain, nTest, d, k, threads?): the k most similar
// training rows (cosine) of each test row, into index (int32) and similarity [nTest, k]; on
// the device of the tensors (the kNN monitor of a CUDA run searches on the GPU).
Napi::Value knnTopK(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Operands at;
    const int64_t nTrain = requireInteger(i[4], "nTrain", 1, INT32_MAX);
    const int64_t nTest = requireInteger(i[5], "nTest", 1, INT32_MAX);
    const int64_t d = dim(i[6], "d");
    const int64_t k = requireInteger(i[7], "k", 1, nTrain);
    const int64_t out = elements({nTest, k}, "index");
    SUPCON_DISPATCH(knnTopK, threadsOf(i[8]), at.floats(i[0], "train", elements({nTrain, d}, "train")),
                    at.floats(i[1], "test", elements({nTest, d}, "test")), at.ints(i[2], "index", out),
                    at.floats(i[3], "similarity", out), nTrain, nTest, d, k);
    return i.Env().Undefined();
  });
}

}  // namespace

void registerNn(Napi::Env env, Napi::Object exports) {
  Napi::Object nn = Napi::Object::New(env);
  auto add = [&](const char* name, Napi::Value (*fn)(const Napi::CallbackInfo&)) {
    nn.Set(name, Napi::Function::New(env, fn, name));
  };
  add("gemm", gemm);
  add("fmaPeak", fmaPeak);
  add("linearForward", linearForward);
  add("linearBackward", linearBackward);
  add("conv2dForward", conv2dForward);
  add("conv2dBackward", conv2dBackward);
  add("conv2dAlgorithm", conv2dAlgorithm);
  add("batchNormForward", batchNormForward);
  add("batchNormBackward", batchNormBackward);
  add("reluForward", reluForward);
  add("reluBackward", reluBackward);
  add("add", binding::add);
  add("addInto", addInto);
  add("copyFloats", copyFloats);
  add("fill", fill);
  add("maxPool2dForward", maxPool2dForward);
  add("maxPool2dBackward", maxPool2dBackward);
  add("globalAvgPoolForward", globalAvgPoolForward);
  add("globalAvgPoolBackward", globalAvgPoolBackward);
  add("l2NormalizeForward", l2NormalizeForward);
  add("l2NormalizeBackward", l2NormalizeBackward);
  add("crossEntropyForward", crossEntropyForward);
  add("crossEntropyBackward", crossEntropyBackward);
  add("fillNormal", fillNormal);
  add("fillUniform", fillUniform);
  add("sgdStep", sgdStep);
  add("larsStep", larsStep);
  add("adamwStep", adamwStep);
  add("rmspropStep", rmspropStep);
  add("l2Norm", l2Norm);
  add("knnTopK", knnTopK);
  exports.Set("nn", nn);
}

}  // namespace supcon::binding
