// The evaluator binary in a real cluster: it evaluates the checkpoints a
// trainer commits (here the test, committing through checkpoint leases over
// the chief's coordination service with keep_checkpoint_max 1, as the chief
// does), writes eval summaries, ends on the final step and says so.
#include <signal.h>

#include <filesystem>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/checkpoint.h"
#include "common/coordination/coordination_client.h"
#include "common/rpc.h"
#include "distribute/checkpoint_lease.h"
#include "distribute/keys.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/process_harness.h"

namespace estuary::testing {
namespace {

constexpr absl::Duration kSlack = absl::Seconds(60);

nlohmann::json Distribution() {
  return {{"heartbeat_interval_secs", 0.2}, {"heartbeat_timeout_secs", 5},
          {"startup_timeout_secs", 30}, {"shutdown_timeout_secs", 10}};
}

// A linear classifier on a small learnable CSV (y = [2a - b + (c == x) > 0.5]).
nlohmann::json TinyJob(const std::string& model_dir) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1, 1);
  std::string text = "a,b,c,y\n";
  for (int i = 0; i < 300; ++i) {
    const float a = u(rng), b = u(rng);
    const bool x = i % 3 == 0;
    absl::StrAppend(&text, a, ",", b, ",", x ? "x" : "y", ",", 2 * a - b + x > 0.5f ? 1 : 0, "\n");
  }
  const std::string data = WriteTempFile("eval_data.csv", text);
  nlohmann::json input = {{"format", "csv"},   {"files", {data}},  {"header", true},
                          {"column_defaults", {0.0, 0.0, "", 0}}, {"label_key", "y"},
                          {"batch_size", 32}};
  nlohmann::json train = input;
  train["num_epochs"] = -1;
  return {{"model_dir", model_dir},
          {"estimator", {{"type", "linear_classifier"}}},
          {"feature_columns",
           {{{"type", "numeric"}, {"key", "a"}},
            {{"type", "numeric"}, {"key", "b"}},
            {{"type", "categorical_with_vocabulary_list"}, {"key", "c"},
             {"vocabulary_list", {"x", "y"}}}}},
          {"train_input", train},
          {"eval_input", input},
          {"run_config", {{"keep_checkpoint_max", 1}}},
          {"eval_spec", {{"steps", nullptr}, {"start_delay_secs", 0}, {"throttle_secs", 0}}},
          {"distribution", Distribution()}};
}

TEST(EvaluatorProcessTest, EvaluatesLeasedCheckpointsAndEndsOnTheFinalStep) {
  const std::string tmp = std::getenv("TEST_TMPDIR");
  const std::string model_dir = tmp + "/eval_model";
  // The model's variables, from one step of one-process training elsewhere.
  nlohmann::json scratch_job = TinyJob(tmp + "/scratch_model");
  auto train = Proc::Start({Runfile("cli/estuary"), "train",
                            WriteTempFile("scratch.json", scratch_job.dump()), "--max_steps=1",
                            "--noevaluate"});
  ASSERT_EQ(*train->Wait(kSlack), 0) << train->Output();
  absl::StatusOr<checkpoint::RestoredCheckpoint> model =
      checkpoint::RestoreLatest(tmp + "/scratch_model");
  ASSERT_TRUE(model.ok()) << model.status();

  // A chief holding the cluster (its job has no model) and an evaluator
  // outside the cluster spec, TF's convention.
  TestCluster cluster(1, 0, 0);
  nlohmann::json chief_job = {{"model_dir", model_dir}, {"distribution", Distribution()}};
  auto chief = cluster.StartTask("chief:0", WriteTempFile("chief.json", chief_job.dump()),
                                 {"--hold_secs=120"});
  auto eval = Proc::Start({TestCluster::BinaryFor("evaluator"),
                           "--job=" + WriteTempFile("eval.json", TinyJob(model_dir).dump()),
                           "--listen=127.0.0.1:0"},
                          {{"TF_CONFIG", cluster.TfConfig("evaluator:0")}}, "evaluator:0");
  ASSERT_TRUE(eval->WaitForLine("estimator is not trained yet", kSlack)) << eval->Output();

  // The trainer's side: commits with keep_checkpoint_max 1 through leases.
  const std::string chief_addr = *cluster.spec().Address({"chief", 0});
  CoordinationClient store(CreateChannel(chief_addr), {"test", 0}, 1, chief_addr);
  CheckpointLeases leases(&store);
  checkpoint::SaveOptions options;
  options.keep_checkpoint_max = 1;
  options.may_delete = [&](int64_t step) {
    return leases.MayDelete(step, absl::Now() + absl::Seconds(10));
  };
  const auto commit = [&](int64_t step) {
    Variables vars = model->vars;
    vars.ints["global_step"] = step;
    absl::StatusOr<std::string> saved = checkpoint::Save(model_dir, step, vars, options);
    ASSERT_TRUE(saved.ok()) << saved.status();
  };
  commit(10);
  ASSERT_TRUE(eval->WaitForLine("saving dict for global step 10: accuracy = ", kSlack))
      << eval->Output();
  for (int64_t step : {20, 30, 40}) commit(step);
  ASSERT_TRUE(eval->WaitForLine("saving dict for global step 40: accuracy = ", kSlack))
      << eval->Output();
  commit(50);
  ASSERT_TRUE(store.Set(kFinalStepKey, "50", absl::Now() + kSlack).ok());
  absl::StatusOr<std::vector<std::string>> done =
      store.Wait({kEvaluatorDoneKey}, absl::Now() + kSlack);
  ASSERT_TRUE(done.ok()) << done.status() << "\n" << eval->Output();
  EXPECT_EQ(done->at(0), "50");
  EXPECT_TRUE(eval->HasLine("saving dict for global step 50: accuracy = ")) << eval->Output();
  EXPECT_TRUE(eval->HasLine("exiting evaluation, global_step=50 is the final step"))
      << eval->Output();
  // Every lease it took was released.
  for (int64_t step : {10, 40, 50}) {
    absl::StatusOr<std::string> readers =
        store.Get(CheckpointLeases::ReadersKey(step), absl::Now() + kSlack);
    ASSERT_TRUE(readers.ok()) << step << ": " << readers.status();
    EXPECT_EQ(*readers, "0") << step;
  }
  bool events = false;
  for (const auto& e : std::filesystem::directory_iterator(model_dir + "/eval")) {
    events |= e.path().filename().string().rfind("events.out.tfevents.", 0) == 0;
  }
  EXPECT_TRUE(events);

  chief->Signal(SIGTERM);
  EXPECT_EQ(*chief->Wait(kSlack), 0) << chief->Output();
  EXPECT_EQ(*eval->Wait(kSlack), 0) << eval->Output();
}

