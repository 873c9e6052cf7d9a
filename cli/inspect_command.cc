#include "cli/inspect_command.h"

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/checkpoint.h"
#include "common/exit_codes.h"
#include "common/flags.h"
#include "common/io/env.h"
#include "common/status_macros.h"
#include "common/tf_bundle/tensor_bundle.h"

namespace estuary {
namespace {

int Fail(const absl::Status& st) {
  std::fprintf(stderr, "estuary inspect: error: %s\n", std::string(st.message()).c_str());
  return absl::IsDataLoss(st) || absl::IsInternal(st) || absl::IsUnavailable(st) ? kExitFailure
                                                                                 : kExitBadInput;
}

// TF's DataTypeString spelling ("float", "int64", "double", "half", ...).
std::string TfDebugDType(const std::string& dtype) {
  if (dtype == "float32") return "float";
  if (dtype == "float64") return "double";
  if (dtype == "float16") return "half";
  return dtype;
}

// A checkpoint prefix, or a model_dir's latest.
absl::StatusOr<std::string> Resolve(const std::string& arg) {
  const io::Env& env = io::Env::Default();
  absl::StatusOr<io::FileInfo> info = env.Stat(arg);
  if (info.ok() && info->is_directory) return checkpoint::LatestCheckpoint(arg, env);
  return arg;
}

// Every value of the named tensors (both formats: as Restore reads them for
// a native checkpoint; as stored for a TF one).
absl::Status PrintValues(const std::string& prefix, const checkpoint::CheckpointListing& listing,
                         const std::string& only) {
  std::map<std::string, std::string> values;
  if (listing.format == "tf") {
    ASSIGN_OR_RETURN(auto reader, tf_bundle::BundleReader::Open(prefix));
    for (const tf_bundle::TensorInfo& t : reader->tensors()) {
      if (!only.empty() && t.name != only) continue;
      ASSIGN_OR_RETURN(Tensor v, reader->Read(t.name));
      values[t.name] = v.dtype == DType::kFloat   ? absl::StrJoin(v.floats, " ")
                       : v.dtype == DType::kInt64 ? absl::StrJoin(v.ints, " ")
                                                  : absl::StrJoin(v.strings, " ");
    }
  } else {
    ASSIGN_OR_RETURN(Variables vars, checkpoint::Restore(prefix));
    for (const auto& [name, m] : vars.floats) {
      if (only.empty() || name == only) {
        values[name] = absl::StrJoin(m.data(), m.data() + m.size(), " ");
      }
    }
    for (const auto& [name, v] : vars.ints) {
      if (only.empty() || name == only) values[name] = absl::StrCat(v);
    }
  }
  if (!only.empty() && values.empty()) {
    return absl::NotFoundError(absl::StrCat("checkpoint ", prefix, ": no tensor '", only, "'"));
  }
  for (const auto& [name, text] : values) {
    std::printf("tensor_name:  %s\n%s\n", name.c_str(), text.c_str());
  }
  return absl::OkStatus();
}

}  // namespace

int InspectCommand(int argc, char** argv) {
  std::string tensor_name;
  bool all_tensors = false;
  FlagSet flags(
      "estuary inspect CHECKPOINT [--tensor_name NAME] [--all_tensors]",
      "Lists the tensors of a checkpoint (a prefix such as model_dir/model.ckpt-1000, or a "
      "model_dir: its latest) of either format, Estuary's or TensorFlow's V2 bundle (what "
      "tf.estimator writes), as TF's inspect_checkpoint does: one \"name (dtype) [shape]\" "
      "line per tensor, sorted by name, with TF's names and shapes for a TF checkpoint. "
      "Verifies nothing but the index; --all_tensors / --tensor_name read (and verify) "
      "the values.");
  flags.String("tensor_name", &tensor_name, "Also print this tensor's values.");
  flags.Bool("all_tensors", &all_tensors, "Also print every tensor's values.");
  absl::Status st = flags.Parse(argc, argv, 2);
  if (flags.help_requested()) {
    std::printf("%s", flags.Usage().c_str());
    return kExitOk;
  }
  if (st.ok() && flags.positional().size() != 1) {
    st = absl::InvalidArgumentError("expected exactly one checkpoint (see --help)");
  }
  if (!st.ok()) return Fail(st);
  absl::StatusOr<std::string> prefix = Resolve(flags.positional()[0]);
  if (!prefix.ok()) return Fail(prefix.status());
  absl::StatusOr<checkpoint::CheckpointListing> listing = checkpoint::ListTensors(*prefix);
  if (!listing.ok()) return Fail(listing.status());
  std::printf("# checkpoint %s (%s format: %s)\n", prefix->c_str(), listing->format.c_str(),
              absl::StrJoin(listing->files, ", ").c_str());
  for (const checkpoint::TensorListing& t : listing->tensors) {
    std::printf("%s (%s) [%s]\n", t.name.c_str(), TfDebugDType(t.dtype).c_str(),
                absl::StrJoin(t.shape, ",").c_str());
  }
  if (all_tensors || !tensor_name.empty()) {
    st = PrintValues(*prefix, *listing, all_tensors ? "" : tensor_name);
    if (!st.ok()) return Fail(st);
  }
  return kExitOk;
}

}  // namespace estuary
