#include "serving/model_manager.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"

namespace estuary {
namespace serving {
namespace {

// A version directory's name: decimal digits only (no sign, no dot).
bool ParseVersion(const std::string& name, int64_t* version) {
  if (name.empty() || name.size() > 18) return false;
  for (char c : name) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return absl::SimpleAtoi(name, version);
}

}  // namespace

const char* VersionStateName(VersionState state) {
  switch (state) {
    case VersionState::kStart:
      return "START";
    case VersionState::kLoading:
      return "LOADING";
    case VersionState::kAvailable:
      return "AVAILABLE";
    case VersionState::kUnloading:
      return "UNLOADING";
    case VersionState::kEnd:
      return "END";
  }
  return "UNKNOWN";
}

absl::StatusOr<std::unique_ptr<ModelManager>> ModelManager::Create(ModelManagerOptions options) {
  if (!options.loader) return absl::InvalidArgumentError("ModelManager needs a loader");
  if (options.models.empty()) return absl::InvalidArgumentError("no models to serve");
  std::set<std::string> names;
  for (const ModelConfig& m : options.models) {
    if (m.name.empty()) return absl::InvalidArgumentError("a model config has no name");
    if (m.base_path.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("model '", m.name, "' has no base_path"));
    }
    if (!names.insert(m.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("model '", m.name, "' is configured twice"));
    }
    if (m.policy.kind == VersionPolicy::Kind::kLatest && m.policy.num_versions < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("model '", m.name, "': latest.num_versions must be >= 1"));
    }
    if (m.policy.kind == VersionPolicy::Kind::kSpecific && m.policy.versions.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("model '", m.name, "': specific.versions is empty"));
    }
  }
  return std::unique_ptr<ModelManager>(new ModelManager(std::move(options)));
}

ModelManager::ModelManager(ModelManagerOptions options)
    : options_(std::move(options)), env_(options_.env ? *options_.env : io::Env::Default()) {
  absl::MutexLock l(&mu_);
  for (const ModelConfig& m : options_.models) models_[m.name].config = m;
}

std::vector<std::string> ModelManager::ModelNames() const {
  absl::MutexLock l(&mu_);
  std::vector<std::string> names;
  for (const auto& [name, m] : models_) names.push_back(name);
  return names;
}

