#include "distribute/multi_worker_trainer.h"

#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/collective/communicator.h"
#include "common/collective/ring/ring_communicator.h"
#include "common/logging.h"
#include "common/nccl/nccl_communicator.h"
#include "common/status_macros.h"
#include "distribute/checkpoint_lease.h"
#include "distribute/collective_generation.h"
#include "distribute/collective_strategy.h"
#include "distribute/communication_choice.h"
#include "estimator/metrics_hook.h"
#include "distribute/keys.h"
#include "distribute/trainer.h"
#include "distribute/trainer_internal.h"
#include "estimator/estimator.h"

namespace estuary {
namespace {

// distribution.ring_shared_memory, unless ESTUARY_RING_SHM ("0" or "1")
// says otherwise for this process.
bool RingSharedMemory(bool from_job) {
  const char* env = std::getenv("ESTUARY_RING_SHM");
  if (env == nullptr || *env == '\0') return from_job;
  if (std::string(env) == "0") return false;
  if (std::string(env) == "1") return true;
  spdlog::warn("ESTUARY_RING_SHM={} is neither 0 nor 1: ignored (distribution."
               "ring_shared_memory = {})", env, from_job);
  return from_job;
}

// How many times in a row the chief tries a new generation when a ring
// does not form because a rank went away meanwhile.
constexpr int kMaxFormAttempts = 3;


// A rank died (Unavailable) or stalled (DeadlineExceeded): what re-forming
// the ring recovers from.
bool IsRankFailure(const absl::Status& s) {
  return absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s);
}

// The ring of the current generation, for the thread that aborts it when
// the task's runtime stops. Thread-safe.
class CurrentRing {
 public:
  void Set(Communicator* ring) {
    absl::MutexLock lock(&mu_);
    ring_ = ring;
    if (ring_ != nullptr && aborted_) ring_->Abort();
  }
  // Aborts the current ring and every later one.
  void AbortForever() {
    absl::MutexLock lock(&mu_);
    aborted_ = true;
    if (ring_ != nullptr) ring_->Abort();
  }

