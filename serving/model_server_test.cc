// ModelServer over loopback: the gRPC services and the REST API with a
// FakeExport, request size limits, and a graceful shutdown that finishes the
// requests in flight.
#include "serving/model_server.h"

#include <filesystem>
#include <thread>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "proto/serving/model_service.grpc.pb.h"
#include "proto/serving/prediction_service.grpc.pb.h"
#include "common/metrics.h"
#include "common/promtool_testing.h"
#include "serving/fake_export.h"
#include "serving/tensor_convert.h"

namespace estuary {
namespace serving {
namespace {

using ::testing::HasSubstr;

class ModelServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::path(::testing::TempDir()) /
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_ / "1");
  }

  std::unique_ptr<ModelServer> Start(absl::Notification* gate = nullptr, int64_t max_bytes = 1 << 20,
                                     absl::Notification* entered = nullptr,
                                     TaskMetrics* metrics = nullptr) {
    ModelServerOptions o;
    o.metrics = metrics;
    o.host = "127.0.0.1";
    o.port = 0;
    o.rest_api_port = 0;
    o.models = {{"m", root_.string(), {}, {}}};
    o.loader = [gate, entered](const std::string&)
        -> absl::StatusOr<std::shared_ptr<const LoadedExport>> {
      return std::make_shared<FakeExport>(1, 0, gate, entered);
    };
    o.file_system_poll_wait = absl::Hours(1);
    o.max_request_bytes = max_bytes;
    absl::StatusOr<std::unique_ptr<ModelServer>> s = ModelServer::Start(std::move(o));
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }

  static std::unique_ptr<tensorflow::serving::PredictionService::Stub> Stub(int port) {
    return tensorflow::serving::PredictionService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  }

  static tensorflow::serving::PredictRequest PredictX(float x) {
    tensorflow::serving::PredictRequest req;
    req.mutable_model_spec()->set_name("m");
    req.mutable_model_spec()->set_signature_name("predict");
    ToTensorProto(Tensor::Strings({1}, {ExampleWithX(x)}), &(*req.mutable_inputs())["examples"]);
    return req;
  }

  std::filesystem::path root_;
};

TEST_F(ModelServerTest, GrpcAndRestServeTheModel) {
  std::unique_ptr<ModelServer> server = Start();
  ASSERT_NE(server, nullptr);
  ASSERT_GT(server->grpc_port(), 0);
  ASSERT_GT(server->rest_port(), 0);
  auto stub = Stub(server->grpc_port());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  tensorflow::serving::PredictResponse resp;
  grpc::Status st = stub->Predict(&ctx, PredictX(0), &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_FLOAT_EQ(resp.outputs().at("logistic").float_val(0), 0.5f);

  // gRPC codes as TF Serving's.
  grpc::ClientContext ctx2;
  ctx2.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto bad = PredictX(0);
  bad.mutable_model_spec()->set_name("nope");
  st = stub->Predict(&ctx2, bad, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(st.error_message(), "Servable not found for request: Latest(nope)");

  auto models = tensorflow::serving::ModelService::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", server->grpc_port()), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx3;
  ctx3.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  tensorflow::serving::GetModelStatusRequest sreq;
  sreq.mutable_model_spec()->set_name("m");
  tensorflow::serving::GetModelStatusResponse sresp;
  ASSERT_TRUE(models->GetModelStatus(&ctx3, sreq, &sresp).ok());
  EXPECT_EQ(sresp.model_version_status(0).state(),
            tensorflow::serving::ModelVersionStatus::AVAILABLE);

  httplib::Client http("127.0.0.1", server->rest_port());
  http.set_read_timeout(60, 0);
  auto r = http.Get("/v1/models/m");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_THAT(r->body, HasSubstr("AVAILABLE"));
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  const std::string body = absl::StrCat(R"({"signature_name": "predict", "instances": [{"b64": ")",
                                        absl::Base64Escape(ExampleWithX(0)), R"("}]})");
  r = http.Post("/v1/models/m:predict", body, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_THAT(r->body, HasSubstr("\"logistic\": [0.5]"));
}

