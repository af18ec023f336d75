// Storage: the native memory behind a Tensor. JavaScript holds it as an opaque handle;
// data moves in and out by copy. dispose() frees it at once; the garbage collector frees
// what was never disposed.
#pragma once

#include <napi.h>

#include <cstdint>

#include "../cpu/aligned_buffer.h"

namespace supcon::binding {

class Storage : public Napi::ObjectWrap<Storage> {
 public:
  static Napi::Function define(Napi::Env env);
  explicit Storage(const Napi::CallbackInfo& info);
  void Finalize(Napi::BasicEnv env) override;

  bool disposed() const { return disposed_; }
  size_t bytes() const { return buffer_.bytes(); }
  uint8_t* data() { return buffer_.data(); }
  // The storage behind `value`, or a TypeError naming `name`; a RangeError when it is
  // disposed or smaller than `bytes`.
  static Storage& unwrap(const Napi::Value& value, const std::string& name, size_t bytes);

  // Live host bytes and storages (for memory()).
  static int64_t liveBytes();
  static int64_t liveCount();

 private:
  Napi::Value write(const Napi::CallbackInfo& info);
  Napi::Value read(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);
  Napi::Value getBytes(const Napi::CallbackInfo& info);
  Napi::Value getDisposed(const Napi::CallbackInfo& info);
  void release(Napi::BasicEnv env);

  cpu::AlignedBuffer<uint8_t> buffer_;
  bool disposed_ = false;
  bool reported_ = false;  // external memory reported to the engine
};

}  // namespace supcon::binding
