#include "distribute/trainer.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/checkpoint.h"
#include "common/cluster_plan.h"
#include "common/coordination/coordination_client.h"
#include "common/coordination/types.h"
#include "common/logging.h"
#include "common/ps/ps_client.h"
#include "common/rpc.h"
#include "common/status_macros.h"
#include "distribute/checkpoint_lease.h"
#include "distribute/keys.h"
#include "distribute/multi_worker_trainer.h"
#include "distribute/parameter_server_strategy.h"
#include "distribute/trainer_internal.h"
#include "estimator/metrics_hook.h"

namespace estuary {
namespace {

bool IsChiefType(const std::string& type) { return type == kChief || type == kMaster; }

// The non-coordinator training tasks (the workers but worker 0 of a
// cluster without a chief).
std::vector<TaskId> OtherTrainers(const TfConfig& tf) {
  std::vector<TaskId> out;
  absl::StatusOr<TaskId> coordinator = tf.Coordinator();
  for (const TaskId& t : tf.cluster.AllTasks()) {
    if (t.type != kWorker) continue;
    if (coordinator.ok() && t == *coordinator) continue;
    out.push_back(t);
  }
  return out;
}

std::string DoneKey(const TaskId& task) {
  return absl::StrCat(kTrainerDonePrefix, task.ToString());
}

// The generation for this Initialize: one past the last published.
absl::StatusOr<uint64_t> NextGeneration(Store& store, absl::Time deadline) {
  absl::StatusOr<std::string> last = store.Get(kPsGenerationKey, deadline);
  if (absl::IsNotFound(last.status())) return 1;
  RETURN_IF_ERROR(last.status());
  uint64_t g = 0;
  if (!absl::SimpleAtoi(*last, &g)) {
    return absl::InternalError(absl::StrCat(kPsGenerationKey, " holds '", *last, "'"));
  }
  return g + 1;
}

// Chief, after its own training: waits for the workers to finish theirs,
// so the final checkpoint holds every step; a worker that is dead or gone
// (and not back) is not waited for. Gives up after `timeout`.
void WaitForWorkers(CoordinationClient& store, const TfConfig& tf, absl::Duration timeout) {
  std::vector<TaskId> pending = OtherTrainers(tf);
  const absl::Time deadline = absl::Now() + timeout;
  while (!pending.empty()) {
    // Wakes when the first pending worker is done, or after a second to
    // look for dead ones.
    (void)store.Wait({DoneKey(pending.front())},
                     std::min(deadline, absl::Now() + absl::Seconds(1)));
    absl::StatusOr<coordination::ClusterState> state =
        store.GetClusterState(std::min(deadline, absl::Now() + absl::Seconds(5)));
    std::vector<TaskId> still;
    for (const TaskId& t : pending) {
      if (store.Get(DoneKey(t), absl::Now() + absl::Seconds(5)).ok()) continue;
      bool gone = false;
      if (state.ok()) {
        for (const coordination::TaskInfo& info : state->tasks()) {
          if (FromProto(info.task()) == t) {
            gone = info.state() == coordination::TASK_DEAD ||
                   info.state() == coordination::TASK_DISCONNECTED;
          }
        }
      }
      if (gone) {
        spdlog::warn("not waiting for {}: it is gone", t.ToString());
      } else {
        still.push_back(t);
      }
    }
    pending = std::move(still);
    if (!pending.empty() && absl::Now() >= deadline) {
      spdlog::warn("not every worker finished training within {} s", absl::ToDoubleSeconds(timeout));
      return;
    }
  }
}

}  // namespace

InputShard TrainerShard(const TfConfig& tf) {
  const ClusterSpec& c = tf.cluster;
  const int chiefs = c.NumTasks(kChief) + c.NumTasks(kMaster);
  const int count = chiefs + c.NumTasks(kWorker);
  if (IsChiefType(tf.task.type)) return {0, std::max(count, 1)};
  if (tf.task.type == kWorker) return {tf.task.index + (chiefs > 0 ? 1 : 0), count};
  return {0, 1};
}

bool HasTraining(const JobSpec& job) { return job.train_input.has_value(); }

namespace {

// The chief's checkpoint when its pod is preempted (--on_sigterm=preempt):
// the training client's calls are cancelled, so a fresh client (no
// canceller, calls bounded by `timeout`) snapshots the PS tasks. Best
// effort: logs the outcome (a PS already gone fails it at once).
void SaveOnPreemption(const JobSpec& job, const std::vector<std::string>& ps_addresses,
                      const std::vector<std::string>& ps_names, uint64_t generation,
                      absl::Duration timeout, int keep_checkpoint_max) {
  const absl::Time deadline = absl::Now() + timeout;
  auto save = [&]() -> absl::StatusOr<std::string> {
    PsClientOptions options;
    options.task_names = ps_names;
    ASSIGN_OR_RETURN(std::unique_ptr<PsClient> client, PsClient::Create(ps_addresses, options));
    RETURN_IF_ERROR(client->WaitInitialized(generation, deadline).status());
    int64_t step = 0;
    ASSIGN_OR_RETURN(std::vector<ShardEntry> shards,
                     client->SaveShards(job.model_dir, deadline, &step));
    checkpoint::SaveOptions options_save;
    options_save.keep_checkpoint_max = keep_checkpoint_max;
    // Deleting old checkpoints needs the leases' store; keep them all.
    options_save.may_delete = [](int64_t) { return false; };
    return checkpoint::CommitCheckpoint(job.model_dir, step, shards, options_save);
  };
  absl::StatusOr<std::string> prefix = save();
  if (prefix.ok()) {
    spdlog::info("preempted: saved checkpoint {}", *prefix);
  } else {
    spdlog::warn("preempted: could not save a checkpoint: {}", prefix.status().message());
  }
}

// RunTrainer under parameter_server.
absl::Status RunParameterServerTrainer(const RoleContext& ctx, TaskRuntime& runtime) {
  const JobSpec& job = ctx.job;
  const TfConfig& tf = ctx.tf_config;
  const bool chief = tf.IsCoordinator();
  std::vector<std::string> ps_addresses, ps_names;
  for (const TaskId& t : tf.cluster.AllTasks()) {
    if (t.type != kPs) continue;
    ASSIGN_OR_RETURN(std::string address, tf.cluster.Address(t));
    ps_addresses.push_back(std::move(address));
    ps_names.push_back(t.ToString());
  }
  CallCanceller canceller;
  PsClientOptions client_options;
  client_options.task_names = ps_names;
  client_options.canceller = &canceller;
  client_options.channel.security = runtime.security();
  client_options.data_plane = job.distribution.ps_data_plane;
  ASSIGN_OR_RETURN(std::unique_ptr<PsClient> client,
                   PsClient::Create(ps_addresses, std::move(client_options)));

  CoordinationClient& store = runtime.coordination();
  const DistributionConfig& dist = job.distribution;
  if (job.run_config.checkpoint_format == "tf") {
    // Each PS would write its data shard and the chief the .index; row-
    // partitioned tables would need TF's slices. Not built yet.
    return absl::UnimplementedError(
        "run_config.checkpoint_format \"tf\" is not supported by the parameter_server strategy "
        "yet: use \"native\" (TF checkpoints are still read, e.g. for warm_start_from)");
  }
  ParameterServerStrategyOptions ps;
  ps.is_chief = chief;
  ps.checkpoint.model_dir = job.model_dir;
  ps.checkpoint.seed = job.run_config.has_tf_random_seed ? job.run_config.tf_random_seed : 0;
  if (job.estimator.has_value()) ps.checkpoint.warm_start_from = job.estimator->warm_start_from;
  ps.keep_checkpoint_max = static_cast<int>(job.run_config.keep_checkpoint_max);
  ps.init_timeout = std::max(dist.startup_timeout, absl::Seconds(60));
  ps.call_timeout = TrainerCallTimeout(dist);
  // One trainer: nobody else pushes, so the values pulled with a push are
  // exactly what a separate pull would read. Several: off unless asked
  // (bench/RESULTS.md: -0.3 points of Fashion-MNIST accuracy, 20 runs).
  const InputShard shard = TrainerShard(tf);
  ps.pull_with_push = dist.pull_with_push.value_or(shard.count == 1);
  CheckpointLeases leases(&store);
  if (chief) {
    ps.may_delete = [&leases, &ps](int64_t step) {
      return leases.MayDelete(step, absl::Now() + ps.call_timeout);
    };
    ASSIGN_OR_RETURN(ps.generation, NextGeneration(store, absl::Now() + ps.call_timeout));
    ps.on_initialized = [&store, &ps](uint64_t generation) {
      return store.Set(kPsGenerationKey, absl::StrCat(generation),
                       absl::Now() + ps.call_timeout);
    };
  }
  ParameterServerStrategy* strategy = nullptr;
  auto factory = [&](const Model* model,
                     const std::map<std::string, std::unique_ptr<Optimizer>>* optimizers)
      -> absl::StatusOr<std::unique_ptr<Strategy>> {
    auto s = std::make_unique<ParameterServerStrategy>(model, optimizers, client.get(), ps);
    strategy = s.get();
    return std::unique_ptr<Strategy>(std::move(s));
  };
  EstimatorJobOptions extra;
  extra.strategy_factory = factory;
  extra.is_chief = chief;
  ASSIGN_OR_RETURN(std::unique_ptr<Estimator> estimator, EstimatorFromJob(job, extra));
  ASSIGN_OR_RETURN(InputFn input_fn, InputFnFromJob(job, "train_input", shard));
  spdlog::info("training as {} on input shard {} of {} with {} ps tasks ({})",
               chief ? "chief" : "worker", shard.index, shard.count, ps_addresses.size(),
               ps.pull_with_push ? "one push+pull per step" : "a push, then a pull, per step");

  TrainArgs args;
  args.max_steps = job.train_spec.max_steps;
  args.hooks.push_back(std::make_shared<StepCallbackHook>(
      [&runtime](const StepInfo&) { return !runtime.stopped(); }));
  LiveTrainingReport live(&runtime);
  live.AddTo(&args, chief);
  if (ctx.metrics != nullptr) args.hooks.push_back(std::make_shared<MetricsHook>(ctx.metrics));
  absl::Status trained;
  {
    OnRuntimeStop cancel_on_stop(&runtime, [&canceller] { canceller.CancelAll(); });
    trained = estimator->Train(input_fn, args);
  }
  if (runtime.stopped()) {
    if (chief && ctx.Preempted()) {
      SaveOnPreemption(job, ps_addresses, ps_names, client->generation(), ps.call_timeout,
                       ps.keep_checkpoint_max);
    }
    return trained.ok() ? absl::CancelledError("stopped") : trained;
  }

  if (!chief) {
    if (!trained.ok()) {
      // The chief may have ended training (and the PS tasks) while this
      // worker's last step was in flight.
      if (store.Get(kFinalStepKey, absl::Now() + ps.call_timeout).ok()) {
        spdlog::info("training ended by the chief ({})", trained.message());
        return absl::OkStatus();
      }
      return trained;
    }
    return store.Set(DoneKey(tf.task), "1", absl::Now() + ps.call_timeout);
  }

  RETURN_IF_ERROR(trained);
  WaitForWorkers(store, tf, dist.startup_timeout);
  ASSIGN_OR_RETURN(const int64_t global_step, client->GlobalStep(absl::Now() + ps.call_timeout));
  return FinishChiefTraining(job, tf, store, global_step,
                             [strategy, &live, global_step]() -> absl::StatusOr<std::string> {
                               ASSIGN_OR_RETURN(std::string prefix, strategy->SaveCheckpoint());
                               (void)live.AfterSave(global_step, prefix);
                               return prefix;
                             });
}

}  // namespace

absl::Status RunTrainer(const RoleContext& ctx, TaskRuntime& runtime) {
  ASSIGN_OR_RETURN(std::string strategy_name, ResolveStrategy(ctx.job, ctx.tf_config));
  if (strategy_name == "parameter_server") return RunParameterServerTrainer(ctx, runtime);
  if (strategy_name == "multi_worker_mirrored") return RunMultiWorkerMirroredTrainer(ctx, runtime);
  return absl::UnimplementedError(absl::StrCat(
      "distribution.strategy '", strategy_name,
      "' runs in one process (`estuary train`); a cluster trains with parameter_server or "
      "multi_worker_mirrored"));
}

}  // namespace estuary
