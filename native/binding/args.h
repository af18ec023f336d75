// Argument checking at the JavaScript boundary: every value that reaches native code is
// checked here, and every failure names the argument, what was expected and what came.
#pragma once

#include <napi.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <string>

#include "../common/errors.h"
#include "../common/precision.h"

namespace supcon::binding {

// A short description of a JavaScript value for error messages ("a string",
// "Float64Array(12)", "number 3.5", ...).
std::string describe(const Napi::Value& value);
// "number 3.5", for a value already read.
std::string describeNumber(double x);

double requireNumber(const Napi::Value& value, const std::string& name);
// A number that stays finite when rounded to float32 (|x| <= FLT_MAX, no NaN).
float requireFloat32(const Napi::Value& value, const std::string& name);
// A finite number > 0.
double requirePositive(const Napi::Value& value, const std::string& name);
// A number > 0 that stays finite and > 0 when rounded to float32 (5e-324 would be 0).
float requirePositiveFloat32(const Napi::Value& value, const std::string& name);
// An integer in [min, max].
int64_t requireInteger(const Napi::Value& value, const std::string& name, int64_t min,
                       int64_t max);
bool requireBoolean(const Napi::Value& value, const std::string& name);
std::string requireString(const Napi::Value& value, const std::string& name);
Napi::Object requireObject(const Napi::Value& value, const std::string& name);
// A CPU thread count in [1, 1024]; all the process may use (ThreadPool::hardwareThreads)
// when undefined.
int threadsOf(const Napi::Value& value, const std::string& name = "threads");
// 'fp32' (also when undefined), 'tf32' or 'bf16'.
Precision precisionOf(const Napi::Value& value, const std::string& name = "precision");

// A typed array of the given kind whose length is `length` (or any length when -1).
template <typename T>
Napi::TypedArrayOf<T> requireTypedArray(const Napi::Value& value, const std::string& name,
                                        int64_t length);

// The bytes of any typed array (ArrayBuffer or SharedArrayBuffer backed; a detached one has
// none), or a TypeError naming `name` when `value` is not a typed array. Runs no JavaScript.
struct ByteView {
  uint8_t* data;
  size_t bytes;
};
ByteView requireTypedArrayBytes(const Napi::Value& value, const std::string& name);

// a * b, or a RangeError naming `name` when the product passes `limit`.
int64_t checkedProduct(int64_t a, int64_t b, const std::string& name, int64_t limit);

// The JavaScript error of a C++ exception: ArgumentError -> TypeError or RangeError,
// bad_alloc -> RangeError, anything else -> Error.
Napi::Error jsError(Napi::Env env, std::exception_ptr error);

// Runs fn; turns C++ exceptions into JavaScript ones (ArgumentError -> TypeError or
// RangeError, bad_alloc -> RangeError, anything else -> Error). Never lets one escape.
Napi::Value guarded(const Napi::CallbackInfo& info,
                    const std::function<Napi::Value(const Napi::CallbackInfo&)>& fn);

}  // namespace supcon::binding
