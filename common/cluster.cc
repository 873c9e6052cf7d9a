#include "common/cluster.h"

#include <cstdlib>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/did_you_mean.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace estuary {
namespace {

using json = nlohmann::json;

const std::vector<std::string>& KnownJobs() {
  static const auto* jobs = new std::vector<std::string>{
      std::string(kChief), std::string(kMaster), std::string(kWorker),
      std::string(kPs), std::string(kEvaluator)};
  return *jobs;
}

int JobRank(const std::string& type) {
  const auto& jobs = KnownJobs();
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (jobs[i] == type) return static_cast<int>(i);
  }
  return static_cast<int>(jobs.size());
}

std::string TypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return absl::StrCat("string \"", v.get<std::string>(), "\"");
    case json::value_t::boolean: return absl::StrCat("boolean ", v.dump());
    case json::value_t::number_float: return absl::StrCat("number ", v.dump());
    default: return absl::StrCat("number ", v.dump());
  }
}

absl::Status Invalid(absl::string_view msg) {
  return absl::InvalidArgumentError(absl::StrCat("TF_CONFIG: ", msg));
}

absl::Status ParseJob(const std::string& name, const json& value,
                      std::map<int, std::string>* tasks, bool* sparse) {
  const std::string field = absl::StrCat("cluster.", name);
  if (value.is_array()) {
    for (size_t i = 0; i < value.size(); ++i) {
      const std::string f = absl::StrCat(field, "[", i, "]");
      if (!value[i].is_string()) {
        return Invalid(absl::StrCat(f, " must be a \"host:port\" string, got ",
                                    TypeName(value[i])));
      }
      RETURN_IF_ERROR(ValidateAddress(value[i].get<std::string>(), f));
      (*tasks)[static_cast<int>(i)] = value[i].get<std::string>();
    }
    return absl::OkStatus();
  }
  if (value.is_object()) {
    *sparse = true;
    for (auto it = value.begin(); it != value.end(); ++it) {
      const std::string f = absl::StrCat(field, ".\"", it.key(), "\"");
      int index = -1;
      if (!absl::SimpleAtoi(it.key(), &index) || index < 0) {
        return Invalid(absl::StrCat(
            f, ": sparse task keys must be non-negative task indices, got \"",
            it.key(), "\""));
      }
      if (!it.value().is_string()) {
        return Invalid(absl::StrCat(f, " must be a \"host:port\" string, got ",
                                    TypeName(it.value())));
      }
      RETURN_IF_ERROR(ValidateAddress(it.value().get<std::string>(), f));
      (*tasks)[index] = it.value().get<std::string>();
    }
    return absl::OkStatus();
  }
  return Invalid(absl::StrCat(
      field, " must be a list of \"host:port\" strings or an {\"index\": "
             "\"host:port\"} map, got ",
      TypeName(value)));
}

std::string FieldOf(const std::string& job, int index, bool sparse_job) {
  return sparse_job ? absl::StrCat("cluster.", job, ".\"", index, "\"")
                    : absl::StrCat("cluster.", job, "[", index, "]");
}

}  // namespace

std::string TaskId::ToString() const { return absl::StrCat(type, ":", index); }

bool TaskId::operator<(const TaskId& o) const {
  const int a = JobRank(type), b = JobRank(o.type);
  if (a != b) return a < b;
  if (type != o.type) return type < o.type;
  return index < o.index;
}

absl::StatusOr<TaskId> ParseTaskId(absl::string_view s) {
  std::vector<absl::string_view> parts = absl::StrSplit(s, ':');
  TaskId t;
  if (parts.size() != 2 || parts[0].empty() ||
      !absl::SimpleAtoi(parts[1], &t.index) || t.index < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad task name '", s, "': expected TYPE:INDEX, e.g. worker:1"));
  }
  t.type = std::string(parts[0]);
  return t;
}

absl::Status ValidateAddress(absl::string_view address, absl::string_view field) {
  absl::string_view host, port;
  if (absl::StartsWith(address, "[")) {
    const size_t close = address.find(']');
    if (close == absl::string_view::npos || close + 1 >= address.size() ||
        address[close + 1] != ':') {
      return Invalid(absl::StrCat(field, " '", address,
                                  "' is not \"[ipv6]:port\""));
    }
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos) {
      return Invalid(absl::StrCat(field, " '", address,
                                  "' has no port: expected \"host:port\""));
    }
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  int p = 0;
  if (host.empty()) {
    return Invalid(absl::StrCat(field, " '", address, "' has an empty host"));
  }
  if (!absl::SimpleAtoi(port, &p) || p < 1 || p > 65535) {
    return Invalid(absl::StrCat(field, " '", address, "' has port '", port,
                                "': expected a number in 1..65535"));
  }
  return absl::OkStatus();
}

bool ClusterSpec::HasJob(absl::string_view type) const {
  auto it = jobs_.find(std::string(type));
  return it != jobs_.end() && !it->second.empty();
}

