// The kNN similarity tile for the avx512 instruction set (flags set by the build).
#define SUPCON_SIMD_WIDTH 16
#define SUPCON_ISA_NAMESPACE avx512
#include "knn_kernel.inl"
