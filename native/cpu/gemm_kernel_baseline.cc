// The GEMM micro-kernel for the baseline instruction set (flags set by the build).
#define SUPCON_SIMD_WIDTH 4
#define SUPCON_ISA_NAMESPACE baseline
#define SUPCON_ISA_LABEL "baseline"
#include "gemm_kernel.inl"
