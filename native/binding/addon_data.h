// Per-environment data of the addon (worker threads each load their own copy).
#pragma once

#include <napi.h>

namespace supcon::binding {

struct AddonData {
  Napi::FunctionReference storage;
  Napi::FunctionReference lossContext;
  static AddonData& of(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }
};

// Each part of the binding adds its exports.
void registerStorage(Napi::Env env, Napi::Object exports);
void registerLoss(Napi::Env env, Napi::Object exports);
void registerDevices(Napi::Env env, Napi::Object exports);
void registerCudaOps(Napi::Env env, Napi::Object exports);
void registerNn(Napi::Env env, Napi::Object exports);
void registerAugment(Napi::Env env, Napi::Object exports);


}  // namespace supcon::binding
