#include "serving/serving_api.h"

#include <filesystem>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "serving/fake_export.h"
#include "serving/tensor_convert.h"

namespace estuary {
namespace serving {
namespace {

using ::testing::HasSubstr;
using tensorflow::serving::ClassificationRequest;
using tensorflow::serving::ClassificationResponse;
using tensorflow::serving::PredictRequest;
using tensorflow::serving::PredictResponse;
using tensorflow::serving::RegressionRequest;
using tensorflow::serving::RegressionResponse;

float Sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// A manager serving FakeExport versions 1 and 2 (bias 0 and 1) of "m".
class ServingApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::path(::testing::TempDir()) /
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_ / "1");
    std::filesystem::create_directories(root_ / "2");
    ModelManagerOptions o;
    o.models = {{"m", root_.string(), {VersionPolicy::Kind::kAll, 1, {}}, {}}};
    o.loader = [](const std::string& dir) -> absl::StatusOr<std::shared_ptr<const LoadedExport>> {
      const int64_t v = std::stoll(std::filesystem::path(dir).filename());
      return std::make_shared<FakeExport>(v, static_cast<float>(v - 1));
    };
    manager_ = *ModelManager::Create(std::move(o));
    ASSERT_TRUE(manager_->PollOnce().ok());
  }

  static tensorflow::TensorProto Strings(const std::vector<std::string>& v) {
    tensorflow::TensorProto t;
    ToTensorProto(Tensor::Strings({static_cast<int64_t>(v.size())}, v), &t);
    return t;
  }

  std::filesystem::path root_;
  std::unique_ptr<ModelManager> manager_;
};

TEST_F(ServingApiTest, PredictRunsTheSignatureOnTheLatestVersion) {
  ServingApi api(manager_.get(), nullptr);
  PredictRequest req;
  req.mutable_model_spec()->set_name("m");
  req.mutable_model_spec()->set_signature_name("predict");
  (*req.mutable_inputs())["examples"] = Strings({ExampleWithX(0.5f), ExampleWithX(-2)});
  PredictResponse resp;
  ASSERT_TRUE(api.Predict(req, &resp).ok());
  EXPECT_EQ(resp.model_spec().version().value(), 2);
  EXPECT_EQ(resp.model_spec().signature_name(), "predict");
  const auto& logistic = resp.outputs().at("logistic");
  ASSERT_EQ(logistic.float_val_size(), 2);
  EXPECT_FLOAT_EQ(logistic.float_val(0), Sigmoid(1.5f));
  EXPECT_FLOAT_EQ(logistic.float_val(1), Sigmoid(-1.0f));
  EXPECT_EQ(logistic.tensor_shape().dim_size(), 2);
  EXPECT_EQ(resp.outputs().at("class_ids").int64_val(0), 1);

  // A specific version, and an output filter.
  req.mutable_model_spec()->mutable_version()->set_value(1);
  req.add_output_filter("class_ids");
  resp.Clear();
  ASSERT_TRUE(api.Predict(req, &resp).ok());
  EXPECT_EQ(resp.outputs().size(), 1u);
  EXPECT_EQ(resp.outputs().at("class_ids").int64_val(0), 1);
  EXPECT_EQ(resp.model_spec().version().value(), 1);
}

TEST_F(ServingApiTest, PredictAcceptsTensorContentAndInt32) {
  ServingApi api(manager_.get(), nullptr);
  PredictRequest req;
  req.mutable_model_spec()->set_name("m");
  req.mutable_model_spec()->set_signature_name("raw");
  tensorflow::TensorProto& x = (*req.mutable_inputs())["x"];
  x.set_dtype(tensorflow::DT_FLOAT);
  x.mutable_tensor_shape()->add_dim()->set_size(2);
  const float xs[2] = {1.5f, -1.0f};
  x.set_tensor_content(std::string(reinterpret_cast<const char*>(xs), sizeof(xs)));
  tensorflow::TensorProto& k = (*req.mutable_inputs())["k"];
  k.set_dtype(tensorflow::DT_INT32);
  k.mutable_tensor_shape()->add_dim()->set_size(2);
  k.add_int_val(3);
  k.add_int_val(4);
  PredictResponse resp;
  ASSERT_TRUE(api.Predict(req, &resp).ok());
  EXPECT_FLOAT_EQ(resp.outputs().at("y").float_val(0), 1.5f + 3 + 1);
  EXPECT_FLOAT_EQ(resp.outputs().at("y").float_val(1), -1.0f + 4 + 1);
}

