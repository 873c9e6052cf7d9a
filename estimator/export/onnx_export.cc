#include "estimator/export/onnx_export.h"

namespace estuary {
namespace export_format {

absl::Status WriteOnnxModel(const JobSpec& job, const Variables& vars, const std::string& dir,
                            const io::Env& env) {
  return absl::UnimplementedError("ONNX export is not built yet");
}

}  // namespace export_format
}  // namespace estuary
