// The emulated CUDA backend: fibers for the threads of a block, the barriers and warp
// collectives between them, tensor-core fragments, and the runtime (device memory between
// guard pages, copies, streams, events, errors). See emu.h for the execution model and
// docs/GPU.md for what it proves.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "emu_control.h"
#include "include/cuda_runtime.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define SUPCON_EMU_ASAN 1
#else
#define SUPCON_EMU_ASAN 0
#endif

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace supcon::emu {

ThreadState* gThread = nullptr;
BlockState* gBlock = nullptr;

namespace {

// ----------------------------------------------------------------------------------------
// Errors. A failed call or launch leaves its code and message pending; cudaGetLastError and
// the synchronising calls return the code and clear it (real GPUs keep execution errors
// sticky; the emulator does not, so that one failing case does not end a test run).

std::recursive_mutex gMutex;
cudaError_t gPending = cudaSuccess;
cudaError_t gMessageCode = cudaSuccess;
std::string gMessage;

cudaError_t fail(cudaError_t code, const std::string& message) {
  if (gPending == cudaSuccess) gPending = code;
  gMessageCode = code;
  gMessage = message;
  return code;
}

cudaError_t takePending() {
  const cudaError_t e = gPending;
  gPending = cudaSuccess;
  return e;
}

Settings& mutableSettings() {
  static Settings s = [] {
    Settings init;
    if (const char* v = std::getenv("SUPCON_EMU_SCHEDULES"); v != nullptr && *v != '\0')
      init.schedules = std::clamp(std::atoi(v), 1, 3);
    if (const char* v = std::getenv("SUPCON_EMU_GUARD"); v != nullptr && std::string(v) == "before")
      init.guard = Guard::Before;
    if (const char* v = std::getenv("SUPCON_EMU_MEMORY_MB"); v != nullptr && std::atoll(v) > 0)
      init.memoryBytes = static_cast<uint64_t>(std::atoll(v)) << 20;
    return init;
  }();
  return s;
}

size_t pageSize() {
  static const size_t p = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return p;
}
size_t roundUp(size_t x, size_t to) { return (x + to - 1) / to * to; }

// ----------------------------------------------------------------------------------------
// Device memory: each buffer in its own mapping, [guard page][data pages][guard page]. The
// data pages are inaccessible except while a launch or a copy runs, so host code that
// dereferences a device pointer faults too. Freed buffers stay mapped without access for a
// while (a read after free faults and is named).

constexpr unsigned char kCanary = 0xcd;
constexpr size_t kQuarantineBytes = size_t{256} << 20;

struct Buffer {
  uint64_t id;
  char* region;       // the whole mapping
  size_t regionBytes;
  char* data;         // first data page
  size_t dataBytes;   // data pages
  char* user;         // what cudaMalloc returned
  size_t bytes;       // what was asked for
  bool freed;
};

struct Memory {
  std::map<uintptr_t, Buffer> byRegion;  // region start -> buffer (live and quarantined)
  std::vector<uintptr_t> quarantine;     // oldest first
  size_t quarantinedBytes = 0;
  uint64_t liveBytes = 0;
  uint64_t nextId = 1;
};
Memory& memory() {
  static Memory m;
  return m;
}

// The buffer whose mapping holds p (live or freed), or null.
Buffer* bufferAt(const void* p) {
  Memory& m = memory();
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = m.byRegion.upper_bound(a);
  if (it == m.byRegion.begin()) return nullptr;
  --it;
  Buffer& b = it->second;
  return a < it->first + b.regionBytes ? &b : nullptr;
}

// The live buffer holding [p, p + bytes), or null.
Buffer* liveRange(const void* p, size_t bytes) {
  Buffer* b = bufferAt(p);
  if (b == nullptr || b->freed) return nullptr;
  const char* c = static_cast<const char*>(p);
  if (c < b->user || c + bytes > b->user + b->bytes) return nullptr;
  return b;
}

void setAccess(Buffer& b, bool on) {
  mprotect(b.data, b.dataBytes, on ? PROT_READ | PROT_WRITE : PROT_NONE);
}

void setAllAccess(bool on) {
  for (auto& [start, b] : memory().byRegion)
    if (!b.freed) setAccess(b, on);
}

struct SlackRange {
  char* begin;
  size_t bytes;
};
void slackOf(const Buffer& b, SlackRange (&out)[2]) {
  out[0] = {b.data, static_cast<size_t>(b.user - b.data)};
  out[1] = {b.user + b.bytes, static_cast<size_t>(b.data + b.dataBytes - (b.user + b.bytes))};
}

// The canary bytes are read on purpose: never instrumented.
__attribute__((no_sanitize_address)) bool canaryIntact(const SlackRange& r, size_t* firstBad) {
  for (size_t k = 0; k < r.bytes; ++k)
    if (static_cast<unsigned char>(r.begin[k]) != kCanary) {
      *firstBad = k;
      return false;
    }
  return true;
}

// A description of address p against the buffers, for fault and canary reports.
std::string describeAddress(const void* p) {
  Buffer* b = bufferAt(p);
  if (b == nullptr) return "an address outside every device buffer";
  const char* c = static_cast<const char*>(p);
  char text[256];
  const char* state = b->freed ? "freed " : "";
  if (c < b->user)
    std::snprintf(text, sizeof text, "%zu bytes before %sdevice buffer #%llu (%zu bytes)",
                  static_cast<size_t>(b->user - c), state, static_cast<unsigned long long>(b->id), b->bytes);
  else if (c >= b->user + b->bytes)
    std::snprintf(text, sizeof text, "byte offset %zu, past the end of %sdevice buffer #%llu (%zu bytes)",
                  static_cast<size_t>(c - b->user), state, static_cast<unsigned long long>(b->id), b->bytes);
  else
    std::snprintf(text, sizeof text, "offset %zu of %sdevice buffer #%llu (%zu bytes)", static_cast<size_t>(c - b->user),
                  state, static_cast<unsigned long long>(b->id), b->bytes);
  return text;
}

void releaseRegion(Buffer& b) { munmap(b.region, b.regionBytes); }

cudaError_t allocate(void** out, size_t bytes) {
  if (out == nullptr) return fail(cudaErrorInvalidValue, "cudaMalloc: the output pointer is null");
  *out = nullptr;
  Memory& m = memory();
  const Settings& s = mutableSettings();
  if (bytes > s.memoryBytes || m.liveBytes + bytes > s.memoryBytes)
    return fail(cudaErrorMemoryAllocation, "out of memory: the emulated device has " +
                                               std::to_string(s.memoryBytes) + " bytes, " +
                                               std::to_string(m.liveBytes) + " in use, " +
                                               std::to_string(bytes) + " asked for");
  const size_t page = pageSize();
  const size_t dataBytes = roundUp(std::max<size_t>(bytes, 1), page);
  const size_t regionBytes = dataBytes + 2 * page;
  void* region = mmap(nullptr, regionBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (region == MAP_FAILED) return fail(cudaErrorMemoryAllocation, "out of memory: mmap of the emulated device buffer failed");
  Buffer b{};
  b.id = m.nextId++;
  b.region = static_cast<char*>(region);
  b.regionBytes = regionBytes;
  b.data = b.region + page;
  b.dataBytes = dataBytes;
  b.bytes = bytes;
  // 16-byte alignment at least (vector loads); flush with the chosen guard page.
  b.user = s.guard == Guard::Before ? b.data : b.data + dataBytes - roundUp(std::max<size_t>(bytes, 1), 16);
  setAccess(b, true);
  std::memset(b.data, kCanary, b.dataBytes);
  std::memset(b.user, 0xff, bytes);  // uninitialised device memory reads as NaN / -1
  SlackRange slack[2];
  slackOf(b, slack);
#if SUPCON_EMU_ASAN
  for (const SlackRange& r : slack) ASAN_POISON_MEMORY_REGION(r.begin, r.bytes);
#endif
  setAccess(b, false);
  m.liveBytes += bytes;
  m.byRegion.emplace(reinterpret_cast<uintptr_t>(b.region), b);
  *out = b.user;
  return cudaSuccess;
}

cudaError_t release(void* p) {
  if (p == nullptr) return cudaSuccess;
  Memory& m = memory();
  Buffer* b = bufferAt(p);
  if (b == nullptr || b->freed || b->user != p)
    return fail(cudaErrorInvalidValue, "cudaFree: " + describeAddress(p) + " is not the start of a live device buffer");
  b->freed = true;
  m.liveBytes -= b->bytes;
#if SUPCON_EMU_ASAN
  setAccess(*b, true);
  ASAN_UNPOISON_MEMORY_REGION(b->data, b->dataBytes);
#endif
  setAccess(*b, false);
  m.quarantine.push_back(reinterpret_cast<uintptr_t>(b->region));
  m.quarantinedBytes += b->dataBytes;
  while (m.quarantinedBytes > kQuarantineBytes && !m.quarantine.empty()) {
    auto it = m.byRegion.find(m.quarantine.front());
    m.quarantine.erase(m.quarantine.begin());
    m.quarantinedBytes -= it->second.dataBytes;
    releaseRegion(it->second);
    m.byRegion.erase(it);
  }
  return cudaSuccess;
}

// Canaries of every live buffer after a launch: a write into the slack beside a buffer.
bool checkCanaries(std::string* report) {
  for (auto& [start, b] : memory().byRegion) {
    if (b.freed) continue;
    SlackRange slack[2];
    slackOf(b, slack);
    for (const SlackRange& r : slack) {
      size_t bad = 0;
      if (!canaryIntact(r, &bad)) {
        *report = "a write to " + describeAddress(r.begin + bad);
        return false;
      }
    }
  }
  return true;
}

// ----------------------------------------------------------------------------------------
// Fibers.

#if defined(__x86_64__)
extern "C" void supcon_emu_switch(void** save, void* to);
extern "C" void supcon_emu_trampoline();
// Saves the callee-saved registers, MXCSR and the x87 control word on the current stack,
// stores the stack pointer in *save and continues on `to`.
asm(R"(
  .pushsection .text
  .globl supcon_emu_switch
  .hidden supcon_emu_switch
  .type supcon_emu_switch,@function
supcon_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size supcon_emu_switch,.-supcon_emu_switch
  .globl supcon_emu_trampoline
  .hidden supcon_emu_trampoline
  .type supcon_emu_trampoline,@function
supcon_emu_trampoline:
  movq %r12, %rdi
  andq $-16, %rsp
  callq *%r13
  ud2
  .size supcon_emu_trampoline,.-supcon_emu_trampoline
  .popsection
)");
#endif

enum class Status { Runnable, AtBarrier, AtWarp, Exited, Failed };
enum class WarpKind { Shuffle, Vote, Sync, Mma };

struct WarpOp {
  WarpKind kind;
  ShuffleKind shuffle;
  VoteKind vote;
  bool bf16;
  unsigned mask;
  uint64_t value;
  int operand, width;
  uint32_t a[4], b[2];
  float c[4];
  uint64_t result;
};

struct Fiber {
  void* sp = nullptr;
  char* stack = nullptr;  // lowest usable byte (a guard page lies below)
  size_t stackBytes = 0;
#if !defined(__x86_64__)
  ucontext_t context;
#endif
  void* asanFake = nullptr;
  ThreadState state{};
  Status status = Status::Runnable;
  const char* file = "";
  int line = 0;
  WarpOp op{};
};

struct BlockRun {
  std::vector<Fiber> fibers;
  int count = 0, live = 0;
  const std::function<void()>* body = nullptr;
  void* schedulerSp = nullptr;
#if !defined(__x86_64__)
  ucontext_t schedulerContext;
#endif
  const void* mainStackBottom = nullptr;
  size_t mainStackBytes = 0;
  std::string error;  // set by a fiber or the scheduler: the block fails
  std::vector<int> order;  // the schedule (kept here: a fault jumps over runBlock's frame)
};
BlockRun gRun;
Fiber* gFiber = nullptr;

size_t stackBytes() { return SUPCON_EMU_ASAN ? size_t{512} << 10 : size_t{128} << 10; }

void ensureFibers(int count) {
  std::vector<Fiber>& f = gRun.fibers;
  if (static_cast<int>(f.size()) >= count) return;
  const size_t page = pageSize();
  const size_t n0 = f.size();
  f.resize(count);
  for (size_t k = n0; k < f.size(); ++k) {
    const size_t bytes = stackBytes();
    void* m = mmap(nullptr, bytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) throw std::bad_alloc();
    mprotect(m, page, PROT_NONE);  // stack overflow faults
    f[k].stack = static_cast<char*>(m) + page;
    f[k].stackBytes = bytes;
  }
}

void switchToScheduler(Fiber& f, bool exiting) {
#if SUPCON_EMU_ASAN
  __sanitizer_start_switch_fiber(exiting ? nullptr : &f.asanFake, gRun.mainStackBottom, gRun.mainStackBytes);
#else
  (void)exiting;
#endif
#if defined(__x86_64__)
  supcon_emu_switch(&f.sp, gRun.schedulerSp);
#else
  swapcontext(&f.context, &gRun.schedulerContext);
#endif
#if SUPCON_EMU_ASAN
  __sanitizer_finish_switch_fiber(f.asanFake, &gRun.mainStackBottom, &gRun.mainStackBytes);
#endif
}

void fiberMain(void* arg) {
  Fiber& f = *static_cast<Fiber*>(arg);
#if SUPCON_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &gRun.mainStackBottom, &gRun.mainStackBytes);
#endif
  (*gRun.body)();
  f.status = Status::Exited;
  --gRun.live;
  switchToScheduler(f, true);
  std::abort();  // an exited fiber is never resumed
}

#if !defined(__x86_64__)
void fiberMainUcontext(unsigned lo, unsigned hi) {
  fiberMain(reinterpret_cast<void*>((static_cast<uintptr_t>(hi) << 32) | lo));
}
#endif

void startFiber(Fiber& f) {
#if SUPCON_EMU_ASAN
  ASAN_UNPOISON_MEMORY_REGION(f.stack, f.stackBytes);
#endif
#if defined(__x86_64__)
  uint64_t* sp = reinterpret_cast<uint64_t*>((reinterpret_cast<uintptr_t>(f.stack) + f.stackBytes) & ~uintptr_t{15});
  *--sp = 0;  // the trampoline's return address: none
  *--sp = reinterpret_cast<uint64_t>(&supcon_emu_trampoline);
  *--sp = 0;                                    // rbp
  *--sp = 0;                                    // rbx
  *--sp = reinterpret_cast<uint64_t>(&f);       // r12: the argument
  *--sp = reinterpret_cast<uint64_t>(&fiberMain);  // r13: the entry
  *--sp = 0;                                    // r14
  *--sp = 0;                                    // r15
  --sp;
  uint32_t* control = reinterpret_cast<uint32_t*>(sp);
  control[0] = 0x1f80;  // MXCSR: round to nearest, no flush to zero (CUDA's default)
  control[1] = 0x037f;  // x87 control word
  f.sp = sp;
#else
  getcontext(&f.context);
  f.context.uc_stack.ss_sp = f.stack;
  f.context.uc_stack.ss_size = f.stackBytes;
  f.context.uc_link = nullptr;
  const uintptr_t a = reinterpret_cast<uintptr_t>(&f);
  makecontext(&f.context, reinterpret_cast<void (*)()>(&fiberMainUcontext), 2, static_cast<unsigned>(a),
              static_cast<unsigned>(a >> 32));
#endif
}

void resume(Fiber& f) {
  gFiber = &f;
  gThread = &f.state;
#if SUPCON_EMU_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, f.stack, f.stackBytes);
#endif
#if defined(__x86_64__)
  supcon_emu_switch(&gRun.schedulerSp, f.sp);
#else
  swapcontext(&gRun.schedulerContext, &f.context);
#endif
#if SUPCON_EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
  gFiber = nullptr;
}

// The running fiber stops here until the scheduler releases it.
void block(Status status, const char* file, int line) {
  Fiber& f = *gFiber;
  f.status = status;
  f.file = file;
  f.line = line;
  switchToScheduler(f, false);
}

// A misuse seen by the running fiber: the block fails, and the fiber is never resumed. The
// message is built by the caller in a statement of its own, so that no temporary of it is
// left alive on the abandoned stack.
void setFiberError(const std::string& message) {
  if (gRun.error.empty()) gRun.error = message;
}
void stopFiber() { block(Status::Failed, "", 0); }

std::string site(const char* file, int line) {
  std::string f = file;
  const size_t slash = f.find_last_of('/');
  if (slash != std::string::npos) f = f.substr(slash + 1);
  return f + ":" + std::to_string(line);
}

std::string threadName(const Fiber& f) {
  return "thread (" + std::to_string(f.state.index.x) + "," + std::to_string(f.state.index.y) + "," +
         std::to_string(f.state.index.z) + ")";
}

// ----------------------------------------------------------------------------------------
// Warp collectives, completed by the scheduler once every lane of the mask has arrived.

float tf32Value(uint32_t u) {
  u &= 0xffffe000u;  // the tensor core reads 10 explicit mantissa bits
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
float bf16Value(uint32_t u, int half) {
  const uint32_t bits = (half == 0 ? (u & 0xffffu) : (u >> 16)) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// D = A B + C for one warp: A 16 x K, B K x 8, fp32 accumulation in k order.
void completeMma(Fiber* lanes, bool bf16) {
  const int K = bf16 ? 16 : 8;
  float A[16][16], B[16][8], C[16][8];
  for (int l = 0; l < 32; ++l) {
    const WarpOp& o = lanes[l].op;
    const int g = l >> 2, t = l & 3;
    if (!bf16) {
      A[g][t] = tf32Value(o.a[0]);
      A[g + 8][t] = tf32Value(o.a[1]);
      A[g][t + 4] = tf32Value(o.a[2]);
      A[g + 8][t + 4] = tf32Value(o.a[3]);
      B[t][g] = tf32Value(o.b[0]);
      B[t + 4][g] = tf32Value(o.b[1]);
    } else {
      for (int h = 0; h < 2; ++h) {
        A[g][2 * t + h] = bf16Value(o.a[0], h);
        A[g + 8][2 * t + h] = bf16Value(o.a[1], h);
        A[g][2 * t + 8 + h] = bf16Value(o.a[2], h);
        A[g + 8][2 * t + 8 + h] = bf16Value(o.a[3], h);
        B[2 * t + h][g] = bf16Value(o.b[0], h);
        B[2 * t + 8 + h][g] = bf16Value(o.b[1], h);
      }
    }
    C[g][2 * t] = o.c[0];
    C[g][2 * t + 1] = o.c[1];
    C[g + 8][2 * t] = o.c[2];
    C[g + 8][2 * t + 1] = o.c[3];
  }
  for (int r = 0; r < 16; ++r)
    for (int c = 0; c < 8; ++c) {
      float acc = C[r][c];
      for (int k = 0; k < K; ++k) acc = std::fma(A[r][k], B[k][c], acc);
      C[r][c] = acc;
    }
  for (int l = 0; l < 32; ++l) {
    WarpOp& o = lanes[l].op;
    const int g = l >> 2, t = l & 3;
    o.c[0] = C[g][2 * t];
    o.c[1] = C[g][2 * t + 1];
    o.c[2] = C[g + 8][2 * t];
    o.c[3] = C[g + 8][2 * t + 1];
  }
}

std::string opName(const WarpOp& o) {
  switch (o.kind) {
    case WarpKind::Shuffle: return "a shuffle";
    case WarpKind::Vote: return "a vote";
    case WarpKind::Sync: return "__syncwarp";
    case WarpKind::Mma: return o.bf16 ? "mma.sync m16n8k16 bf16" : "mma.sync m16n8k8 tf32";
  }
  return "a collective";
}

// The lane that lane m's shuffle reads (the CUDA guide's rules for each kind and width):
// its own when the source falls outside its segment.
int shuffleSource(const WarpOp& o, int m) {
  const int w = o.width, start = m & ~(w - 1);
  switch (o.shuffle) {
    case ShuffleKind::Index: return start + (o.operand & (w - 1));
    case ShuffleKind::Up: return m - o.operand >= start ? m - o.operand : m;
    case ShuffleKind::Down: return m + o.operand < start + w ? m + o.operand : m;
    case ShuffleKind::Xor: return (m ^ o.operand) < start + w ? (m ^ o.operand) : m;
  }
  return m;
}

// Completes the collectives of one warp that can complete; false with gRun.error set on a
// misuse; *progress when some lanes were released.
bool completeWarp(int warp, bool* progress) {
  const int base = warp * 32;
  const int lanesHere = std::min(32, gRun.count - base);
  Fiber* lanes = &gRun.fibers[base];
  for (int l = 0; l < lanesHere; ++l) {
    if (lanes[l].status != Status::AtWarp) continue;
    const WarpOp& first = lanes[l].op;
    const unsigned mask = first.mask;
    bool ready = true;
    for (int m = 0; m < 32; ++m) {
      if (!(mask >> m & 1u)) continue;
      if (m >= lanesHere) {
        gRun.error = opName(first) + " at " + site(lanes[l].file, lanes[l].line) + " names lane " + std::to_string(m) +
                     " in its mask, which the block does not have";
        return false;
      }
      const Fiber& other = lanes[m];
      if (other.status == Status::Exited) {
        gRun.error = opName(first) + " at " + site(lanes[l].file, lanes[l].line) + " waits for lane " + std::to_string(m) +
                     " of warp " + std::to_string(warp) + ", which has exited";
        return false;
      }
      if (other.status != Status::AtWarp || other.op.mask != mask) {
        ready = false;
        break;
      }
      if (other.op.kind != first.kind || (first.kind == WarpKind::Mma && other.op.bf16 != first.bf16)) {
        gRun.error = "warp " + std::to_string(warp) + ": lane " + std::to_string(l) + " is at " + opName(first) + " (" +
                     site(lanes[l].file, lanes[l].line) + ") while lane " + std::to_string(m) + " is at " +
                     opName(other.op) + " (" + site(other.file, other.line) + ")";
        return false;
      }
    }
    if (!ready) continue;
    switch (first.kind) {
      case WarpKind::Shuffle:
        for (int m = 0; m < 32; ++m) {
          if (!(mask >> m & 1u)) continue;
          const int src = shuffleSource(lanes[m].op, m);
          if (src < 0 || src >= 32 || !(mask >> src & 1u)) {
            gRun.error = "a shuffle at " + site(lanes[m].file, lanes[m].line) + ": lane " + std::to_string(m) +
                         " reads lane " + std::to_string(src) + ", which is not in the mask";
            return false;
          }
        }
        for (int m = 0; m < 32; ++m) {
          if (!(mask >> m & 1u)) continue;
          lanes[m].op.result = lanes[shuffleSource(lanes[m].op, m)].op.value;
        }
        break;
      case WarpKind::Vote: {
        unsigned ballot = 0;
        for (int m = 0; m < 32; ++m)
          if ((mask >> m & 1u) && lanes[m].op.value != 0) ballot |= 1u << m;
        for (int m = 0; m < 32; ++m) {
          if (!(mask >> m & 1u)) continue;
          WarpOp& o = lanes[m].op;
          o.result = o.vote == VoteKind::Ballot ? ballot : o.vote == VoteKind::Any ? (ballot != 0) : (ballot == mask);
        }
        break;
      }
      case WarpKind::Sync: break;
      case WarpKind::Mma:
        if (mask != 0xffffffffu || lanesHere != 32) {
          gRun.error = "mma.sync needs all 32 lanes of warp " + std::to_string(warp);
          return false;
        }
        completeMma(lanes, first.bf16);
        break;
    }
    for (int m = 0; m < 32; ++m)
      if (mask >> m & 1u) lanes[m].status = Status::Runnable;
    *progress = true;
  }
  return true;
}

WarpOp& arrive(WarpKind kind, unsigned mask, const char* file, int line) {
  Fiber& f = *gFiber;
  f.op = WarpOp{};
  f.op.kind = kind;
  f.op.mask = mask;
  if (!(mask >> f.state.lane & 1u)) {
    setFiberError(opName(f.op) + " at " + site(file, line) + ": the calling lane " + std::to_string(f.state.lane) +
                  " is not in its mask");
    stopFiber();
  }
  return f.op;
}

// ----------------------------------------------------------------------------------------
// Blocks and launches.

struct Launch {
  const char* name;
  dim3 grid, block;
  int schedule;
  uint64_t number;
};

void scheduleOrder(int count, int schedule, uint64_t seed, std::vector<int>& order) {
  order.resize(count);
  for (int k = 0; k < count; ++k) order[k] = k;
  if (schedule == 1) std::reverse(order.begin(), order.end());
  if (schedule == 2) {
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (int k = count - 1; k > 0; --k) {
      s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
      std::swap(order[k], order[static_cast<int>((s * 0x2545f4914f6cdd1dull) % static_cast<uint64_t>(k + 1))]);
    }
  }
}

std::string describeWaiting() {
  std::string out;
  int shown = 0;
  for (int k = 0; k < gRun.count && shown < 4; ++k) {
    const Fiber& f = gRun.fibers[k];
    if (f.status == Status::AtBarrier || f.status == Status::AtWarp) {
      out += (shown ? "; " : "") + threadName(f) + " waits at " +
             (f.status == Status::AtBarrier ? std::string("__syncthreads") : opName(f.op)) + " (" + site(f.file, f.line) + ")";
      ++shown;
    }
  }
  return out;
}

// Runs one block to its end; false with gRun.error set when it fails.
bool runBlock(const Launch& L, uint64_t blockNumber) {
  const int count = static_cast<int>(L.block.x * L.block.y * L.block.z);
  ensureFibers(count);
  gRun.count = count;
  gRun.live = count;
  gRun.error.clear();
  for (int k = 0; k < count; ++k) {
    Fiber& f = gRun.fibers[k];
    f.state.index = uint3{k % L.block.x, (k / L.block.x) % L.block.y, k / (L.block.x * L.block.y)};
    f.state.linear = k;
    f.state.lane = k & 31;
    f.state.warp = k >> 5;
    f.status = Status::Runnable;
    f.asanFake = nullptr;
    startFiber(f);
  }
  scheduleOrder(count, L.schedule, L.number * 1000003u + blockNumber, gRun.order);
  while (true) {
    for (int k : gRun.order) {
      if (gRun.fibers[k].status != Status::Runnable) continue;
      resume(gRun.fibers[k]);
      if (!gRun.error.empty()) return false;
    }
    if (gRun.live == 0) return true;
    bool progress = false;
    for (int w = 0; w * 32 < count; ++w)
      if (!completeWarp(w, &progress)) return false;
    if (progress) continue;
    int atBarrier = 0;
    const Fiber* first = nullptr;
    for (int k = 0; k < count; ++k) {
      const Fiber& f = gRun.fibers[k];
      if (f.status != Status::AtBarrier) continue;
      ++atBarrier;
      if (first == nullptr) first = &f;
    }
    if (atBarrier == gRun.live) {
      for (int k = 0; k < count; ++k) {
        const Fiber& f = gRun.fibers[k];
        if (f.status == Status::AtBarrier && (f.line != first->line || std::strcmp(f.file, first->file) != 0)) {
          gRun.error = "divergent __syncthreads: " + threadName(*first) + " waits at " + site(first->file, first->line) +
                       ", " + threadName(f) + " at " + site(f.file, f.line);
          return false;
        }
      }
      for (int k = 0; k < count; ++k)
        if (gRun.fibers[k].status == Status::AtBarrier) gRun.fibers[k].status = Status::Runnable;
      continue;
    }
    gRun.error = "deadlock: " + describeWaiting();
    return false;
  }
}

// ----------------------------------------------------------------------------------------
// Faults: a guard page, a freed buffer or a device buffer touched outside a launch.

sigjmp_buf gFaultJump;
bool gInLaunch = false;
char gFaultText[512];
struct sigaction gPreviousSegv, gPreviousBus;

void onFault(int sig, siginfo_t* info, void* context) {
  const void* addr = info->si_addr;
  Buffer* b = bufferAt(addr);
  bool stackGuard = false;
  if (b == nullptr)
    for (const Fiber& f : gRun.fibers)
      if (addr >= f.stack - pageSize() && addr < f.stack) stackGuard = true;
  if (b != nullptr || stackGuard) {
    bool write = false;
#if defined(__x86_64__)
    write = (static_cast<ucontext_t*>(context)->uc_mcontext.gregs[REG_ERR] & 2) != 0;
#endif
    const std::string where = stackGuard ? std::string("the stack guard page (a stack overflow)") : describeAddress(addr);
    if (gInLaunch && gFiber != nullptr) {
      std::snprintf(gFaultText, sizeof gFaultText, "%s %s by %s", write ? "a write to" : "a read of", where.c_str(),
                    threadName(*gFiber).c_str());
#if SUPCON_EMU_ASAN
      __sanitizer_start_switch_fiber(nullptr, gRun.mainStackBottom, gRun.mainStackBytes);
#endif
      siglongjmp(gFaultJump, 1);
    }
    std::fprintf(stderr, "supcon CUDA emulator: host code made %s %s outside a kernel\n", write ? "a write to" : "a read of",
                 where.c_str());
  }
  struct sigaction& prev = sig == SIGBUS ? gPreviousBus : gPreviousSegv;
  if ((prev.sa_flags & SA_SIGINFO) != 0 && prev.sa_sigaction != nullptr) {
    prev.sa_sigaction(sig, info, context);
    return;
  }
  if (prev.sa_handler == SIG_IGN) return;
  // Default action: re-raised by the faulting instruction once the handler is gone.
  signal(sig, prev.sa_handler == nullptr ? SIG_DFL : prev.sa_handler);
}

void installFaultHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = &onFault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &gPreviousSegv);
    sigaction(SIGBUS, &sa, &gPreviousBus);
  });
  // The handler runs on an alternate stack: a fiber's stack may be the one that overflowed.
  // A thread that has one already (sanitizer runtimes set their own) keeps it.
  static thread_local std::vector<char> altStack;
  stack_t current;
  if (sigaltstack(nullptr, &current) == 0 && (current.ss_flags & SS_DISABLE) == 0) return;
  if (altStack.empty()) {
    altStack.resize(size_t{256} << 10);
    stack_t ss;
    ss.ss_sp = altStack.data();
    ss.ss_size = altStack.size();
    ss.ss_flags = 0;
    sigaltstack(&ss, nullptr);
  }
}

std::map<std::string, int64_t>& counts() {
  static std::map<std::string, int64_t> c;
  return c;
}
uint64_t gLaunches = 0;

std::string blockName(const dim3& b) {
  return "block (" + std::to_string(b.x) + "," + std::to_string(b.y) + "," + std::to_string(b.z) + ")";
}

// Runs one block on a fresh OS thread (fresh thread-local __shared__ statics); false with
// *error set.
bool runBlockOnThread(const Launch& L, BlockState& bs, uint64_t number, std::string* error) {
  bool ok = true;
  std::thread worker([&] {
    installFaultHandler();
    gBlock = &bs;
    if (sigsetjmp(gFaultJump, 1) != 0) {
#if SUPCON_EMU_ASAN
      __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
      gFiber = nullptr;
      *error = std::string(gFaultText) + " in " + blockName(dim3(bs.index.x, bs.index.y, bs.index.z));
      ok = false;
      return;
    }
    if (!runBlock(L, number)) {
      *error = gRun.error + " in " + blockName(dim3(bs.index.x, bs.index.y, bs.index.z));
      ok = false;
    }
  });
  worker.join();
  return ok;
}

// Runs every block of the launch under one schedule; false with *error set.
bool runGrid(const Launch& L, size_t dynamicShared, std::vector<unsigned char>& arena, std::string* error) {
  static const unsigned char kPoison[3] = {0xff, 0x7f, 0xa5};
  BlockState bs{};
  bs.dim = L.block;
  bs.grid = L.grid;
  bs.dynamicShared = arena.data();
  uint64_t number = 0;
  for (unsigned z = 0; z < L.grid.z; ++z)
    for (unsigned y = 0; y < L.grid.y; ++y)
      for (unsigned x = 0; x < L.grid.x; ++x, ++number) {
        bs.index = uint3{x, y, z};
        std::memset(arena.data(), kPoison[L.schedule], dynamicShared);
        if (!runBlockOnThread(L, bs, number, error)) return false;
      }
  return true;
}

struct Snapshot {
  std::vector<std::pair<Buffer*, std::vector<unsigned char>>> buffers;
};
Snapshot snapshot() {
  Snapshot s;
  for (auto& [start, b] : memory().byRegion)
    if (!b.freed) s.buffers.emplace_back(&b, std::vector<unsigned char>(b.user, b.user + b.bytes));
  return s;
}
void restore(const Snapshot& s) {
  for (const auto& [b, bytes] : s.buffers) std::memcpy(b->user, bytes.data(), bytes.size());
}
// The first difference between the buffers now and a snapshot, or "".
std::string difference(const Snapshot& s) {
  for (const auto& [b, bytes] : s.buffers)
    for (size_t k = 0; k < bytes.size(); ++k)
      if (b->user[k] != static_cast<char>(bytes[k]))
        return "byte " + std::to_string(k) + " of device buffer #" + std::to_string(b->id);
  return "";
}

}  // namespace

