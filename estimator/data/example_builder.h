// Builds tf.train.Example messages feature by feature, for tests, tools and
// writers of TFRecord data sets.
//
// Thread-compatible value type.
#ifndef ESTUARY_ESTIMATOR_DATA_EXAMPLE_BUILDER_H_
#define ESTUARY_ESTIMATOR_DATA_EXAMPLE_BUILDER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "proto/example.pb.h"

namespace estuary {
namespace data {

// ExampleBuilder().Floats("age", {42}).Bytes("city", {"Oslo"}).Serialize()
// Setting a key again replaces its values.
class ExampleBuilder {
 public:
  ExampleBuilder& Floats(const std::string& key, std::vector<float> values);
  ExampleBuilder& Int64s(const std::string& key, std::vector<int64_t> values);
  ExampleBuilder& Bytes(const std::string& key, std::vector<std::string> values);
  // A Feature with no list set (TF's parsers treat it as absent).
  ExampleBuilder& Empty(const std::string& key);

  const tensorflow::Example& example() const { return example_; }
  // The wire bytes, as a TFRecord of Examples holds them.
  // Deterministic bytes (map entries sorted by key).
  std::string Serialize() const;

 private:
  tensorflow::Feature& Mutable(const std::string& key);
  tensorflow::Example example_;
};

}  // namespace data
}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_DATA_EXAMPLE_BUILDER_H_
