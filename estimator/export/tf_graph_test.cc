#include "estimator/export/tf_graph.h"

#include "gtest/gtest.h"

namespace estuary {
namespace export_format {
namespace {

TEST(TfGraphTest, AddsNodesWithUniqueNamesAndTfInputOrder) {
  TfGraph g;
  const std::string x = g.Floats("x", {2}, {1.0f, 2.0f});
  absl::StatusOr<std::string> a =
      g.Add("Identity", "id", {"^" + x, x}, {{"T", AttrType(tensorflow::DT_FLOAT)}});
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<std::string> b = g.Add("Identity", "id", {x}, {{"T", AttrType(tensorflow::DT_FLOAT)}});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(*a, "id");
  EXPECT_EQ(*b, "id_1");
  const tensorflow::NodeDef& n = g.graph().node(1);
  ASSERT_EQ(n.input_size(), 2);
  EXPECT_EQ(n.input(0), "x");  // data inputs before control inputs
  EXPECT_EQ(n.input(1), "^x");
  EXPECT_EQ(g.graph().versions().producer(), 1645);
  EXPECT_EQ(TfOutput("p", 0), "p");
  EXPECT_EQ(TfOutput("p", 3), "p:3");
}

TEST(TfGraphTest, ChecksAgainstTheOpDefinitions) {
  TfGraph g;
  const std::string x = g.Floats("x", {}, {1.0f});
  // Unknown op, unknown attribute, missing required attribute, input count.
  EXPECT_FALSE(g.Add("NoSuchOp", "n", {}).ok());
  EXPECT_FALSE(g.Add("Identity", "n", {x}, {{"T", AttrType(tensorflow::DT_FLOAT)},
                                           {"bogus", AttrInt(1)}}).ok());
  absl::StatusOr<std::string> missing = g.Add("Identity", "n", {x});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("'T' is required"), std::string::npos);
  EXPECT_FALSE(g.Add("AddV2", "n", {x}, {{"T", AttrType(tensorflow::DT_FLOAT)}}).ok());
  // List inputs are sized by their attributes.
  EXPECT_TRUE(g.Add("AddN", "sum", {x, x, x}, {{"N", AttrInt(3)},
                                               {"T", AttrType(tensorflow::DT_FLOAT)}}).ok());
  EXPECT_FALSE(g.Add("AddN", "sum", {x, x}, {{"N", AttrInt(3)},
                                            {"T", AttrType(tensorflow::DT_FLOAT)}}).ok());
  // Defaulted attributes may be left out.
  EXPECT_TRUE(g.Add("Where", "w", {x}).ok());
}

}  // namespace
}  // namespace export_format
}  // namespace estuary
