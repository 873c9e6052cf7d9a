#include "common/cluster_plan.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/json_schema.h"
#include "common/status_macros.h"

namespace estuary {

absl::StatusOr<std::string> ResolveStrategy(const JobSpec& job, const TfConfig& tf) {
  const std::string& s = job.distribution.strategy;
  const int ps = tf.cluster.NumTasks(kPs);
  const JsonPath where = JsonPath(job.source).Key("distribution").Key("strategy");
  if (s == "auto") {
    if (ps > 0) return std::string("parameter_server");
    if (tf.cluster.empty()) return std::string("one_device");
    return std::string("multi_worker_mirrored");
  }
  if (s == "parameter_server" && ps == 0) {
    return where.Error("'parameter_server' needs ps tasks, but TF_CONFIG's cluster has none");
  }
  const bool one_process = s == "mirrored" || s == "central_storage" || s == "one_device";
  if ((one_process || s == "multi_worker_mirrored") && ps > 0) {
    return where.Error(absl::StrCat("'", s, "' does not use ps tasks, but TF_CONFIG's cluster has ",
                                    ps, " (use 'parameter_server' or remove them)"));
  }
  if (one_process &&
      tf.cluster.NumTasks(kWorker) + tf.cluster.NumTasks(kChief) + tf.cluster.NumTasks(kMaster) > 1) {
    return where.Error(absl::StrCat("'", s, "' runs in one process, but the cluster has several "
                                    "training tasks (use 'multi_worker_mirrored')"));
  }
  return s;
}

std::string BinaryFor(const TaskId& task) {
  if (task.type == kMaster) return std::string(kChief);
  return task.type;
}

namespace {

// multi_worker_mirrored: a training task's rank in the all-reduce ring
// (TrainerShard's order: chief/master 0, worker i = i + 1, or i without a
// chief) and the ring's size.
std::pair<int, int> RingRank(const TaskId& task, const TfConfig& tf) {
  const int chiefs = tf.cluster.NumTasks(kChief) + tf.cluster.NumTasks(kMaster);
  const int size = chiefs + tf.cluster.NumTasks(kWorker);
  return {task.type == kWorker ? task.index + (chiefs > 0 ? 1 : 0) : 0, size};
}

}  // namespace

std::string DescribeDuties(const TaskId& task, const TfConfig& tf, const std::string& strategy) {
  const bool coordinator = [&] {
    auto c = tf.Coordinator();
    return c.ok() && *c == task;
  }();
  const bool ring = strategy == "multi_worker_mirrored";
  const auto [rank, ring_size] = RingRank(task, tf);
  std::string duties;
  if (coordinator) {
    duties = "coordinates the cluster (coordination service: registration, heartbeats, "
             "barriers, shutdown), writes checkpoints and summaries";
    if (ring) {
      absl::StrAppend(&duties, task.type == kWorker ? " (no chief in the cluster)" : "",
                      ", and trains as rank 0 of ", ring_size,
                      " in the all-reduce ring (restores and broadcasts the variables)");
    } else if (task.type == kWorker) {
      absl::StrAppend(&duties, " (no chief in the cluster), and trains");
    } else if (strategy != "parameter_server") {
      absl::StrAppend(&duties, ", and trains as a replica");
    }
    return duties;
  }
  if (task.type == kWorker) {
    if (ring) {
      return absl::StrCat("trains as rank ", rank, " of ", ring_size,
                          " in the all-reduce ring: all-reduces gradients with the other ranks");
    }
    return strategy == "parameter_server"
               ? "trains on its input shard: pulls variables from the ps tasks, pushes gradients"
               : "trains as a replica: all-reduces gradients with the other replicas";
  }
  if (task.type == kPs) {
    return "holds a shard of the variables and applies the optimizer to pushed gradients";
  }
  if (task.type == kEvaluator) {
    return "evaluates each new checkpoint, writes eval summaries, runs exporters";
  }
  return "";
}

absl::StatusOr<std::string> ExplainConfig(const TfConfig& tf, const JobSpec* job) {
  std::string out;
  std::string strategy = "(no job given)";
  if (job != nullptr) {
    ASSIGN_OR_RETURN(strategy, ResolveStrategy(*job, tf));
  }
  if (tf.cluster.empty()) {
    absl::StrAppend(&out, "TF_CONFIG has no cluster: single-process run (`estuary train`).\n");
  } else {
    ASSIGN_OR_RETURN(TaskId coordinator, tf.Coordinator());
    ASSIGN_OR_RETURN(std::string coord_addr, tf.cluster.Address(coordinator));
    std::vector<TaskId> tasks = tf.cluster.AllTasks();
    const bool evaluator_outside = tf.task.type == kEvaluator && !tf.cluster.HasJob(kEvaluator);
    absl::StrAppend(&out, "cluster: ", tasks.size(), " tasks");
    for (const auto& [job_name, members] : tf.cluster.jobs()) {
      absl::StrAppend(&out, job_name == tf.cluster.jobs().begin()->first ? " (" : ", ",
                      members.size(), " ", job_name);
    }
    absl::StrAppend(&out, ")", tf.cluster.sparse() ? ", sparse form (dynamic workers)" : "",
                    "\ncoordinator: ", coordinator.ToString(), " at ", coord_addr, "\n");
    absl::StrAppend(&out, "strategy: ", strategy, "\n");
    if (!tf.task.type.empty()) {
      absl::StrAppend(&out, "this process: ", tf.task.ToString(), ", runs the `",
                      BinaryFor(tf.task), "` binary",
                      evaluator_outside ? " (evaluator outside the cluster, as tf.estimator "
                                          "expects)"
                                        : "",
                      "\n");
    }
    absl::StrAppend(&out, "tasks:\n");
    if (evaluator_outside) tasks.push_back(tf.task);
    for (const TaskId& t : tasks) {
      absl::StatusOr<std::string> addr = tf.cluster.Address(t);
      absl::StrAppend(&out,
                      absl::StrFormat("  %-12s %-28s %-10s %s%s\n", t.ToString(),
                                      addr.ok() ? *addr : "(outside cluster)", BinaryFor(t),
                                      DescribeDuties(t, tf, strategy),
                                      t == tf.task ? "  <- this process" : ""));
    }
  }
  if (job != nullptr) {
    const DistributionConfig& d = job->distribution;
    absl::StrAppend(
        &out, "job: ", job->source, ": model_dir ", job->model_dir,
        absl::StrFormat("; heartbeat every %.2f s, a task is dead after %.2f s; start-up "
                        "timeout %.0f s; shutdown timeout %.0f s\n",
                        absl::ToDoubleSeconds(d.heartbeat_interval),
                        absl::ToDoubleSeconds(d.heartbeat_timeout),
                        absl::ToDoubleSeconds(d.startup_timeout),
                        absl::ToDoubleSeconds(d.shutdown_timeout)));
    if (strategy == "multi_worker_mirrored") {
      absl::StrAppend(
          &out,
          absl::StrFormat(
              "all-reduce: %s, %d replica(s) per task; every collective has a %.0f s deadline. "
              "A task that dies or stalls fails the others' collective, naming it; they re-form "
              "the ring at a new generation and resume from the last checkpoint once it is back "
              "(restarted by `estuary local --restart_failed` or Kubernetes), waiting up to the "
              "start-up timeout, else the job fails naming it\n",
              d.communication == "nccl"   ? "NCCL (refused at start-up where it can not run)"
              : d.communication == "ring" ? "ring over TCP"
                                          : "auto (NCCL where the build has CUDA and a GPU is "
                                            "visible, else ring over TCP)",
              d.num_replicas_per_worker,
              absl::ToDoubleSeconds(d.collective_timeout)));
    }
  }
  return out;
}

}  // namespace estuary
