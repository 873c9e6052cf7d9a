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
//   {"op": "feature_columns", "columns": [job-file feature_columns],
//    "features": {key: {"dtype": D, "shape": [..], "values": [..]} |
//                      {"dtype": D, "indices": [[r, c]..], "values": [..],
//                       "dense_shape": [b, n]}},
//    "tables": {embedding column name: [[..], ..]}}
//     -> {"ids": {name: {"rows": [..], "ids": [..], "weights": [..]}},
//         "dense": {name: [[..], ..]}, "dense_features": [[..], ..]}
//   {"op": "write_checkpoint", "model_dir": D, "step": S,
//    "floats": {name: {"shape": [..], "values": [..]}}}
//     (a TF checkpoint's variables, for estimator.warm_start_from; shape []
//      or [n] is a 1 x n matrix, [r, c] is r x c)
//     -> {"prefix": "<D>/model.ckpt-<S>"}
//   {"op": "read_checkpoint", "model_dir": D}
//     -> {"step": S, "floats": {name: {"shape": [rows, cols], "values": [..]}}}
//     (the latest checkpoint of D)
#include <iostream>
#include <iterator>
#include <string>

#include "common/checkpoint.h"
#include "common/io/tfrecord.h"
#include "common/tensor.h"
#include "estimator/data/example_batch_parser.h"
#include "estimator/data/example_builder.h"
#include "estimator/feature_column.h"
#include "estimator/feature_column_builder.h"
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

absl::StatusOr<DType> DTypeOf(const json& f) {
  const std::string d = f.at("dtype").get<std::string>();
  if (d == "float32") return DType::kFloat;
  if (d == "int64") return DType::kInt64;
  if (d == "string") return DType::kString;
  return absl::InvalidArgumentError("bad dtype " + d);
}

template <typename T>
void Fill(DType dtype, const json& values, T* t) {
  for (const json& v : values) {
    if (dtype == DType::kFloat) t->floats.push_back(v.get<float>());
    if (dtype == DType::kInt64) t->ints.push_back(v.get<int64_t>());
    if (dtype == DType::kString) t->strings.push_back(v.get<std::string>());
  }
}

absl::StatusOr<FeatureMap> FeaturesFromJson(const json& in) {
  FeatureMap out;
  for (auto it = in.begin(); it != in.end(); ++it) {
    const json& f = it.value();
    absl::StatusOr<DType> dtype = DTypeOf(f);
    if (!dtype.ok()) return dtype.status();
    if (f.contains("indices")) {
      SparseTensor s;
      s.dtype = *dtype;
      s.batch_size = f["dense_shape"][0].get<int64_t>();
      s.max_len = f["dense_shape"][1].get<int64_t>();
      for (const json& rc : f["indices"]) {
        s.rows.push_back(rc[0].get<int64_t>());
        s.cols.push_back(rc[1].get<int64_t>());
      }
      Fill(*dtype, f["values"], &s);
      out[it.key()] = std::move(s);
    } else {
      Tensor t;
      t.dtype = *dtype;
      t.shape = f["shape"].get<std::vector<int64_t>>();
      Fill(*dtype, f["values"], &t);
      out[it.key()] = std::move(t);
    }
  }
  return out;
}

json MatrixToJson(const RowMatrixXf& m) {
  json rows = json::array();
  for (Eigen::Index r = 0; r < m.rows(); ++r) {
    rows.push_back(std::vector<float>(m.row(r).data(), m.row(r).data() + m.cols()));
  }
  return rows;
}

absl::StatusOr<json> RunFeatureColumns(const json& req) {
  absl::StatusOr<FeatureColumnSet> set = BuildFeatureColumns(req.at("columns"));
  if (!set.ok()) return set.status();
  absl::StatusOr<FeatureMap> features = FeaturesFromJson(req.at("features"));
  if (!features.ok()) return features.status();
  EmbeddingTables tables;
  if (req.contains("tables")) {
    for (auto it = req["tables"].begin(); it != req["tables"].end(); ++it) {
      const json& rows = it.value();
      RowMatrixXf m(rows.size(), rows.empty() ? 0 : rows[0].size());
      for (size_t r = 0; r < rows.size(); ++r) {
        for (size_t c = 0; c < rows[r].size(); ++c) m(r, c) = rows[r][c].get<float>();
      }
      tables[it.key()] = std::move(m);
    }
  }
  json ids = json::object(), dense = json::object();
  for (size_t i = 0; i < set->columns().size(); ++i) {
    const FeatureColumn& col = *set->columns()[i];
    if (col.is_categorical()) {
      absl::StatusOr<CategoricalIds> c = col.Ids(*features);
      if (!c.ok()) return c.status();
      ids[col.name()] = {{"rows", c->rows}, {"ids", c->ids}, {"weights", c->weights}};
    }
    if (col.is_dense()) {
      absl::StatusOr<RowMatrixXf> d = col.Dense(*features, &tables);
      if (!d.ok()) return d.status();
      dense[col.name()] = MatrixToJson(*d);
    }
  }
  absl::StatusOr<RowMatrixXf> all = DenseFeatures(set->DenseColumns(), *features, &tables);
  if (!all.ok()) return all.status();
  return json{{"ids", ids}, {"dense", dense}, {"dense_features", MatrixToJson(*all)}};
}

absl::StatusOr<json> RunWriteCheckpoint(const json& req) {
  Variables vars;
  const json& floats = req.at("floats");
  for (auto it = floats.begin(); it != floats.end(); ++it) {
    const std::vector<int64_t> shape = it.value().at("shape").get<std::vector<int64_t>>();
    const std::vector<float> values = it.value().at("values").get<std::vector<float>>();
    if (shape.size() > 2) {
      return absl::InvalidArgumentError("write_checkpoint: '" + it.key() + "' has rank > 2");
    }
    const int64_t rows = shape.size() == 2 ? shape[0] : 1;
    const int64_t cols = shape.empty() ? 1 : shape.back();
    if (rows * cols != static_cast<int64_t>(values.size())) {
      return absl::InvalidArgumentError("write_checkpoint: '" + it.key() +
                                        "': values do not fill the shape");
    }
    vars.floats[it.key()] = Eigen::Map<const RowMatrixXf>(values.data(), rows, cols);
  }
  absl::StatusOr<std::string> prefix = checkpoint::Save(
      req.at("model_dir").get<std::string>(), req.at("step").get<int64_t>(), vars);
  if (!prefix.ok()) return prefix.status();
  return json{{"prefix", *prefix}};
}

absl::StatusOr<json> RunReadCheckpoint(const json& req) {
  absl::StatusOr<checkpoint::RestoredCheckpoint> ckpt =
      checkpoint::RestoreLatest(req.at("model_dir").get<std::string>());
  if (!ckpt.ok()) return ckpt.status();
  json floats = json::object();
  for (const auto& [name, m] : ckpt->vars.floats) {
    floats[name] = {{"shape", {m.rows(), m.cols()}},
                    {"values", std::vector<float>(m.data(), m.data() + m.size())}};
  }
  return json{{"step", ckpt->step}, {"floats", floats}};
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
  if (op == "feature_columns") return RunFeatureColumns(req);
  if (op == "write_checkpoint") return RunWriteCheckpoint(req);
  if (op == "read_checkpoint") return RunReadCheckpoint(req);
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