absl::Status ModelManager::PollOnce() {
  absl::MutexLock poll(&poll_mu_);
  std::vector<std::string> errors;
  for (const std::string& name : ModelNames()) {
    absl::Status st = PollModel(name);
    if (!st.ok()) errors.push_back(std::string(st.message()));
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::UnavailableError(absl::StrJoin(errors, "; "));
}

void ModelManager::SetState(const std::string& name, int64_t v, VersionState state,
                            absl::Status status) {
  absl::MutexLock l(&mu_);
  Version& ver = models_[name].versions[v];
  ver.status.version = v;
  ver.status.state = state;
  ver.status.status = std::move(status);
}

absl::Status ModelManager::PollModel(const std::string& name) {
  ModelConfig config;
  {
    absl::MutexLock l(&mu_);
    config = models_[name].config;
  }
  // Versions on disk.
  std::set<int64_t> on_disk;
  absl::Status list_error;
  absl::StatusOr<std::vector<std::string>> children = env_.GetChildren(config.base_path);
  if (!children.ok()) {
    list_error = absl::Status(children.status().code(),
                              absl::StrCat("model '", name, "': cannot list base path '",
                                           config.base_path, "': ", children.status().message()));
  } else {
    for (const std::string& child : *children) {
      int64_t v;
      if (!ParseVersion(child, &v)) continue;  // dot-names, temporary directories
      absl::StatusOr<io::FileInfo> info = env_.Stat(io::JoinPath(config.base_path, child));
      if (info.ok() && info->is_directory) on_disk.insert(v);
    }
  }
  // Versions the policy wants.
  std::set<int64_t> wanted;
  switch (config.policy.kind) {
    case VersionPolicy::Kind::kLatest: {
      int n = 0;
      for (auto it = on_disk.rbegin(); it != on_disk.rend() && n < config.policy.num_versions;
           ++it, ++n) {
        wanted.insert(*it);
      }
      break;
    }
    case VersionPolicy::Kind::kAll:
      wanted = on_disk;
      break;
    case VersionPolicy::Kind::kSpecific:
      for (int64_t v : config.policy.versions) {
        if (on_disk.count(v)) wanted.insert(v);
      }
      break;
  }

  // Load what is wanted and not loaded, the highest first.
  std::vector<std::string> load_errors;
  for (auto it = wanted.rbegin(); it != wanted.rend(); ++it) {
    const int64_t v = *it;
    {
      absl::MutexLock l(&mu_);
      Model& m = models_[name];
      auto vit = m.versions.find(v);
      if (vit != m.versions.end() &&
          (vit->second.model != nullptr || vit->second.load_attempts >= options_.max_load_attempts)) {
        continue;
      }
      Version& ver = m.versions[v];
      ver.status.version = v;
      ver.status.state = VersionState::kLoading;
      ver.status.status = absl::OkStatus();
      ++ver.load_attempts;
    }
    const std::string dir = io::JoinPath(config.base_path, std::to_string(v));
    spdlog::info("Loading servable: {{name: {} version: {}}} from {}", name, v, dir);
    absl::StatusOr<std::shared_ptr<const LoadedExport>> loaded = options_.loader(dir);
    absl::MutexLock l(&mu_);
    Version& ver = models_[name].versions[v];
    if (loaded.ok() && *loaded != nullptr) {
      ver.model = *std::move(loaded);
      ver.status.state = VersionState::kAvailable;
      ver.load_attempts = 0;  // the bound is on consecutive failures
      spdlog::info("Successfully loaded servable version {{name: {} version: {}}}", name, v);
    } else {
      absl::Status st = loaded.ok() ? absl::InternalError("the loader returned no model")
                                    : loaded.status();
      ver.status.state = VersionState::kEnd;
      ver.status.status = st;
      spdlog::error("Loading servable {{name: {} version: {}}} failed (attempt {} of {}): {}",
                    name, v, ver.load_attempts, options_.max_load_attempts, st.message());
      load_errors.push_back(absl::StrCat("model '", name, "' version ", v, ": ", st.message()));
    }
  }

  // Unload what is loaded and no longer wanted: at once if its directory is
  // gone, else only once a wanted version is available.
  std::vector<std::pair<int64_t, std::shared_ptr<const LoadedExport>>> released;
  {
    absl::MutexLock l(&mu_);
    Model& m = models_[name];
    bool wanted_available = false;
    for (int64_t v : wanted) {
      auto vit = m.versions.find(v);
      if (vit != m.versions.end() && vit->second.model != nullptr) wanted_available = true;
    }
    for (auto& [v, ver] : m.versions) {
      if (ver.model == nullptr || wanted.count(v)) continue;
      const bool gone = !on_disk.count(v);
      if (!gone && !wanted_available) continue;
      ver.status.state = VersionState::kUnloading;
      released.emplace_back(v, std::move(ver.model));
      ver.model = nullptr;
      if (gone) {
        ver.status.status = absl::NotFoundError(
            absl::StrCat("version directory '", io::JoinPath(config.base_path, std::to_string(v)),
                         "' was removed while serving"));
      }
    }
  }
  for (auto& [v, model] : released) {
    spdlog::info("Unloading servable version {{name: {} version: {}}}", name, v);
    model.reset();  // freed here unless a request still holds it
    absl::MutexLock l(&mu_);
    models_[name].versions[v].status.state = VersionState::kEnd;
  }
  std::string problem;
  if (!list_error.ok()) {
    problem = std::string(list_error.message());
    load_errors.insert(load_errors.begin(), problem);
  } else if (on_disk.empty()) {
    problem = absl::StrCat("No versions of servable ", name, " found under base path ",
                           config.base_path);
  }
  {
    absl::MutexLock l(&mu_);
    std::string& last = models_[name].last_problem;
    if (problem != last && !problem.empty()) spdlog::warn("{}", problem);
    last = problem;
  }
  if (load_errors.empty()) return absl::OkStatus();
  return absl::UnavailableError(absl::StrJoin(load_errors, "; "));
}

absl::StatusOr<ServableHandle> ModelManager::Get(const std::string& name,
                                                 std::optional<int64_t> version,
                                                 const std::string& label) const {
  absl::MutexLock l(&mu_);
  auto mit = models_.find(name);
  if (!version && !label.empty()) {
    if (mit == models_.end() || !mit->second.config.version_labels.count(label)) {
      return absl::InvalidArgumentError(
          absl::StrCat("Unrecognized servable version label: ", label));
    }
    version = mit->second.config.version_labels.at(label);
  }
  const std::string request = version ? absl::StrCat("Specific(", name, ", ", *version, ")")
                                      : absl::StrCat("Latest(", name, ")");
  const absl::Status not_found =
      absl::NotFoundError(absl::StrCat("Servable not found for request: ", request));
  if (mit == models_.end()) return not_found;
  const Model& m = mit->second;
  for (auto it = m.versions.rbegin(); it != m.versions.rend(); ++it) {
    if (it->second.model == nullptr) continue;
    if (version && it->first != *version) continue;
    return ServableHandle{name, it->first, it->second.model};
  }
  return not_found;
}

absl::StatusOr<std::vector<VersionStatus>> ModelManager::GetStatus(
    const std::string& name, std::optional<int64_t> version) const {
  absl::MutexLock l(&mu_);
  auto mit = models_.find(name);
  if (mit == models_.end() || mit->second.versions.empty()) {
    return absl::NotFoundError(absl::StrCat("Could not find any versions of model ", name));
  }
  std::vector<VersionStatus> out;
  for (auto it = mit->second.versions.rbegin(); it != mit->second.versions.rend(); ++it) {
    if (version && it->first != *version) continue;
    out.push_back(it->second.status);
  }
  if (out.empty()) {
    return absl::NotFoundError(
        absl::StrCat("Could not find version ", *version, " of model ", name));
  }
  return out;
}

ModelWatcher::ModelWatcher(ModelManager* manager, absl::Duration interval)
    : manager_(manager), interval_(interval), thread_([this] { Loop(); }) {}

ModelWatcher::~ModelWatcher() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void ModelWatcher::Trigger() {
  absl::MutexLock l(&mu_);
  triggered_ = true;
}

int64_t ModelWatcher::polls() const {
  absl::MutexLock l(&mu_);
  return polls_;
}

bool ModelWatcher::WaitForPolls(int64_t n, absl::Duration timeout) const {
  absl::MutexLock l(&mu_);
  auto done = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return polls_ >= n; };
  return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
}

void ModelWatcher::Loop() {
  absl::MutexLock l(&mu_);
  while (!stop_) {
    mu_.Unlock();
    absl::Status st = manager_->PollOnce();  // logs its own errors
    (void)st;
    mu_.Lock();
    ++polls_;
    auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || triggered_; };
    mu_.AwaitWithTimeout(absl::Condition(&wake), interval_);
    triggered_ = false;
  }
}

}  // namespace serving
}  // namespace estuary