TEST_F(ServingApiTest, PredictErrorsAreTfServings) {
  ServingApi api(manager_.get(), nullptr);
  PredictRequest req;
  PredictResponse resp;
  EXPECT_EQ(api.Predict(req, &resp).message(), "Missing ModelSpec");
  req.mutable_model_spec()->set_name("nope");
  absl::Status st = api.Predict(req, &resp);
  EXPECT_TRUE(absl::IsNotFound(st));
  EXPECT_EQ(st.message(), "Servable not found for request: Latest(nope)");
  req.mutable_model_spec()->set_name("m");
  req.mutable_model_spec()->mutable_version()->set_value(7);
  EXPECT_EQ(api.Predict(req, &resp).message(), "Servable not found for request: Specific(m, 7)");
  req.mutable_model_spec()->clear_version();
  req.mutable_model_spec()->set_signature_name("nope");
  st = api.Predict(req, &resp);
  EXPECT_TRUE(absl::IsFailedPrecondition(st));
  EXPECT_EQ(st.message(), "Serving signature key \"nope\" not found.");

  req.mutable_model_spec()->set_signature_name("predict");
  st = api.Predict(req, &resp);
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_THAT(st.message(), HasSubstr("Missing but required: {examples}"));

  (*req.mutable_inputs())["bogus"] = Strings({"a"});
  EXPECT_THAT(api.Predict(req, &resp).message(),
              HasSubstr("input tensor alias not found in signature: bogus"));
  req.mutable_inputs()->clear();

  tensorflow::TensorProto floats;
  ToTensorProto(Tensor::Floats({1}, {1.0f}), &floats);
  (*req.mutable_inputs())["examples"] = floats;
  st = api.Predict(req, &resp);
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_THAT(st.message(), HasSubstr("DT_STRING but DT_FLOAT"));

  (*req.mutable_inputs())["examples"] = Strings({"\x01garbage\xff"});
  st = api.Predict(req, &resp);
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_THAT(st.message(), HasSubstr("Could not parse example input"));

  tensorflow::TensorProto wrong;  // 3 values for a shape of 2
  wrong.set_dtype(tensorflow::DT_STRING);
  wrong.mutable_tensor_shape()->add_dim()->set_size(2);
  for (int i = 0; i < 3; ++i) wrong.add_string_val("x");
  (*req.mutable_inputs())["examples"] = wrong;
  EXPECT_TRUE(absl::IsInvalidArgument(api.Predict(req, &resp)));

  (*req.mutable_inputs())["examples"] = Strings({ExampleWithX(0)});
  req.add_output_filter("nope");
  EXPECT_THAT(api.Predict(req, &resp).message(),
              HasSubstr("output tensor alias not found in signature: nope"));
}

TEST_F(ServingApiTest, ClassifyAndRegress) {
  ServingApi api(manager_.get(), nullptr);
  ClassificationRequest creq;
  creq.mutable_model_spec()->set_name("m");
  auto* examples = creq.mutable_input()->mutable_example_list();
  examples->add_examples()->ParseFromString(ExampleWithX(0.25f));
  examples->add_examples()->ParseFromString(ExampleWithX(3));
  ClassificationResponse cresp;
  ASSERT_TRUE(api.Classify(creq, &cresp).ok());
  ASSERT_EQ(cresp.result().classifications_size(), 2);
  const auto& c0 = cresp.result().classifications(0);
  ASSERT_EQ(c0.classes_size(), 2);
  EXPECT_EQ(c0.classes(1).label(), "1");
  EXPECT_FLOAT_EQ(c0.classes(1).score(), Sigmoid(1.25f));
  EXPECT_EQ(cresp.model_spec().signature_name(), "serving_default");

  // With a context: the example's own features win; the context fills in.
  ClassificationRequest ctx;
  ctx.mutable_model_spec()->set_name("m");
  auto* with = ctx.mutable_input()->mutable_example_list_with_context();
  with->mutable_context()->ParseFromString(ExampleWithX(2));
  with->add_examples();
  with->add_examples()->ParseFromString(ExampleWithX(-1));
  cresp.Clear();
  ASSERT_TRUE(api.Classify(ctx, &cresp).ok());
  EXPECT_FLOAT_EQ(cresp.result().classifications(0).classes(1).score(), Sigmoid(3));
  EXPECT_FLOAT_EQ(cresp.result().classifications(1).classes(1).score(), Sigmoid(0));

  RegressionRequest rreq;
  rreq.mutable_model_spec()->set_name("m");
  *rreq.mutable_input() = creq.input();
  RegressionResponse rresp;
  absl::Status st = api.Regress(rreq, &rresp);  // serving_default is a classifier's
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_EQ(st.message(),
            "Expected regression signature method_name to be tensorflow/serving/regress. Was: "
            "tensorflow/serving/classify");
  rreq.mutable_model_spec()->set_signature_name("regression");
  ASSERT_TRUE(api.Regress(rreq, &rresp).ok());
  ASSERT_EQ(rresp.result().regressions_size(), 2);
  EXPECT_FLOAT_EQ(rresp.result().regressions(1).value(), Sigmoid(4));

  creq.mutable_input()->Clear();
  EXPECT_EQ(api.Classify(creq, &cresp).message(), "Input is empty.");
  creq.mutable_input()->mutable_example_list()->add_examples();
  creq.mutable_model_spec()->set_signature_name("nope");
  EXPECT_EQ(api.Classify(creq, &cresp).message(), "No signature was found with the name: nope");
}

