// The kNN similarity tile for the baseline instruction set (flags set by the build).
#define SUPCON_SIMD_WIDTH 4
#define SUPCON_ISA_NAMESPACE baseline
#include "knn_kernel.inl"
