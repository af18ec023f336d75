// Measures the fp32 FMA peak of this machine (GFLOP/s), with the best vector width this
// CPU supports, on `threads` threads.
#pragma once

#include <cstdint>

namespace supcon::cpu {

struct FmaLoop {
  const char* name;
  int flopsPerIteration;
  double (*run)(int64_t iterations);
};

namespace avx512 { extern const FmaLoop kFmaLoop; }
namespace avx2 { extern const FmaLoop kFmaLoop; }
namespace baseline { extern const FmaLoop kFmaLoop; }

struct FmaPeak {
  double gflops;
  const char* kernels;
  int threads;
};

FmaPeak measureFmaPeak(int threads, double seconds);

}  // namespace supcon::cpu
