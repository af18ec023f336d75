// knnTopK: the k most similar training rows (cosine) of each test row, for JavaScript.
#include "../cpu/knn.h"
#include "../cpu/thread_pool.h"
#include "addon_data.h"
#include "args.h"

namespace supcon::binding {
namespace {

constexpr int64_t kMaxElements = int64_t{1} << 40;

// knnTopK(train: Float32Array, nTrain, test: Float32Array, nTest, d, k, options?: { threads })
//   -> { index: Int32Array [nTest * k], similarity: Float32Array [nTest * k] }
Napi::Value knnTopK(const Napi::CallbackInfo& info) {
  return guarded(info, [](const Napi::CallbackInfo& i) -> Napi::Value {
    Napi::Env env = i.Env();
    const int64_t nTrain = requireInteger(i[1], "nTrain", 1, INT32_MAX);
    const int64_t nTest = requireInteger(i[3], "nTest", 1, INT32_MAX);
    const int64_t d = requireInteger(i[4], "d", 1, INT32_MAX);
    const int64_t k = requireInteger(i[5], "k", 1, nTrain);
    const int64_t trainCount = checkedProduct(nTrain, d, "train", kMaxElements);
    const int64_t testCount = checkedProduct(nTest, d, "test", kMaxElements);
    const int64_t outCount = checkedProduct(nTest, k, "nTest * k", kMaxElements);
    int threads = cpu::ThreadPool::hardwareThreads();
    if (i.Length() > 6 && !i[6].IsUndefined()) {
      const Napi::Object opts = requireObject(i[6], "options");
      const Napi::Value t = opts.Get("threads");
      if (!t.IsUndefined()) threads = static_cast<int>(requireInteger(t, "options.threads", 1, 1024));
    }
    // Pointers last: the options' getters above may run any JavaScript.
    const float* train = requireTypedArray<float>(i[0], "train", trainCount).Data();
    const float* test = requireTypedArray<float>(i[2], "test", testCount).Data();
    Napi::Int32Array index = Napi::Int32Array::New(env, static_cast<size_t>(outCount));
    Napi::Float32Array similarity = Napi::Float32Array::New(env, static_cast<size_t>(outCount));
    cpu::knnTopK(cpu::KnnInput{train, nTrain, test, nTest, d, k}, index.Data(), similarity.Data(), threads);
    Napi::Object result = Napi::Object::New(env);
    result.Set("index", index);
    result.Set("similarity", similarity);
    return result;
  });
}

}  // namespace

void registerKnn(Napi::Env env, Napi::Object exports) {
  exports.Set("knnTopK", Napi::Function::New(env, knnTopK, "knnTopK"));
}

}  // namespace supcon::binding
