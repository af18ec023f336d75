#include "thread_pool.h"

#include <algorithm>

#if defined(__linux__)
#include <sched.h>
#endif

namespace supcon::cpu {

ThreadPool& ThreadPool::instance() {
  static ThreadPool pool;
  return pool;
}

int ThreadPool::hardwareThreads() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int count = CPU_COUNT(&set);
    if (count > 0) return count;
  }
#endif
  return std::max(1u, std::thread::hardware_concurrency());
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::ensureWorkers(int count) {
  // Worker 0 is the calling thread; pool threads are workers 1..count-1.
  while (static_cast<int>(workers_.size()) < count - 1) {
    const int worker = static_cast<int>(workers_.size()) + 1;
    workers_.emplace_back([this, worker] { workerLoop(worker); });
  }
}

void ThreadPool::runBlocks(int worker) {
  for (;;) {
    int64_t block;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (next_ >= jobCount_ || error_) return;
      block = next_++;
    }
    try {
      (*job_)(block, worker);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
      return;
    }
  }
}

void ThreadPool::workerLoop(int worker) {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      if (worker >= jobThreads_) continue;
      ++active_;
    }
    runBlocks(worker);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      --active_;
    }
    done_.notify_all();
  }
}

void ThreadPool::parallelFor(int64_t count, int threads,
                             const std::function<void(int64_t, int)>& fn) {
  if (count <= 0) return;
  threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, count)));
  if (threads == 1) {
    for (int64_t b = 0; b < count; ++b) fn(b, 0);
    return;
  }
  std::lock_guard<std::mutex> call(callMutex_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ensureWorkers(threads);
    job_ = &fn;
    jobCount_ = count;
    next_ = 0;
    jobThreads_ = threads;
    error_ = nullptr;
    ++generation_;
  }
  wake_.notify_all();
  runBlocks(0);
  std::exception_ptr error;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    // Every block has been handed out once the caller's runBlocks returns (or an error
    // stopped the hand-out); wait for the workers still inside a block.
    done_.wait(lock, [&] { return active_ == 0; });
    job_ = nullptr;
    error = error_;
    error_ = nullptr;
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace supcon::cpu
