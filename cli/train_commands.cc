#include "cli/train_commands.h"

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/exit_codes.h"
#include "common/flags.h"
#include "common/io/env.h"
#include "common/job_spec.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/status_macros.h"
#include "distribute/collective_strategy.h"
#include "distribute/evaluator.h"
#include "distribute/exporter.h"
#include "estimator/estimator.h"
#include "estimator/metrics_hook.h"
#include "nlohmann/json.hpp"

namespace estuary {
namespace {

int Fail(const std::string& verb, const absl::Status& st) {
  std::fprintf(stderr, "estuary %s: error: %s\n", verb.c_str(), std::string(st.message()).c_str());
  return absl::IsInvalidArgument(st) || absl::IsNotFound(st) || absl::IsFailedPrecondition(st)
             ? kExitBadInput
             : kExitFailure;
}

struct Common {
  std::string job_path;
  JobSpec job;
  std::unique_ptr<Estimator> estimator;
};

// Parses flags (the job file is the one positional argument) and builds the
// estimator. Returns an exit code >= 0 when the command must stop.
int Prepare(const std::string& verb, FlagSet* flags, int argc, char** argv, Common* c) {
  absl::Status st = flags->Parse(argc, argv, 2);
  if (flags->help_requested()) {
    std::printf("%s", flags->Usage().c_str());
    return kExitOk;
  }
  if (st.ok() && flags->positional().size() != 1) {
    st = absl::InvalidArgumentError("expected exactly one job file");
  }
  if (!st.ok()) {
    std::fprintf(stderr, "estuary %s: error: %s (see --help)\n", verb.c_str(),
                 std::string(st.message()).c_str());
    return kExitBadInput;
  }
  c->job_path = flags->positional()[0];
  InitLogging("");
  absl::StatusOr<JobSpec> job = LoadJobSpec(c->job_path);
  if (!job.ok()) return Fail(verb, job.status());
  c->job = *std::move(job);
  EstimatorJobOptions extra;
  const DistributionConfig& dist = c->job.distribution;
  if (IsCollectiveStrategy(dist.strategy)) {
    // One process: mirrored / central_storage (or multi_worker_mirrored
    // without a cluster): num_replicas_per_worker replicas in sync, each
    // reading its own batch of train_input's batch_size.
    const CollectiveStrategyOptions options = CollectiveStrategyOptionsFromJob(c->job);
    if (verb == "train" || verb == "train_and_evaluate") {
      const int64_t batch = c->job.train_input.has_value() ? c->job.train_input->batch_size : 0;
      spdlog::info("strategy {}: {} replicas in sync in this process, per-replica batch {}, "
                   "global batch {}",
                   dist.strategy, options.local_replicas, batch, batch * options.local_replicas);
    }
    extra.strategy_factory = [options](const Model* model,
                                       const std::map<std::string, std::unique_ptr<Optimizer>>*
                                           optimizers) {
      return MakeCollectiveStrategy(model, optimizers, options);
    };
  }
  absl::StatusOr<std::unique_ptr<Estimator>> est = EstimatorFromJob(c->job, std::move(extra));
  if (!est.ok()) return Fail(verb, est.status());
  c->estimator = *std::move(est);
  return -1;
}

constexpr char kMetricsPortHelp[] =
    "Serve Prometheus metrics (steps, step-phase times, loss, examples/s, process) at "
    "http://0.0.0.0:PORT/metrics while training (0: a free port, logged; -1: off). Labels: "
    "job=\"local\", task=\"0\".";

// The process's metrics (always collected; served with port >= 0) and the
// hook feeding them, added to *args. Errors: TaskMetrics::Create's.
absl::StatusOr<std::unique_ptr<TaskMetrics>> AddMetrics(int port, TrainArgs* args) {
  MetricsOptions o;
  o.job = "local";
  o.task = "0";
  o.port = port;
  ASSIGN_OR_RETURN(std::unique_ptr<TaskMetrics> metrics, TaskMetrics::Create(o));
  if (port != kMetricsOff) args->hooks.push_back(std::make_shared<MetricsHook>(metrics.get()));
  return metrics;
}

std::string Describe(const std::map<std::string, double>& metrics) {
  std::string out;
  for (const auto& [k, v] : metrics) absl::StrAppend(&out, out.empty() ? "" : ", ", k, " = ", v);
  return out;
}

}  // namespace

int TrainCommand(int argc, char** argv) {
  int steps = 0, max_steps = 0;
  bool evaluate = true;
  FlagSet flags("estuary train JOB.json [--steps N | --max_steps N]",
                "Trains the job's estimator in this process on train_input (resuming from the "
                "latest checkpoint in model_dir), then evaluates on eval_input if the job has one. "
                "Without --steps/--max_steps, train_spec.max_steps applies, else until the input "
                "runs out.");
  flags.Int("steps", &steps, "Train this many more steps.");
  flags.Int("max_steps", &max_steps, "Train until global_step reaches this.");
  flags.Bool("evaluate", &evaluate, "Evaluate on eval_input after training.");
  int metrics_port = kMetricsOff;
  flags.Int("metrics_port", &metrics_port, kMetricsPortHelp);
  Common c;
  if (int code = Prepare("train", &flags, argc, argv, &c); code >= 0) return code;
  TrainArgs args;
  absl::StatusOr<std::unique_ptr<TaskMetrics>> task_metrics = AddMetrics(metrics_port, &args);
  if (!task_metrics.ok()) return Fail("train", task_metrics.status());
  if (steps > 0) args.steps = steps;
  if (max_steps > 0) args.max_steps = max_steps;
  if (steps <= 0 && max_steps <= 0 && c.job.train_spec.max_steps.has_value()) {
    args.max_steps = c.job.train_spec.max_steps;
  }
  absl::StatusOr<InputFn> train_input = InputFnFromJob(c.job, "train_input");
  if (!train_input.ok()) return Fail("train", train_input.status());
  absl::Status st = c.estimator->Train(*train_input, args);
  if (!st.ok()) return Fail("train", st);
  if (evaluate && c.job.eval_input.has_value()) {
    absl::StatusOr<InputFn> eval_input = InputFnFromJob(c.job, "eval_input");
    if (!eval_input.ok()) return Fail("train", eval_input.status());
    absl::StatusOr<std::map<std::string, double>> m =
        c.estimator->Evaluate(*eval_input, c.job.eval_spec.steps, c.job.eval_spec.name);
    if (!m.ok()) return Fail("train", m.status());
    std::printf("%s\n", Describe(*m).c_str());
  }
  return kExitOk;
}

int TrainAndEvaluateCommand(int argc, char** argv) {
  FlagSet flags("estuary train_and_evaluate JOB.json",
                "tf.estimator.train_and_evaluate in this process (TF's local mode): trains on "
                "train_input up to train_spec.max_steps (else until the input runs out), "
                "evaluating on eval_input each checkpoint saved at least eval_spec.throttle_secs "
                "after the last evaluation began, and the final one; prints the final metrics. "
                "Checkpoints follow run_config (save_checkpoints_steps / _secs).");
  int metrics_port = kMetricsOff;
  flags.Int("metrics_port", &metrics_port, kMetricsPortHelp);
  Common c;
  if (int code = Prepare("train_and_evaluate", &flags, argc, argv, &c); code >= 0) return code;
  const char* verb = "train_and_evaluate";
  if (!c.job.eval_input.has_value()) {
    return Fail(verb, absl::InvalidArgumentError(
                          absl::StrCat(c.job.source, ": $.eval_input: required by ", verb)));
  }
  absl::StatusOr<InputFn> train_input = InputFnFromJob(c.job, "train_input");
  if (!train_input.ok()) return Fail(verb, train_input.status());
  absl::StatusOr<InputFn> eval_input = InputFnFromJob(c.job, "eval_input");
  if (!eval_input.ok()) return Fail(verb, eval_input.status());
  // Evaluation has its own Estimator: it runs inside training (a saving
  // listener), and an Estimator does one call at a time.
  absl::StatusOr<std::unique_ptr<Estimator>> evaluator = EstimatorFromJob(c.job);
  if (!evaluator.ok()) return Fail(verb, evaluator.status());
  const EvalSpec& spec = c.job.eval_spec;
  Exporters exporters(c.job);  // eval_spec.exporters, after each evaluation
  AfterEvaluationFn after_evaluation;
  if (!exporters.empty()) {
    after_evaluation = [&exporters](const std::string& prefix,
                                    const std::map<std::string, double>& metrics,
                                    bool is_final) {
      return exporters.AfterEvaluation(prefix, metrics, is_final);
    };
  }
  LocalEvaluationListener listener(
      spec.throttle_secs,
      [&](const std::string& prefix) {
        return (*evaluator)->Evaluate(*eval_input, spec.steps, spec.name, prefix);
      },
      absl::Now, after_evaluation);
  const RunConfig& rc = c.job.run_config;
  spdlog::info(
      "start train and evaluate loop. the evaluate will happen after every checkpoint. "
      "checkpoint frequency is determined based on run_config arguments: "
      "save_checkpoints_steps {} or save_checkpoints_secs {}.",
      rc.save_checkpoints_steps.has_value() ? absl::StrCat(*rc.save_checkpoints_steps) : "None",
      rc.save_checkpoints_steps.has_value() ? "None"
                                            : absl::StrCat(rc.save_checkpoints_secs.value_or(600)));
  TrainArgs args;
  args.max_steps = c.job.train_spec.max_steps;
  args.saving_listeners.push_back(&listener);
  absl::StatusOr<std::unique_ptr<TaskMetrics>> task_metrics = AddMetrics(metrics_port, &args);
  if (!task_metrics.ok()) return Fail(verb, task_metrics.status());
  absl::Status st = c.estimator->Train(*train_input, args);
  if (!st.ok()) return Fail(verb, st);
  std::map<std::string, double> metrics = listener.last_metrics();
  if (listener.evaluated().empty()) {
    // Training was skipped (max_steps already reached): evaluate what is there.
    absl::StatusOr<std::map<std::string, double>> m =
        (*evaluator)->Evaluate(*eval_input, spec.steps, spec.name);
    if (!m.ok()) return Fail(verb, m.status());
    metrics = *std::move(m);
  }
  std::printf("%s\n", Describe(metrics).c_str());
  return kExitOk;
}

int EvaluateCommand(int argc, char** argv) {
  int steps = 0;
  std::string name;
  FlagSet flags("estuary evaluate JOB.json [--steps N] [--name NAME]",
                "Evaluates the latest checkpoint in model_dir on eval_input; prints the metrics "
                "(TF's keys) and writes them as summaries to model_dir/eval[_NAME].");
  flags.Int("steps", &steps, "Evaluate this many batches (default: eval_spec.steps; 0 and no "
                             "eval_spec.steps: until the input runs out).");
  flags.String("name", &name, "Name of this evaluation (eval_NAME directory).");
  Common c;
  if (int code = Prepare("evaluate", &flags, argc, argv, &c); code >= 0) return code;
  absl::StatusOr<InputFn> input = InputFnFromJob(c.job, "eval_input");
  if (!input.ok()) return Fail("evaluate", input.status());
  std::optional<int64_t> n = steps > 0 ? std::optional<int64_t>(steps) : c.job.eval_spec.steps;
  absl::StatusOr<std::map<std::string, double>> m =
      c.estimator->Evaluate(*input, n, name.empty() ? c.job.eval_spec.name : name);
  if (!m.ok()) return Fail("evaluate", m.status());
  std::printf("%s\n", Describe(*m).c_str());
  return kExitOk;
}

int PredictCommand(int argc, char** argv) {
  std::string keys, input_section = "eval_input", out_path;
  FlagSet flags("estuary predict JOB.json [--input eval_input] [--predict_keys k1,k2] [--out F]",
                "Predicts with the latest checkpoint on an input section; writes one JSON object "
                "per example (TF's prediction keys) to --out or stdout.");
  flags.String("input", &input_section, "Input section of the job: eval_input or train_input.");
  flags.String("predict_keys", &keys, "Comma-separated prediction keys (default: all).");
  flags.String("out", &out_path, "Output file (JSON lines); default stdout.");
  Common c;
  if (int code = Prepare("predict", &flags, argc, argv, &c); code >= 0) return code;
  absl::StatusOr<InputFn> input = InputFnFromJob(c.job, input_section);
  if (!input.ok()) return Fail("predict", input.status());
  std::vector<std::string> predict_keys;
  if (!keys.empty()) predict_keys = absl::StrSplit(keys, ',');
  std::unique_ptr<io::OutputStream> file;
  if (!out_path.empty()) {
    absl::StatusOr<std::unique_ptr<io::OutputStream>> f =
        io::Env::Default().NewWritableFile(out_path);
    if (!f.ok()) return Fail("predict", f.status());
    file = *std::move(f);
  }
  int64_t n = 0;
  absl::Status st = c.estimator->Predict(
      *input,
      [&](const std::map<std::string, Tensor>& p) {
        nlohmann::json j = nlohmann::json::object();
        for (const auto& [k, t] : p) {
          nlohmann::json v;
          if (t.dtype == DType::kFloat) v = t.floats;
          if (t.dtype == DType::kInt64) v = t.ints;
          if (t.dtype == DType::kString) v = t.strings;
          j[k] = t.shape.empty() && v.size() == 1 ? v[0] : v;
        }
        if (++n % 10000 == 0) spdlog::info("predicted {} examples", n);
        const std::string line = j.dump() + "\n";
        if (file != nullptr) return file->Append(line);
        std::cout << line;
        return absl::OkStatus();
      },
      predict_keys);
  if (file != nullptr) st.Update(file->Close());
  if (!st.ok()) return Fail("predict", st);
  spdlog::info("predicted {} examples", n);
  return kExitOk;
}

}  // namespace estuary
