// Arguments of the CUDA bindings: device storages and precisions, read once into plain
// values and checked, with messages that name the argument.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

#if defined(SUPCON_WITH_CUDA)
#include "../cuda/supcon_cuda.h"
#endif

namespace supcon::binding {

#if defined(SUPCON_WITH_CUDA)
// The device memory of a CUDA tensor storage holding at least `count` elements.
float* deviceFloats(const Napi::Value& value, const std::string& name, int64_t count);
int32_t* deviceInts(const Napi::Value& value, const std::string& name, int64_t count);
// The same, or null when value is null or undefined.
float* deviceFloatsOrNull(const Napi::Value& value, const std::string& name, int64_t count);
#endif

}  // namespace supcon::binding