 private:
  absl::Mutex mu_;
  Communicator* ring_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool aborted_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

std::vector<TaskId> TrainerTasks(const TfConfig& tf) {
  std::vector<TaskId> out;
  for (const TaskId& t : tf.cluster.AllTasks()) {  // sorted: chief, master, worker
    if (t.type == kChief || t.type == kMaster || t.type == kWorker) out.push_back(t);
  }
  return out;
}

absl::Status RunMultiWorkerMirroredTrainer(const RoleContext& ctx, TaskRuntime& runtime) {
  const JobSpec& job = ctx.job;
  const TfConfig& tf = ctx.tf_config;
  const DistributionConfig& dist = job.distribution;
  // Ring or NCCL, once, before anything starts (NCCL asked for where it
  // can not run fails here, never mid-training).
  absl::StatusOr<int> nccl_devices = absl::UnimplementedError("not probed");
  if (dist.communication != "ring") nccl_devices = NcclVisibleDevices();
  ASSIGN_OR_RETURN(const CommunicationChoice mine,
                   ChooseCommunication(dist.communication, nccl_devices));
  const bool chief = tf.IsCoordinator();
  const InputShard shard = TrainerShard(tf);
  const int rank = shard.index;
  std::vector<std::string> peer_names;
  for (const TaskId& t : TrainerTasks(tf)) peer_names.push_back(t.ToString());
  if (static_cast<int>(peer_names.size()) != shard.count || rank >= shard.count) {
    return absl::InternalError(absl::StrCat("rank ", rank, " of ", shard.count, " but ",
                                            peer_names.size(), " training tasks"));
  }
  ASSIGN_OR_RETURN(const std::string own_address, tf.OwnAddress());
  ASSIGN_OR_RETURN(InputFn input_fn, InputFnFromJob(job, "train_input", shard));
  Store& store = runtime.coordination();
  const absl::Duration call_timeout = TrainerCallTimeout(dist);
  spdlog::info("training as {} (rank {} of {} in the all-reduce ring: {}) on input shard {} of {}",
               chief ? "chief" : "worker", rank, shard.count, absl::StrJoin(peer_names, ", "),
               shard.index, shard.count);
  // Every rank takes the chief's choice (under `auto` machines may differ).
  ASSIGN_OR_RETURN(const CommunicationChoice communication,
                   AgreeOnCommunication(store, chief, mine, absl::Now() + dist.startup_timeout));
  spdlog::info("{}", communication.why);
  if (communication.nccl && runtime.security() != nullptr) {
    spdlog::warn("NCCL's own bootstrap and transport do not check the job's token or TLS "
                 "certificates (the Store rendezvous does); use 'ring' where the network is not "
                 "trusted");
  }

  CheckpointLeases leases(&store);  // the chief's keep_checkpoint_max asks the evaluator
  CurrentRing current;
  OnRuntimeStop abort_on_stop(&runtime, [&current] { current.AbortForever(); });
  int64_t failed = 0;     // the generation that ended last (0: none yet)
  absl::Status failure;   // why it ended (OK: this worker's training ended)
  int form_attempts = 0;  // the chief's, in a row
  absl::Time form_deadline = absl::Now() + dist.startup_timeout;
  for (;;) {
    if (runtime.stopped()) return absl::CancelledError("stopped");
    // 1. The generation to form.
    int64_t generation = 0;
    if (chief) {
      ASSIGN_OR_RETURN(generation, OpenCollectiveGeneration(store, runtime.incarnation(),
                                                            absl::Now() + call_timeout));
    } else {
      // Up to the chief's noticing (a collective deadline) plus its wait.
      form_deadline = absl::Now() + dist.collective_timeout + dist.startup_timeout;
      absl::StatusOr<int64_t> joined = JoinCollectiveGeneration(store, rank, runtime.incarnation(),
                                                                failed, form_deadline);
      if (!joined.ok()) {
        if (runtime.stopped()) return absl::CancelledError("stopped");
        std::string why(joined.status().message());
        if (failed > 0 && failure.ok()) {
          why = absl::StrCat("waiting for the chief's final checkpoint: ", why);
        } else if (failed > 0) {
          absl::StrAppend(&why, " (after: ", failure.ToString(), ")");
        }
        return absl::Status(joined.status().code(), why);
      }
      if (*joined == 0) {
        spdlog::info("training ended: the chief published the final checkpoint");
        return absl::OkStatus();
      }
      generation = *joined;
    }

    // 2. The ring (or the NCCL communicator: the same ranks, generations
    // and recovery; its rendezvous keys live under <prefix>/nccl).
    absl::StatusOr<std::unique_ptr<Communicator>> ring;
    if (communication.nccl) {
      NcclOptions nccl_options;
      nccl_options.store = &store;
      nccl_options.prefix = absl::StrCat(kCollectivePrefix, "/nccl");
      nccl_options.generation = generation;
      nccl_options.rank = rank;
      nccl_options.size = shard.count;
      nccl_options.peer_names = peer_names;
      // One GPU per process; processes of one machine take consecutive
      // ranks (estuary local; one pod per GPU sees device 0 only).
      nccl_options.device = rank % communication.gpus;
      nccl_options.deadline = form_deadline;
      ring = CreateNcclCommunicator(nccl_options);
    } else {
      RingOptions ring_options;
      ring_options.store = &store;
      ring_options.prefix = kCollectivePrefix;
      ring_options.generation = generation;
      ring_options.rank = rank;
      ring_options.size = shard.count;
      ring_options.peer_names = peer_names;
      ring_options.host = HostOf(own_address);
      ring_options.deadline = form_deadline;
      if (runtime.security() != nullptr) ring_options.token = runtime.security()->token;
      ring_options.shared_memory = RingSharedMemory(dist.ring_shared_memory);
      ring = CreateRingCommunicator(ring_options);
    }
    if (!ring.ok()) {
      if (runtime.stopped()) return absl::CancelledError("stopped");
      const std::string what =
          failed == 0 ? absl::StrCat("forming the ring (generation ", generation, ")")
                      : absl::StrCat("re-forming the ring at generation ", generation);
      if (!chief || (absl::IsUnavailable(ring.status()) && ++form_attempts < kMaxFormAttempts &&
                     absl::Now() < form_deadline)) {
        // A rank went away while the ring formed: the chief opens the next
        // generation (a worker waits for it).
        spdlog::warn("{}: {}; trying the next generation", what, ring.status().ToString());
        failed = generation;
        failure = ring.status();
        continue;
      }
      return absl::Status(
          ring.status().code(),
          absl::StrCat(what, ": ", ring.status().message(),
                       failed == 0 ? ""
                                   : absl::StrCat(" (generation ", failed, " ended with ",
                                                  failure.ok() ? std::string("the training")
                                                               : failure.ToString(),
                                                  ")")));
    }
    form_attempts = 0;
    current.Set(ring->get());
    spdlog::info("ring generation {} formed: rank {} of {}", generation, rank, shard.count);

    // 3. Training over this ring, from the last checkpoint (the chief
    // restores it and broadcasts; every other rank receives it).
    Strategy* strategy = nullptr;
    EstimatorJobOptions extra;
    extra.is_chief = chief;
    using Optimizers = std::map<std::string, std::unique_ptr<Optimizer>>;
    extra.strategy_factory = [&](const Model* model, const Optimizers* optimizers)
        -> absl::StatusOr<std::unique_ptr<Strategy>> {
      CollectiveStrategyOptions options = CollectiveStrategyOptionsFromJob(job);
      if (chief) {
        options.local.may_delete = [&leases, call_timeout](int64_t step) {
          return leases.MayDelete(step, absl::Now() + call_timeout);
        };
      }
      options.communicator = ring->get();
      options.metrics = ctx.metrics;
      ASSIGN_OR_RETURN(std::unique_ptr<Strategy> s,
                       MakeCollectiveStrategy(model, optimizers, std::move(options)));
      strategy = s.get();
      return s;
    };
    absl::StatusOr<std::unique_ptr<Estimator>> estimator = EstimatorFromJob(job, std::move(extra));
    if (!estimator.ok()) {
      current.Set(nullptr);
      return estimator.status();
    }
    TrainArgs args;
    args.max_steps = job.train_spec.max_steps;
    args.hooks.push_back(std::make_shared<StepCallbackHook>(
        [&runtime](const StepInfo&) { return !runtime.stopped(); }));
    LiveTrainingReport live(&runtime);
    live.AddTo(&args, chief);
    if (ctx.metrics != nullptr) args.hooks.push_back(std::make_shared<MetricsHook>(ctx.metrics));
    const absl::Status trained = (*estimator)->Train(input_fn, args);
    const int64_t global_step = (*estimator)->global_step();
    if (trained.ok() && chief && !runtime.stopped()) {
      const absl::Status finished = FinishChiefTraining(
          job, tf, store, global_step,
          [strategy, &live, global_step]() -> absl::StatusOr<std::string> {
            ASSIGN_OR_RETURN(std::string prefix, strategy->SaveCheckpoint());
            (void)live.AfterSave(global_step, prefix);
            return prefix;
          });
      current.Set(nullptr);
      return finished;
    }
    current.Set(nullptr);
    (*ring)->Abort();
    estimator->reset();  // its strategy borrows the ring
    ring->reset();
    if (runtime.stopped()) return trained.ok() ? absl::CancelledError("stopped") : trained;
    failed = generation;
    failure = trained;
    if (trained.ok()) {
      // Every rank stopped after the same step. The chief publishes the
      // final checkpoint, or, if a rank failed in that last step, opens a
      // new generation, which this worker joins.
      spdlog::info("training ended at global_step {}; waiting for the chief's final checkpoint",
                   global_step);
      continue;
    }
    if (!IsRankFailure(trained)) return trained;
    form_deadline = absl::Now() + dist.startup_timeout;
    spdlog::error(
        "collective failed at ring generation {} ({}); re-forming the ring at {} from the last "
        "checkpoint (waiting up to {} s for every rank)",
        generation, trained.ToString(),
        chief ? absl::StrCat("generation ", generation + 1) : "the chief's next generation",
        absl::ToDoubleSeconds(dist.startup_timeout));
  }
}

}  // namespace estuary