// ----------------------------------------------------------------------------------------
// The device API of emu.h.

void syncthreads(const char* file, int line) { block(Status::AtBarrier, file, line); }

void syncwarp(unsigned mask, const char* file, int line) {
  arrive(WarpKind::Sync, mask, file, line);
  block(Status::AtWarp, file, line);
}

uint64_t shuffle(ShuffleKind kind, unsigned mask, uint64_t value, int operand, int width, const char* file, int line) {
  if (width < 1 || width > 32 || (width & (width - 1)) != 0) {
    setFiberError("a shuffle at " + site(file, line) + ": width " + std::to_string(width) +
                  " is not a power of two from 1 to 32");
    stopFiber();
  }
  WarpOp& o = arrive(WarpKind::Shuffle, mask, file, line);
  o.shuffle = kind;
  o.value = value;
  o.operand = operand;
  o.width = width;
  block(Status::AtWarp, file, line);
  return gFiber->op.result;
}

unsigned vote(VoteKind kind, unsigned mask, bool predicate, const char* file, int line) {
  WarpOp& o = arrive(WarpKind::Vote, mask, file, line);
  o.vote = kind;
  o.value = predicate ? 1 : 0;
  block(Status::AtWarp, file, line);
  return static_cast<unsigned>(gFiber->op.result);
}

