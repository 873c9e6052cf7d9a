// The `estuary` command line: `local` (a multi-process cluster on loopback)
// and `explain-config` (what each task of a TF_CONFIG + job will do).
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "cli/certs_command.h"
#include "cli/export_command.h"
#include "cli/inspect_command.h"
#include "cli/k8s_command.h"
#include "cli/local_launcher.h"
#include "cli/ps_placement.h"
#include "cli/serve_command.h"
#include "cli/status_command.h"
#include "cli/train_commands.h"
#include "common/cluster.h"
#include "common/cluster_plan.h"
#include "common/exit_codes.h"
#include "common/flags.h"
#include "common/job_spec.h"
#include "common/signals.h"
#include "estimator/synthetic/click_log.h"
#include "absl/synchronization/mutex.h"

namespace estuary {
namespace {

constexpr char kTopUsage[] =
    "Usage: estuary COMMAND [flags]\n"
    "\n"
    "Estuary trains TensorFlow-Estimator-style models in C++, in one process or as a\n"
    "cluster of chief, worker, ps and evaluator binaries configured by TF_CONFIG.\n"
    "\n"
    "Commands:\n"
    "  train JOB.json [--steps N | --max_steps N]\n"
    "                  Train the job's estimator in this process (then evaluate).\n"
    "  train_and_evaluate JOB.json\n"
    "                  Train in this process, evaluating each new checkpoint (at most\n"
    "                  every eval_spec.throttle_secs) and the final one.\n"
    "  evaluate JOB.json [--steps N] [--name NAME]\n"
    "                  Evaluate the latest checkpoint on eval_input.\n"
    "  predict JOB.json [--predict_keys k,..] [--out FILE]\n"
    "                  Predict with the latest checkpoint (JSON lines).\n"
    "  export JOB.json [--export_dir_base DIR] [--format estuary|onnx]\n"
    "                  Export the model for serving (prints the new directory).\n"
    "  inspect CHECKPOINT [--tensor_name NAME] [--all_tensors]\n"
    "                  List a checkpoint's variables (Estuary's or TF's format).\n"
    "  serve --model_base_path DIR [--model_name NAME] [--port N] [--rest_api_port N]\n"
    "                  Serve exports with TensorFlow Serving's gRPC and REST APIs.\n"
    "  local JOB.json [--workers N --ps M --evaluator --restart_failed]\n"
    "                  Run the job on a real multi-process cluster on this machine.\n"
    "  k8s JOB.json --workers N --ps M [--evaluator] [--tfjob] [--out_dir DIR]\n"
    "                  Render Kubernetes manifests (Services + Jobs, or a TFJob).\n"
    "  status [TF_CONFIG | host:port | http://host:port] [--watch]\n"
    "                  Show a running cluster's tasks, steps/s, loss, PS shards,\n"
    "                  checkpoints and evaluations (the chief's live view).\n"
    "  explain-config [JOB.json] [--tf_config JSON]\n"
    "                  Validate TF_CONFIG (and a job) and say what each task will do.\n"
    "  certs --out DIR (--tf_config JSON | --tasks chief:1,worker:2,...) [--hosts h,..]\n"
    "                  Make a CA, task certificates, a job token and a Kubernetes\n"
    "                  Secret for the job's `security` block (mutual TLS + token).\n"
    "  gen-data clicks --rows N --out DIR [--format csv|tfrecord] [--files K] [--seed S]\n"
    "                  Write a synthetic Criteo-like click log (13 integer + 26\n"
    "                  categorical features, Zipf-distributed, labels from a hidden\n"
    "                  logistic model).\n"
    "\n"
    "Run `estuary COMMAND --help` for a command's flags.\n";

int Error(absl::string_view cmd, absl::string_view msg) {
  std::fprintf(stderr, "estuary %.*s: error: %.*s\n", static_cast<int>(cmd.size()), cmd.data(),
               static_cast<int>(msg.size()), msg.data());
  return kExitBadInput;
}

int Local(int argc, char** argv, SignalWatcher* signals) {
  LocalClusterOptions o;
  o.signals = signals;
  double timeout_secs = absl::ToDoubleSeconds(o.timeout);
  FlagSet flags("estuary local JOB.json [flags]",
                "Starts a real cluster on loopback: each task is its own process (the chief, "
                "worker, ps and evaluator binaries) with its own TF_CONFIG and a free port. "
                "Streams their logs prefixed by task, prints the start-up time, and stops "
                "every process on Ctrl-C, when a task fails (past its restarts under "
                "--restart_failed), or at --timeout. Exits with the chief's exit code (124 at "
                "the timeout, 130 when interrupted).");
  flags.Int("workers", &o.workers, "Number of worker tasks.");
  flags.Int("ps", &o.ps, "Number of parameter-server tasks.");
  flags.Bool("evaluator", &o.evaluator,
             "Also run an evaluator (listed in the cluster spec, so the start barrier and the "
             "shutdown include it).");
  flags.Bool("chief", &o.chief, "Run a chief task; with --nochief worker 0 coordinates.");
  flags.Double("timeout", &timeout_secs, "Stop everything after this many seconds.");
  flags.Double("hold_secs", &o.hold_secs,
               "Keep the cluster up this long after start-up (until training lands, the "
               "job has no work of its own).");
  flags.Int("status_port", &o.status_port,
            "Serve the coordinator's status page on this HTTP port (0: a free one; the URL "
            "is in its log: `status page: http://...`); -1: none.");
  flags.Int("metrics_port_base", &o.metrics_port_base,
            "Every task serves Prometheus metrics: the k-th task (chief, workers, ps, "
            "evaluator in that order) on port N+k; 0: each on a free port, reported by the "
            "launcher when the task listens (`metrics of worker:0: http://...`); -1: none.");
  flags.String("bin_dir", &o.bin_dir, "Directory holding the chief/worker/ps/evaluator binaries.");
  flags.Bool("restart_failed", &o.restart_failed,
             "Restart a task that fails (exits non-zero or is killed) with the same TF_CONFIG, "
             "as Kubernetes' restartPolicy: OnFailure does.");
  flags.Int("max_restarts", &o.max_restarts,
            "With --restart_failed: restarts per task before its failure fails the cluster.");
  double backoff_secs = absl::ToDoubleSeconds(o.restart_backoff);
  flags.Double("restart_backoff_secs", &backoff_secs,
               "With --restart_failed: delay before a task's first restart; doubles with each "
               "further restart (at most 30 s).");
  absl::Status st = flags.Parse(argc, argv, 2);
  if (flags.help_requested()) {
    std::printf("%s", flags.Usage().c_str());
    return kExitOk;
  }
  if (st.ok() && flags.positional().size() != 1) {
    st = absl::InvalidArgumentError("expected exactly one job file");
  }
  if (!st.ok()) return Error("local", absl::StrCat(st.message(), " (see --help)"));
  o.job_path = flags.positional()[0];
  o.timeout = absl::Seconds(timeout_secs);
  if (o.max_restarts < 0) return Error("local", "--max_restarts must be >= 0");
  if (!(backoff_secs >= 0)) return Error("local", "--restart_backoff_secs must be >= 0");
  o.restart_backoff = absl::Seconds(backoff_secs);
  return RunLocalCluster(o, argv[0]);
}

int ExplainConfigCommand(int argc, char** argv) {
  std::string tf_config_json;
  FlagSet flags("estuary explain-config [JOB.json] [--tf_config JSON]",
                "Validates TF_CONFIG (from the environment or --tf_config) and, if given, a "
                "job file, then prints what every task of the cluster will do. Exits 2 with "
                "the precise error if either is invalid.");
  flags.String("tf_config", &tf_config_json, "TF_CONFIG JSON; overrides the environment.");
  absl::Status st = flags.Parse(argc, argv, 2);
  if (flags.help_requested()) {
    std::printf("%s", flags.Usage().c_str());
    return kExitOk;
  }
  if (st.ok() && flags.positional().size() > 1) {
    st = absl::InvalidArgumentError("expected at most one job file");
  }
  if (!st.ok()) return Error("explain-config", absl::StrCat(st.message(), " (see --help)"));
  absl::StatusOr<TfConfig> tf = TfConfigFromEnvironment(tf_config_json);
  if (!tf.ok()) return Error("explain-config", tf.status().message());
  std::optional<JobSpec> job;
  if (!flags.positional().empty()) {
    absl::StatusOr<JobSpec> j = LoadJobSpec(flags.positional()[0]);
    if (!j.ok()) return Error("explain-config", j.status().message());
    job = *std::move(j);
  }
  absl::StatusOr<std::string> report = ExplainConfig(*tf, job ? &*job : nullptr);
  if (!report.ok()) return Error("explain-config", report.status().message());
  if (job && job->estimator.has_value() && tf->cluster.NumTasks("ps") > 0) {
    absl::StatusOr<std::string> placement = ExplainPsPlacement(*job, tf->cluster.NumTasks("ps"));
    if (!placement.ok()) return Error("explain-config", placement.status().message());
    *report += *placement;
  }
  std::printf("%s", report->c_str());
  return kExitOk;
}

int GenData(int argc, char** argv) {
  ClickLogOptions o;
  double rows = 0;
  int seed = 1;
  int model_seed = 0;
  FlagSet flags("estuary gen-data clicks --rows N --out DIR [flags]",
                "Writes a synthetic Criteo-like click log: columns label, I1..I13 (integer "
                "counts, some missing), C1..C26 (8-hex-digit categorical tokens with Zipf-"
                "distributed ranks, some missing). Labels follow a hidden logistic model fixed "
                "by --model_seed, so models can learn them. Rows are a pure function of "
                "(--seed, --model_seed, row number).");
  flags.Double("rows", &rows, "Number of rows (e.g. 1e6).");
  flags.String("out", &o.out_dir, "Output directory (created if missing).");
  flags.String("format", &o.format, "Output format: csv, or tfrecord (one tf.train.Example per row).");
  flags.Int("files", &o.num_files, "Number of files to split the rows over.");
  flags.Int("seed", &seed, "Seed of the sampled rows.");
  flags.Int("model_seed", &model_seed, "Seed of the hidden model (keep it for train/eval).");
  flags.Int("threads", &o.threads, "Writer threads.");
  absl::Status st = flags.Parse(argc, argv, 3);
  if (flags.help_requested()) {
    std::printf("%s", flags.Usage().c_str());
    return kExitOk;
  }
  if (st.ok() && !flags.positional().empty()) {
    st = absl::InvalidArgumentError(absl::StrCat("unexpected argument '", flags.positional()[0], "'"));
  }
  if (!st.ok()) return Error("gen-data", absl::StrCat(st.message(), " (see --help)"));
  o.rows = static_cast<int64_t>(rows);
  o.seed = static_cast<uint64_t>(seed);
  o.model_seed = static_cast<uint64_t>(model_seed);
  const absl::Time start = absl::Now();
  int64_t last_report = 0;
  absl::Mutex mu;
  st = WriteClickLog(o, [&](int64_t done) {
    absl::MutexLock l(&mu);
    if (done - last_report < o.rows / 10 && done < o.rows) return;
    last_report = done;
    const double secs = absl::ToDoubleSeconds(absl::Now() - start);
    std::printf("wrote %lld/%lld rows (%.0f rows/s)\n", static_cast<long long>(done),
                static_cast<long long>(o.rows), secs > 0 ? done / secs : 0.0);
    std::fflush(stdout);
  });
  if (!st.ok()) {
    std::fprintf(stderr, "estuary gen-data: error: %.*s\n", static_cast<int>(st.message().size()),
                 st.message().data());
    return absl::IsInvalidArgument(st) ? kExitBadInput : kExitFailure;
  }
  return kExitOk;
}

}  // namespace
}  // namespace estuary

