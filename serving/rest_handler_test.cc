#include "serving/rest_handler.h"

#include <filesystem>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "serving/fake_export.h"

namespace estuary {
namespace serving {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

float Sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

class RestHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::path(::testing::TempDir()) /
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_ / "3");
    ModelManagerOptions o;
    o.models = {{"m", root_.string(), {}, {}}};
    o.loader = [](const std::string&) -> absl::StatusOr<std::shared_ptr<const LoadedExport>> {
      return std::make_shared<FakeExport>(3);
    };
    manager_ = *ModelManager::Create(std::move(o));
    ASSERT_TRUE(manager_->PollOnce().ok());
    api_ = std::make_unique<ServingApi>(manager_.get(), nullptr);
    handler_ = std::make_unique<RestHandler>(api_.get());
  }

  // The reply's JSON; expects `status`.
  json Call(const std::string& method, const std::string& path, const std::string& body,
            int status = 200) {
    HttpReply r = handler_->Handle(method, path, body);
    EXPECT_EQ(r.status, status) << method << " " << path << " " << body << " -> " << r.body;
    json j = json::parse(r.body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.body;
    return j;
  }

  std::filesystem::path root_;
  std::unique_ptr<ModelManager> manager_;
  std::unique_ptr<ServingApi> api_;
  std::unique_ptr<RestHandler> handler_;
};

TEST_F(RestHandlerTest, ModelStatusAsTfServingPrintsIt) {
  json j = Call("GET", "/v1/models/m", "");
  ASSERT_EQ(j["model_version_status"].size(), 1u);
  EXPECT_EQ(j["model_version_status"][0]["version"], "3");
  EXPECT_EQ(j["model_version_status"][0]["state"], "AVAILABLE");
  EXPECT_EQ(j["model_version_status"][0]["status"]["error_code"], "OK");
  EXPECT_EQ(j["model_version_status"][0]["status"]["error_message"], "");
  EXPECT_EQ(Call("GET", "/v1/models/m/versions/3", "")["model_version_status"].size(), 1u);
  EXPECT_EQ(Call("GET", "/v1/models/x", "", 404)["error"],
            "Could not find any versions of model x");
  EXPECT_THAT(Call("GET", "/v1/models/m/versions/abc", "", 400)["error"].get<std::string>(),
              HasSubstr("Failed to convert version"));
}

TEST_F(RestHandlerTest, Metadata) {
  json j = Call("GET", "/v1/models/m/metadata", "");
  EXPECT_EQ(j["model_spec"]["name"], "m");
  EXPECT_EQ(j["model_spec"]["version"], "3");
  const json& sd = j["metadata"]["signature_def"]["signature_def"];
  EXPECT_EQ(sd["serving_default"]["method_name"], "tensorflow/serving/classify");
  EXPECT_EQ(sd["predict"]["inputs"]["examples"]["dtype"], "DT_STRING");
  EXPECT_EQ(sd["predict"]["inputs"]["examples"]["tensor_shape"]["dim"][0]["size"], "-1");
  EXPECT_EQ(sd["predict"]["inputs"]["examples"]["name"], "examples:0");
}

TEST_F(RestHandlerTest, PredictRowAndColumnarWithB64) {
  const std::string a = absl::Base64Escape(ExampleWithX(0.5f));
  const std::string b = absl::Base64Escape(ExampleWithX(-1));
  json rows = Call("POST", "/v1/models/m:predict",
                   R"({"signature_name": "predict", "instances": [{"b64": ")" + a +
                       R"("}, {"b64": ")" + b + R"("}]})");
  ASSERT_EQ(rows["predictions"].size(), 2u);
  EXPECT_FLOAT_EQ(rows["predictions"][0]["logistic"][0].get<float>(), Sigmoid(0.5f));
  EXPECT_EQ(rows["predictions"][1]["class_ids"][0], 0);

  json cols = Call("POST", "/v1/models/m/versions/3:predict",
                   R"({"signature_name": "predict", "inputs": [{"b64": ")" + a + R"("}]})");
  EXPECT_FLOAT_EQ(cols["outputs"]["logistic"][0][0].get<float>(), Sigmoid(0.5f));

  // Two named inputs, row format; a *_bytes output comes back as b64.
  json raw = Call("POST", "/v1/models/m:predict",
                  R"({"signature_name": "raw", "instances": [{"x": 1.5, "k": 2}, {"x": 0.25, "k": 7}]})");
  EXPECT_FLOAT_EQ(raw["predictions"][1]["y"].get<float>(), 7.25f);
  std::string id;
  ASSERT_TRUE(absl::Base64Unescape(raw["predictions"][1]["id_bytes"]["b64"].get<std::string>(), &id));
  EXPECT_EQ(id, std::string({'\xff', 7}));
  json rawcols = Call("POST", "/v1/models/m:predict",
                      R"({"signature_name": "raw", "inputs": {"x": [1, 2], "k": [3, 4]}})");
  EXPECT_EQ(rawcols["outputs"]["y"], json::parse("[4.0, 6.0]"));
}

