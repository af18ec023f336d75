#include "storage.h"

#include <atomic>
#include <cstring>

#include "../cpu/host_allocator.h"
#include "addon_data.h"
#include "args.h"
#include "handles.h"

#if defined(SUPCON_WITH_CUDA)
#include "../cuda/runtime.h"
#endif

namespace supcon::binding {
namespace {
std::atomic<int64_t> gLiveBytes{0};
std::atomic<int64_t> gLiveCount{0};
constexpr int64_t kMaxBytes = int64_t{1} << 46;
constexpr napi_type_tag kStorageTag = {0x5c0a7e1d2b4f4e61ull, 0x9d3c8a51f0e27b44ull};
}  // namespace

bool Storage::is(const Napi::Value& value) {
  if (!value.IsObject()) return false;
  bool tagged = false;
  return napi_check_object_type_tag(value.Env(), value, &kStorageTag, &tagged) == napi_ok && tagged;
}

int64_t Storage::liveBytes() { return gLiveBytes.load(); }
int64_t Storage::liveCount() { return gLiveCount.load(); }

Storage* Storage::find(const Napi::Value& value) { return is(value) ? wrapped<Storage>(value) : nullptr; }

Storage& Storage::self(const Napi::CallbackInfo& info, const char* method) {
  if (!is(info.This()))
    throw typeError(std::string("Storage.") + method + ": expected a tensor storage as this, got " + describe(info.This()));
  Storage* s = wrapped<Storage>(info.This());
  if (s == nullptr || s->disposed_) throw rangeError("tensor: it has been disposed");
  return *s;
}

Napi::Function Storage::define(Napi::Env env) {
  // The members live on the prototype as plain functions (a class template takes only
  // primitive values), so that they work on a handle whose native object is gone.
  Napi::Function ctor = DefineClass(env, "Storage", {});
  ctor.Get("prototype").As<Napi::Object>().DefineProperties({
      Napi::PropertyDescriptor::Value("write", Napi::Function::New(env, &Storage::write, "write"), napi_default_method),
      Napi::PropertyDescriptor::Value("read", Napi::Function::New(env, &Storage::read, "read"), napi_default_method),
      Napi::PropertyDescriptor::Value("dispose", Napi::Function::New(env, &Storage::dispose, "dispose"), napi_default_method),
      Napi::PropertyDescriptor::Accessor<&Storage::getBytes>("bytes", napi_configurable),
      Napi::PropertyDescriptor::Accessor<&Storage::getDisposed>("disposed", napi_configurable),
      Napi::PropertyDescriptor::Accessor<&Storage::getDevice>("device", napi_configurable),
  });
  return ctor;
}

// new Storage(bytes, device = 'cpu', zero = true): memory on the host or the GPU, zero-filled.
// zero = false leaves host memory as it was (an op's output that its kernel writes in full;
// see hostAlloc); GPU memory is zero-filled either way.
Storage::Storage(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Storage>(info) {
  Napi::Env env = info.Env();
  napi_type_tag_object(env, info.This(), &kStorageTag);
  guarded(info, [&](const Napi::CallbackInfo& i) -> Napi::Value {
    const int64_t bytes = requireInteger(i[0], "bytes", 0, kMaxBytes);
    const std::string device = i[1].IsUndefined() ? "cpu" : requireString(i[1], "device");
    if (!i[2].IsUndefined() && !i[2].IsBoolean())
      throw typeError("zero: expected a boolean or undefined, got " + describe(i[2]));
    const bool zero = i[2].IsUndefined() || i[2].As<Napi::Boolean>().Value();
    if (device == "cuda") {
#if defined(SUPCON_WITH_CUDA)
      std::string reason;
      if (!cuda::usable(&reason)) throw rangeError("device: 'cuda' is not available: " + reason);
      device_ = cuda::deviceAlloc(static_cast<size_t>(bytes));
      try {
        cuda::memsetDevice(device_, 0, static_cast<size_t>(bytes));
      } catch (...) {
        cuda::deviceFree(device_);
        device_ = nullptr;
        throw;
      }
#else
      throw rangeError("device: 'cuda' is not available: this build has no CUDA kernels");
#endif
    } else if (device == "cpu") {
      host_ = cpu::hostAlloc(static_cast<size_t>(bytes), zero);
      gLiveBytes += bytes;
      gLiveCount += 1;
      Napi::MemoryManagement::AdjustExternalMemory(env, bytes);
    } else {
      throw rangeError("device: expected 'cpu' or 'cuda', got '" + device + "'");
    }
    bytes_ = static_cast<size_t>(bytes);
    reported_ = true;
    return env.Undefined();
  });
}

// The garbage collector's backstop for storages that were never disposed.
void Storage::Finalize(Napi::BasicEnv env) { release(env); }

void Storage::release(Napi::BasicEnv env) {
  if (disposed_) return;
  disposed_ = true;
  if (pins_ == 0) freeMemory(env);
}

void Storage::unpin(Napi::Env env) {
  if (--pins_ == 0 && disposed_) freeMemory(env);
}

void Storage::freeMemory(Napi::BasicEnv env) {
  if (!reported_) return;
  reported_ = false;
  if (device_ != nullptr) {
#if defined(SUPCON_WITH_CUDA)
    cuda::deviceFree(device_);
#endif
    device_ = nullptr;
  } else {
    const int64_t bytes = static_cast<int64_t>(bytes_);
    gLiveBytes -= bytes;
    gLiveCount -= 1;
    Napi::MemoryManagement::AdjustExternalMemory(env, -bytes);
    cpu::hostFree(host_, bytes_);
    host_ = nullptr;
  }
}

Storage& Storage::unwrap(const Napi::Value& value, const std::string& name, size_t bytes) {
  if (!is(value))
    throw typeError(name + ": expected a tensor storage, got " + describe(value));
  Storage* s = wrapped<Storage>(value);
  if (s == nullptr || s->disposed_) throw rangeError(name + ": the tensor has been disposed");
  if (s->bytes() < bytes)
    throw rangeError(name + ": expected storage of at least " + std::to_string(bytes) +
                     " bytes, got " + std::to_string(s->bytes()));
  return *s;
}

uint8_t* Storage::hostData(const Napi::Value& value, const std::string& name, size_t bytes) {
  Storage& s = unwrap(value, name, bytes);
  if (s.onDevice()) throw rangeError(name + ": expected a tensor on the CPU, got one on 'cuda' (copy it with .to('cpu'))");
  return s.data();
}

// write(typedArray, byteOffset): copies the array's bytes in.
Napi::Value Storage::write(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Storage& s = self(i, "write");
    const ByteView src = requireTypedArrayBytes(i[0], "data");
    const int64_t offset = requireInteger(i[1], "byteOffset", 0, kMaxBytes);
    const size_t n = src.bytes;
    if (static_cast<size_t>(offset) + n > s.bytes())
      throw rangeError("data: " + std::to_string(n) + " bytes at offset " + std::to_string(offset) +
                       " do not fit in " + std::to_string(s.bytes()) + " bytes");
    s.copyIn(static_cast<size_t>(offset), src.data, n);
    return i.Env().Undefined();
  });
}

