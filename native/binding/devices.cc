// devices(), buildInfo() and memory(): what this build and this machine offer.
#include "../cpu/host_allocator.h"
#include "../cpu/isa.h"
#include "../cpu/thread_pool.h"
#include "addon_data.h"
#include "args.h"
#include "storage.h"

#if defined(SUPCON_WITH_CUDA)
#include "../cuda/device_info.h"
#include "../cuda/runtime.h"
#endif
#if defined(SUPCON_CUDA_EMULATION)
#include "../cuda/emu/emu_control.h"
#endif

namespace supcon::binding {
namespace {

Napi::Value devices(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Napi::Env env = i.Env();
    Napi::Array list = Napi::Array::New(env);
#if defined(SUPCON_WITH_CUDA)
    uint32_t k = 0;
    for (const auto& d : cuda::discover().devices) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("index", d.index);
      o.Set("name", d.name);
      o.Set("computeCapability", std::to_string(d.computeMajor) + "." + std::to_string(d.computeMinor));
      o.Set("totalMemory", static_cast<double>(d.totalMemory));
      o.Set("multiprocessors", d.multiprocessors);
      list.Set(k++, o);
    }
#endif
    return list;
  });
}

Napi::Value buildInfo(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Napi::Env env = i.Env();
    Napi::Object o = Napi::Object::New(env);
#if defined(SUPCON_WITH_CUDA)
    const auto& disc = cuda::discover();
    o.Set("cuda", true);
    o.Set("cudaRuntimeVersion", disc.runtimeVersion);
    o.Set("cudaDriverVersion", disc.driverVersion);
    o.Set("cudaArchitectures", SUPCON_CUDA_ARCHITECTURES);
    o.Set("noGpuReason", disc.reason);
#else
    o.Set("cuda", false);
    o.Set("noGpuReason", "this build has no CUDA kernels");
#endif
    o.Set("napiVersion", NAPI_VERSION);
    return o;
  });
}

Napi::Value memory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("cpuBytes", static_cast<double>(Storage::liveBytes()));
  o.Set("cpuStorages", static_cast<double>(Storage::liveCount()));
  o.Set("cpuCachedBytes", static_cast<double>(cpu::hostCacheStats().cachedBytes));
#if defined(SUPCON_WITH_CUDA)
  const cuda::AllocatorStats st = cuda::allocatorStats();
  o.Set("cudaBytes", static_cast<double>(st.inUseBytes));
  o.Set("cudaCachedBytes", static_cast<double>(st.cachedBytes));
  o.Set("cudaHostWaits", static_cast<double>(cuda::hostWaits()));
#else
  o.Set("cudaBytes", 0);
  o.Set("cudaCachedBytes", 0);
  o.Set("cudaHostWaits", 0);
#endif
  return o;
}

// cudaStatus() -> { usable, reason }: whether the CUDA kernels can run here (probed once).
Napi::Value cudaStatus(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Napi::Object o = Napi::Object::New(i.Env());
#if defined(SUPCON_WITH_CUDA)
    std::string reason;
    const bool ok = cuda::usable(&reason);
    o.Set("usable", ok);
    o.Set("reason", reason);
#else
    o.Set("usable", false);
    o.Set("reason", "this build has no CUDA kernels");
#endif
    return o;
  });
}

// emptyCache(): returns the memory the host and GPU allocators cache to the system.
Napi::Value emptyCache(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    cpu::hostEmptyCache();
#if defined(SUPCON_WITH_CUDA)
    cuda::emptyCache();
#endif
    return i.Env().Undefined();
  });
}

#if defined(SUPCON_CUDA_EMULATION)
// cudaEmulator(reset?) -> { kernels: { name: launches }, schedules, guard } (emulated build only).
Napi::Value cudaEmulator(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Napi::Env env = i.Env();
    bool reset = false;
    if (i.Length() > 0 && !i[0].IsUndefined()) {
      if (!i[0].IsBoolean()) throw typeError("reset: expected a boolean, got " + describe(i[0]));
      reset = i[0].As<Napi::Boolean>().Value();
    }
    const emu::Settings s = emu::settings();
    Napi::Object kernels = Napi::Object::New(env);
    for (const auto& [name, count] : emu::launchCounts(reset)) kernels.Set(name, static_cast<double>(count));
    Napi::Object o = Napi::Object::New(env);
    o.Set("kernels", kernels);
    o.Set("schedules", s.schedules);
    o.Set("guard", s.guard == emu::Guard::Before ? "before" : "after");
    return o;
  });
}
#endif

}  // namespace

// cpuKernels(select?): the CPU kernels' instruction set (native/cpu/isa.h), chosen when given.
Napi::Value cpuKernels(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Napi::Env env = i.Env();
    if (!i[0].IsUndefined()) cpu::selectKernels(requireString(i[0], "kernels"));
    Napi::Object result = Napi::Object::New(env);
    result.Set("active", cpu::isaName(cpu::activeIsa()));
    Napi::Array list = Napi::Array::New(env);
    uint32_t k = 0;
    for (const auto& name : cpu::availableKernels()) list.Set(k++, name);
    result.Set("available", list);
    result.Set("threads", cpu::ThreadPool::hardwareThreads());
    return result;
  });
}

void registerDevices(Napi::Env env, Napi::Object exports) {
  exports.Set("devices", Napi::Function::New(env, devices, "devices"));
  exports.Set("buildInfo", Napi::Function::New(env, buildInfo, "buildInfo"));
  exports.Set("cpuKernels", Napi::Function::New(env, cpuKernels, "cpuKernels"));
  exports.Set("memory", Napi::Function::New(env, memory, "memory"));
  exports.Set("cudaStatus", Napi::Function::New(env, cudaStatus, "cudaStatus"));
  exports.Set("emptyCache", Napi::Function::New(env, emptyCache, "emptyCache"));
#if defined(SUPCON_CUDA_EMULATION)
  exports.Set("cudaEmulator", Napi::Function::New(env, cudaEmulator, "cudaEmulator"));
#endif
}

}  // namespace supcon::binding
