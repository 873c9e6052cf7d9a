#include "common/cluster.h"

#include "gtest/gtest.h"

namespace estuary {
namespace {

// TF_CONFIGs exactly as TF 2.15 docs / tf.estimator, MultiWorkerMirrored and
// Kubeflow's TFJob (training-operator) produce them.
struct GoodCase {
  const char* name;
  const char* json;
  TaskId task;
  TaskId coordinator;
  int num_tasks;
};

class TfConfigGoodTest : public testing::TestWithParam<GoodCase> {};

TEST_P(TfConfigGoodTest, Parses) {
  const GoodCase& c = GetParam();
  absl::StatusOr<TfConfig> tf = ParseTfConfig(c.json);
  ASSERT_TRUE(tf.ok()) << tf.status();
  EXPECT_EQ(tf->task, c.task);
  absl::StatusOr<TaskId> coord = tf->Coordinator();
  ASSERT_TRUE(coord.ok()) << coord.status();
  EXPECT_EQ(*coord, c.coordinator);
  EXPECT_EQ(static_cast<int>(tf->cluster.AllTasks().size()), c.num_tasks);
  // Round trip through ToJson.
  absl::StatusOr<TfConfig> again = ParseTfConfig(tf->ToJson());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->cluster.jobs(), tf->cluster.jobs());
  EXPECT_EQ(again->task, tf->task);
}

INSTANTIATE_TEST_SUITE_P(
    Conventions, TfConfigGoodTest,
    testing::Values(
        // tf.estimator docs: chief + workers + ps, evaluator outside cluster.
        GoodCase{"estimator_worker",
                 R"({"cluster": {"chief": ["host0:2222"], "worker": ["host1:2222", "host2:2222"],
                     "ps": ["host3:2222", "host4:2222"]},
                     "task": {"type": "worker", "index": 1}})",
                 {"worker", 1}, {"chief", 0}, 5},
        GoodCase{"estimator_evaluator_outside",
                 R"({"cluster": {"chief": ["host0:2222"], "worker": ["host1:2222"],
                     "ps": ["host3:2222"]},
                     "task": {"type": "evaluator", "index": 0}})",
                 {"evaluator", 0}, {"chief", 0}, 3},
        // tf.distribute: evaluator inside the cluster.
        GoodCase{"evaluator_inside",
                 R"({"cluster": {"chief": ["h0:1"], "worker": ["h1:1"], "evaluator": ["h2:1"]},
                     "task": {"type": "evaluator", "index": 0}})",
                 {"evaluator", 0}, {"chief", 0}, 3},
        // MultiWorkerMirroredStrategy docs: workers only; worker 0 is chief.
        GoodCase{"mwms_workers_only",
                 R"({"cluster": {"worker": ["localhost:12345", "localhost:23456"]},
                     "task": {"type": "worker", "index": 0}})",
                 {"worker", 0}, {"worker", 0}, 2},
        // Legacy master.
        GoodCase{"legacy_master",
                 R"({"cluster": {"master": ["m:2222"], "worker": ["w:2222"], "ps": ["p:2222"]},
                     "task": {"type": "master", "index": 0}, "environment": "cloud"})",
                 {"master", 0}, {"master", 0}, 3},
        // Kubeflow TFJob, exactly as the operator writes it.
        GoodCase{"tfjob",
                 R"({"cluster":{"chief":["mnist-chief-0.kubeflow.svc:2222"],
                     "ps":["mnist-ps-0.kubeflow.svc:2222"],
                     "worker":["mnist-worker-0.kubeflow.svc:2222","mnist-worker-1.kubeflow.svc:2222"]},
                     "task":{"type":"worker","index":1},"environment":"cloud"})",
                 {"worker", 1}, {"chief", 0}, 4},
        // TFJob sparse form for dynamic workers.
        GoodCase{"tfjob_sparse",
                 R"({"cluster":{"chief":["job-chief-0.ns.svc:2222"],
                     "worker":{"1":"job-worker-1.ns.svc:2222"},
                     "ps":["job-ps-0.ns.svc:2222"]},
                     "task":{"type":"worker","index":1},"environment":"cloud"})",
                 {"worker", 1}, {"chief", 0}, 3},
        GoodCase{"ipv6_and_rpc_layer",
                 R"({"cluster": {"chief": ["[::1]:2222"], "worker": ["[::1]:2223"]},
                     "task": {"type": "chief", "index": 0}, "rpc_layer": "grpc"})",
                 {"chief", 0}, {"chief", 0}, 2},
        // Index defaults to 0; unknown top-level keys (Cloud ML's "job") pass.
        GoodCase{"defaults",
                 R"({"cluster": {"chief": ["c:1"]}, "task": {"type": "chief"},
                     "job": {"args": []}})",
                 {"chief", 0}, {"chief", 0}, 1}),
    [](const testing::TestParamInfo<GoodCase>& info) { return info.param.name; });

