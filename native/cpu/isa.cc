#include "isa.h"

#include <atomic>
#include <cstdlib>

#include "../common/errors.h"

namespace supcon::cpu {
namespace {

std::vector<Isa> supportedIsas() {
  std::vector<Isa> isas;
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    isas.push_back(Isa::Avx512);
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) isas.push_back(Isa::Avx2);
#endif
  isas.push_back(Isa::Baseline);
  return isas;
}

Isa initialIsa() {
  const auto isas = supportedIsas();
  if (const char* want = std::getenv("SUPCON_CPU_KERNELS")) {
    for (Isa isa : isas)
      if (std::string(want) == isaName(isa)) return isa;
  }
  return isas.front();
}

std::atomic<int> gActive{-1};

}  // namespace

const char* isaName(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "baseline";
  }
}

std::vector<std::string> availableKernels() {
  std::vector<std::string> names;
  for (Isa isa : supportedIsas()) names.emplace_back(isaName(isa));
  return names;
}

Isa activeIsa() {
  int active = gActive.load();
  if (active < 0) {
    active = static_cast<int>(initialIsa());
    gActive.store(active);
  }
  return static_cast<Isa>(active);
}

void selectKernels(const std::string& name) {
  for (Isa isa : supportedIsas()) {
    if (name == isaName(isa)) {
      gActive.store(static_cast<int>(isa));
      return;
    }
  }
  std::string list;
  for (const auto& n : availableKernels()) list += (list.empty() ? "'" : ", '") + n + "'";
  throw rangeError("kernels: expected one of " + list + " on this machine, got '" + name + "'");
}

}  // namespace supcon::cpu
