#include "async.h"

#include <cstring>
#include <exception>

#include "args.h"
#include "storage.h"

namespace supcon::binding {

AsyncHold::~AsyncHold() {
  for (Storage* s : pinned_) s->unpin(env_);
}

void AsyncHold::keep(const Napi::Value& value) { kept_.push_back(Napi::Persistent(value)); }

void AsyncHold::pin(const Napi::Value& value) {
  keep(value);
  Storage* s = Storage::find(value);
  if (s == nullptr) throw rangeError("a tensor given to this call has been disposed");
  s->pin();
  pinned_.push_back(s);
}

const void* AsyncHold::own(const void* data, size_t bytes) {
  copies_.emplace_back(bytes);
  if (bytes > 0) std::memcpy(copies_.back().data.get(), data, bytes);
  return copies_.back().data.get();
}

const void* AsyncHold::input(const Napi::Value& value, const void* data, size_t bytes) {
  if (Storage::is(value)) {
    pin(value);
    return data;
  }
  return own(data, bytes);
}

void* AsyncHold::output(const Napi::Value& value, void* data, size_t bytes, const std::string& name) {
  if (Storage::is(value)) {
    pin(value);
    return data;
  }
  deliveries_.push_back(Delivery{Napi::Persistent(value), Buffer(bytes), name});
  return deliveries_.back().buffer.data.get();
}

void AsyncHold::deliver() {
  for (Delivery& d : deliveries_) {
    const ByteView view = requireTypedArrayBytes(d.array.Value(), d.name);
    if (view.bytes < d.buffer.bytes)
      throw rangeError(d.name + ": the array was detached or shrunk while the work ran (" +
                       std::to_string(d.buffer.bytes) + " bytes expected, " + std::to_string(view.bytes) + " left)");
    if (d.buffer.bytes > 0) std::memcpy(view.data, d.buffer.data.get(), d.buffer.bytes);
  }
}

namespace {

class PoolTask : public Napi::AsyncWorker {
 public:
  PoolTask(Napi::Env env, std::unique_ptr<AsyncHold> hold, std::function<void()> work,
           std::function<Napi::Value(Napi::Env)> finish)
      : Napi::AsyncWorker(env, "supcon"),
        deferred_(Napi::Promise::Deferred::New(env)),
        hold_(std::move(hold)),
        work_(std::move(work)),
        finish_(std::move(finish)) {}

  Napi::Promise promise() const { return deferred_.Promise(); }

  void Execute() override {
    try {
      work_();
    } catch (...) {
      error_ = std::current_exception();
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Value result;
    std::exception_ptr error = error_;
    if (!error) {
      try {
        hold_->deliver();
        result = finish_(env);
      } catch (...) {
        error = std::current_exception();
      }
    }
    // Pins and references go before the promise's callbacks run: a storage disposed while
    // the work ran is freed by then.
    hold_.reset();
    if (error) deferred_.Reject(jsError(env, error).Value());
    else deferred_.Resolve(result);
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::unique_ptr<AsyncHold> hold_;
  std::function<void()> work_;
  std::function<Napi::Value(Napi::Env)> finish_;
  std::exception_ptr error_;
};

}  // namespace

Napi::Value queueWork(Napi::Env env, std::unique_ptr<AsyncHold> hold, std::function<void()> work,
                      std::function<Napi::Value(Napi::Env)> finish) {
  auto* task = new PoolTask(env, std::move(hold), std::move(work), std::move(finish));
  const Napi::Promise promise = task->promise();
  task->Queue();
  return promise;
}

Napi::Value promised(const Napi::CallbackInfo& info, Napi::Value (*call)(const Napi::CallbackInfo&)) {
  Napi::Env env = info.Env();
  const Napi::Value result = call(info);
  if (env.IsExceptionPending()) {
    const Napi::Error error = env.GetAndClearPendingException();
    Napi::Promise::Deferred rejected = Napi::Promise::Deferred::New(env);
    rejected.Reject(error.Value());
    return rejected.Promise();
  }
  if (result.IsPromise()) return result;
  Napi::Promise::Deferred resolved = Napi::Promise::Deferred::New(env);
  resolved.Resolve(result);
  return resolved.Promise();
}

}  // namespace supcon::binding
