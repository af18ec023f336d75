// The addon's entry point: registers each part of the binding.
#include <napi.h>

#include "../cpu/host_allocator.h"
#include "addon_data.h"
#include "storage.h"

namespace supcon::binding {

void registerStorage(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = Storage::define(env);
  AddonData::of(env).storage = Napi::Persistent(ctor);
  exports.Set("Storage", ctor);
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  static const bool pinned = cpu::pinMallocThresholds();  // once per process
  (void)pinned;
  registerStorage(env, exports);
  registerLoss(env, exports);
  registerDevices(env, exports);
  registerCudaOps(env, exports);
  registerNn(env, exports);
  registerAugment(env, exports);
  return exports;
}

}  // namespace supcon::binding

static Napi::Object initAddon(Napi::Env env, Napi::Object exports) {
  return supcon::binding::init(env, exports);
}

NODE_API_MODULE(supcon, initAddon)
