// A minimal CUDA kernel compiled by nvcc: proves the GPU toolchain.
#include "common/nccl/vector_add.h"

namespace estuary::gpu {
namespace {

__global__ void VectorAddKernel(float* out, const float* a, const float* b, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = a[i] + b[i];
}

}  // namespace

cudaError_t LaunchVectorAdd(float* out, const float* a, const float* b, int n,
                            cudaStream_t stream) {
  constexpr int kThreads = 256;
  VectorAddKernel<<<(n + kThreads - 1) / kThreads, kThreads, 0, stream>>>(out, a, b, n);
  return cudaGetLastError();
}

}  // namespace estuary::gpu
