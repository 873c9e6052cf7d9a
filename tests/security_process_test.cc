// Security between tasks as real processes (issue 14, item 3), with the
// material `estuary certs` writes:
//  (a) A multi_worker_mirrored cluster (chief + worker, `estuary local`)
//      with mutual TLS + the job token trains to the same variables as the
//      same cluster without them (bit for bit: the same ring, the same sums).
//      A PS cluster with them trains to max_steps (the PS channels).
//  (b) While a secured chief waits at the start barrier, four strangers
//      dressed as worker:0 try to join: one without TLS, one with a
//      certificate of another CA, one with the job's certificates and a
//      wrong token, one with ps:0's certificate. Each is refused with a
//      clear error (exit 2; the chief logs the refused token, gRPC the
//      failed handshakes); then the real worker joins and the job ends at
//      max_steps, every task exiting 0.
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/checkpoint.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/process_harness.h"

namespace estuary::testing {
namespace {

using ::testing::HasSubstr;

constexpr int kRows = 2048;
constexpr int kFeatures = 4;

std::string TmpDir() { return std::getenv("TEST_TMPDIR"); }

std::string WriteData() {
  std::ostringstream csv;
  csv << "label,x0,x1,x2,x3\n";
  uint64_t s = 7;
  auto next = [&s] {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(s >> 11) / static_cast<double>(1ull << 53) * 2 - 1;
  };
  for (int i = 0; i < kRows; ++i) {
    double x[kFeatures], z = 0;
    for (int j = 0; j < kFeatures; ++j) {
      x[j] = next();
      z += (j + 1) * (j % 2 ? -1 : 1) * x[j];
    }
    csv << (z > 0 ? 1 : 0);
    for (int j = 0; j < kFeatures; ++j) csv << "," << x[j];
    csv << "\n";
  }
  return WriteTempFile("security_data.csv", csv.str());
}

struct JobOptions {
  std::string name;
  std::string strategy = "multi_worker_mirrored";
  int64_t max_steps = 30;
  // The `security` block (null: none).
  nlohmann::json security;
  double startup_timeout_secs = 60;
};

std::string Job(const std::string& data, const JobOptions& o) {
  nlohmann::json cols = nlohmann::json::array(), defaults = nlohmann::json::array({0});
  for (int j = 0; j < kFeatures; ++j) {
    cols.push_back({{"type", "numeric"}, {"key", absl::StrCat("x", j)}});
    defaults.push_back(0.0);
  }
  nlohmann::json job = {
      {"model_dir", TmpDir() + "/" + o.name},
      {"estimator",
       {{"type", "dnn_classifier"},
        {"hidden_units", {8}},
        {"optimizer", {{"type", "adagrad"}, {"learning_rate", 0.1}}}}},
      {"feature_columns", cols},
      {"train_input",
       {{"format", "csv"},
        {"files", {data}},
        {"header", true},
        {"column_defaults", defaults},
        {"label_key", "label"},
        {"batch_size", 16},
        {"num_epochs", -1},
        {"shard", "auto"}}},
      {"run_config", {{"tf_random_seed", 3}, {"save_checkpoints_steps", 1000}}},
      {"train_spec", {{"max_steps", o.max_steps}}},
      {"distribution",
       {{"strategy", o.strategy},
        {"heartbeat_interval_secs", 0.5},
        {"heartbeat_timeout_secs", 10},
        {"startup_timeout_secs", o.startup_timeout_secs},
        {"shutdown_timeout_secs", 10},
        {"collective_timeout_secs", 60}}}};
  if (!o.security.is_null()) job["security"] = o.security;
  return WriteTempFile(o.name + ".json", job.dump(1));
}

// `estuary certs --out DIR --tasks ...`; returns DIR's "security" block.
nlohmann::json MakeCerts(const std::string& dir, const std::string& tasks) {
  auto certs = Proc::Start({Runfile("cli/estuary"), "certs", "--out", dir, "--tasks", tasks});
  absl::StatusOr<int> code = certs->Wait(absl::Minutes(1));
  EXPECT_TRUE(code.ok() && *code == 0) << certs->Output();
  std::ifstream in(dir + "/security.json");
  nlohmann::json block = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  EXPECT_TRUE(block.contains("security")) << certs->Output();
  return block.is_object() && block.contains("security") ? block["security"] : nlohmann::json();
}

class SecurityProcessTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = new std::string(WriteData());
    security_ = new nlohmann::json(MakeCerts(TmpDir() + "/certs", "chief:1,worker:1,ps:1"));
  }
  static std::string* data_;
  static nlohmann::json* security_;
};
std::string* SecurityProcessTest::data_ = nullptr;
nlohmann::json* SecurityProcessTest::security_ = nullptr;