unsigned activeMask() {
  unsigned m = 0;
  const int base = gFiber->state.warp * 32;
  for (int l = 0; l < 32 && base + l < gRun.count; ++l)
    if (gRun.fibers[base + l].status != Status::Exited) m |= 1u << l;
  return m;
}

namespace {
void mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], bool bf16, const char* file, int line) {
  WarpOp& o = arrive(WarpKind::Mma, 0xffffffffu, file, line);
  o.bf16 = bf16;
  std::memcpy(o.a, a, sizeof o.a);
  std::memcpy(o.b, b, sizeof o.b);
  std::memcpy(o.c, d, sizeof o.c);
  block(Status::AtWarp, file, line);
  std::memcpy(d, gFiber->op.c, sizeof d);
}
}  // namespace

void mmaTf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) { mma(d, a, b, false, "mma.cuh", 0); }
void mmaBf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) { mma(d, a, b, true, "mma.cuh", 0); }

void launch(const char* name, dim3 grid, dim3 block, size_t dynamicSharedBytes, const std::function<void()>& body) {
  std::lock_guard<std::recursive_mutex> lock(gMutex);
  const std::string kernel = name;
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535) {
    fail(cudaErrorInvalidConfiguration, "kernel " + kernel + ": invalid configuration (grid " + std::to_string(grid.x) +
                                            "x" + std::to_string(grid.y) + "x" + std::to_string(grid.z) + ", block " +
                                            std::to_string(block.x) + "x" + std::to_string(block.y) + "x" +
                                            std::to_string(block.z) + ")");
    return;
  }
  if (dynamicSharedBytes > 48 * 1024) {
    fail(cudaErrorInvalidValue, "kernel " + kernel + ": " + std::to_string(dynamicSharedBytes) +
                                    " bytes of dynamic shared memory (at most 49152 without an opt-in)");
    return;
  }
  ++counts()[kernel];
  installFaultHandler();
  const int schedules = mutableSettings().schedules;
  std::vector<unsigned char> arena(std::max<size_t>(dynamicSharedBytes, 16));
  gRun.body = &body;
  gInLaunch = true;
  setAllAccess(true);
  std::string error;
  Snapshot before, first;
  if (schedules > 1) before = snapshot();
  const uint64_t number = ++gLaunches;
  for (int s = 0; s < schedules && error.empty(); ++s) {
    if (s > 0) {
      if (s == 1) first = snapshot();
      restore(before);
    }
    if (!runGrid(Launch{name, grid, block, s, number}, dynamicSharedBytes, arena, &error)) break;
    if (s > 0) {
      const std::string diff = difference(first);
      if (!diff.empty())
        error = "the results depend on the order the threads run in (" + diff + " differs between schedule 1 and " +
                std::to_string(s + 1) +
                "): a shared-memory race (a missing __syncthreads or __syncwarp) or a read of uninitialised shared memory";
    }
  }
  std::string canary;
  if (error.empty() && !checkCanaries(&canary)) error = canary;
  setAllAccess(false);
  gInLaunch = false;
  gBlock = nullptr;
  gThread = nullptr;
  if (!error.empty()) fail(cudaErrorIllegalAddress, "kernel " + kernel + ": " + error);
}

