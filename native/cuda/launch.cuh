// Kernel launches and dynamic shared memory, written once for nvcc and for the emulated
// backend (native/cuda/emu/): the only places where the two differ in syntax.
#pragma once

#include <cuda_runtime.h>

#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

namespace supcon::cuda {

// kernel<<<grid, block, sharedBytes, stream>>>(args...). `name` names the kernel in the
// emulator's reports and launch counts.
template <class... P, class... A>
void launchKernel(const std::string& name, void (*kernel)(P...), dim3 grid, dim3 block, size_t sharedBytes,
                  cudaStream_t stream, A&&... args) {
#if defined(SUPCON_CUDA_EMULATION)
  (void)stream;
  // Arguments are copied once at the launch, as into CUDA's parameter space; every thread
  // receives its own copy.
  std::tuple<std::decay_t<P>...> params(std::forward<A>(args)...);
  ::supcon::emu::launch(name.c_str(), grid, block, sharedBytes, [&] { std::apply(kernel, params); });
#else
  (void)name;
  kernel<<<grid, block, sharedBytes, stream>>>(std::forward<A>(args)...);
#endif
}

// The block's dynamic shared memory (extern __shared__), 16-byte aligned.
template <class T>
__device__ __forceinline__ T* dynamicShared() {
#if defined(SUPCON_CUDA_EMULATION)
  return emulatedDynamicShared<T>();
#else
  extern __shared__ __align__(16) unsigned char supconDynamicShared[];
  return reinterpret_cast<T*>(supconDynamicShared);
#endif
}

}  // namespace supcon::cuda
