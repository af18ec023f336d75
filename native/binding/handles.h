// Native objects behind JavaScript handles whose dispose() frees them at once (storage.h
// says why): the handle is unwrapped, and a disposed handle has no native object.
#pragma once

#include <napi.h>

namespace supcon::binding {

// The native object wrapped in `handle`, or null once detach() has freed it. The caller has
// checked the handle's type tag.
template <typename T>
T* wrapped(const Napi::Value& handle) {
  void* p = nullptr;
  if (napi_unwrap(handle.Env(), handle, &p) != napi_ok) return nullptr;
  return static_cast<T*>(p);
}

// Unwraps `handle` and deletes `object`, its ObjectWrap: napi_remove_wrap takes the finalizer
// off, and deleting the object deletes its reference, so nothing is left for the garbage
// collector's turn of the event loop.
template <typename T>
void detach(Napi::Env env, const Napi::Value& handle, T* object) {
  if (napi_remove_wrap(env, handle, nullptr) == napi_ok) delete object;
}

}  // namespace supcon::binding
