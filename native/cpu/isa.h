// The instruction set of the CPU kernels. Each family of kernels (the loss, the GEMM, the
// layers, the augmentation, the kNN search) is compiled once per instruction set from one
// *_kernel.inl (*_kernel_avx512.cc, *_kernel_avx2.cc, *_kernel_baseline.cc), and one choice
// applies to all of them: the best this processor supports, SUPCON_CPU_KERNELS at load, or
// setCpuKernels.
#pragma once

#include <string>
#include <vector>

namespace supcon::cpu {

enum class Isa { Avx512, Avx2, Baseline };

// The instruction sets this build and this processor both support, best first.
std::vector<std::string> availableKernels();
// The one new calls use, and its name ('avx512', 'avx2', 'baseline').
Isa activeIsa();
const char* isaName(Isa isa);
// `name` must be one of availableKernels() (a RangeError names the choices otherwise).
void selectKernels(const std::string& name);

// Of one family of kernels compiled per instruction set, the table of the active set.
template <class Table>
const Table& pickActive(const Table& avx512Table, const Table& avx2Table, const Table& baselineTable) {
  switch (activeIsa()) {
    case Isa::Avx512: return avx512Table;
    case Isa::Avx2: return avx2Table;
    default: return baselineTable;
  }
}

// SUPCON_ACTIVE_TABLE(kGemmKernels): the active one of avx512::kGemmKernels,
// avx2::kGemmKernels and baseline::kGemmKernels (only the baseline off x86-64).
#if defined(__x86_64__) || defined(_M_X64)
#define SUPCON_ACTIVE_TABLE(table) \
  ::supcon::cpu::pickActive(::supcon::cpu::avx512::table, ::supcon::cpu::avx2::table, ::supcon::cpu::baseline::table)
#else
#define SUPCON_ACTIVE_TABLE(table) (::supcon::cpu::baseline::table)
#endif

}  // namespace supcon::cpu
