// Every job file in examples/ parses, builds its estimator and its input
// functions, and fits the cluster shape it is written for: an example that
// no longer loads fails here, not in a user's first command.
#include <dirent.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/cluster.h"
#include "common/cluster_plan.h"
#include "common/job_spec.h"
#include "estimator/estimator.h"
#include "gtest/gtest.h"
#include "tests/process_harness.h"

namespace estuary::testing {
namespace {

std::vector<std::string> ExampleJobs() {
  std::vector<std::string> jobs;
  const std::string dir = Runfile("examples");
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return jobs;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (absl::EndsWith(name, ".json")) jobs.push_back(absl::StrCat(dir, "/", name));
  }
  closedir(d);
  std::sort(jobs.begin(), jobs.end());
  return jobs;
}

// A PS cluster of the README's shape, seen from `task`.
TfConfig PsCluster(const std::string& type, int index) {
  absl::StatusOr<TfConfig> tf = ParseTfConfig(absl::StrCat(
      R"({"cluster": {"chief": ["localhost:2222"], "worker": ["localhost:2223", "localhost:2224"],
          "ps": ["localhost:2225", "localhost:2226"], "evaluator": ["localhost:2227"]},
          "task": {"type": ")", type, R"(", "index": )", index, "}}"));
  EXPECT_TRUE(tf.ok()) << tf.status();
  return *tf;
}

TEST(ExamplesTest, EveryJobFileLoads) {
  const std::vector<std::string> jobs = ExampleJobs();
  ASSERT_GE(jobs.size(), 4u) << "examples/ not in the runfiles";
  for (const std::string& path : jobs) {
    SCOPED_TRACE(path);
    absl::StatusOr<JobSpec> job = LoadJobSpec(path);
    ASSERT_TRUE(job.ok()) << job.status();
    if (!job->estimator.has_value()) continue;  // a cluster-runtime job (no model)
    absl::StatusOr<std::unique_ptr<Estimator>> est = EstimatorFromJob(*job);
    EXPECT_TRUE(est.ok()) << est.status();
    for (const char* section : {"train_input", "eval_input"}) {
      EXPECT_TRUE(InputFnFromJob(*job, section).ok()) << section;
      EXPECT_TRUE(InputFnFromJob(*job, section, {2, 3}).ok()) << section;
    }
  }
}

TEST(ExamplesTest, ClusterExamplesRunOnAParameterServerCluster) {
  for (const char* name : {"clicks_wide_deep.json", "fashion_mnist_cluster.json"}) {
    SCOPED_TRACE(name);
    absl::StatusOr<JobSpec> job = LoadJobSpec(Runfile(absl::StrCat("examples/", name)));
    ASSERT_TRUE(job.ok()) << job.status();
    EXPECT_EQ(job->distribution.strategy, "parameter_server");
    ASSERT_TRUE(job->train_input.has_value());
    EXPECT_EQ(job->train_input->shard, InputShardPolicy::kAuto);
    absl::StatusOr<std::string> strategy = ResolveStrategy(*job, PsCluster("worker", 1));
    ASSERT_TRUE(strategy.ok()) << strategy.status();
    EXPECT_EQ(*strategy, "parameter_server");
    absl::StatusOr<std::string> plan = ExplainConfig(PsCluster("chief", 0), &*job);
    EXPECT_TRUE(plan.ok()) << plan.status();
  }
}

// The multi_worker_mirrored example on a chief + worker + evaluator
// cluster: explain-config gives each trainer its rank in the ring.
TEST(ExamplesTest, MirroredExampleRunsOnAnAllReduceCluster) {
  absl::StatusOr<JobSpec> job = LoadJobSpec(Runfile("examples/fashion_mnist_mirrored.json"));
  ASSERT_TRUE(job.ok()) << job.status();
  absl::StatusOr<TfConfig> tf = ParseTfConfig(
      R"({"cluster": {"chief": ["localhost:2222"], "worker": ["localhost:2223"],
          "evaluator": ["localhost:2224"]}, "task": {"type": "worker", "index": 0}})");
  ASSERT_TRUE(tf.ok()) << tf.status();
  absl::StatusOr<std::string> strategy = ResolveStrategy(*job, *tf);
  ASSERT_TRUE(strategy.ok()) << strategy.status();
  EXPECT_EQ(*strategy, "multi_worker_mirrored");
  absl::StatusOr<std::string> plan = ExplainConfig(*tf, &*job);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(absl::StrContains(*plan, "trains as rank 0 of 2 in the all-reduce ring")) << *plan;
  EXPECT_TRUE(absl::StrContains(*plan, "trains as rank 1 of 2 in the all-reduce ring")) << *plan;
  EXPECT_TRUE(absl::StrContains(*plan, "all-reduce: ring over TCP")) << *plan;
}

}  // namespace
}  // namespace estuary::testing