TEST_F(ServingApiTest, MetadataAndStatus) {
  ServingApi api(manager_.get(), nullptr);
  tensorflow::serving::GetModelMetadataRequest req;
  req.mutable_model_spec()->set_name("m");
  tensorflow::serving::GetModelMetadataResponse resp;
  EXPECT_TRUE(absl::IsInvalidArgument(api.GetModelMetadata(req, &resp)));
  req.add_metadata_field("signature_def");
  ASSERT_TRUE(api.GetModelMetadata(req, &resp).ok());
  tensorflow::serving::SignatureDefMap map;
  ASSERT_TRUE(resp.metadata().at("signature_def").UnpackTo(&map));
  EXPECT_EQ(resp.metadata().at("signature_def").type_url(),
            "type.googleapis.com/tensorflow.serving.SignatureDefMap");
  const tensorflow::SignatureDef& sd = map.signature_def().at("serving_default");
  EXPECT_EQ(sd.method_name(), "tensorflow/serving/classify");
  EXPECT_EQ(sd.inputs().at("inputs").dtype(), tensorflow::DT_STRING);
  EXPECT_EQ(sd.inputs().at("inputs").tensor_shape().dim(0).size(), -1);
  EXPECT_EQ(sd.outputs().at("scores").tensor_shape().dim(1).size(), 2);
  req.add_metadata_field("nope");
  EXPECT_EQ(api.GetModelMetadata(req, &resp).message(), "Metadata field nope is not supported");

  tensorflow::serving::GetModelStatusRequest sreq;
  tensorflow::serving::GetModelStatusResponse sresp;
  EXPECT_EQ(api.GetModelStatus(sreq, &sresp).message(), "Missing model name in request.");
  sreq.mutable_model_spec()->set_name("m");
  ASSERT_TRUE(api.GetModelStatus(sreq, &sresp).ok());
  ASSERT_EQ(sresp.model_version_status_size(), 2);
  EXPECT_EQ(sresp.model_version_status(0).state(), tensorflow::serving::ModelVersionStatus::AVAILABLE);
  EXPECT_EQ(sresp.model_version_status(0).status().error_code(), tensorflow::error::OK);
}

TEST_F(ServingApiTest, BatchingCombinesConcurrentRequests) {
  BatchingOptions bo;
  bo.max_batch_size = 8;
  bo.batch_timeout = absl::Seconds(60);  // only a full batch runs
  bo.num_batch_threads = 2;
  Batcher batcher(bo);
  ServingApi api(manager_.get(), &batcher);
  std::vector<std::thread> clients;
  std::vector<absl::Status> status(8);
  std::vector<float> got(8, -1);
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&, i] {
      PredictRequest req;
      req.mutable_model_spec()->set_name("m");
      req.mutable_model_spec()->set_signature_name("predict");
      (*req.mutable_inputs())["examples"] = Strings({ExampleWithX(0.1f * i)});
      PredictResponse resp;
      status[i] = api.Predict(req, &resp);
      if (status[i].ok()) got[i] = resp.outputs().at("logistic").float_val(0);
    });
  }
  for (std::thread& t : clients) t.join();
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(status[i].ok()) << status[i];
    EXPECT_FLOAT_EQ(got[i], Sigmoid(0.1f * i + 1)) << i;  // its own row back
  }
  EXPECT_EQ(batcher.batches_run(), 1);
  EXPECT_EQ(batcher.largest_batch(), 8);
}

}  // namespace
}  // namespace serving
}  // namespace estuary
