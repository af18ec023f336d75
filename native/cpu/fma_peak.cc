#include "fma_peak.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "supcon_cpu.h"
#include "thread_pool.h"

namespace supcon::cpu {

FmaPeak measureFmaPeak(int threads, double seconds) {
  // The widest vectors among the kernel sets this CPU supports.
  const std::string best = availableKernels().front();
  const FmaLoop* loop = &baseline::kFmaLoop;
#if defined(__x86_64__) || defined(_M_X64)
  if (best == "avx512") loop = &avx512::kFmaLoop;
  if (best == "avx2") loop = &avx2::kFmaLoop;
#endif
  threads = std::max(1, threads);
  using Clock = std::chrono::steady_clock;
  // Calibrate one thread's iteration count to about `seconds`, then run all threads.
  int64_t iterations = 1 << 16;
  for (;;) {
    const auto t0 = Clock::now();
    loop->run(iterations);
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    if (dt > seconds / 4 || iterations > (int64_t{1} << 40)) {
      iterations = static_cast<int64_t>(iterations * seconds / std::max(dt, 1e-9));
      break;
    }
    iterations *= 4;
  }
  // Several blocks per thread, so that a thread that wakes late does not leave one core
  // doing two threads' work.
  constexpr int kBlocksPerThread = 8;
  const int64_t perBlock = std::max<int64_t>(1, iterations / kBlocksPerThread);
  std::vector<double> sink(static_cast<size_t>(threads) * kBlocksPerThread);
  const auto t0 = Clock::now();
  ThreadPool::instance().parallelFor(static_cast<int64_t>(sink.size()), threads, [&](int64_t block, int) {
    sink[static_cast<size_t>(block)] = loop->run(perBlock);
  });
  const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
  const double flops = static_cast<double>(perBlock) * loop->flopsPerIteration * static_cast<double>(sink.size());
  return FmaPeak{flops / dt / 1e9, loop->name, threads};
}

}  // namespace supcon::cpu
