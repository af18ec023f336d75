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
void registerKnn(Napi::Env env, Napi::Object exports);
void registerNn(Napi::Env env, Napi::Object exports);
void registerAugment(Napi::Env env, Napi::Object exports);
// The CUDA twins of `nn` (CUDA builds only): element-wise, pooling, normalisation, losses,
// initialisers and optimizers; the convolutions and linear layers.
void registerCudaNn(Napi::Env env, Napi::Object cudaNn);
void registerCudaConv(Napi::Env env, Napi::Object cudaNn);

}  // namespace supcon::binding
