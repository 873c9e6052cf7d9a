#include "common/nccl/gpu_probe.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <string>
#include <vector>

#include "common/nccl/vector_add.h"

namespace estuary::gpu {
namespace {

std::string CudaError(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
}

// Runs the kernel and a one-rank all-reduce on device 0.
void RunOnDevice(GpuProbeResult* r) {
  constexpr int kN = 1 << 20;
  std::vector<float> a(kN), b(kN), out(kN);
  for (int i = 0; i < kN; ++i) {
    a[i] = static_cast<float>(i);
    b[i] = 2.0f * static_cast<float>(i);
  }
  float *da = nullptr, *db = nullptr, *dout = nullptr;
  cudaStream_t stream = nullptr;
  ncclComm_t comm = nullptr;
  auto cleanup = [&] {
    if (comm != nullptr) ncclCommDestroy(comm);
    if (stream != nullptr) cudaStreamDestroy(stream);
    cudaFree(da);
    cudaFree(db);
    cudaFree(dout);
  };
  const size_t bytes = kN * sizeof(float);
  cudaError_t e = cudaSetDevice(0);
  if (e == cudaSuccess) e = cudaMalloc(&da, bytes);
  if (e == cudaSuccess) e = cudaMalloc(&db, bytes);
  if (e == cudaSuccess) e = cudaMalloc(&dout, bytes);
  if (e == cudaSuccess) e = cudaStreamCreate(&stream);
  if (e == cudaSuccess) e = cudaMemcpy(da, a.data(), bytes, cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = cudaMemcpy(db, b.data(), bytes, cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = LaunchVectorAdd(dout, da, db, kN, stream);
  if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
  if (e == cudaSuccess) e = cudaMemcpy(out.data(), dout, bytes, cudaMemcpyDeviceToHost);
  if (e != cudaSuccess) {
    r->error = "kernel: " + CudaError(e);
    cleanup();
    return;
  }
  r->kernel_ok = true;
  for (int i = 0; i < kN; ++i) r->kernel_ok &= out[i] == 3.0f * static_cast<float>(i);

  int devices[1] = {0};
  ncclResult_t n = ncclCommInitAll(&comm, 1, devices);
  if (n == ncclSuccess) {
    n = ncclAllReduce(dout, da, kN, ncclFloat, ncclSum, comm, stream);
  }
  if (n != ncclSuccess) {
    r->error = std::string("nccl: ") + ncclGetErrorString(n);
    cleanup();
    return;
  }
  e = cudaStreamSynchronize(stream);
  if (e == cudaSuccess) e = cudaMemcpy(a.data(), da, bytes, cudaMemcpyDeviceToHost);
  if (e != cudaSuccess) {
    r->error = "nccl all-reduce: " + CudaError(e);
    cleanup();
    return;
  }
  // One rank: the sum is the input itself.
  r->nccl_allreduce_ok = true;
  for (int i = 0; i < kN; ++i) r->nccl_allreduce_ok &= a[i] == out[i];
  cleanup();
}

}  // namespace

GpuProbeResult ProbeGpu() {
  GpuProbeResult r;
  cudaRuntimeGetVersion(&r.runtime_version);
  cudaDriverGetVersion(&r.driver_version);
  ncclGetVersion(&r.nccl_version);
  const cudaError_t e = cudaGetDeviceCount(&r.device_count);
  if (e != cudaSuccess) {
    r.device_count = 0;
    r.unavailable = CudaError(e);
    return r;
  }
  if (r.device_count == 0) {
    r.unavailable = "no CUDA device visible";
    return r;
  }
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) r.device_name = prop.name;
  RunOnDevice(&r);
  return r;
}

}  // namespace estuary::gpu
