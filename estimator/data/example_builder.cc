#include "estimator/data/example_builder.h"

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace estuary {
namespace data {

tensorflow::Feature& ExampleBuilder::Mutable(const std::string& key) {
  tensorflow::Feature& f = (*example_.mutable_features()->mutable_feature())[key];
  f.Clear();
  return f;
}

ExampleBuilder& ExampleBuilder::Floats(const std::string& key, std::vector<float> values) {
  auto* list = Mutable(key).mutable_float_list();
  list->mutable_value()->Add(values.begin(), values.end());
  return *this;
}

ExampleBuilder& ExampleBuilder::Int64s(const std::string& key, std::vector<int64_t> values) {
  auto* list = Mutable(key).mutable_int64_list();
  for (int64_t v : values) list->add_value(v);
  return *this;
}

ExampleBuilder& ExampleBuilder::Bytes(const std::string& key, std::vector<std::string> values) {
  auto* list = Mutable(key).mutable_bytes_list();
  for (std::string& v : values) list->add_value(std::move(v));
  return *this;
}

ExampleBuilder& ExampleBuilder::Empty(const std::string& key) {
  Mutable(key);
  return *this;
}

std::string ExampleBuilder::Serialize() const {
  // Deterministic: map entries sorted by key, so the same Example always
  // gives the same bytes (reproducible data files).
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    example_.SerializeToCodedStream(&coded);
  }
  return out;
}

}  // namespace data
}  // namespace estuary
