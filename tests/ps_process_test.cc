// The ps binary as a real process: it serves the PS service on its task
// port, applies what a PsClient pushes, and exits 0 when the chief ends the
// job.
#include <signal.h>

#include "absl/strings/str_cat.h"
#include "common/ps/ps_client.h"
#include "gtest/gtest.h"
#include "tests/process_harness.h"

namespace estuary::testing {
namespace {

constexpr absl::Duration kSlack = absl::Seconds(20);

TEST(PsProcessTest, ServesTheVariableStoreAndExitsWithTheJob) {
  const std::string job = WriteTempFile("job.json", R"({"model_dir": "/tmp/estuary-ps-test",
    "distribution": {"heartbeat_interval_secs": 0.1, "heartbeat_timeout_secs": 5,
                     "startup_timeout_secs": 30, "shutdown_timeout_secs": 10}})");
  TestCluster cluster(1, 0, 1);
  auto chief = cluster.StartTask("chief:0", job, {"--hold_secs=120"});
  auto ps = cluster.StartTask("ps:0", job);
  ASSERT_TRUE(ps->WaitForLine("passed the start barrier", kSlack)) << ps->Output();

  const std::string address = *cluster.spec().Address({"ps", 0});
  std::unique_ptr<PsClient> client = *PsClient::Create({address}, {});
  OptimizerConfig sgd;
  sgd.learning_rate = 0.5;
  const absl::Time deadline = absl::Now() + kSlack;
  ASSERT_TRUE(client->Initialize(1, {{"w", RowMatrixXf::Ones(2, 2), false, true, sgd, {}, 0}}, 0,
                                 deadline)
                  .ok());
  Gradients g;
  g.dense["w"] = RowMatrixXf::Ones(2, 2);
  absl::StatusOr<int64_t> step = client->Push(g, deadline);
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_EQ(*step, 1);
  // A wrong shape is refused and the PS keeps serving.
  g.dense["w"] = RowMatrixXf::Ones(3, 2);
  EXPECT_EQ(client->Push(g, deadline).status().code(), absl::StatusCode::kInvalidArgument);
  Variables mirror;
  ASSERT_TRUE(client->Pull({"w"}, {}, &mirror, deadline).ok());
  EXPECT_EQ(mirror.floats.at("w")(1, 1), 0.5f);

  chief->Signal(SIGTERM);
  absl::StatusOr<int> code = chief->Wait(kSlack);
  EXPECT_TRUE(code.ok() && *code == 0) << chief->Output();
  code = ps->Wait(kSlack);
  EXPECT_TRUE(code.ok() && *code == 0) << ps->Output();
}

}  // namespace
}  // namespace estuary::testing