int ClusterSpec::NumTasks(absl::string_view type) const {
  auto it = jobs_.find(std::string(type));
  return it == jobs_.end() ? 0 : static_cast<int>(it->second.size());
}

absl::StatusOr<std::string> ClusterSpec::Address(const TaskId& task) const {
  auto job = jobs_.find(task.type);
  if (job != jobs_.end()) {
    auto it = job->second.find(task.index);
    if (it != job->second.end()) return it->second;
  }
  return absl::NotFoundError(
      absl::StrCat("task ", task.ToString(), " is not in the cluster spec"));
}

std::vector<TaskId> ClusterSpec::AllTasks() const {
  std::vector<TaskId> out;
  for (const auto& [job, tasks] : jobs_) {
    for (const auto& [index, address] : tasks) out.push_back({job, index});
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string ClusterSpec::ToJson() const {
  json j = json::object();
  for (const auto& [job, tasks] : jobs_) {
    bool dense = true;
    int expect = 0;
    for (const auto& [index, address] : tasks) dense &= (index == expect++);
    if (dense) {
      json list = json::array();
      for (const auto& [index, address] : tasks) list.push_back(address);
      j[job] = list;
    } else {
      json map = json::object();
      for (const auto& [index, address] : tasks) map[std::to_string(index)] = address;
      j[job] = map;
    }
  }
  return j.dump();
}

absl::StatusOr<TaskId> TfConfig::Coordinator() const {
  for (absl::string_view job : {kChief, kMaster, kWorker}) {
    auto it = cluster.jobs().find(std::string(job));
    if (it != cluster.jobs().end() && it->second.count(0)) {
      return TaskId{std::string(job), 0};
    }
  }
  return absl::NotFoundError(
      "TF_CONFIG: no task can coordinate the cluster: it needs a 'chief' (or "
      "legacy 'master') task, or a 'worker' with index 0");
}

bool TfConfig::IsCoordinator() const {
  auto c = Coordinator();
  return c.ok() && *c == task;
}

std::string TfConfig::ToJson() const {
  json j;
  j["cluster"] = json::parse(cluster.ToJson());
  j["task"] = {{"type", task.type}, {"index", task.index}};
  if (!environment.empty()) j["environment"] = environment;
  if (!rpc_layer.empty()) j["rpc_layer"] = rpc_layer;
  return j.dump();
}

absl::StatusOr<TfConfig> ParseTfConfig(absl::string_view text) {
  json root;
  try {
    root = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    return Invalid(absl::StrCat("not valid JSON at byte ", e.byte, ": ", e.what()));
  } catch (const json::exception& e) {
    // out_of_range: a number beyond double's range ("1e309"; found by
    // fuzz/tf_config_fuzzer's kin, fuzz/job_spec_fuzzer).
    return Invalid(absl::StrCat("not valid JSON: ", e.what()));
  }
  if (!root.is_object()) {
    return Invalid(absl::StrCat("must be a JSON object, got ", TypeName(root)));
  }
  TfConfig config;
  // Unknown top-level keys are ignored, as TensorFlow does: launchers add
  // their own (e.g. Cloud ML Engine's "job").
  if (root.contains("cluster") && !root["cluster"].is_null()) {
    const json& cluster = root["cluster"];
    if (!cluster.is_object()) {
      return Invalid(absl::StrCat("cluster must be an object mapping job names "
                                  "to task addresses, got ",
                                  TypeName(cluster)));
    }
    ClusterSpec::Jobs jobs;
    bool sparse = false;
    std::set<std::string> sparse_jobs;
    for (auto it = cluster.begin(); it != cluster.end(); ++it) {
      if (std::find(KnownJobs().begin(), KnownJobs().end(), it.key()) ==
          KnownJobs().end()) {
        return Invalid(absl::StrCat("cluster has unknown job '", it.key(), "'",
                                    DidYouMean(it.key(), KnownJobs())));
      }
      bool job_sparse = false;
      RETURN_IF_ERROR(ParseJob(it.key(), it.value(), &jobs[it.key()], &job_sparse));
      if (job_sparse) sparse_jobs.insert(it.key());
      sparse |= job_sparse;
    }
    for (absl::string_view single : {kChief, kMaster, kEvaluator}) {
      auto it = jobs.find(std::string(single));
      if (it != jobs.end() && it->second.size() > 1) {
        return Invalid(absl::StrCat("cluster.", single, " has ", it->second.size(),
                                    " tasks: at most one is allowed"));
      }
    }
    if (!jobs[std::string(kChief)].empty() && !jobs[std::string(kMaster)].empty()) {
      return Invalid("cluster has both 'chief' and 'master': use one ('master' is the legacy name of 'chief')");
    }
    // Drop empty jobs ("ps": []) so that HasJob/NumTasks agree.
    for (auto it = jobs.begin(); it != jobs.end();) {
      it = it->second.empty() ? jobs.erase(it) : std::next(it);
    }
    std::map<std::string, std::string> seen;  // address -> field
    for (const auto& [job, tasks] : jobs) {
      for (const auto& [index, address] : tasks) {
        const std::string field = FieldOf(job, index, sparse_jobs.count(job) > 0);
        auto [it, inserted] = seen.emplace(address, field);
        if (!inserted) {
          return Invalid(absl::StrCat(field, " '", address, "' duplicates ",
                                      it->second, ": every task needs its own address"));
        }
      }
    }
    config.cluster = ClusterSpec(std::move(jobs), sparse);
  }
  if (root.contains("task") && !root["task"].is_null()) {
    const json& task = root["task"];
    if (!task.is_object()) {
      return Invalid(absl::StrCat("task must be an object {\"type\": ..., \"index\": ...}, got ",
                                  TypeName(task)));
    }
    for (auto it = task.begin(); it != task.end(); ++it) {
      if (it.key() != "type" && it.key() != "index" && it.key() != "trial") {
        return Invalid(absl::StrCat("task has unknown key '", it.key(), "'",
                                    DidYouMean(it.key(), {"type", "index"})));
      }
    }
    if (!task.contains("type")) {
      return Invalid("task.type is missing: expected one of chief, master, worker, ps, evaluator");
    }
    if (!task["type"].is_string()) {
      return Invalid(absl::StrCat("task.type must be a string, got ", TypeName(task["type"])));
    }
    config.task.type = task["type"].get<std::string>();
    if (std::find(KnownJobs().begin(), KnownJobs().end(), config.task.type) ==
        KnownJobs().end()) {
      return Invalid(absl::StrCat("task.type '", config.task.type, "' is unknown",
                                  DidYouMean(config.task.type, KnownJobs())));
    }
    if (task.contains("index")) {
      const json& index = task["index"];
      if (!index.is_number_integer()) {
        return Invalid(absl::StrCat("task.index must be an integer, got ", TypeName(index)));
      }
      const int64_t v = index.get<int64_t>();
      if (v < 0 || v > 1000000) {
        return Invalid(absl::StrCat("task.index ", v, " must be >= 0"));
      }
      config.task.index = static_cast<int>(v);
    }
    const bool in_cluster = config.cluster.Address(config.task).ok();
    if (!in_cluster) {
      const int n = config.cluster.NumTasks(config.task.type);
      if (config.task.type == kEvaluator && n == 0) {
        // The Estimator convention: the evaluator is not part of the cluster.
        if (config.task.index != 0) {
          return Invalid(absl::StrCat("task.index ", config.task.index,
                                      " out of range: there is only one evaluator (index 0)"));
        }
      } else if (config.cluster.empty()) {
        return Invalid(absl::StrCat("task is ", config.task.ToString(),
                                    " but cluster is missing or empty"));
      } else if (n == 0) {
        return Invalid(absl::StrCat("task.type '", config.task.type,
                                    "' has no tasks in cluster (jobs: ",
                                    absl::StrJoin(config.cluster.jobs(), ", ",
                                                  [](std::string* out, const auto& j) {
                                                    absl::StrAppend(out, j.first);
                                                  }),
                                    ")"));
      } else if (config.cluster.sparse()) {
        return Invalid(absl::StrCat("task.index ", config.task.index, " is not among cluster.",
                                    config.task.type, "'s task indices"));
      } else {
        return Invalid(absl::StrCat("task.index ", config.task.index,
                                    " out of range: cluster has ", n, " '",
                                    config.task.type, "' task", n == 1 ? "" : "s"));
      }
    }
  } else if (!config.cluster.empty()) {
    return Invalid("task is missing: a TF_CONFIG with a cluster needs "
                   "\"task\": {\"type\": ..., \"index\": ...}");
  }
  if (root.contains("environment") && !root["environment"].is_null()) {
    if (!root["environment"].is_string()) {
      return Invalid(absl::StrCat("environment must be a string, got ",
                                  TypeName(root["environment"])));
    }
    config.environment = root["environment"].get<std::string>();
  }
  if (root.contains("rpc_layer") && !root["rpc_layer"].is_null()) {
    if (!root["rpc_layer"].is_string()) {
      return Invalid(absl::StrCat("rpc_layer must be a string, got ",
                                  TypeName(root["rpc_layer"])));
    }
    config.rpc_layer = root["rpc_layer"].get<std::string>();
    if (!config.rpc_layer.empty() && config.rpc_layer != "grpc") {
      return Invalid(absl::StrCat("rpc_layer '", config.rpc_layer,
                                  "' is not supported: Estuary speaks plain gRPC (\"grpc\")"));
    }
  }
  return config;
}

absl::StatusOr<TfConfig> TfConfigFromEnvironment(absl::string_view override_json) {
  if (!override_json.empty()) return ParseTfConfig(override_json);
  const char* env = std::getenv("TF_CONFIG");
  if (env == nullptr || *env == '\0') {
    return absl::NotFoundError(
        "TF_CONFIG is not set: set the TF_CONFIG environment variable or pass --tf_config");
  }
  return ParseTfConfig(env);
}

}  // namespace estuary
