// The augmentation pixel kernels for the avx512 instruction set (flags set by the build).
#define SUPCON_SIMD_WIDTH 16
#define SUPCON_ISA_NAMESPACE avx512
#define SUPCON_ISA_LABEL "avx512"
#include "augment_kernel.inl"
