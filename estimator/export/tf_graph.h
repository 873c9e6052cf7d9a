// A TensorFlow GraphDef builder (proto/tf/graph.proto) that checks every
// node against TF 2.15's published op definitions (ops/*.cc REGISTER_OP:
// the number of inputs and the attributes, which ones have defaults) before
// adding it. Attributes equal to their default are left out, as TF writes
// graphs with MetaInfoDef.stripped_default_attrs; loaders add them back.
//
// Tensors are named as TF names them: "node" for output 0, "node:i" for
// output i; a control input is "^node". Node names are made unique the way
// TF does ("name", "name_1", ...).
//
// Not thread-safe (one builder per graph); holds only the GraphDef.
#ifndef ESTUARY_ESTIMATOR_EXPORT_TF_GRAPH_H_
#define ESTUARY_ESTIMATOR_EXPORT_TF_GRAPH_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/tf/graph.pb.h"

namespace estuary {
namespace export_format {

// One attribute of a node: its name and value.
using TfAttr = std::pair<std::string, tensorflow::AttrValue>;

// Attribute values.
tensorflow::AttrValue AttrType(tensorflow::DataType t);
tensorflow::AttrValue AttrInt(int64_t i);
tensorflow::AttrValue AttrBool(bool b);
tensorflow::AttrValue AttrString(const std::string& s);
tensorflow::AttrValue AttrShape(const std::vector<int64_t>& dims);  // -1: unknown
tensorflow::AttrValue AttrTypes(const std::vector<tensorflow::DataType>& types);
tensorflow::AttrValue AttrShapes(const std::vector<std::vector<int64_t>>& shapes);
tensorflow::AttrValue AttrFloats(const std::vector<float>& values);
tensorflow::AttrValue AttrTensor(const tensorflow::TensorProto& t);

tensorflow::TensorShapeProto TfShape(const std::vector<int64_t>& dims);

// "node:i" ("node" for i = 0).
std::string TfOutput(const std::string& node, int index);

class TfGraph {
 public:
  TfGraph();

  // Adds node `op` named `name` (made unique) with `inputs` and `attrs`;
  // returns the node's name (its output 0). InvalidArgument naming the node
  // when `op` is not one this builder knows, an attribute is not in the op's
  // definition, a required one is missing, or the number of inputs is wrong
  // for the op (list inputs are counted from the attributes that size them).
  absl::StatusOr<std::string> Add(const std::string& op, const std::string& name,
                                  const std::vector<std::string>& inputs,
                                  const std::vector<TfAttr>& attrs = {});

  // Constants (Const nodes). Shapes: {} for a scalar.
  std::string Floats(const std::string& name, const std::vector<int64_t>& shape,
                     const std::vector<float>& values);
  std::string Int32s(const std::string& name, const std::vector<int64_t>& shape,
                     const std::vector<int32_t>& values);
  std::string Int64s(const std::string& name, const std::vector<int64_t>& shape,
                     const std::vector<int64_t>& values);
  std::string Strings(const std::string& name, const std::vector<int64_t>& shape,
                      const std::vector<std::string>& values);
  std::string Constant(const std::string& name, const tensorflow::TensorProto& value);

  // A unique node name from `name` ("name", then "name_1", ...).
  std::string Unique(const std::string& name);

  const tensorflow::GraphDef& graph() const { return graph_; }
  tensorflow::GraphDef* mutable_graph() { return &graph_; }

 private:
  tensorflow::GraphDef graph_;
  std::set<std::string> names_;        // every node's name
  std::map<std::string, int> counters_;  // name -> last suffix given
};

}  // namespace export_format
}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_EXPORT_TF_GRAPH_H_