struct BadCase {
  const char* name;
  const char* json;
  const char* error;  // substring of the message
};

class TfConfigBadTest : public testing::TestWithParam<BadCase> {};

TEST_P(TfConfigBadTest, NamesTheProblem) {
  const BadCase& c = GetParam();
  absl::StatusOr<TfConfig> tf = ParseTfConfig(c.json);
  ASSERT_FALSE(tf.ok());
  EXPECT_EQ(tf.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(tf.status().message().find(c.error), absl::string_view::npos) << tf.status();
  EXPECT_EQ(tf.status().message().find('\n'), absl::string_view::npos) << "one line";
}

INSTANTIATE_TEST_SUITE_P(
    Errors, TfConfigBadTest,
    testing::Values(
        BadCase{"malformed", R"({"cluster": )", "not valid JSON"},
        // A number beyond double's range is nlohmann's out_of_range, not a
        // parse_error (found by fuzz/job_spec_fuzzer; it used to abort).
        BadCase{"number_overflow", R"({"cluster": {}, "x": 1e309})",
                "not valid JSON: [json.exception.out_of_range.406] number overflow"},
        BadCase{"not_object", R"([1, 2])", "must be a JSON object"},
        BadCase{"cluster_wrong_type", R"({"cluster": "x", "task": {"type": "worker"}})",
                "cluster must be an object"},
        BadCase{"job_wrong_type", R"({"cluster": {"worker": 5}, "task": {"type": "worker"}})",
                "cluster.worker must be a list"},
        BadCase{"address_wrong_type",
                R"({"cluster": {"worker": [5]}, "task": {"type": "worker"}})",
                "cluster.worker[0] must be a \"host:port\" string, got number 5"},
        BadCase{"no_port", R"({"cluster": {"worker": ["host"]}, "task": {"type": "worker"}})",
                "cluster.worker[0] 'host' has no port"},
        BadCase{"bad_port",
                R"({"cluster": {"worker": ["h:99999"]}, "task": {"type": "worker"}})",
                "expected a number in 1..65535"},
        BadCase{"unknown_job",
                R"({"cluster": {"workers": ["h:1"]}, "task": {"type": "worker"}})",
                "unknown job 'workers'; did you mean 'worker'?"},
        BadCase{"missing_task", R"({"cluster": {"worker": ["h:1"]}})", "task is missing"},
        BadCase{"missing_type", R"({"cluster": {"worker": ["h:1"]}, "task": {"index": 0}})",
                "task.type is missing"},
        BadCase{"type_wrong_type",
                R"({"cluster": {"worker": ["h:1"]}, "task": {"type": 1, "index": 0}})",
                "task.type must be a string, got number 1"},
        BadCase{"unknown_type",
                R"({"cluster": {"worker": ["h:1"]}, "task": {"type": "wrker", "index": 0}})",
                "task.type 'wrker' is unknown; did you mean 'worker'?"},
        BadCase{"index_wrong_type",
                R"({"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": "0"}})",
                "task.index must be an integer, got string \"0\""},
        BadCase{"index_out_of_range",
                R"({"cluster": {"worker": ["h:1", "h:2"]}, "task": {"type": "worker", "index": 3}})",
                "task.index 3 out of range: cluster has 2 'worker' tasks"},
        BadCase{"negative_index",
                R"({"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": -1}})",
                "must be >= 0"},
        BadCase{"type_not_in_cluster",
                R"({"cluster": {"worker": ["h:1"]}, "task": {"type": "ps", "index": 0}})",
                "task.type 'ps' has no tasks in cluster"},
        BadCase{"sparse_index_missing",
                R"({"cluster": {"worker": {"1": "h:1"}}, "task": {"type": "worker", "index": 0}})",
                "task.index 0 is not among cluster.worker's task indices"},
        BadCase{"sparse_bad_key",
                R"({"cluster": {"worker": {"one": "h:1"}}, "task": {"type": "worker"}})",
                "sparse task keys must be non-negative task indices"},
        BadCase{"duplicate_address",
                R"({"cluster": {"chief": ["h:1"], "worker": ["h:2", "h:1"]},
                    "task": {"type": "chief"}})",
                "cluster.worker[1] 'h:1' duplicates cluster.chief[0]"},
        BadCase{"two_chiefs",
                R"({"cluster": {"chief": ["h:1", "h:2"]}, "task": {"type": "chief"}})",
                "cluster.chief has 2 tasks: at most one is allowed"},
        BadCase{"chief_and_master",
                R"({"cluster": {"chief": ["h:1"], "master": ["h:2"]}, "task": {"type": "chief"}})",
                "both 'chief' and 'master'"},
        BadCase{"unknown_task_key",
                R"({"cluster": {"chief": ["h:1"]}, "task": {"type": "chief", "idx": 0}})",
                "task has unknown key 'idx'"},
        BadCase{"rpc_layer",
                R"({"cluster": {"chief": ["h:1"]}, "task": {"type": "chief"},
                    "rpc_layer": "grpc+loas"})",
                "rpc_layer 'grpc+loas' is not supported"},
        BadCase{"evaluator_index",
                R"({"cluster": {"chief": ["h:1"]}, "task": {"type": "evaluator", "index": 2}})",
                "only one evaluator"}),
    [](const testing::TestParamInfo<BadCase>& info) { return info.param.name; });

