#include "distribute/evaluator.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/checkpoint.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/status_macros.h"
#include "distribute/checkpoint_lease.h"
#include "distribute/exporter.h"
#include "distribute/keys.h"
#include "estimator/estimator.h"

namespace estuary {

absl::Time StoreClock::Now() { return absl::Now(); }

absl::Status StoreClock::WaitUntil(absl::Time until) {
  if (!final_seen_) {
    absl::StatusOr<std::vector<std::string>> v = store_->Wait({kFinalStepKey}, until);
    if (v.ok()) {
      final_seen_ = true;
      return absl::OkStatus();
    }
    return absl::IsDeadlineExceeded(v.status()) ? absl::OkStatus() : v.status();
  }
  const absl::Duration left = until - absl::Now();
  return left > absl::ZeroDuration() ? sleep_(left) : absl::OkStatus();
}

Evaluator::Evaluator(EvaluatorOptions options, EvaluateCheckpointFn evaluate)
    : options_(std::move(options)), evaluate_(std::move(evaluate)) {}

absl::StatusOr<std::optional<int64_t>> Evaluator::FinalStep() {
  absl::StatusOr<std::string> v =
      options_.store->Get(kFinalStepKey, absl::Now() + options_.store_timeout);
  if (absl::IsNotFound(v.status())) return std::nullopt;
  RETURN_IF_ERROR(v.status());
  int64_t step;
  if (!absl::SimpleAtoi(*v, &step)) {
    return absl::InvalidArgumentError(
        absl::StrCat("coordination key ", kFinalStepKey, " holds '", *v, "', not a step"));
  }
  return step;
}

absl::StatusOr<std::map<std::string, double>> Evaluator::EvaluateLeased(
    int64_t step, bool is_final, const std::map<std::string, double>* done) {
  CheckpointLeases leases(options_.store);
  RETURN_IF_ERROR(leases.Acquire(step, absl::Now() + options_.store_timeout));
  const std::string prefix = checkpoint::CheckpointPrefix(options_.model_dir, step);
  absl::StatusOr<std::map<std::string, double>> metrics =
      done != nullptr ? *done : evaluate_(prefix);
  if (metrics.ok() && options_.after_evaluation) {
    if (absl::Status st = options_.after_evaluation(prefix, *metrics, is_final); !st.ok()) {
      // A checkpoint gone under an export is no reason to skip it quietly.
      metrics = absl::IsNotFound(st) ? absl::FailedPreconditionError(st.message()) : st;
    }
  }
  if (absl::IsNotFound(metrics.status())) {
    if (options_.env->FileExists(checkpoint::ManifestFileName(prefix))) {
      // Not the checkpoint that is missing (e.g. an input file): a real error.
      metrics = absl::FailedPreconditionError(metrics.status().message());
    } else {
      spdlog::warn("checkpoint {} vanished while leased (does the chief consult the leases?)",
                   step);
    }
  }
  absl::Status released = leases.Release(step, absl::Now() + options_.store_timeout);
  if (!released.ok()) {
    spdlog::warn("could not release the lease of checkpoint {} (it stays on disk): {}", step,
                 released.ToString());
  }
  return metrics;
}

absl::StatusOr<std::map<std::string, double>> Evaluator::Run() {
  if (options_.store == nullptr || options_.clock == nullptr) {
    return absl::InvalidArgumentError("evaluator: a store and a clock are required");
  }
  EvaluatorClock& clock = *options_.clock;
  const absl::Duration throttle = absl::Seconds(options_.eval_spec.throttle_secs);
  ASSIGN_OR_RETURN(std::optional<int64_t> final_step, FinalStep());
  if (options_.eval_spec.start_delay_secs > 0 && !final_step.has_value()) {
    spdlog::info("waiting {} secs before starting eval.", options_.eval_spec.start_delay_secs);
    const absl::Time start = clock.Now() + absl::Seconds(options_.eval_spec.start_delay_secs);
    while (clock.Now() < start && !final_step.has_value()) {
      RETURN_IF_ERROR(clock.WaitUntil(start));
      ASSIGN_OR_RETURN(final_step, FinalStep());
    }
  }
  absl::Time next_eval = absl::InfinitePast();
  int64_t last_step = -1;
  bool told_not_trained = false;
  bool superseded = false;  // the last attempt found its checkpoint gone
  std::map<std::string, double> metrics;
  auto finish = [&]() -> absl::StatusOr<std::map<std::string, double>> {
    spdlog::info("exiting evaluation, global_step={} is the final step", last_step);
    RETURN_IF_ERROR(options_.store->Set(kEvaluatorDoneKey, absl::StrCat(last_step),
                                        absl::Now() + options_.store_timeout));
    return metrics;
  };
  while (true) {
    ASSIGN_OR_RETURN(final_step, FinalStep());
    // The final checkpoint may have been evaluated before the chief
    // announced it as final.
    if (final_step.has_value() && last_step >= *final_step) {
      if (options_.after_evaluation && !metrics.empty()) {
        // Evaluated before it was known to be final: its final exports.
        RETURN_IF_ERROR(EvaluateLeased(last_step, true, &metrics).status());
      }
      return finish();
    }
    absl::StatusOr<int64_t> latest = checkpoint::LatestStep(options_.model_dir, *options_.env);
    if (!latest.ok() && !absl::IsNotFound(latest.status())) {
      spdlog::warn("evaluator: {}", latest.status().ToString());
    }
    const bool is_new = latest.ok() && *latest > last_step;
    if (!latest.ok() && !told_not_trained) {
      spdlog::info("estimator is not trained yet. will start an evaluation when a checkpoint is "
                   "ready.");
      told_not_trained = true;
    }
    const bool is_final = is_new && final_step.has_value() && *latest >= *final_step;
    if (is_new && (is_final || clock.Now() >= next_eval)) {
      const absl::Time start = clock.Now();
      absl::StatusOr<std::map<std::string, double>> m = EvaluateLeased(*latest, is_final);
      if (absl::IsNotFound(m.status())) {
        spdlog::info("checkpoint {} was superseded before its evaluation: {}", *latest,
                     m.status().message());
        if (!superseded) {
          superseded = true;
          continue;  // a newer one is there; look again at once, once
        }
        RETURN_IF_ERROR(clock.WaitUntil(clock.Now() + options_.poll_interval));
        continue;
      }
      superseded = false;
      RETURN_IF_ERROR(m.status());
      metrics = *std::move(m);
      last_step = *latest;
      evaluated_.push_back(last_step);
      next_eval = start + throttle;
      if (is_final) return finish();
      const absl::Duration wait = next_eval - clock.Now();
      if (wait > absl::ZeroDuration()) {
        spdlog::info("waiting {:.3f} secs before starting next eval run.",
                     absl::ToDoubleSeconds(wait));
      }
      continue;
    }
    absl::Time until = clock.Now() + options_.poll_interval;
    if (is_new) until = std::min(until, next_eval);
    RETURN_IF_ERROR(clock.WaitUntil(until));
  }
}

absl::Status RunEvaluator(const RoleContext& ctx, TaskRuntime& runtime) {
  const JobSpec& job = ctx.job;
  if (!job.estimator.has_value()) {
    // A job of the cluster runtime alone (no model): nothing to evaluate.
    spdlog::info("passed the start barrier; the job has no estimator: nothing to evaluate");
    return absl::OkStatus();
  }
  spdlog::info("passed the start barrier; evaluating checkpoints in {} as training writes them",
               job.model_dir);
  if (!job.eval_input.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat(job.source, ": the evaluator needs an eval_input section"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Estimator> estimator, EstimatorFromJob(job));
  ASSIGN_OR_RETURN(InputFn input, InputFnFromJob(job, "eval_input"));
  StoreClock clock(&runtime.coordination(), [&runtime](absl::Duration d) {
    absl::Status st = runtime.WaitForStop(d);
    if (absl::IsDeadlineExceeded(st)) return absl::OkStatus();
    return st.ok() ? absl::CancelledError("the chief ended the job") : st;
  });
  EvaluatorOptions options;
  options.model_dir = job.model_dir;
  options.eval_spec = job.eval_spec;
  options.store = &runtime.coordination();
  options.clock = &clock;
  Exporters exporters(job);
  if (!exporters.empty()) {
    options.after_evaluation = [&exporters](const std::string& prefix,
                                            const std::map<std::string, double>& metrics,
                                            bool is_final) {
      return exporters.AfterEvaluation(prefix, metrics, is_final);
    };
  }
  // The evaluator's metrics (labels job, task): evaluations run, their
  // duration, and the last evaluation's values (estuary_eval_value{metric}).
  TaskMetrics* m = ctx.metrics;
  prometheus::Counter* evaluations = nullptr;
  prometheus::Histogram* evaluation_seconds = nullptr;
  prometheus::Family<prometheus::Gauge>* values = nullptr;
  if (m != nullptr) {
    evaluations = &prometheus::BuildCounter()
                       .Name("estuary_evaluations_total")
                       .Help("Checkpoints this evaluator evaluated.")
                       .Register(m->registry())
                       .Add(m->labels());
    evaluation_seconds = &prometheus::BuildHistogram()
                              .Name("estuary_evaluation_seconds")
                              .Help("Wall time of one evaluation.")
                              .Register(m->registry())
                              .Add(m->labels(), LatencyBuckets());
    values = &prometheus::BuildGauge()
                  .Name("estuary_eval_value")
                  .Help("The last evaluation's metrics (loss, accuracy, auc, global_step, ...).")
                  .Register(m->registry());
  }
  Evaluator evaluator(std::move(options), [&](const std::string& prefix) {
    const absl::Time start = absl::Now();
    absl::StatusOr<std::map<std::string, double>> result =
        estimator->Evaluate(input, job.eval_spec.steps, job.eval_spec.name, prefix);
    if (m != nullptr && result.ok()) {
      evaluations->Increment();
      evaluation_seconds->Observe(absl::ToDoubleSeconds(absl::Now() - start));
      for (const auto& [name, value] : *result) {
        values->Add(m->LabelsWith({{"metric", name}})).Set(value);
      }
    }
    if (result.ok()) {
      // The live view: the last evaluation travels with the heartbeats.
      runtime.report().Update([&](coordination::TaskReport* r) {
        auto step = result->find("global_step");
        r->set_last_eval_step(step != result->end() ? static_cast<int64_t>(step->second) : 0);
        r->mutable_last_eval_metrics()->clear();
        for (const auto& [name, value] : *result) (*r->mutable_last_eval_metrics())[name] = value;
      });
    }
    return result;
  });
  return evaluator.Run().status();
}

LocalEvaluationListener::LocalEvaluationListener(double throttle_secs,
                                                 EvaluateCheckpointFn evaluate,
                                                 std::function<absl::Time()> now,
                                                 AfterEvaluationFn after_evaluation)
    : throttle_(absl::Seconds(throttle_secs)),
      evaluate_(std::move(evaluate)),
      after_evaluation_(std::move(after_evaluation)),
      now_(std::move(now)) {}

absl::Status LocalEvaluationListener::Begin(int64_t global_step) {
  last_start_ = absl::InfinitePast();  // the first checkpoint is evaluated
  return absl::OkStatus();
}

absl::Status LocalEvaluationListener::Evaluate(int64_t global_step, const std::string& prefix,
                                               bool is_final) {
  last_start_ = now_();
  ASSIGN_OR_RETURN(last_metrics_, evaluate_(prefix));
  evaluated_.push_back(global_step);
  return after_evaluation_ ? after_evaluation_(prefix, last_metrics_, is_final)
                           : absl::OkStatus();
}

absl::Status LocalEvaluationListener::AfterSave(int64_t global_step, const std::string& prefix) {
  last_saved_step_ = global_step;
  last_saved_prefix_ = prefix;
  if (now_() - last_start_ < throttle_) {
    spdlog::info("skip the current checkpoint eval due to throttle secs ({} secs).",
                 absl::ToDoubleSeconds(throttle_));
    return absl::OkStatus();
  }
  return Evaluate(global_step, prefix, false);
}

absl::Status LocalEvaluationListener::End(int64_t global_step) {
  const std::string prefix = last_saved_step_ == global_step ? last_saved_prefix_ : "";
  if (!evaluated_.empty() && evaluated_.back() == global_step) {
    // Evaluated when it was saved: only its final exports are left.
    return after_evaluation_ ? after_evaluation_(prefix, last_metrics_, true)
                             : absl::OkStatus();
  }
  return Evaluate(global_step, prefix, true);
}

}  // namespace estuary