Settings settings() {
  std::lock_guard<std::recursive_mutex> lock(gMutex);
  return mutableSettings();
}

void configure(const Settings& s) {
  std::lock_guard<std::recursive_mutex> lock(gMutex);
  Settings& m = mutableSettings();
  m = s;
  m.schedules = std::clamp(m.schedules, 1, 3);
}

std::map<std::string, int64_t> launchCounts(bool reset) {
  std::lock_guard<std::recursive_mutex> lock(gMutex);
  std::map<std::string, int64_t> out = counts();
  if (reset) counts().clear();
  return out;
}

}  // namespace supcon::emu

// ------------------------------------------------------------------------------------------
// The runtime API of include/cuda_runtime.h.

using supcon::emu::gMutex;
namespace emu = supcon::emu;

namespace {
using Lock = std::lock_guard<std::recursive_mutex>;
constexpr int kVersion = 13000;

struct Access {
  std::vector<emu::Buffer*> opened;
  void open(emu::Buffer* b) {
    if (b != nullptr) {
      emu::setAccess(*b, true);
      opened.push_back(b);
    }
  }
  ~Access() {
    for (emu::Buffer* b : opened) emu::setAccess(*b, false);
  }
};

cudaError_t copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  Lock lock(gMutex);
  if (bytes == 0) return cudaSuccess;
  if (dst == nullptr || src == nullptr) return emu::fail(cudaErrorInvalidValue, "cudaMemcpy: a null pointer");
  const bool dstDevice = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool srcDevice = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind == cudaMemcpyHostToHost || kind == cudaMemcpyDefault)
    return emu::fail(cudaErrorInvalidMemcpyDirection, "cudaMemcpy: the emulator takes explicit directions only");
  emu::Buffer* d = dstDevice ? emu::liveRange(dst, bytes) : nullptr;
  emu::Buffer* s = srcDevice ? emu::liveRange(src, bytes) : nullptr;
  if (dstDevice && d == nullptr)
    return emu::fail(cudaErrorInvalidValue, "cudaMemcpy: the destination range of " + std::to_string(bytes) + " bytes at " +
                                                emu::describeAddress(dst) + " is not inside a live device buffer");
  if (srcDevice && s == nullptr)
    return emu::fail(cudaErrorInvalidValue, "cudaMemcpy: the source range of " + std::to_string(bytes) + " bytes at " +
                                                emu::describeAddress(src) + " is not inside a live device buffer");
  if (!dstDevice && emu::bufferAt(dst) != nullptr)
    return emu::fail(cudaErrorInvalidValue, "cudaMemcpy: the host destination is device memory");
  if (!srcDevice && emu::bufferAt(src) != nullptr)
    return emu::fail(cudaErrorInvalidValue, "cudaMemcpy: the host source is device memory");
  Access access;
  access.open(d);
  if (s != d) access.open(s);
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}

