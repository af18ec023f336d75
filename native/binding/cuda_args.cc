#include "cuda_args.h"

#include "args.h"
#include "storage.h"

namespace supcon::binding {

#if defined(SUPCON_WITH_CUDA)

namespace {
uint8_t* deviceBytes(const Napi::Value& value, const std::string& name, int64_t count, size_t size) {
  if (count < 0) throw rangeError(name + ": a negative element count");
  Storage& s = Storage::unwrap(value, name, static_cast<size_t>(count) * size);
  if (!s.onDevice()) throw rangeError(name + ": expected a tensor on 'cuda', got one on the CPU");
  return s.data();
}
}  // namespace

float* deviceFloats(const Napi::Value& value, const std::string& name, int64_t count) {
  return reinterpret_cast<float*>(deviceBytes(value, name, count, sizeof(float)));
}

int32_t* deviceInts(const Napi::Value& value, const std::string& name, int64_t count) {
  return reinterpret_cast<int32_t*>(deviceBytes(value, name, count, sizeof(int32_t)));
}

float* deviceFloatsOrNull(const Napi::Value& value, const std::string& name, int64_t count) {
  if (value.IsNull() || value.IsUndefined()) return nullptr;
  return deviceFloats(value, name, count);
}
#endif

}  // namespace supcon::binding
