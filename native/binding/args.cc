#include "args.h"

#include "../cpu/thread_pool.h"

#include <cmath>
#include <cstring>
#include <new>

#if defined(SUPCON_WITH_CUDA)
#include "../cuda/runtime.h"
#endif

namespace supcon::binding {
namespace {

const char* typedArrayName(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "TypedArray";
  }
}

template <typename T> napi_typedarray_type kindOf();
template <> napi_typedarray_type kindOf<float>() { return napi_float32_array; }
template <> napi_typedarray_type kindOf<int32_t>() { return napi_int32_array; }
template <> napi_typedarray_type kindOf<uint8_t>() { return napi_uint8_array; }

const char* article(const char* noun) {
  return std::strchr("AEIOU", noun[0]) != nullptr ? "an " : "a ";
}

}  // namespace

std::string describeNumber(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "number %.17g", x);
  return buf;
}

std::string describe(const Napi::Value& value) {
  if (value.IsUndefined()) return "undefined";
  if (value.IsNull()) return "null";
  if (value.IsBoolean()) return std::string("boolean ") + (value.As<Napi::Boolean>() ? "true" : "false");
  if (value.IsNumber()) return describeNumber(value.As<Napi::Number>().DoubleValue());
  if (value.IsString()) return "a string";
  if (value.IsTypedArray()) {
    auto ta = value.As<Napi::TypedArray>();
    return std::string(typedArrayName(ta.TypedArrayType())) + "(" +
           std::to_string(ta.ElementLength()) + ")";
  }
  if (value.IsArray()) return "an Array(" + std::to_string(value.As<Napi::Array>().Length()) + ")";
  if (value.IsFunction()) return "a function";
  if (value.IsObject()) return "an object";
  return "a value of another type";
}

double requireNumber(const Napi::Value& value, const std::string& name) {
  if (!value.IsNumber()) throw typeError(name + ": expected a number, got " + describe(value));
  return value.As<Napi::Number>().DoubleValue();
}

float requireFloat32(const Napi::Value& value, const std::string& name) {
  const double x = requireNumber(value, name);
  const float f = static_cast<float>(x);
  if (!std::isfinite(x) || !std::isfinite(f))
    throw rangeError(name + ": expected a finite number that float32 can hold (|x| <= 3.4028234663852886e38), got " +
                     describe(value));
  return f;
}

double requirePositive(const Napi::Value& value, const std::string& name) {
  const double x = requireNumber(value, name);
  if (!(std::isfinite(x) && x > 0))
    throw rangeError(name + ": expected a finite number > 0, got " + describe(value));
  return x;
}

float requirePositiveFloat32(const Napi::Value& value, const std::string& name) {
  const double x = requireNumber(value, name);
  const float f = static_cast<float>(x);
  if (!(std::isfinite(f) && f > 0.0f))
    throw rangeError(name + ": expected a finite number > 0 that float32 can hold (1.4e-45 to 3.4e38), got " + describe(value));
  return f;
}

int64_t requireInteger(const Napi::Value& value, const std::string& name, int64_t min,
                       int64_t max) {
  const double x = requireNumber(value, name);
  if (!(std::isfinite(x) && std::floor(x) == x && x >= static_cast<double>(min) &&
        x <= static_cast<double>(max)))
    throw rangeError(name + ": expected an integer in [" + std::to_string(min) + ", " +
                     std::to_string(max) + "], got " + describe(value));
  return static_cast<int64_t>(x);
}

bool requireBoolean(const Napi::Value& value, const std::string& name) {
  if (!value.IsBoolean()) throw typeError(name + ": expected a boolean, got " + describe(value));
  return value.As<Napi::Boolean>().Value();
}

std::string requireString(const Napi::Value& value, const std::string& name) {
  if (!value.IsString()) throw typeError(name + ": expected a string, got " + describe(value));
  return value.As<Napi::String>().Utf8Value();
}

int threadsOf(const Napi::Value& value, const std::string& name) {
  if (value.IsUndefined()) return cpu::ThreadPool::hardwareThreads();
  return static_cast<int>(requireInteger(value, name, 1, 1024));
}

