// ONNX export (ExportOptions::format "onnx"): the job's model from its
// transformed feature inputs to logits and predictions as an ONNX
// ModelProto (IR version 8, opset 17; proto/onnx.proto is the subset of
// onnx/onnx.proto written), plus the transformation spec (what turns raw
// features into those inputs: hash buckets, vocabularies, normalizers,
// bucket boundaries) as JSON beside it. docs/ARCHITECTURE.md "Export
// format" describes both.
#ifndef ESTUARY_ESTIMATOR_EXPORT_ONNX_EXPORT_H_
#define ESTUARY_ESTIMATOR_EXPORT_ONNX_EXPORT_H_

#include <string>

#include "absl/status/status.h"
#include "common/io/env.h"
#include "common/job_spec.h"
#include "common/variables.h"

namespace estuary {
namespace export_format {

inline constexpr char kOnnxModelFile[] = "model.onnx";
inline constexpr char kOnnxTransformFile[] = "transform.json";

// Writes model.onnx and transform.json into directory `dir`. `vars` are the
// model's variables (as LoadModel gives them). InvalidArgument naming the
// column or estimator field the ONNX graph cannot express; the file
// system's errors.
absl::Status WriteOnnxModel(const JobSpec& job, const Variables& vars, const std::string& dir,
                            const io::Env& env);

}  // namespace export_format
}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_EXPORT_ONNX_EXPORT_H_