TEST(TfConfigTest, NoCoordinatorWithoutChiefOrWorkerZero) {
  absl::StatusOr<TfConfig> tf = ParseTfConfig(
      R"({"cluster": {"worker": {"1": "h:1"}, "ps": ["h:2"]}, "task": {"type": "ps"}})");
  ASSERT_TRUE(tf.ok()) << tf.status();
  EXPECT_TRUE(tf->cluster.sparse());
  absl::Status st = tf->Coordinator().status();
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(st.message().find("worker' with index 0"), absl::string_view::npos) << st;
}

TEST(TfConfigTest, EmptyMeansSingleProcess) {
  absl::StatusOr<TfConfig> tf = ParseTfConfig("{}");
  ASSERT_TRUE(tf.ok());
  EXPECT_TRUE(tf->cluster.empty());
}

TEST(TfConfigTest, OrdersTasksChiefFirst) {
  absl::StatusOr<TfConfig> tf = ParseTfConfig(
      R"({"cluster": {"ps": ["p:1"], "worker": ["w:1", "w:2"], "chief": ["c:1"]},
          "task": {"type": "ps"}})");
  ASSERT_TRUE(tf.ok());
  std::vector<TaskId> want = {{"chief", 0}, {"worker", 0}, {"worker", 1}, {"ps", 0}};
  EXPECT_EQ(tf->cluster.AllTasks(), want);
}

TEST(TaskIdTest, ParsesAndPrints) {
  absl::StatusOr<TaskId> t = ParseTaskId("worker:3");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->ToString(), "worker:3");
  EXPECT_FALSE(ParseTaskId("worker").ok());
  EXPECT_FALSE(ParseTaskId("worker:-1").ok());
}

}  // namespace
}  // namespace estuary