int main(int argc, char** argv) {
  absl::StatusOr<std::unique_ptr<estuary::SignalWatcher>> signals =
      estuary::SignalWatcher::Start();
  if (!signals.ok()) return estuary::kExitFailure;
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    std::printf("%s", estuary::kTopUsage);
    return argc < 2 ? estuary::kExitBadInput : estuary::kExitOk;
  }
  const std::string cmd = argv[1];
  if (cmd == "local") return estuary::Local(argc, argv, signals->get());
  if (cmd == "explain-config") return estuary::ExplainConfigCommand(argc, argv);
  if (cmd == "train") return estuary::TrainCommand(argc, argv);
  if (cmd == "train_and_evaluate") return estuary::TrainAndEvaluateCommand(argc, argv);
  if (cmd == "evaluate") return estuary::EvaluateCommand(argc, argv);
  if (cmd == "predict") return estuary::PredictCommand(argc, argv);
  if (cmd == "export") return estuary::ExportCommand(argc, argv);
  if (cmd == "k8s") return estuary::K8sCommand(argc, argv);
  if (cmd == "inspect") return estuary::InspectCommand(argc, argv);
  if (cmd == "certs") return estuary::CertsCommand(argc, argv);
  if (cmd == "serve") return estuary::ServeCommand(argc, argv, signals->get());
  if (cmd == "status") return estuary::StatusCommand(argc, argv, signals->get());
  if (cmd == "gen-data") {
    if (argc < 3 || std::strcmp(argv[2], "clicks") != 0) {
      if (argc >= 3 && (!std::strcmp(argv[2], "--help") || !std::strcmp(argv[2], "-h"))) {
        std::printf("Usage: estuary gen-data clicks --rows N --out DIR [flags]\n");
        return estuary::kExitOk;
      }
      std::fprintf(stderr, "estuary gen-data: error: expected a data set name: clicks\n");
      return estuary::kExitBadInput;
    }
    return estuary::GenData(argc, argv);
  }
  std::fprintf(stderr, "estuary: error: unknown command '%s'\n%s", cmd.c_str(),
               estuary::kTopUsage);
  return estuary::kExitBadInput;
}
