// Storage: the native memory behind a Tensor, in host memory or on the GPU. JavaScript holds it as an opaque handle;
// data moves in and out by copy. dispose() frees it at once; the garbage collector frees
// what was never disposed.
//
// dispose() also frees the native object itself and unwraps the handle, so that nothing of
// a disposed storage waits for the garbage collector: Node-API runs a wrapped object's
// finalizer only at a later turn of the event loop, and a loop that never yields kept about
// 200 bytes for every tensor it had created and disposed (docs/RELIABILITY.md, the soak). A
// handle without its native object is a disposed storage: `disposed` is true, `bytes` 0,
// `device` null, and every call that takes it refuses it with a RangeError.
#pragma once

#include <napi.h>

#include <cstdint>

#include <cstddef>

namespace supcon::binding {

class Storage : public Napi::ObjectWrap<Storage> {
 public:
  static Napi::Function define(Napi::Env env);
  explicit Storage(const Napi::CallbackInfo& info);
  void Finalize(Napi::BasicEnv env) override;

  bool disposed() const { return disposed_; }
  bool onDevice() const { return device_ != nullptr; }
  size_t bytes() const { return bytes_; }
  // Host memory, or device memory for a CUDA storage.
  uint8_t* data() { return static_cast<uint8_t*>(device_ != nullptr ? device_ : host_); }
  // The live or pinned storage behind a storage handle; null when dispose() has freed it.
  static Storage* find(const Napi::Value& value);
  // The storage behind `value`, or a TypeError naming `name`; a RangeError when it is
  // disposed or smaller than `bytes`.
  static Storage& unwrap(const Napi::Value& value, const std::string& name, size_t bytes);
  // The same for code that reads the memory on the CPU: a CUDA storage is a RangeError.
  static uint8_t* hostData(const Napi::Value& value, const std::string& name, size_t bytes);

  // A pending asynchronous call's hold (binding/async.h): while pinned, dispose() marks the
  // storage disposed at once (every later call refuses it) and the memory is freed by the
  // last unpin.
  void pin() { ++pins_; }
  void unpin(Napi::Env env);

  // Whether `value` is a storage made by this addon: a type tag check, so that no
  // JavaScript runs (no Symbol.hasInstance, no proxy trap) while pointers are being taken.
  static bool is(const Napi::Value& value);

  // Live host bytes and storages (for memory()).
  static int64_t liveBytes();
  static int64_t liveCount();

 private:
  // The methods and accessors of a handle (plain functions: a disposed handle has no native
  // object to call them on).
  static Napi::Value write(const Napi::CallbackInfo& info);
  static Napi::Value read(const Napi::CallbackInfo& info);
  static Napi::Value dispose(const Napi::CallbackInfo& info);
  static Napi::Value getBytes(const Napi::CallbackInfo& info);
  static Napi::Value getDisposed(const Napi::CallbackInfo& info);
  static Napi::Value getDevice(const Napi::CallbackInfo& info);
  // `this` of a method: a TypeError when it is not a storage handle, a RangeError when
  // it is disposed.
  static Storage& self(const Napi::CallbackInfo& info, const char* method);
  void copyIn(size_t offset, const void* src, size_t n);
  void copyOut(void* dst, size_t offset, size_t n);
  void release(Napi::BasicEnv env);
  void freeMemory(Napi::BasicEnv env);

  void* host_ = nullptr;    // from the host caching allocator, when in host memory
  void* device_ = nullptr;  // CUDA memory from the caching allocator, when on the GPU
  size_t bytes_ = 0;
  bool disposed_ = false;
  bool reported_ = false;  // memory allocated (and host memory reported to the engine)
  int pins_ = 0;
};

}  // namespace supcon::binding
