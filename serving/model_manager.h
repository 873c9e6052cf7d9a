// The models a server serves: for each configured model, watches its base
// path for numeric version directories, loads the versions its version
// policy wants and unloads the others, and tracks each version's state as
// TF Serving reports it (START, LOADING, AVAILABLE, UNLOADING, END, with an
// error status when a load failed or the directory vanished).
//
// Versions: the children of base_path whose names are a decimal number
// (an export's timestamp); names that start with '.' or hold anything else
// (temporary directories of a half-written export) are skipped. A version
// whose load fails is retried on later polls, at most
// `max_load_attempts` times in a row, then stays END with the error.
//
// Polling: PollOnce() scans every model once, synchronously; a server runs
// it on a ModelWatcher (every --file_system_poll_wait_seconds), tests call
// it directly. New versions are loaded before old ones are unloaded (TF
// Serving's availability-preserving policy), so a model with an available
// version keeps one while a newer loads. An unloaded version's export is
// freed once the last request using it returns (requests hold a
// shared_ptr).
//
// Thread-safe. Starts no threads (ModelWatcher starts one).
#ifndef ESTUARY_SERVING_MODEL_MANAGER_H_
#define ESTUARY_SERVING_MODEL_MANAGER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/io/env.h"
#include "estimator/export/export.h"

namespace estuary {
namespace serving {

// Which versions of a model to serve (TF Serving's ServableVersionPolicy).
struct VersionPolicy {
  enum class Kind { kLatest, kAll, kSpecific };
  Kind kind = Kind::kLatest;
  int num_versions = 1;           // kLatest: the N highest
  std::vector<int64_t> versions;  // kSpecific
};

struct ModelConfig {
  std::string name;
  std::string base_path;
  VersionPolicy policy;
  std::map<std::string, int64_t> version_labels;  // "stable" -> 3
};

// ModelVersionStatus.State's numbers.
enum class VersionState { kStart = 10, kLoading = 20, kAvailable = 30, kUnloading = 40, kEnd = 50 };
const char* VersionStateName(VersionState state);  // "START", ...

struct VersionStatus {
  int64_t version = 0;
  VersionState state = VersionState::kStart;
  absl::Status status;  // the load's or the unload's error
};

// Loads one version directory. Errors as LoadedExport::Load.
using ExportLoader =
    std::function<absl::StatusOr<std::shared_ptr<const LoadedExport>>(const std::string& dir)>;

struct ModelManagerOptions {
  std::vector<ModelConfig> models;
  ExportLoader loader;       // required
  const io::Env* env = nullptr;  // null: io::Env::Default()
  int max_load_attempts = 5;
};

// A loaded version a request runs on.
struct ServableHandle {
  std::string name;
  int64_t version = 0;
  std::shared_ptr<const LoadedExport> model;
};

class ModelManager {
 public:
  // InvalidArgument: no models, a model without a name or base path, two
  // models of one name, no loader, a policy with num_versions < 1 or no
  // specific versions.
  static absl::StatusOr<std::unique_ptr<ModelManager>> Create(ModelManagerOptions options);

  // Scans every model's base path once and loads / unloads versions (loads
  // run on the calling thread). Returns OK unless some model's base path
  // could not be listed or a load failed; the message names each (the
  // other models are polled regardless).
  absl::Status PollOnce();

  // The version a request asks for: `version` if set, else the one
  // `label` names, else the highest available one.
  // Errors: NotFound ("Servable not found for request: Latest(name)" /
  // "Specific(name, v)", TF Serving's words), InvalidArgument (an unknown
  // label).
  absl::StatusOr<ServableHandle> Get(const std::string& name, std::optional<int64_t> version,
                                     const std::string& label = "") const;

  // The states of a model's versions (every version it has known, the
  // highest first), or of one version. Errors: NotFound ("Could not find any
  // versions of model NAME" / "Could not find version V of model NAME").
  absl::StatusOr<std::vector<VersionStatus>> GetStatus(const std::string& name,
                                                       std::optional<int64_t> version) const;

  std::vector<std::string> ModelNames() const;

 private:
  struct Version {
    VersionStatus status;
    std::shared_ptr<const LoadedExport> model;
    int load_attempts = 0;
  };
  struct Model {
    ModelConfig config;
    std::map<int64_t, Version> versions;  // every version seen
    std::string last_problem;  // logged once until it changes
  };

  explicit ModelManager(ModelManagerOptions options);
  absl::Status PollModel(const std::string& name);
  void SetState(const std::string& name, int64_t v, VersionState state, absl::Status status)
      ABSL_LOCKS_EXCLUDED(mu_);

  const ModelManagerOptions options_;
  const io::Env& env_;
  absl::Mutex poll_mu_;  // one PollOnce at a time
  mutable absl::Mutex mu_;
  std::map<std::string, Model> models_ ABSL_GUARDED_BY(mu_);
};

// Calls manager->PollOnce() every `interval` on its own thread (the first
// poll at once) until destroyed; Trigger() polls now. Waits use the
// thread's condition variable with a deadline, never a bare sleep.
class ModelWatcher {
 public:
  ModelWatcher(ModelManager* manager, absl::Duration interval);
  ~ModelWatcher();  // stops and joins the thread
  void Trigger();
  // Polls completed so far (tests wait for a count after Trigger()).
  int64_t polls() const;
  // Blocks until polls() >= n or `timeout` passes; false on timeout.
  bool WaitForPolls(int64_t n, absl::Duration timeout) const;

 private:
  void Loop();

  ModelManager* const manager_;
  const absl::Duration interval_;
  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool triggered_ ABSL_GUARDED_BY(mu_) = false;
  int64_t polls_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace serving
}  // namespace estuary

#endif  // ESTUARY_SERVING_MODEL_MANAGER_H_
