// The CUDA twins of nn.* (nn): argument checks, then native/cuda.
#include "addon_data.h"
#include "args.h"
#include "cuda_args.h"
#include "storage.h"

namespace supcon::binding {

void registerCudaNn(Napi::Env, Napi::Object) {}

}  // namespace supcon::binding
