// The kNN similarity tile for the avx2 instruction set (flags set by the build).
#define SUPCON_SIMD_WIDTH 8
#define SUPCON_ISA_NAMESPACE avx2
#include "knn_kernel.inl"
