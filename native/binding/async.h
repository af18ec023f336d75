// Promise-returning variants of the long native calls: the arguments are read and checked
// on the main thread by the same code as the synchronous call, the kernel runs on the libuv
// thread pool, and the promise settles on the main thread.
#pragma once

#include <napi.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace supcon::binding {

class Storage;

// What a pending call holds so that its inputs and outputs stay valid while it runs:
// references (the garbage collector keeps the objects), pins on host storages (dispose()
// marks the storage disposed at once and frees its memory when the call ends), and copies of
// typed arrays (a detached or transferred ArrayBuffer cannot pull memory from under the
// work). Made and destroyed on the main thread.
class AsyncHold {
 public:
  explicit AsyncHold(Napi::Env env) : env_(env) {}
  ~AsyncHold();
  AsyncHold(const AsyncHold&) = delete;
  AsyncHold& operator=(const AsyncHold&) = delete;

  // An input the work reads: `data` (bytes long) inside the host storage `value` is pinned;
  // inside a typed array it is copied. Returns the pointer the work reads.
  const void* input(const Napi::Value& value, const void* data, size_t bytes);
  // An output the work writes: in a host storage, in place (pinned); for a typed array, a
  // native buffer copied into the array when the work has ended (deliver()).
  void* output(const Napi::Value& value, void* data, size_t bytes, const std::string& name);
  // A copy of `count` values (labels, a mask), or null for null.
  template <typename T>
  const T* copy(const T* data, size_t count) {
    return data == nullptr ? nullptr : static_cast<const T*>(own(data, count * sizeof(T)));
  }
  // Keeps `value` alive until the call ends (the object the promise resolves with).
  void keep(const Napi::Value& value);
  // Copies the typed-array outputs in; a RangeError naming the output when its array was
  // detached or shrunk while the work ran.
  void deliver();

 private:
  const void* own(const void* data, size_t bytes);
  void pin(const Napi::Value& value);

  // Not zero-filled: a copy overwrites it, the work writes all of an output.
  struct Buffer {
    std::unique_ptr<uint8_t[]> data;
    size_t bytes;
    explicit Buffer(size_t n) : data(new uint8_t[n == 0 ? 1 : n]), bytes(n) {}
  };
  struct Delivery {
    Napi::Reference<Napi::Value> array;
    Buffer buffer;
    std::string name;
  };
  Napi::Env env_;
  std::vector<Napi::Reference<Napi::Value>> kept_;
  std::vector<Storage*> pinned_;
  std::vector<Buffer> copies_;
  std::vector<Delivery> deliveries_;
};

// Runs work() on the libuv pool; then, on the main thread, hold.deliver() and finish(env)
// give the value the promise resolves with. An exception from any of them rejects the
// promise with the error the synchronous call would throw (TypeError, RangeError, Error).
Napi::Value queueWork(Napi::Env env, std::unique_ptr<AsyncHold> hold, std::function<void()> work,
                      std::function<Napi::Value(Napi::Env)> finish);

// call(info) as a promise: rejected with what it threw (argument errors reject, they are
// never thrown), the promise it returned, or resolved with the value it returned (calls
// that ran synchronously: CUDA work, which the stream orders).
Napi::Value promised(const Napi::CallbackInfo& info, Napi::Value (*call)(const Napi::CallbackInfo&));

}  // namespace supcon::binding