TEST_F(RestHandlerTest, FloatsPrintLikeTfServing) {
  HttpReply r = handler_->Handle(
      "POST", "/v1/models/m:predict",
      R"({"signature_name": "raw", "inputs": {"x": [1, 0.1, 1e8], "k": [0, 0, 0]}})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr("[1.0, 0.1, 1e+08]"));
}

TEST_F(RestHandlerTest, ClassifyAndRegressFromJsonFeatureMaps) {
  json c = Call("POST", "/v1/models/m:classify",
                R"({"examples": [{"x": 0.5, "name": "Braund"}, {"x": [2.0], "n": 3}]})");
  ASSERT_EQ(c["results"].size(), 2u);
  EXPECT_EQ(c["results"][0][1][0], "1");
  EXPECT_FLOAT_EQ(c["results"][0][1][1].get<float>(), Sigmoid(0.5f));
  EXPECT_FLOAT_EQ(c["results"][1][1][1].get<float>(), Sigmoid(2));
  // An integer JSON number is an int64 feature: "x" is then absent as a float.
  json ci = Call("POST", "/v1/models/m:classify", R"({"examples": [{"x": 2}]})");
  EXPECT_FLOAT_EQ(ci["results"][0][1][1].get<float>(), 0.5f);
  // Context features fill in.
  json ctx = Call("POST", "/v1/models/m:classify", R"({"context": {"x": 1.0}, "examples": [{}]})");
  EXPECT_FLOAT_EQ(ctx["results"][0][1][1].get<float>(), Sigmoid(1));

  json r = Call("POST", "/v1/models/m:regress",
                R"({"signature_name": "regression", "examples": [{"x": 0.0}]})");
  EXPECT_EQ(r["results"], json::parse("[0.5]"));
  EXPECT_THAT(Call("POST", "/v1/models/m:regress", R"({"examples": [{"x": 0.0}]})", 400)["error"]
                  .get<std::string>(),
              HasSubstr("Expected regression signature method_name"));
}

TEST_F(RestHandlerTest, BadRequestsGetTfServingErrors) {
  auto error = [&](const std::string& method, const std::string& path, const std::string& body,
                   int status) { return Call(method, path, body, status)["error"].get<std::string>(); };
  EXPECT_THAT(error("POST", "/v1/models/m:predict", "{not json", 400), HasSubstr("JSON Parse error"));
  EXPECT_THAT(error("POST", "/v1/models/m:predict", "", 400), HasSubstr("document is empty"));
  EXPECT_THAT(error("POST", "/v1/models/m:predict", "[1]", 400), HasSubstr("Is not object"));
  // nlohmann's out_of_range, not a parse_error (it used to abort the server).
  EXPECT_THAT(error("POST", "/v1/models/m:predict", R"({"instances": [1e309]})", 400),
              HasSubstr("JSON Parse error: [json.exception.out_of_range.406] number overflow"));
  EXPECT_EQ(error("POST", "/v1/models/nope:predict", R"({"instances": [1]})", 404),
            "Servable not found for request: Latest(nope)");
  EXPECT_EQ(error("POST", "/v1/models/m/versions/9:predict", R"({"instances": [1]})", 404),
            "Servable not found for request: Specific(m, 9)");
  EXPECT_EQ(error("POST", "/v1/models/m:predict", R"({"signature_name": "zz", "instances": [1]})", 400),
            "Serving signature name: \"zz\" not found in signature def");
  EXPECT_THAT(error("POST", "/v1/models/m:predict",
                    R"({"signature_name": "predict", "instances": [1.5]})", 400),
              HasSubstr("is not of expected type: string"));
  EXPECT_THAT(error("POST", "/v1/models/m:predict",
                    R"({"signature_name": "raw", "instances": [{"x": "a", "k": 1}]})", 400),
              HasSubstr("is not of expected type: float"));
  EXPECT_THAT(error("POST", "/v1/models/m:predict",
                    R"({"signature_name": "predict", "instances": [{"b64": "!!"}]})", 400),
              HasSubstr("base64"));
  EXPECT_THAT(error("POST", "/v1/models/m:predict",
                    R"({"signature_name": "predict", "instances": [{"b64": "AAEC"}]})", 400),
              HasSubstr("Could not parse example input"));
  EXPECT_THAT(error("POST", "/v1/models/m:predict", R"({"signature_name": "predict"})", 400),
              HasSubstr("Missing 'inputs' or 'instances' key"));
  EXPECT_THAT(error("POST", "/v1/models/m:classify", R"({"examples": [{"x": [1, "a"]}]})", 400),
              HasSubstr("Unexpected element type in feature: x"));
  EXPECT_THAT(error("POST", "/v1/models/m:classify", R"({"examples": []})", 400),
              HasSubstr("empty array"));
  EXPECT_THAT(error("GET", "/v2/whatever", "", 400), HasSubstr("Malformed request"));
  EXPECT_THAT(error("POST", "/v1/models/m:explode", "{}", 400), HasSubstr("Malformed request"));
  // Still serving.
  Call("GET", "/v1/models/m", "");
}

}  // namespace
}  // namespace serving
}  // namespace estuary
