// Tests of the emulated CUDA backend itself: the planted defects it must report (reads and
// writes out of bounds, a read after free, a shared-memory race, a divergent barrier, a
// shuffle with an exited lane, host code touching device memory), and the semantics of the
// intrinsics it provides (shuffles, votes, cvt.rna.tf32, bf16 rounding, the mma.sync
// fragments through the engines of mma.cuh) against independent references.
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "../../launch.cuh"
#include "../../mma.cuh"
#include "../emu_control.h"

using supcon::cuda::launchKernel;

namespace {

int gChecks = 0, gFailures = 0;

void expect(bool ok, const std::string& what) {
  ++gChecks;
  if (!ok) {
    ++gFailures;
    std::printf("FAIL %s\n", what.c_str());
  }
}

// The pending error of the last launch: "" when it succeeded.
std::string launchError() {
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? std::string() : std::string(cudaGetErrorString(e));
}

void expectError(const std::string& error, const std::string& needle, const std::string& what) {
  expect(error.find(needle) != std::string::npos, what + ": expected an error containing '" + needle + "', got '" + error + "'");
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif

// Runs fn in a child process; returns what it wrote to stderr, and its status in *status.
std::string inChild(const std::function<void()>& fn, int* status) {
  int fds[2];
  if (pipe(fds) != 0) std::abort();
  std::fflush(stdout);
  const pid_t child = fork();
  if (child == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    fn();
    _exit(0);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t k; (k = read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(k));
  close(fds[0]);
  waitpid(child, status, 0);
  return out;
}

// An access into the slack beside a buffer (inside its mapped page): the emulator reports a
// write by its canary; under AddressSanitizer the slack is poisoned, and the sanitizer stops
// the process at the access, read or write (checked in a child).
void expectSlackAccess(const std::function<void()>& launch, const std::string& emulatorNeedle, const std::string& what) {
  if (kAsan) {
    int status = 0;
    const std::string report = inChild(launch, &status);
    expect(WIFEXITED(status) && WEXITSTATUS(status) != 0, what + ": the sanitizer stops the process");
    expectError(report, "AddressSanitizer: use-after-poison", what + " (sanitizer)");
    return;
  }
  launch();
  const std::string e = launchError();
  if (!emulatorNeedle.empty()) expectError(e, emulatorNeedle, what);
}

template <class T>
T* deviceArray(size_t count) {
  T* p = nullptr;
  if (cudaMalloc(&p, count * sizeof(T)) != cudaSuccess) std::abort();
  return p;
}

template <class T>
std::vector<T> toHost(const T* d, size_t count) {
  std::vector<T> h(count);
  cudaMemcpy(h.data(), d, count * sizeof(T), cudaMemcpyDeviceToHost);
  return h;
}

void setGuard(supcon::emu::Guard g, int schedules) {
  supcon::emu::Settings s = supcon::emu::settings();
  s.guard = g;
  s.schedules = schedules;
  supcon::emu::configure(s);
}

// ---- planted defects

__global__ void readAt(const float* x, int offset, float* out) {
  if (threadIdx.x == 0) out[0] = x[offset];
}

__global__ void writeAt(float* x, int offset) {
  if (threadIdx.x == 0) x[offset] = 1.f;
}

__global__ void racyReverse(const float* in, float* out, int withBarrier) {
  __shared__ float s[256];
  const int t = threadIdx.x;
  s[t] = in[t];
  if (withBarrier) __syncthreads();
  out[t] = s[255 - t];
}

// Lanes of one warp exchange through shared memory with or without __syncwarp.
__global__ void racyWarp(float* out, int withSync) {
  __shared__ float s[32];
  const int t = threadIdx.x;
  s[t] = static_cast<float>(t * t);
  if (withSync) __syncwarp();
  out[t] = s[(t + 1) & 31];
}

__global__ void divergentBarrier(float* out) {
  if (threadIdx.x < 128) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1.f;
}

__global__ void shuffleAfterExit(float* out) {
  if (threadIdx.x == 3) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.f, 1);
}

void plantedDefects() {
  const int n = 37;
  std::vector<float> host(n);
  for (int k = 0; k < n; ++k) host[k] = static_cast<float>(k) + 0.5f;

  for (const supcon::emu::Guard g : {supcon::emu::Guard::After, supcon::emu::Guard::Before}) {
    setGuard(g, 1);
    const bool after = g == supcon::emu::Guard::After;
    const std::string mode = after ? "guard after" : "guard before";
    float* x = deviceArray<float>(n);
    float* out = deviceArray<float>(1);
    cudaMemcpy(x, host.data(), n * sizeof(float), cudaMemcpyHostToDevice);

    launchKernel("readAt", readAt, 1, 32, 0, nullptr, x, n - 1, out);
    expect(launchError().empty(), mode + ": an in-bounds read succeeds");
    expect(toHost(out, 1)[0] == host[n - 1], mode + ": the in-bounds read returns the element");

    // A read a whole page away from the buffer faults in either placement.
    launchKernel("readAt", readAt, 1, 32, 0, nullptr, x, after ? n + 1024 : -1024, out);
    std::string e = launchError();
    expectError(e, "kernel readAt: a read of", mode + ": a far out-of-bounds read");
    expectError(e, after ? "past the end of device buffer" : "before device buffer", mode + ": names the side");
    expectError(e, "thread (0,0,0) in block (0,0,0)", mode + ": names the thread and block");

    // The first element past the flush side faults at once. With the guard after, 37 floats
    // end 12 bytes short of the 16-byte rounding: x[37..39] are slack, x[40] faults.
    launchKernel("readAt", readAt, 1, 32, 0, nullptr, x, after ? n + 3 : -1, out);
    expectError(launchError(), after ? "a read of byte offset 160, past the end of device buffer" : "a read of 4 bytes before device buffer",
                mode + ": the first element outside the buffer");
    if (after)
      expectSlackAccess([&] { launchKernel("readAt", readAt, 1, 32, 0, nullptr, x, n, out); }, "",
                        mode + ": a read in the slack");

    launchKernel("writeAt", writeAt, 1, 32, 0, nullptr, x, after ? n + 3 : -1);
    expectError(launchError(), "kernel writeAt: a write to", mode + ": an out-of-bounds write faults");

    // A write into the slack beside the buffer (inside the mapped page) is caught by the canary.
    expectSlackAccess([&] { launchKernel("writeAt", writeAt, 1, 32, 0, nullptr, x, after ? n : n + 100); },
                      "kernel writeAt: a write to byte offset " + std::to_string(after ? 148 : 548) +
                          ", past the end of device buffer",
                      mode + ": a write into the slack");

    cudaFree(x);
    launchKernel("readAt", readAt, 1, 32, 0, nullptr, x, 0, out);
    expectError(launchError(), "freed device buffer", mode + ": a read after free");
    cudaFree(out);
  }
  setGuard(supcon::emu::Guard::After, 1);

  // Races: one schedule cannot see them; two schedules must, and must pass the fixed kernel.
  float* in = deviceArray<float>(256);
  float* out = deviceArray<float>(256);
  std::vector<float> ramp(256);
  for (int k = 0; k < 256; ++k) ramp[k] = static_cast<float>(k);
  cudaMemcpy(in, ramp.data(), sizeof(float) * 256, cudaMemcpyHostToDevice);
  setGuard(supcon::emu::Guard::After, 2);
  launchKernel("racyReverse", racyReverse, 1, 256, 0, nullptr, in, out, 0);
  expectError(launchError(), "depend on the order the threads run in", "a missing __syncthreads is reported");
  launchKernel("racyReverse", racyReverse, 1, 256, 0, nullptr, in, out, 1);
  expect(launchError().empty(), "with the __syncthreads the kernel passes under two schedules");
  const std::vector<float> rev = toHost(out, 256);
  bool reversed = true;
  for (int k = 0; k < 256; ++k) reversed &= rev[k] == static_cast<float>(255 - k);
  expect(reversed, "the fixed kernel reverses");
  launchKernel("racyWarp", racyWarp, 1, 32, 0, nullptr, out, 0);
  expectError(launchError(), "depend on the order the threads run in", "a missing __syncwarp is reported");
  launchKernel("racyWarp", racyWarp, 1, 32, 0, nullptr, out, 1);
  expect(launchError().empty(), "with the __syncwarp the warp exchange passes");
  setGuard(supcon::emu::Guard::After, 3);
  launchKernel("racyReverse", racyReverse, 1, 256, 0, nullptr, in, out, 0);
  expectError(launchError(), "depend on the order", "three schedules report the race too");
  setGuard(supcon::emu::Guard::After, 1);

  launchKernel("divergentBarrier", divergentBarrier, 2, 256, 0, nullptr, out);
  const std::string div = launchError();
  expectError(div, "divergent __syncthreads", "a divergent barrier is reported");
  expectError(div, "emu_test.cc:", "the report names the barriers' lines");

  launchKernel("shuffleAfterExit", shuffleAfterExit, 1, 32, 0, nullptr, out);
  expectError(launchError(), "which has exited", "a shuffle waiting for an exited lane is reported");

  launchKernel("readAt", readAt, 1, 2048, 0, nullptr, in, 0, out);
  expectError(launchError(), "invalid configuration", "a block of 2048 threads is refused");
  launchKernel("readAt", readAt, 1, 32, 64 * 1024, nullptr, in, 0, out);
  expectError(launchError(), "dynamic shared memory", "64 KiB of dynamic shared memory is refused");

  std::vector<float> big(300);
  expect(cudaMemcpy(in, big.data(), sizeof(float) * 300, cudaMemcpyHostToDevice) == cudaErrorInvalidValue,
         "a copy past the end of a device buffer is refused");
  cudaGetLastError();
  expect(cudaFree(in + 1) == cudaErrorInvalidValue, "freeing an interior pointer is refused");
  cudaGetLastError();

  // Host code that dereferences a device pointer faults (in a child, which must die by it).
  int status = 0;
  const std::string report = inChild([&] {
    volatile float v = *in;
    (void)v;
  }, &status);
  expectError(report, "host code made a read of offset 0 of device buffer", "host access to device memory is named");
  expect(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0), "host code reading device memory is stopped");
  cudaFree(in);
  cudaFree(out);
}

// ---- intrinsics

__global__ void shuffles(int width, unsigned* out) {
  const unsigned t = threadIdx.x;
  const unsigned v = 1000 + t * 7;
  out[t * 4 + 0] = __shfl_sync(0xffffffffu, v, 5, width);
  out[t * 4 + 1] = __shfl_up_sync(0xffffffffu, v, 3, width);
  out[t * 4 + 2] = __shfl_down_sync(0xffffffffu, v, 3, width);
  out[t * 4 + 3] = __shfl_xor_sync(0xffffffffu, v, 6, width);
}

__global__ void votes(unsigned* out) {
  const unsigned t = threadIdx.x;
  out[t * 3 + 0] = __ballot_sync(0xffffffffu, t % 3 == 0);
  out[t * 3 + 1] = static_cast<unsigned>(__any_sync(0xffffffffu, t == 17));
  out[t * 3 + 2] = static_cast<unsigned>(__all_sync(0xffffffffu, t < 31));
}

__global__ void halfWarpShuffle(double* out) {
  const unsigned t = threadIdx.x;
  const unsigned mask = t < 16 ? 0x0000ffffu : 0xffff0000u;
  double x = 0.25 * t;
  for (int o = 8; o > 0; o >>= 1) x += __shfl_xor_sync(mask, x, o);
  out[t] = x;
}

void intrinsics() {
  unsigned* out = deviceArray<unsigned>(128);
  for (int width : {32, 16, 8, 4}) {
    launchKernel("shuffles", shuffles, 1, 32, 0, nullptr, width, out);
    expect(launchError().empty(), "shuffles run");
    const std::vector<unsigned> got = toHost(out, 128);
    bool ok = true;
    for (int t = 0; t < 32; ++t) {
      const int start = t / width * width;
      const auto val = [](int lane) { return 1000u + static_cast<unsigned>(lane) * 7u; };
      ok &= got[t * 4 + 0] == val(start + 5 % width);
      ok &= got[t * 4 + 1] == val(t - 3 >= start ? t - 3 : t);
      ok &= got[t * 4 + 2] == val(t + 3 < start + width ? t + 3 : t);
      ok &= got[t * 4 + 3] == val((t ^ 6) < start + width ? (t ^ 6) : t);
    }
    expect(ok, "shuffle results at width " + std::to_string(width));
  }
  launchKernel("votes", votes, 1, 32, 0, nullptr, out);
  const std::vector<unsigned> v = toHost(out, 96);
  unsigned ballot = 0;
  for (int t = 0; t < 32; t += 3) ballot |= 1u << t;
  bool ok = true;
  for (int t = 0; t < 32; ++t) ok &= v[t * 3] == ballot && v[t * 3 + 1] == 1u && v[t * 3 + 2] == 0u;
  expect(ok, "ballot, any and all");
  cudaFree(out);

  double* sums = deviceArray<double>(32);
  launchKernel("halfWarpShuffle", halfWarpShuffle, 1, 32, 0, nullptr, sums);
  expect(launchError().empty(), "two half-warp collectives with disjoint masks complete");
  const std::vector<double> s = toHost(sums, 32);
  expect(s[0] == 0.25 * 120 && s[31] == 0.25 * (120 + 16 * 16), "half-warp butterfly sums");
  cudaFree(sums);

  // cvt.rna.tf32.f32: ties away from zero at the 10th mantissa bit.
  const auto bits = [](float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; };
  const auto val = [](uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; };
  expect(supcon::emu::cvtRnaTf32(1.0f + 0x1p-11f) == bits(1.0f + 0x1p-10f), "tf32: a tie rounds away from zero");
  expect(supcon::emu::cvtRnaTf32(-(1.0f + 0x1p-11f)) == bits(-(1.0f + 0x1p-10f)), "tf32: a negative tie rounds away");
  expect(supcon::emu::cvtRnaTf32(1.0f + 0x1p-12f) == bits(1.0f), "tf32: below half rounds down");
  expect(std::isfinite(val(supcon::emu::cvtRnaTf32(3.0e38f))) && (supcon::emu::cvtRnaTf32(3.0e38f) & 0x1fffu) == 0,
         "tf32: a large finite value stays finite with 10 mantissa bits");
  expect(supcon::emu::cvtRnaTf32(val(0x7f7fffffu)) == 0x7f800000u, "tf32: the float maximum rounds up to infinity");
  expect((supcon::emu::cvtRnaTf32(0.1f) & 0x1fffu) == 0, "tf32: the low 13 bits are zero");
  // bf16: ties to even.
  expect(__float2bfloat16_rn(1.0f + 0x1p-8f).x == 0x3f80, "bf16: a tie rounds to even (down)");
  expect(__float2bfloat16_rn(1.0f + 3 * 0x1p-8f).x == 0x3f82, "bf16: a tie rounds to even (up)");
  expect(__float2bfloat16_rn(1.0f + 0x1p-8f + 0x1p-20f).x == 0x3f81, "bf16: above half rounds up");
}

// One warp computes C = A B (16 x 8, K = 16) with an engine of mma.cuh, as the kernels do.
template <class E>
__global__ void engineTile(const float* A, const float* B, float* C) {
  const int lane = threadIdx.x, g = lane >> 2, t = lane & 3;
  float acc[4][4] = {};
  const auto a = [&](int r, int k) { return A[r * 16 + k]; };
  const auto b = [&](int k, int c) { return B[k * 32 + c]; };
  for (int k = 0; k < 16; k += E::kStep) E::step(acc, a, b, k, g, t);
  supcon::cuda::forEachHeld(acc, 0, 0, g, t, [&](int r, int c, float& v) {
    if (r < 16) C[r * 32 + c] = v;
  });
}

// A warp of the engines covers 16 rows x 32 columns; the reference is float64 on operands
// rounded as the hardware rounds them (tf32: to nearest, ties away; bf16: to nearest even).
template <class E>
void engineCheck(const char* name, float (*round)(float), double tolerance) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> A(16 * 16), B(16 * 32);
  for (float& x : A) x = u(rng);
  for (float& x : B) x = u(rng);
  float* dA = deviceArray<float>(A.size());
  float* dB = deviceArray<float>(B.size());
  float* dC = deviceArray<float>(16 * 32);
  cudaMemcpy(dA, A.data(), A.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(dB, B.data(), B.size() * 4, cudaMemcpyHostToDevice);
  launchKernel(std::string("engineTile<") + name + ">", engineTile<E>, 1, 32, 0, nullptr, dA, dB, dC);
  expect(launchError().empty(), std::string(name) + " engine runs");
  const std::vector<float> C = toHost(dC, 16 * 32);
  double worst = 0;
  for (int r = 0; r < 16; ++r)
    for (int c = 0; c < 32; ++c) {
      double ref = 0;
      for (int k = 0; k < 16; ++k) ref += static_cast<double>(round(A[r * 16 + k])) * round(B[k * 32 + c]);
      worst = std::max(worst, std::abs(ref - C[r * 32 + c]));
    }
  expect(worst <= tolerance, std::string(name) + " engine tile against float64: worst error " + std::to_string(worst));
  cudaFree(dA);
  cudaFree(dB);
  cudaFree(dC);
}

float exact(float x) { return x; }
float roundTf32(float x) {
  const uint32_t u = supcon::emu::cvtRnaTf32(x);
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
float roundBf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

}  // namespace

int main() {
  plantedDefects();
  intrinsics();
  // Products of rounded operands are exact in fp32; only the 16-term fp32 sum rounds.
  engineCheck<supcon::cuda::Fp32Engine>("fp32", exact, 1e-5);
  engineCheck<supcon::cuda::Tf32Engine>("tf32", roundTf32, 1e-5);
  engineCheck<supcon::cuda::Bf16Engine>("bf16", roundBf16, 1e-5);
  std::printf("emu_test: %d checks, %d failures\n", gChecks, gFailures);
  return gFailures == 0 ? 0 : 1;
}