// read(typedArray, byteOffset): copies bytes out into the array.
Napi::Value Storage::read(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Storage& s = self(i, "read");
    const ByteView dst = requireTypedArrayBytes(i[0], "out");
    const int64_t offset = requireInteger(i[1], "byteOffset", 0, kMaxBytes);
    const size_t n = dst.bytes;
    if (static_cast<size_t>(offset) + n > s.bytes())
      throw rangeError("out: " + std::to_string(n) + " bytes at offset " + std::to_string(offset) +
                       " are past the end of " + std::to_string(s.bytes()) + " bytes");
    s.copyOut(dst.data, static_cast<size_t>(offset), n);
    return i.Env().Undefined();
  });
}

void Storage::copyIn(size_t offset, const void* src, size_t n) {
  if (n == 0) return;
#if defined(SUPCON_WITH_CUDA)
  if (device_ != nullptr) {
    cuda::copyToDevice(static_cast<uint8_t*>(device_) + offset, src, n);
    return;
  }
#endif
  std::memcpy(static_cast<uint8_t*>(host_) + offset, src, n);
}

void Storage::copyOut(void* dst, size_t offset, size_t n) {
  if (n == 0) return;
#if defined(SUPCON_WITH_CUDA)
  if (device_ != nullptr) {
    cuda::copyToHost(dst, static_cast<uint8_t*>(device_) + offset, n);
    return;
  }
#endif
  std::memcpy(dst, static_cast<uint8_t*>(host_) + offset, n);
}

// dispose(): frees the memory at once (or at the last unpin of a pending asynchronous call),
// and, unless pinned, the native object too: the handle is unwrapped, so that no finalizer
// is left to wait for the event loop. Disposing twice does nothing.
Napi::Value Storage::dispose(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Napi::Env env = i.Env();
    if (!is(i.This()))
      throw typeError("Storage.dispose: expected a tensor storage as this, got " + describe(i.This()));
    Storage* s = wrapped<Storage>(i.This());
    if (s == nullptr) return env.Undefined();
    s->release(env);
    if (s->pins_ == 0) detach(env, i.This(), s);
    return env.Undefined();
  });
}

Napi::Value Storage::getBytes(const Napi::CallbackInfo& info) {
  const Storage* s = find(info.This());
  return Napi::Number::New(info.Env(), s == nullptr ? 0.0 : static_cast<double>(s->bytes_));
}

Napi::Value Storage::getDevice(const Napi::CallbackInfo& info) {
  const Storage* s = find(info.This());
  if (s == nullptr) return info.Env().Null();
  return Napi::String::New(info.Env(), s->device_ != nullptr ? "cuda" : "cpu");
}

Napi::Value Storage::getDisposed(const Napi::CallbackInfo& info) {
  const Storage* s = find(info.This());
  return Napi::Boolean::New(info.Env(), s == nullptr || s->disposed_);
}

}  // namespace supcon::binding