Precision precisionOf(const Napi::Value& value, const std::string& name) {
  const std::string p = value.IsUndefined() ? "fp32" : requireString(value, name);
  if (p == "fp32") return Precision::Fp32;
  if (p == "tf32") return Precision::Tf32;
  if (p == "bf16") return Precision::Bf16;
  throw rangeError(name + ": expected one of 'fp32', 'tf32', 'bf16', got '" + p + "'");
}

Napi::Object requireObject(const Napi::Value& value, const std::string& name) {
  if (!value.IsObject() || value.IsArray() || value.IsTypedArray())
    throw typeError(name + ": expected an object, got " + describe(value));
  return value.As<Napi::Object>();
}

template <typename T>
Napi::TypedArrayOf<T> requireTypedArray(const Napi::Value& value, const std::string& name,
                                        int64_t length) {
  const char* want = typedArrayName(kindOf<T>());
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != kindOf<T>())
    throw typeError(name + ": expected " + article(want) + want + ", got " + describe(value));
  auto ta = value.As<Napi::TypedArrayOf<T>>();
  if (length >= 0 && static_cast<int64_t>(ta.ElementLength()) != length)
    throw rangeError(name + ": expected " + article(want) + want + " of length " + std::to_string(length) +
                     ", got length " + std::to_string(ta.ElementLength()));
  return ta;
}

template Napi::TypedArrayOf<float> requireTypedArray<float>(const Napi::Value&, const std::string&, int64_t);
template Napi::TypedArrayOf<int32_t> requireTypedArray<int32_t>(const Napi::Value&, const std::string&, int64_t);
template Napi::TypedArrayOf<uint8_t> requireTypedArray<uint8_t>(const Napi::Value&, const std::string&, int64_t);

ByteView requireTypedArrayBytes(const Napi::Value& value, const std::string& name) {
  if (!value.IsTypedArray()) throw typeError(name + ": expected a typed array, got " + describe(value));
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void* data = nullptr;
  napi_value buffer;
  // The data pointer comes from the view itself: napi_get_arraybuffer_info would refuse a
  // SharedArrayBuffer.
  if (napi_get_typedarray_info(value.Env(), value, &type, &length, &data, &buffer, &offset) != napi_ok)
    throw typeError(name + ": expected a typed array, got " + describe(value));
  const size_t bytes = value.As<Napi::TypedArray>().ByteLength();
  return {static_cast<uint8_t*>(data), data == nullptr ? 0 : bytes};
}

int64_t checkedProduct(int64_t a, int64_t b, const std::string& name, int64_t limit) {
  if (a != 0 && b > limit / a)
    throw rangeError(name + ": " + std::to_string(a) + " x " + std::to_string(b) +
                     " elements is more than the " + std::to_string(limit) + " supported");
  return a * b;
}

Napi::Error jsError(Napi::Env env, std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const Napi::Error& e) {
    return e;
  } catch (const ArgumentError& e) {
    if (e.kind() == ArgumentError::Kind::Type) return Napi::TypeError::New(env, e.what());
    return Napi::RangeError::New(env, e.what());
#if defined(SUPCON_WITH_CUDA)
  } catch (const cuda::CudaError& e) {
    if (e.outOfMemory()) return Napi::RangeError::New(env, std::string("out of GPU memory: ") + e.what());
    return Napi::Error::New(env, e.what());
#endif
  } catch (const std::bad_alloc&) {
    return Napi::RangeError::New(env, "out of memory: the sizes asked for are too large to allocate");
  } catch (const std::exception& e) {
    return Napi::Error::New(env, e.what());
  } catch (...) {
    return Napi::Error::New(env, "unknown native error");
  }
}

Napi::Value guarded(const Napi::CallbackInfo& info,
                    const std::function<Napi::Value(const Napi::CallbackInfo&)>& fn) {
  Napi::Env env = info.Env();
  try {
    return fn(info);
  } catch (...) {
    jsError(env, std::current_exception()).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

}  // namespace supcon::binding
