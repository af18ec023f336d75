// The augmentation pixel kernels for the baseline instruction set (flags set by the build).
#define SUPCON_SIMD_WIDTH 4
#define SUPCON_ISA_NAMESPACE baseline
#define SUPCON_ISA_LABEL "baseline"
#include "augment_kernel.inl"