// A real cluster (chief, 2 workers, 1 PS, evaluator) trains with
// keep_checkpoint_max 1 and a checkpoint every 100 steps while the
// evaluator reads each newest checkpoint (a long evaluation, so that the
// chief's cleanup often wants to delete the one being read): the evaluator
// never finds its leased checkpoint gone, evaluates the final one, and
// every task exits 0.
TEST(EvaluatorProcessTest, ClusterEvaluatorNeverReadsADeletedCheckpoint) {
  const std::string model_dir = std::string(std::getenv("TEST_TMPDIR")) + "/cluster_model";
  nlohmann::json job = TinyJob(model_dir);
  job["eval_input"]["num_epochs"] = 100;  // 30000 rows per evaluation
  job["run_config"] = {{"save_checkpoints_steps", 100}, {"keep_checkpoint_max", 1},
                       {"log_step_count_steps", 5000}};
  job["train_spec"] = {{"max_steps", 20000}};
  auto p = Proc::Start({Runfile("cli/estuary"), "local",
                        WriteTempFile("cluster.json", job.dump()), "--workers=2", "--ps=1",
                        "--evaluator", "--timeout=240"});
  ASSERT_EQ(*p->Wait(absl::Seconds(270)), 0) << p->Output();
  EXPECT_TRUE(p->HasLine("5 of 5 tasks exited 0")) << p->Output();
  EXPECT_FALSE(p->HasLine("vanished while leased")) << p->Output();
  EXPECT_TRUE(p->HasLine("[evaluator:0] exiting evaluation, global_step=")) << p->Output();
  // `estuary local` repeats the evaluator's last metrics at the end.
  EXPECT_TRUE(p->HasLine("final evaluation by evaluator:0: global step ")) << p->Output();
  int evaluations = 0, kept = 0;
  const std::string out = p->Output();
  for (size_t at = 0; (at = out.find("saving dict for global step", at)) != std::string::npos;
       ++at) {
    ++evaluations;
  }
  for (size_t at = 0; (at = out.find("for now (in use)", at)) != std::string::npos; ++at) ++kept;
  EXPECT_GE(evaluations, 2);
  // An evaluation (30000 rows) lasts several checkpoint intervals (100
  // steps of 2 workers), so the chief's cleanup met a leased checkpoint:
  // proof that it consulted the leases (the read itself is too quick for a
  // deletion to hit it reliably; checkpoint_lease_test forces that case).
  EXPECT_GE(kept, 1) << out;
  std::printf("evaluations %d, checkpoints kept for a lease %d\n", evaluations, kept);
}

}  // namespace
}  // namespace estuary::testing
