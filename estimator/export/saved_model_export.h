// SavedModel export (ExportOptions::format "saved_model"): the job's model
// in TensorFlow's own format, so that tf.saved_model.load, saved_model_cli
// and TF Serving load it like a TF 2.15 Estimator's export_saved_model:
//
//   saved_model.pb   a tensorflow.SavedModel (proto/tf/saved_model.proto)
//                    with one TF1-style MetaGraphDef tagged "serve":
//                    - the serving input receiver: "input_example_tensor"
//                      (string [-1]) -> ParseExampleV2 with the columns'
//                      parse spec (parsing receiver), or one Placeholder per
//                      raw feature (raw receiver);
//                    - the feature-column transforms as TF builds them:
//                      numeric (normalizer: Sub/RealDiv), bucketized
//                      (Bucketize, OneHot), vocabulary list (HashTableV2 +
//                      LookupTableImportV2, LookupTableFindV2, OOV buckets
//                      by StringToHashBucketFast), vocabulary file (the
//                      same table filled by InitializeTableFromTextFileV2
//                      from an asset), hash bucket (StringToHashBucketFast),
//                      identity, crossed (SparseCross, hashed with TF's key),
//                      indicator (OneHot + UnsortedSegmentSum), embedding
//                      (SparseSegment{Sum,Mean,SqrtN}WithNumSegments over
//                      the table);
//                    - the model (linear: per-column MatMul or sparse
//                      segment sums + bias; DNN: MatMul/BiasAdd/activation,
//                      batch norm with the moving statistics) over resource
//                      variables (VarHandleOp + ReadVariableOp) named as TF
//                      names them;
//                    - the head's predictions under TF's node names
//                      (head/predictions/probabilities, ...) and the
//                      signatures tf.estimator exports (serving_default,
//                      predict, classification, regression) with TF's keys,
//                      dtypes and shapes;
//                    - a SaverDef (save/Const, save/restore_all: RestoreV2 +
//                      AssignVariableOp per variable) and the main op
//                      (group_deps: the table initializers).
//   variables/       variables.index + variables.data-00000-of-00001: a TF
//                    V2 tensor bundle of the variables the graph reads and
//                    global_step.
//   assets/          the vocabulary files (AssetFileDefs name them).
//
// Thread-safe: the functions keep no state.
#ifndef ESTUARY_ESTIMATOR_EXPORT_SAVED_MODEL_EXPORT_H_
#define ESTUARY_ESTIMATOR_EXPORT_SAVED_MODEL_EXPORT_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/io/env.h"
#include "common/job_spec.h"
#include "common/variables.h"
#include "proto/tf/saved_model.pb.h"

namespace estuary {
namespace export_format {

inline constexpr char kSavedModelFile[] = "saved_model.pb";
// The variables bundle's prefix inside the export.
inline constexpr char kSavedModelVariablesPrefix[] = "variables/variables";

// A SavedModel and the files that go with it.
struct SavedModelExport {
  tensorflow::SavedModel saved_model;
  // Files for assets/: name inside assets/ -> source path.
  std::map<std::string, std::string> assets;
  // The variables the graph restores (TF names; vectors 1-D as in TF).
  Variables variables;
};

// Builds the SavedModel of the job's model from `vars` (the model's
// variables and global_step, as LoadModel gives them) with `receiver`
// ("parsing" or "raw"). InvalidArgument naming the estimator type or the
// column the export cannot express (custom and baseline models, weighted
// categorical columns, embedding max_norm, an embedding column in the
// linear part), a variable the checkpoint lacks, or an unknown receiver.
absl::StatusOr<SavedModelExport> BuildSavedModel(const JobSpec& job, const Variables& vars,
                                                 const std::string& receiver);

// Writes BuildSavedModel's result into directory `dir` (saved_model.pb,
// variables/, assets/). BuildSavedModel's errors and the file system's.
absl::Status WriteSavedModel(const JobSpec& job, const Variables& vars,
                             const std::string& receiver, const std::string& dir,
                             const io::Env& env);

}  // namespace export_format
}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_EXPORT_SAVED_MODEL_EXPORT_H_