// The metrics of `estuary serve --metrics_port`: requests by method and
// code (gRPC and REST), latency, batch sizes; promtool accepts them.
TEST_F(ModelServerTest, CountsRequestsLatencyAndBatchSizes) {
  std::unique_ptr<TaskMetrics> metrics = *TaskMetrics::Create({"serving", "0"});
  std::unique_ptr<ModelServer> server = Start(nullptr, 1 << 20, nullptr, metrics.get());
  ASSERT_NE(server, nullptr);
  auto stub = Stub(server->grpc_port());
  for (int i = 0; i < 2; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    tensorflow::serving::PredictResponse resp;
    ASSERT_TRUE(stub->Predict(&ctx, PredictX(0), &resp).ok());
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto bad = PredictX(0);
  bad.mutable_model_spec()->set_name("nope");
  tensorflow::serving::PredictResponse resp;
  EXPECT_FALSE(stub->Predict(&ctx, bad, &resp).ok());
  httplib::Client http("127.0.0.1", server->rest_port());
  http.set_read_timeout(60, 0);
  const std::string body = absl::StrCat(R"({"signature_name": "predict", "instances": [{"b64": ")",
                                        absl::Base64Escape(ExampleWithX(0)), R"("}]})");
  auto r = http.Post("/v1/models/m:predict", body, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;

  const std::string text = metrics->Scrape();
  EXPECT_THAT(text, HasSubstr("estuary_serving_requests_total{code=\"OK\",job=\"serving\","
                              "method=\"Predict\",task=\"0\"} 3"));
  EXPECT_THAT(text, HasSubstr("estuary_serving_requests_total{code=\"NOT_FOUND\","
                              "job=\"serving\",method=\"Predict\",task=\"0\"} 1"));
  EXPECT_THAT(text, HasSubstr("estuary_serving_request_seconds_count{job=\"serving\","
                              "method=\"Predict\",task=\"0\"} 4"));
  EXPECT_THAT(text, HasSubstr("estuary_serving_batch_size_count{job=\"serving\",task=\"0\"} 3"));
  std::optional<std::string> promtool = estuary::testing::FindPromtool();
  if (!promtool) GTEST_SKIP() << "promtool not installed (scripts/setup.sh installs it)";
  absl::Status st = estuary::testing::PromtoolCheckMetrics(*promtool, text);
  EXPECT_TRUE(st.ok()) << st;
}

TEST_F(ModelServerTest, OversizeRequestsAreRefusedAndTheServerKeepsServing) {
  std::unique_ptr<ModelServer> server = Start(nullptr, /*max_bytes=*/4096);
  ASSERT_NE(server, nullptr);
  httplib::Client http("127.0.0.1", server->rest_port());
  http.set_read_timeout(60, 0);
  auto r = http.Post("/v1/models/m:predict", std::string(10000, ' '), "application/json");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 413);
  EXPECT_THAT(r->body, HasSubstr("\"error\""));
  EXPECT_THAT(r->body, HasSubstr("4096"));

  auto stub = Stub(server->grpc_port());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto big = PredictX(0);
  ToTensorProto(Tensor::Strings({1}, {std::string(10000, 'x')}), &(*big.mutable_inputs())["examples"]);
  tensorflow::serving::PredictResponse resp;
  grpc::Status st = stub->Predict(&ctx, big, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();

  grpc::ClientContext ctx2;
  ctx2.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  EXPECT_TRUE(stub->Predict(&ctx2, PredictX(1), &resp).ok());
  r = http.Get("/v1/models/m");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(ModelServerTest, ShutdownFinishesRequestsInFlight) {
  absl::Notification gate, entered;
  std::unique_ptr<ModelServer> server = Start(&gate, 1 << 20, &entered);
  ASSERT_NE(server, nullptr);
  auto stub = Stub(server->grpc_port());
  grpc::Status st;
  tensorflow::serving::PredictResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  std::thread client([&] { st = stub->Predict(&ctx, PredictX(0), &resp); });
  // The request is in flight: the model's Run has started (and waits).
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(absl::Seconds(60)));
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    server->Shutdown();
    stopped = true;
  });
  gate.Notify();
  client.join();
  stopper.join();
  EXPECT_TRUE(stopped);
  ASSERT_TRUE(st.ok()) << st.error_message();  // drained, not cancelled
  EXPECT_FLOAT_EQ(resp.outputs().at("logistic").float_val(0), 0.5f);
  // Nothing listens any more.
  grpc::ClientContext late;
  late.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  EXPECT_FALSE(stub->Predict(&late, PredictX(0), &resp).ok());
}

}  // namespace
}  // namespace serving
}  // namespace estuary
