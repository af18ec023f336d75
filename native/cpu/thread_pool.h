// A fixed pool of worker threads for data-parallel loops over independent blocks.
//
// Which thread runs which block never changes a result: every block writes only its own
// outputs, and reductions happen afterwards in a fixed order. So results are the same bits
// for any thread count.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace supcon::cpu {

class ThreadPool {
 public:
  // fn(block, worker) for block in [0, count), on at most `threads` threads (the caller's
  // among them); worker in [0, threads). Rethrows the first exception a block threw.
  void parallelFor(int64_t count, int threads, const std::function<void(int64_t, int)>& fn);

  static ThreadPool& instance();
  // Threads the machine gives this process (affinity-aware).
  static int hardwareThreads();
  ~ThreadPool();

 private:
  void ensureWorkers(int count);
  void workerLoop(int worker);
  void runBlocks(int worker);

  std::mutex mutex_;       // guards the job fields below and the worker list
  std::mutex callMutex_;   // one parallelFor at a time
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t, int)>* job_ = nullptr;
  int64_t jobCount_ = 0;
  int64_t next_ = 0;
  int jobThreads_ = 0;
  int active_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace supcon::cpu
