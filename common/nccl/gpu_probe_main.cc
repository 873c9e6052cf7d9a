// gpu_probe: prints what the CUDA/NCCL toolchain sees. Exit 0 when no GPU is
// usable (it says why) or when the kernel and NCCL all-reduce check out;
// exit 1 when a visible GPU fails them.
#include <cstdio>
#include <cstring>

#include "common/nccl/gpu_probe.h"

int main(int argc, char** argv) {
  if (argc > 1 && (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h"))) {
    std::printf("Usage: gpu_probe\n\nPrints the CUDA runtime, driver and NCCL versions and the "
                "visible GPUs; on a GPU, runs a vector-add kernel and a one-rank NCCL "
                "all-reduce and checks their results.\n");
    return 0;
  }
  const estuary::gpu::GpuProbeResult r = estuary::gpu::ProbeGpu();
  std::printf("cuda_runtime_version %d\n", r.runtime_version);
  std::printf("cuda_driver_version %d\n", r.driver_version);
  std::printf("nccl_version %d\n", r.nccl_version);
  std::printf("device_count %d\n", r.device_count);
  if (!r.unavailable.empty()) {
    std::printf("gpu unavailable: %s\n", r.unavailable.c_str());
    return 0;
  }
  std::printf("device0 %s\n", r.device_name.c_str());
  std::printf("kernel_ok %d\n", r.kernel_ok ? 1 : 0);
  std::printf("nccl_allreduce_ok %d\n", r.nccl_allreduce_ok ? 1 : 0);
  if (!r.error.empty()) std::printf("error: %s\n", r.error.c_str());
  return r.kernel_ok && r.nccl_allreduce_ok ? 0 : 1;
}