int RunLocal(const std::string& job, std::vector<std::string> flags, std::string* output) {
  std::vector<std::string> argv = {Runfile("cli/estuary"), "local", job, "--timeout=240"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  auto local = Proc::Start(argv);
  absl::StatusOr<int> code = local->Wait(absl::Minutes(5));
  *output = local->Output();
  return code.ok() ? *code : -1;
}

// (a)
TEST_F(SecurityProcessTest, TlsClusterTrainsToTheSameVariables) {
  std::string out;
  const std::string plain = Job(*data_, {.name = "plain"});
  ASSERT_EQ(RunLocal(plain, {"--workers=1", "--ps=0"}, &out), 0) << out;
  const std::string secure = Job(*data_, {.name = "secure", .security = *security_});
  ASSERT_EQ(RunLocal(secure, {"--workers=1", "--ps=0"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("mutual TLS + job token")) << out;
  EXPECT_THAT(out, HasSubstr("ring generation 1 formed")) << out;

  absl::StatusOr<checkpoint::RestoredCheckpoint> a = checkpoint::RestoreLatest(TmpDir() + "/plain");
  absl::StatusOr<checkpoint::RestoredCheckpoint> b =
      checkpoint::RestoreLatest(TmpDir() + "/secure");
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << " " << b.status();
  EXPECT_EQ(a->step, 30);
  EXPECT_EQ(b->step, 30);
  ASSERT_FALSE(a->vars.floats.empty());
  for (const auto& [name, x] : a->vars.floats) {
    SCOPED_TRACE(name);
    ASSERT_EQ(b->vars.floats.count(name), 1u);
    const RowMatrixXf& y = b->vars.floats.at(name);
    ASSERT_EQ(x.size(), y.size());
    for (int64_t i = 0; i < x.size(); ++i) ASSERT_EQ(x.data()[i], y.data()[i]) << "element " << i;
  }
}

TEST_F(SecurityProcessTest, TlsParameterServerClusterTrains) {
  std::string out;
  const std::string job = Job(
      *data_, {.name = "secure_ps", .strategy = "parameter_server", .security = *security_});
  ASSERT_EQ(RunLocal(job, {"--workers=1", "--ps=1"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("[ps:0]")) << out;
  absl::StatusOr<checkpoint::RestoredCheckpoint> c =
      checkpoint::RestoreLatest(TmpDir() + "/secure_ps");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_GE(c->step, 30);
}

// (b)
TEST_F(SecurityProcessTest, StrangersAreRefusedAndTheJobGoesOn) {
  TestCluster cluster(1, 1, 0);
  const std::string job =
      Job(*data_, {.name = "guarded", .max_steps = 20, .security = *security_});
  auto chief = cluster.StartTask("chief:0", job);
  ASSERT_TRUE(chief->WaitForLine("serving gRPC on", absl::Seconds(60))) << chief->Output();

  auto stranger = [&](const std::string& name, nlohmann::json security) {
    auto p = cluster.StartTask(
        "worker:0",
        Job(*data_, {.name = name, .security = security, .startup_timeout_secs = 5}),
        {"--listen=127.0.0.1:0"});
    absl::StatusOr<int> code = p->Wait(absl::Minutes(1));
    EXPECT_TRUE(code.ok() && *code == 2) << name << ": " << p->Output();
    return p->Output();
  };
  // No TLS at all: the handshake never completes; the stranger says why.
  std::string out = stranger("no_tls", nullptr);
  EXPECT_THAT(out, HasSubstr("could not join the cluster")) << out;
  EXPECT_THAT(out, HasSubstr("the chief probably requires TLS")) << out;
  // A certificate of another CA.
  nlohmann::json other = MakeCerts(TmpDir() + "/other_certs", "worker:1");
  out = stranger("other_ca", other);
  EXPECT_THAT(out, HasSubstr("could not join the cluster")) << out;
  EXPECT_THAT(out, HasSubstr("TLS is on here")) << out;
  // The job's certificates with a wrong token.
  nlohmann::json wrong = *security_;
  wrong["token_file"] = WriteTempFile("wrong_token", "not-the-job-token-0123456789\n");
  out = stranger("wrong_token", wrong);
  EXPECT_THAT(out, HasSubstr("RegisterTask to chief:0 at")) << out;
  EXPECT_THAT(out, HasSubstr("refused by chief:0: wrong job token")) << out;
  // Another task's certificate of the job's CA (ps:0's): a task may only
  // be what its certificate names (the servers refuse a mismatch too,
  // common/coordination:task_identity_test), so it stops at start-up.
  nlohmann::json borrowed = *security_;
  borrowed["cert"] = security_->at("cert").get<std::string>() + "ps-0.crt";
  borrowed["key"] = security_->at("key").get<std::string>() + "ps-0.key";
  out = stranger("borrowed_cert", borrowed);
  EXPECT_THAT(out, HasSubstr("ps-0.crt (for task worker:0) is the certificate of task ps:0"))
      << out;
  // The chief's side: the refused call, its method and the stranger's peer.
  EXPECT_TRUE(chief->WaitForLine("RegisterTask from ipv4:127.0.0.1", absl::Seconds(30)))
      << chief->Output();
  EXPECT_TRUE(chief->HasLine("wrong job token")) << chief->Output();

  absl::StatusOr<int> code;
  // `estuary status` reaches the secured chief only with the job's CA and
  // token and the tools' client certificate (`estuary certs` wrote them).
  const std::string tf_config = cluster.TfConfig("chief:0");
  auto status = Proc::Start({Runfile("cli/estuary"), "status", tf_config, "--timeout=30",
                             "--security", TmpDir() + "/certs/security.json"});
  code = status->Wait(absl::Minutes(1));
  EXPECT_TRUE(code.ok() && *code == 0) << status->Output();
  EXPECT_THAT(status->Output(), HasSubstr("chief:0")) << status->Output();
  auto plain = Proc::Start({Runfile("cli/estuary"), "status", tf_config, "--timeout=10"});
  code = plain->Wait(absl::Minutes(1));
  EXPECT_TRUE(code.ok() && *code == 1) << plain->Output();

  // The job goes on: the real worker joins and training ends.
  auto worker = cluster.StartTask("worker:0", job);
  code = chief->Wait(absl::Minutes(3));
  EXPECT_TRUE(code.ok() && *code == 0) << chief->Output();
  code = worker->Wait(absl::Minutes(1));
  EXPECT_TRUE(code.ok() && *code == 0) << worker->Output();
  EXPECT_TRUE(chief->HasLine("training finished")) << chief->Output();
}

}  // namespace
}  // namespace estuary::testing