struct StreamHandle {};
}  // namespace

struct CUevent_st {
  std::chrono::steady_clock::time_point at;
  bool recorded = false;
};

cudaError_t cudaRuntimeGetVersion(int* version) {
  if (version == nullptr) return cudaErrorInvalidValue;
  *version = kVersion;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* version) { return cudaRuntimeGetVersion(version); }
cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr) return cudaErrorInvalidValue;
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (prop == nullptr || device != 0) return cudaErrorInvalidValue;
  std::memset(prop, 0, sizeof *prop);
  std::snprintf(prop->name, sizeof prop->name, "supcon CUDA emulator");
  prop->totalGlobalMem = emu::settings().memoryBytes;
  prop->sharedMemPerBlock = 48 * 1024;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->major = 8;
  prop->minor = 0;
  prop->multiProcessorCount = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  Lock lock(gMutex);
  return device == 0 ? cudaSuccess : emu::fail(cudaErrorInvalidValue, "cudaSetDevice: the emulator has device 0 only");
}
cudaError_t cudaGetLastError() {
  Lock lock(gMutex);
  return emu::takePending();
}
cudaError_t cudaPeekAtLastError() {
  Lock lock(gMutex);
  return emu::gPending;
}
const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}
const char* cudaGetErrorString(cudaError_t error) {
  Lock lock(gMutex);
  if (error != cudaSuccess && error == emu::gMessageCode) return emu::gMessage.c_str();
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    default: return "emulated CUDA error";
  }
}

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  Lock lock(gMutex);
  return emu::allocate(ptr, bytes);
}
cudaError_t cudaFree(void* ptr) {
  Lock lock(gMutex);
  return emu::release(ptr);
}
cudaError_t cudaMallocAsync(void** ptr, size_t bytes, cudaStream_t) { return cudaMalloc(ptr, bytes); }
cudaError_t cudaFreeAsync(void* ptr, cudaStream_t) { return cudaFree(ptr); }
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) { return copy(dst, src, bytes, kind); }
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  return copy(dst, src, bytes, kind);
}
cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
  Lock lock(gMutex);
  if (bytes == 0) return cudaSuccess;
  emu::Buffer* b = emu::liveRange(dst, bytes);
  if (b == nullptr)
    return emu::fail(cudaErrorInvalidValue, "cudaMemset: " + std::to_string(bytes) + " bytes at " +
                                                emu::describeAddress(dst) + " are not inside a live device buffer");
  Access access;
  access.open(b);
  std::memset(dst, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t) { return cudaMemset(dst, value, bytes); }
