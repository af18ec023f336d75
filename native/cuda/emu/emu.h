// The emulated CUDA device: what the CUDA sources in native/cuda/ see when they are compiled
// by the host compiler (SUPCON_CUDA_EMULATION) instead of nvcc. Reached through the shim
// headers in include/ (cuda_runtime.h, cuda_bf16.h), so the .cu files compile unchanged.
//
// Execution model (docs/GPU.md, "The emulated backend"):
//   - a launch runs its blocks one after another; each thread of a block is a fiber on its
//     own stack, and runs until it reaches a barrier, a warp collective or its end;
//   - __syncthreads releases when every live thread of the block waits at the same call
//     site; threads waiting at different barriers fail the launch (a divergent barrier);
//   - warp collectives (shuffles, votes, mma.sync) complete when every lane named in the
//     mask has arrived; a lane that exited or waits elsewhere fails the launch;
//   - static __shared__ variables are thread-local function statics and each block runs on
//     a fresh OS thread, so a block's fibers share one zeroed instance and never see another
//     block's data; dynamic shared memory is an arena poisoned before each block;
//   - device memory is host memory between guard pages (runtime in emulator.cc).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __align__(n) alignas(n)
// One instance per block: every block runs on an OS thread of its own, whose fibers share
// the thread-local static, which starts zeroed.
#define __shared__ static thread_local

struct uint3 {
  unsigned int x, y, z;
};
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) int4 {
  int x, y, z, w;
};
struct alignas(8) int2 {
  int x, y;
};
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline float2 make_float2(float x, float y) { return float2{x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return int4{x, y, z, w}; }
inline int2 make_int2(int x, int y) { return int2{x, y}; }

namespace supcon::emu {

// The running thread and block (the emulator is single-threaded: launches are serialised).
struct ThreadState {
  uint3 index;
  int linear, lane, warp;
};
struct BlockState {
  uint3 index;
  dim3 dim, grid;
  unsigned char* dynamicShared;
};
extern ThreadState* gThread;
extern BlockState* gBlock;

// Barriers and warp collectives; the call site names the barrier in error reports.
void syncthreads(const char* file, int line);
void syncwarp(unsigned mask, const char* file, int line);
enum class ShuffleKind { Index, Up, Down, Xor };
uint64_t shuffle(ShuffleKind kind, unsigned mask, uint64_t value, int operand, int width, const char* file, int line);
enum class VoteKind { Ballot, Any, All };
unsigned vote(VoteKind kind, unsigned mask, bool predicate, const char* file, int line);
unsigned activeMask();

// mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 and m16n8k16 ... bf16: warp
// collectives, with the PTX ISA's fragment ownership (groupID = lane / 4, threadID = lane %
// 4). d holds C on entry and D = A B + C on return.
void mmaTf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]);
void mmaBf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]);

// cvt.rna.tf32.f32: to 10 explicit mantissa bits, round to nearest, ties away from zero.
inline uint32_t cvtRnaTf32(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7f800000u) == 0x7f800000u) return (u & 0x7fffffffu) > 0x7f800000u ? 0x7fffffffu : u;
  return (u + 0x1000u) & 0xffffe000u;
}

// A launch: gridDim x blockDim fibers running body(); false when the configuration is
// invalid or the launch failed (the error is then pending for cudaGetLastError).
void launch(const char* name, dim3 grid, dim3 block, size_t dynamicSharedBytes, const std::function<void()>& body);

template <class T>
uint64_t toBits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffles move at most 8 bytes");
  uint64_t u = 0;
  std::memcpy(&u, &v, sizeof v);
  return u;
}
template <class T>
T fromBits(uint64_t u) {
  T v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}

}  // namespace supcon::emu

#define threadIdx (::supcon::emu::gThread->index)
#define blockIdx (::supcon::emu::gBlock->index)
#define blockDim (::supcon::emu::gBlock->dim)
#define gridDim (::supcon::emu::gBlock->grid)
constexpr int warpSize = 32;

inline void __syncthreads(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  ::supcon::emu::syncthreads(file, line);
}
inline void __syncwarp(unsigned mask = 0xffffffffu, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  ::supcon::emu::syncwarp(mask, file, line);
}
template <class T>
T __shfl_sync(unsigned mask, T var, int srcLane, int width = 32, const char* file = __builtin_FILE(),
              int line = __builtin_LINE()) {
  using namespace ::supcon::emu;
  return fromBits<T>(shuffle(ShuffleKind::Index, mask, toBits(var), srcLane, width, file, line));
}
template <class T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32, const char* file = __builtin_FILE(),
                 int line = __builtin_LINE()) {
  using namespace ::supcon::emu;
  return fromBits<T>(shuffle(ShuffleKind::Up, mask, toBits(var), static_cast<int>(delta), width, file, line));
}
template <class T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32, const char* file = __builtin_FILE(),
                   int line = __builtin_LINE()) {
  using namespace ::supcon::emu;
  return fromBits<T>(shuffle(ShuffleKind::Down, mask, toBits(var), static_cast<int>(delta), width, file, line));
}
template <class T>
T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = 32, const char* file = __builtin_FILE(),
                  int line = __builtin_LINE()) {
  using namespace ::supcon::emu;
  return fromBits<T>(shuffle(ShuffleKind::Xor, mask, toBits(var), laneMask, width, file, line));
}
inline unsigned __ballot_sync(unsigned mask, int pred, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return ::supcon::emu::vote(::supcon::emu::VoteKind::Ballot, mask, pred != 0, file, line);
}
inline int __any_sync(unsigned mask, int pred, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return static_cast<int>(::supcon::emu::vote(::supcon::emu::VoteKind::Any, mask, pred != 0, file, line));
}
inline int __all_sync(unsigned mask, int pred, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return static_cast<int>(::supcon::emu::vote(::supcon::emu::VoteKind::All, mask, pred != 0, file, line));
}
inline unsigned __activemask() { return ::supcon::emu::activeMask(); }

// Atomics: fibers switch only at barriers and collectives, so a read-modify-write is atomic.
template <class T>
T atomicAdd(T* address, T value) {
  const T old = *address;
  *address = old + value;
  return old;
}
template <class T>
T atomicMax(T* address, T value) {
  const T old = *address;
  if (value > old) *address = value;
  return old;
}
template <class T>
T atomicMin(T* address, T value) {
  const T old = *address;
  if (value < old) *address = value;
  return old;
}
template <class T>
T atomicExch(T* address, T value) {
  const T old = *address;
  *address = value;
  return old;
}
template <class T>
T atomicCAS(T* address, T compare, T value) {
  const T old = *address;
  if (old == compare) *address = value;
  return old;
}

inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : (x == x ? x : 0.f)); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __fdividef(float a, float b) { return a / b; }
// Bit casts and the rounded (never fused) double operations.
template <class To, class From>
To emulatedBitCast(From x) {
  static_assert(sizeof(To) == sizeof(From), "a bit cast keeps the size");
  To out;
  std::memcpy(&out, &x, sizeof out);
  return out;
}
inline unsigned __float_as_uint(float x) { return emulatedBitCast<unsigned>(x); }
inline float __uint_as_float(unsigned u) { return emulatedBitCast<float>(u); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
using std::isfinite;

// Dynamic shared memory of the running block (extern __shared__ in CUDA).
template <class T>
T* emulatedDynamicShared() {
  return reinterpret_cast<T*>(::supcon::emu::gBlock->dynamicShared);
}
