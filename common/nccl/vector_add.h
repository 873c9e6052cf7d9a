// out[i] = a[i] + b[i] on the GPU (device pointers), asynchronously on
// `stream`. Returns the launch error, if any.
#ifndef ESTUARY_COMMON_NCCL_VECTOR_ADD_H_
#define ESTUARY_COMMON_NCCL_VECTOR_ADD_H_

#include <cuda_runtime.h>

namespace estuary::gpu {

cudaError_t LaunchVectorAdd(float* out, const float* a, const float* b, int n,
                            cudaStream_t stream);

}  // namespace estuary::gpu

#endif  // ESTUARY_COMMON_NCCL_VECTOR_ADD_H_
