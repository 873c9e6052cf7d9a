// Probes the CUDA runtime, the driver, the GPUs and NCCL: the first proof
// that the `--config=cuda` toolchain (CUDA 13 + NCCL from NVIDIA's PyPI
// wheels) builds and runs. Without a GPU it reports why and does nothing
// else.
#ifndef ESTUARY_COMMON_NCCL_GPU_PROBE_H_
#define ESTUARY_COMMON_NCCL_GPU_PROBE_H_

#include <string>

namespace estuary::gpu {

struct GpuProbeResult {
  int runtime_version = 0;  // e.g. 13050 for 13.5
  int driver_version = 0;   // 0 without a driver
  int nccl_version = 0;     // e.g. 23203 for 2.32.3
  int device_count = 0;
  std::string device_name;  // of device 0
  // Why no GPU is usable ("cudaErrorInsufficientDriver: ..."), or empty.
  std::string unavailable;
  // With a GPU: the vector-add kernel and a one-rank NCCL all-reduce ran
  // and gave the right numbers.
  bool kernel_ok = false;
  bool nccl_allreduce_ok = false;
  std::string error;  // what failed on a usable GPU, or empty
};

GpuProbeResult ProbeGpu();

}  // namespace estuary::gpu

#endif  // ESTUARY_COMMON_NCCL_GPU_PROBE_H_