cudaError_t cudaDeviceSynchronize() { return cudaGetLastError(); }
cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
  if (ptr == nullptr) return cudaErrorInvalidValue;
  *ptr = std::malloc(bytes > 0 ? bytes : 1);
  return *ptr != nullptr ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFreeHost(void* ptr) {
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  if (stream == nullptr) return cudaErrorInvalidValue;
  static StreamHandle handle;
  *stream = reinterpret_cast<cudaStream_t>(&handle);
  return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, 0); }
cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaGetLastError(); }

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  if (event == nullptr) return cudaErrorInvalidValue;
  *event = new CUevent_st;
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned) { return cudaEventCreate(event); }
cudaError_t cudaEventQuery(cudaEvent_t event) { return event != nullptr ? cudaSuccess : cudaErrorInvalidResourceHandle; }
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  if (event == nullptr) return cudaErrorInvalidResourceHandle;
  event->at = std::chrono::steady_clock::now();
  event->recorded = true;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (event == nullptr) return cudaErrorInvalidResourceHandle;
  return cudaGetLastError();
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (ms == nullptr || start == nullptr || end == nullptr || !start->recorded || !end->recorded)
    return cudaErrorInvalidResourceHandle;
  *ms = std::chrono::duration<float, std::milli>(end->at - start->at).count();
  return cudaSuccess;
}
