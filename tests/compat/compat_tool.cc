// compat_tool: Estuary's side of the TensorFlow compatibility tests. Reads
// one JSON request on stdin, writes one JSON answer on stdout; the Python
// driver (compat_test.py, run with TF 2.15) asks TF the same and compares.
//
// Requests:
//   {"op": "write_tfrecord", "file": F, "compression": "" | "GZIP",
//    "examples": [{"key": {"int64": [..]} | {"float": [..]} | {"bytes": [..]}}]}
//   {"op": "parse_tfrecord", "file": F, "compression": C,
//    "features": {...}}  (the job file's tf.train.Example spec)
//     -> {"records": N, "features": {key: {"dense": [...], "shape": [...]} |
//                                          {"indices": [[r, c]...], "values": [...],
//                                           "dense_shape": [b, n]}}}
#include <iostream>
#include <iterator>
#include <string>

#include "common/io/tfrecord.h"
#include "common/tensor.h"
#include "estimator/data/example_batch_parser.h"
#include "estimator/data/example_builder.h"
#include "nlohmann/json.hpp"

namespace estuary {
namespace {

using json = nlohmann::json;

json Values(DType dtype, const std::vector<float>& f, const std::vector<int64_t>& i,
            const std::vector<std::string>& s) {
  if (dtype == DType::kFloat) return json(f);
  if (dtype == DType::kInt64) return json(i);
  // Strings travel as hex so arbitrary bytes survive JSON.
  json out = json::array();
  static const char* kHex = "0123456789abcdef";
  for (const std::string& v : s) {
    std::string hex;
    for (unsigned char c : v) {
      hex.push_back(kHex[c >> 4]);
      hex.push_back(kHex[c & 15]);
    }
    out.push_back(hex);
  }
  return out;
}

json FeatureToJson(const FeatureValue& v) {
  if (const Tensor* t = std::get_if<Tensor>(&v)) {
    return {{"dense", Values(t->dtype, t->floats, t->ints, t->strings)}, {"shape", t->shape}};
  }
  const SparseTensor& s = std::get<SparseTensor>(v);
  json indices = json::array();
  for (int64_t k = 0; k < s.num_values(); ++k) indices.push_back({s.rows[k], s.cols[k]});
  return {{"indices", indices},
          {"values", Values(s.dtype, s.floats, s.ints, s.strings)},
          {"dense_shape", {s.batch_size, s.max_len}}};
}

absl::StatusOr<json> Run(const json& req) {
  const std::string op = req.at("op").get<std::string>();
  io::TFRecordOptions options;
  if (req.contains("compression")) {
    absl::StatusOr<io::Compression> c = io::ParseCompression(req["compression"].get<std::string>());
    if (!c.ok()) return c.status();
    options.compression = *c;
  }
  if (op == "write_tfrecord") {
    std::vector<std::string> records;
    for (const json& ex : req.at("examples")) {
      data::ExampleBuilder b;
      for (auto it = ex.begin(); it != ex.end(); ++it) {
        const json& f = it.value();
        if (f.contains("int64")) b.Int64s(it.key(), f["int64"].get<std::vector<int64_t>>());
        if (f.contains("float")) b.Floats(it.key(), f["float"].get<std::vector<float>>());
        if (f.contains("bytes")) b.Bytes(it.key(), f["bytes"].get<std::vector<std::string>>());
      }
      records.push_back(b.Serialize());
    }
    absl::Status st = io::WriteTFRecordFile(req.at("file").get<std::string>(), records, options);
    if (!st.ok()) return st;
    return json{{"records", records.size()}};
  }
  if (op == "parse_tfrecord") {
    absl::StatusOr<std::vector<std::string>> records =
        io::ReadTFRecordFile(req.at("file").get<std::string>(), options);
    if (!records.ok()) return records.status();
    absl::StatusOr<data::ExampleParserSpec> spec = ExampleSpecFromJson(req.at("features"), "$.features");
    if (!spec.ok()) return spec.status();
    absl::StatusOr<FeatureMap> parsed = data::ParseExamples(*spec, *records);
    if (!parsed.ok()) return parsed.status();
    json features = json::object();
    for (const auto& [k, v] : *parsed) features[k] = FeatureToJson(v);
    return json{{"records", records->size()}, {"features", features}};
  }
  return absl::InvalidArgumentError("unknown op " + op);
}

}  // namespace
}  // namespace estuary

int main() {
  const std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  nlohmann::json req;
  try {
    req = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    std::cerr << "compat_tool: bad request: " << e.what() << "\n";
    return 2;
  }
  absl::StatusOr<nlohmann::json> out = estuary::Run(req);
  if (!out.ok()) {
    std::cout << nlohmann::json{{"error", std::string(out.status().message())}}.dump() << "\n";
    return 1;
  }
  std::cout << out->dump() << "\n";
  return 0;
}
