// cudaGemm / cudaTimeGemm: the GPU twin of nn.gemm, on CUDA tensor storages.
#include "addon_data.h"
#include "args.h"
#include "cuda_args.h"
#include "storage.h"

#if defined(SUPCON_WITH_CUDA)
#include "../cuda/gemm_cuda.h"
#endif

namespace supcon::binding {
namespace {

constexpr int64_t kMaxElements = int64_t{1} << 40;

#if defined(SUPCON_WITH_CUDA)
// Elements a stored rows x cols matrix with leading dimension ld spans.
int64_t span(int64_t rows, int64_t cols, int64_t ld, const std::string& name) {
  if (ld < cols) throw rangeError("ld" + name + ": expected at least " + std::to_string(cols) + ", got " + std::to_string(ld));
  return rows == 0 ? 0 : checkedProduct(rows - 1, ld, name, kMaxElements) + cols;
}

#endif

// cudaGemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, precision?)
Napi::Value cudaGemm(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
#if defined(SUPCON_WITH_CUDA)
    cuda::GemmArgs a{};
    a.transA = requireBoolean(i[0], "transA");
    a.transB = requireBoolean(i[1], "transB");
    a.M = requireInteger(i[2], "M", 0, INT32_MAX);
    a.N = requireInteger(i[3], "N", 0, INT32_MAX);
    a.K = requireInteger(i[4], "K", 0, INT32_MAX);
    a.alpha = requireFloat32(i[5], "alpha");
    a.lda = requireInteger(i[7], "lda", 1, INT32_MAX);
    a.ldb = requireInteger(i[9], "ldb", 1, INT32_MAX);
    a.beta = requireFloat32(i[10], "beta");
    a.ldc = requireInteger(i[12], "ldc", 1, INT32_MAX);
    a.A = deviceFloats(i[6], "A", a.transA ? span(a.K, a.M, a.lda, "A") : span(a.M, a.K, a.lda, "A"));
    a.B = deviceFloats(i[8], "B", a.transB ? span(a.N, a.K, a.ldb, "B") : span(a.K, a.N, a.ldb, "B"));
    a.C = deviceFloats(i[11], "C", span(a.M, a.N, a.ldc, "C"));
    cuda::gemm(a, precisionOf(i[13]));
    return i.Env().Undefined();
#else
    throw rangeError("cudaGemm: this build has no CUDA kernels");
    return i.Env().Undefined();
#endif
  });
}

// cudaTimeGemm(M, N, K, precision, repeats) -> ms[] (random operands, CUDA events).
Napi::Value cudaTimeGemm(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
#if defined(SUPCON_WITH_CUDA)
    const int64_t M = requireInteger(i[0], "M", 1, 65536), N = requireInteger(i[1], "N", 1, 65536);
    const int64_t K = requireInteger(i[2], "K", 1, 65536);
    const auto ms = cuda::timeGemm(M, N, K, precisionOf(i[3]), static_cast<int>(requireInteger(i[4], "repeats", 1, 1000)));
    Napi::Array out = Napi::Array::New(i.Env());
    for (uint32_t k = 0; k < ms.size(); ++k) out.Set(k, ms[k]);
    return out;
#else
    throw rangeError("cudaTimeGemm: this build has no CUDA kernels");
    return i.Env().Undefined();
#endif
  });
}

}  // namespace

void registerCudaOps(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaGemm", Napi::Function::New(env, cudaGemm, "cudaGemm"));
  exports.Set("cudaTimeGemm", Napi::Function::New(env, cudaTimeGemm, "cudaTimeGemm"));
}

}  // namespace supcon::binding
