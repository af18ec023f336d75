// The augmentation pixel kernels for the avx2 instruction set (flags set by the build).
#define SUPCON_SIMD_WIDTH 8
#define SUPCON_ISA_NAMESPACE avx2
#define SUPCON_ISA_LABEL "avx2"
#include "augment_kernel.inl"
