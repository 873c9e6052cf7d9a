#include "estimator/export/saved_model_export.h"

#include <filesystem>
#include <set>
#include <string>

#include "common/job_spec.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace estuary {
namespace export_format {
namespace {

using json = nlohmann::json;

std::string TempDir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t != nullptr ? t : "/tmp";
}

JobSpec Job(json columns, json estimator = {{"type", "linear_classifier"}}) {
  json j = {{"model_dir", io::JoinPath(TempDir(), "model")},
            {"estimator", estimator},
            {"feature_columns", columns}};
  absl::StatusOr<JobSpec> job = ParseJobSpec(j.dump(), io::JoinPath(TempDir(), "job.json"));
  EXPECT_TRUE(job.ok()) << job.status();
  return *job;
}

json TwoColumns() {
  return {{{"type", "numeric"}, {"key", "age"}},
          {{"type", "categorical_with_vocabulary_list"},
           {"key", "sex"},
           {"vocabulary_list", {"male", "female"}}}};
}

Variables LinearVars() {
  Variables v;
  v.floats["linear/linear_model/age/weights"] = RowMatrixXf::Constant(1, 1, 0.5f);
  v.floats["linear/linear_model/sex/weights"] = RowMatrixXf::Constant(2, 1, 0.25f);
  v.floats["linear/linear_model/bias_weights"] = RowMatrixXf::Constant(1, 1, 0.1f);
  v.floats["linear/linear_model/age/weights/part_0/Ftrl"] = RowMatrixXf::Zero(1, 1);  // a slot
  v.ints["global_step"] = 7;
  return v;
}

const tensorflow::NodeDef* FindNode(const tensorflow::GraphDef& g, const std::string& name) {
  for (const tensorflow::NodeDef& n : g.node()) {
    if (n.name() == name) return &n;
  }
  return nullptr;
}

TEST(SavedModelExportTest, BinaryClassifierHasTfSignaturesSaverAndVariables) {
  absl::StatusOr<SavedModelExport> sm = BuildSavedModel(Job(TwoColumns()), LinearVars(), "parsing");
  ASSERT_TRUE(sm.ok()) << sm.status();
  ASSERT_EQ(sm->saved_model.meta_graphs_size(), 1);
  const tensorflow::MetaGraphDef& meta = sm->saved_model.meta_graphs(0);
  EXPECT_EQ(meta.meta_info_def().tags(0), "serve");
  std::set<std::string> keys;
  for (const auto& [k, v] : meta.signature_def()) keys.insert(k);
  EXPECT_EQ(keys, (std::set<std::string>{"classification", "predict", "regression",
                                         "serving_default"}));
  const tensorflow::SignatureDef& predict = meta.signature_def().at("predict");
  EXPECT_EQ(predict.method_name(), "tensorflow/serving/predict");
  EXPECT_EQ(predict.inputs().at("examples").name(), "input_example_tensor:0");
  EXPECT_EQ(predict.outputs().at("probabilities").name(), "head/predictions/probabilities:0");
  EXPECT_EQ(predict.outputs().at("all_class_ids").dtype(), tensorflow::DT_INT32);
  EXPECT_EQ(predict.outputs().at("class_ids").dtype(), tensorflow::DT_INT64);
  EXPECT_EQ(meta.signature_def().at("regression").outputs().at("outputs").name(),
            "head/predictions/logistic:0");
  EXPECT_EQ(meta.signature_def().at("serving_default").method_name(),
            "tensorflow/serving/classify");

  EXPECT_EQ(meta.saver_def().filename_tensor_name(), "save/Const:0");
  EXPECT_EQ(meta.saver_def().restore_op_name(), "save/restore_all");
  EXPECT_EQ(meta.saver_def().version(), tensorflow::SaverDef::V2);
  EXPECT_EQ(meta.collection_def().at("saved_model_main_op").node_list().value(0), "group_deps");
  EXPECT_EQ(meta.collection_def().at("variables").bytes_list().value_size(), 4);
  EXPECT_EQ(meta.collection_def().at("trainable_variables").bytes_list().value_size(), 3);
  EXPECT_EQ(meta.collection_def().at("global_step").bytes_list().value_size(), 1);

  // Read variables and global_step are restored; the optimizer slot is not.
  EXPECT_EQ(sm->variables.floats.size(), 3u);
  EXPECT_EQ(sm->variables.ints.at("global_step"), 7);
  const tensorflow::NodeDef* bias = FindNode(meta.graph_def(), "linear/linear_model/bias_weights");
  ASSERT_NE(bias, nullptr);
  EXPECT_EQ(bias->op(), "VarHandleOp");
  EXPECT_EQ(bias->attr().at("shape").shape().dim_size(), 1);  // 1-D, as in TF
  const tensorflow::NodeDef* restore = FindNode(meta.graph_def(), "save/RestoreV2");
  ASSERT_NE(restore, nullptr);
  EXPECT_EQ(restore->attr().at("dtypes").list().type_size(), 4);
  // The vocabulary table is initialized by the main op.
  const tensorflow::NodeDef* init = FindNode(meta.graph_def(), "init_all_tables");
  ASSERT_NE(init, nullptr);
  EXPECT_EQ(init->input_size(), 1);
}

TEST(SavedModelExportTest, RawReceiverHasOnePlaceholderPerFeature) {
  absl::StatusOr<SavedModelExport> sm = BuildSavedModel(Job(TwoColumns()), LinearVars(), "raw");
  ASSERT_TRUE(sm.ok()) << sm.status();
  const tensorflow::MetaGraphDef& meta = sm->saved_model.meta_graphs(0);
  EXPECT_EQ(meta.signature_def_size(), 2);  // predict and serving_default
  const tensorflow::SignatureDef& predict = meta.signature_def().at("predict");
  EXPECT_EQ(predict.inputs().at("age").dtype(), tensorflow::DT_FLOAT);
  EXPECT_EQ(predict.inputs().at("sex").dtype(), tensorflow::DT_STRING);
  EXPECT_EQ(predict.inputs().at("sex").tensor_shape().dim_size(), 2);
}

TEST(SavedModelExportTest, ErrorsNameTheColumnOrVariable) {
  Variables vars = LinearVars();
  vars.floats.erase("linear/linear_model/sex/weights");
  absl::StatusOr<SavedModelExport> sm = BuildSavedModel(Job(TwoColumns()), vars, "parsing");
  ASSERT_FALSE(sm.ok());
  EXPECT_NE(sm.status().message().find("linear/linear_model/sex/weights"), std::string::npos);

  json weighted = TwoColumns();
  weighted.push_back({{"type", "weighted_categorical"},
                      {"categorical_column", "sex"},
                      {"weight_feature_key", "w"}});
  sm = BuildSavedModel(Job(weighted, {{"type", "linear_classifier"},
                                      {"linear_feature_columns", {"sex_weighted_by_w"}}}),
                       LinearVars(), "parsing");
  ASSERT_FALSE(sm.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(sm.status()));
  EXPECT_NE(sm.status().message().find("sex_weighted_by_w"), std::string::npos);

  sm = BuildSavedModel(Job(TwoColumns()), LinearVars(), "bogus");
  EXPECT_TRUE(absl::IsInvalidArgument(sm.status()));
}

TEST(SavedModelExportTest, WritesTheFiles) {
  const std::string dir = io::JoinPath(TempDir(), "sm");
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(
      WriteSavedModel(Job(TwoColumns()), LinearVars(), "parsing", dir, io::Env::Default()).ok());
  for (const char* f : {"saved_model.pb", "variables/variables.index",
                        "variables/variables.data-00000-of-00001"}) {
    EXPECT_TRUE(std::filesystem::exists(io::JoinPath(dir, f))) << f;
  }
}

}  // namespace
}  // namespace export_format
}  // namespace estuary
