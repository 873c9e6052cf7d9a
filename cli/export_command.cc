#include "cli/export_command.h"

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/exit_codes.h"
#include "common/flags.h"
#include "common/job_spec.h"
#include "common/logging.h"
#include "estimator/export/export.h"

namespace estuary {
namespace {

int Fail(const absl::Status& st) {
  std::fprintf(stderr, "estuary export: error: %s\n", std::string(st.message()).c_str());
  return absl::IsInvalidArgument(st) || absl::IsNotFound(st) || absl::IsFailedPrecondition(st)
             ? kExitBadInput
             : kExitFailure;
}

// "dest=src,dest2=src2" -> options->assets_extra.
absl::Status ParseAssetsExtra(const std::string& flag, ExportOptions* options) {
  if (flag.empty()) return absl::OkStatus();
  for (absl::string_view item : absl::StrSplit(flag, ',')) {
    std::vector<std::string> parts = absl::StrSplit(item, absl::MaxSplits('=', 1));
    if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--assets_extra: '", item, "' is not DEST=SRC"));
    }
    options->assets_extra[parts[0]] = parts[1];
  }
  return absl::OkStatus();
}

}  // namespace

int ExportCommand(int argc, char** argv) {
  ExportOptions options;
  std::string assets_extra;
  FlagSet flags(
      "estuary export JOB.json [--export_dir_base DIR] [--checkpoint PATH] "
      "[--receiver parsing|raw] [--format estuary|onnx|saved_model] [--assets_extra DEST=SRC,...]",
      "Exports the job's model for serving (tf.estimator's export_saved_model) into a new "
      "timestamped directory under the export base, written atomically; prints that directory "
      "as the last line. The estuary format holds the variables of one checkpoint, the job's "
      "model and feature-column spec (vocabularies as assets) and TF's signatures "
      "(serving_default, predict, classification / regression); `estuary serve` and "
      "LoadedExport run it. The onnx format holds model.onnx (IR 8, opset 17) from the "
      "transformed feature inputs to logits and predictions, and transform.json (how raw "
      "features become those inputs). The saved_model format is TensorFlow's SavedModel "
      "(saved_model.pb with a TF1 graph from the serving receiver through the feature columns "
      "and the model to the head's outputs, TF's signatures, variables/ as a TF tensor "
      "bundle, vocabulary assets): tf.saved_model.load and TF Serving load it.");
  flags.String("export_dir_base", &options.export_dir_base,
               "Directory to create the export in (default: model_dir/export).");
  flags.String("checkpoint", &options.checkpoint_path,
               "Checkpoint to export, \"DIR/model.ckpt-N\" (default: the latest in model_dir).");
  flags.String("receiver", &options.receiver,
               "Serving input: parsing (serialized tf.train.Example, TF's "
               "build_parsing_serving_input_receiver_fn) or raw (one tensor per feature).");
  flags.String("format", &options.format, "estuary, onnx or saved_model.");
  flags.String("assets_extra", &assets_extra,
               "Extra files to copy into the export's assets.extra/: DEST=SRC, comma-separated.");
  absl::Status st = flags.Parse(argc, argv, 2);
  if (flags.help_requested()) {
    std::printf("%s", flags.Usage().c_str());
    return kExitOk;
  }
  if (st.ok() && flags.positional().size() != 1) {
    st = absl::InvalidArgumentError("expected exactly one job file");
  }
  if (st.ok()) st = ParseAssetsExtra(assets_extra, &options);
  if (!st.ok()) {
    std::fprintf(stderr, "estuary export: error: %s (see --help)\n",
                 std::string(st.message()).c_str());
    return kExitBadInput;
  }
  InitLogging("");
  absl::StatusOr<JobSpec> job = LoadJobSpec(flags.positional()[0]);
  if (!job.ok()) return Fail(job.status());
  absl::StatusOr<std::string> dir = ExportModel(*job, options);
  if (!dir.ok()) return Fail(dir.status());
  std::printf("%s\n", dir->c_str());
  return kExitOk;
}

}  // namespace estuary
