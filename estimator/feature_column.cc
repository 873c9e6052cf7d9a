#include "estimator/feature_column.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_map>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/io/env.h"
#include "common/status_macros.h"
#include "estimator/feature_hash.h"

namespace estuary {
namespace {

absl::Status Invalid(absl::string_view column, absl::string_view msg) {
  return absl::InvalidArgumentError(absl::StrCat("feature column '", column, "': ", msg));
}

// A raw feature as per-example value lists: entry k belongs to rows[k]. A
// view: the values stay in the FeatureMap's tensor (no string copies); entry
// k is value index[k] of it (index empty: value k).
struct RaggedFeature {
  int64_t batch_size = 0;
  DType dtype = DType::kString;
  std::vector<int64_t> rows;
  std::vector<int64_t> index;
  const std::vector<std::string>* strings = nullptr;
  const std::vector<int64_t>* ints = nullptr;
  const std::vector<float>* floats = nullptr;
  int64_t size() const { return static_cast<int64_t>(rows.size()); }
  int64_t at(int64_t k) const { return index.empty() ? k : index[k]; }
  const std::string& string_value(int64_t k) const { return (*strings)[at(k)]; }
  int64_t int_value(int64_t k) const { return (*ints)[at(k)]; }
  float float_value(int64_t k) const { return (*floats)[at(k)]; }
};

enum class Drop { kNothing, kMissing, kZeroFloat };

absl::StatusOr<const FeatureValue*> Lookup(const FeatureMap& features, const std::string& key,
                                           absl::string_view column) {
  auto it = features.find(key);
  if (it == features.end()) {
    return Invalid(column, absl::StrCat("feature '", key, "' is missing from the input"));
  }
  return &it->second;
}

// Whether value i (of the whole tensor) is dropped.
bool Dropped(const RaggedFeature& in, int64_t i, Drop drop) {
  if (drop == Drop::kMissing) {
    if (in.dtype == DType::kString) return (*in.strings)[i].empty();
    if (in.dtype == DType::kInt64) return (*in.ints)[i] == -1;
  }
  if (drop == Drop::kZeroFloat && in.dtype == DType::kFloat) return (*in.floats)[i] == 0.0f;
  return false;
}

// The view into `features` stays valid while `features` is unchanged.
absl::StatusOr<RaggedFeature> GetRagged(const FeatureMap& features, const std::string& key,
                                        Drop drop, absl::string_view column) {
  ASSIGN_OR_RETURN(const FeatureValue* value, Lookup(features, key, column));
  RaggedFeature all;
  size_t have = 0;
  if (const auto* t = std::get_if<Tensor>(value)) {
    if (t->shape.empty()) return Invalid(column, absl::StrCat("feature '", key, "' is a scalar"));
    all.batch_size = t->batch_size();
    all.dtype = t->dtype;
    all.strings = &t->strings;
    all.ints = &t->ints;
    all.floats = &t->floats;
    const int64_t row_size = t->row_size();
    const size_t n = static_cast<size_t>(all.batch_size * row_size);
    have = all.dtype == DType::kString  ? t->strings.size()
           : all.dtype == DType::kInt64 ? t->ints.size()
                                        : t->floats.size();
    if (have != n) {
      return Invalid(column, absl::StrCat("feature '", key, "' has ", have, " ",
                                          DTypeName(all.dtype), " values for ", n, " entries"));
    }
    if (drop == Drop::kNothing) {
      all.rows.reserve(n);
      for (int64_t r = 0; r < all.batch_size; ++r) all.rows.insert(all.rows.end(), row_size, r);
      return all;
    }
    for (int64_t r = 0, i = 0; r < all.batch_size; ++r) {
      for (int64_t j = 0; j < row_size; ++j, ++i) {
        if (Dropped(all, i, drop)) continue;
        all.rows.push_back(r);
        all.index.push_back(i);
      }
    }
    // Nothing dropped: the identity index is implied.
    if (all.index.size() == n) all.index.clear();
    return all;
  }
  const auto& s = std::get<SparseTensor>(*value);
  all.batch_size = s.batch_size;
  all.dtype = s.dtype;
  all.rows = s.rows;
  all.strings = &s.strings;
  all.ints = &s.ints;
  all.floats = &s.floats;
  for (size_t k = 0; k < s.rows.size(); ++k) {
    if (s.rows[k] < 0 || s.rows[k] >= s.batch_size || (k > 0 && s.rows[k] < s.rows[k - 1])) {
      return Invalid(column, absl::StrCat("feature '", key, "': sparse rows must be sorted and in [0, ",
                                          s.batch_size, ")"));
    }
  }
  have = all.dtype == DType::kString  ? s.strings.size()
         : all.dtype == DType::kInt64 ? s.ints.size()
                                      : s.floats.size();
  if (have != all.rows.size()) {
    return Invalid(column, absl::StrCat("feature '", key, "' has ", have, " ", DTypeName(all.dtype),
                                        " values for ", all.rows.size(), " entries"));
  }
  return all;  // sparse inputs are used as given
}

// ---------------------------------------------------------------- numeric

// The batch size of any feature in the map; -1 if it is empty.
int64_t BatchSizeOf(const FeatureMap& features) {
  for (const auto& [key, value] : features) {
    if (const auto* t = std::get_if<Tensor>(&value)) return t->batch_size();
    return std::get<SparseTensor>(value).batch_size;
  }
  return -1;
}

class NumericColumnImpl : public FeatureColumn {
 public:
  NumericColumnImpl(std::string key, std::vector<int64_t> shape, int64_t width,
                    std::optional<float> default_value, std::optional<Normalizer> normalizer)
      : FeatureColumn(ColumnType::kNumeric, key),
        key_(std::move(key)),
        shape_(std::move(shape)),
        width_(width),
        default_value_(default_value),
        normalizer_(normalizer) {}

  bool is_dense() const override { return true; }
  int64_t dense_width() const override { return width_; }
  const std::vector<int64_t>& shape() const { return shape_; }

  absl::StatusOr<RowMatrixXf> Dense(const FeatureMap& features,
                                    const EmbeddingTables*) const override {
    auto it = features.find(key_);
    if (it == features.end()) {
      if (!default_value_.has_value()) {
        return Invalid(name(), absl::StrCat("feature '", key_,
                                            "' is missing from the input and the column has no "
                                            "default_value"));
      }
      const int64_t batch = BatchSizeOf(features);
      if (batch < 0) {
        return Invalid(name(), absl::StrCat("feature '", key_,
                                            "' is missing and no other feature gives the batch "
                                            "size"));
      }
      return Normalize(RowMatrixXf::Constant(batch, width_, *default_value_));
    }
    RowMatrixXf out;
    if (const auto* t = std::get_if<Tensor>(&it->second)) {
      if (t->shape.empty() || t->row_size() != width_) {
        return Invalid(name(), absl::StrCat("feature '", key_, "' has ", t->row_size(),
                                            " values per example, expected ", width_));
      }
      out.resize(t->batch_size(), width_);
      if (t->dtype == DType::kFloat) {
        if (static_cast<int64_t>(t->floats.size()) != t->num_elements()) {
          return Invalid(name(), "float tensor has the wrong number of values");
        }
        out = t->AsMatrix();
      } else if (t->dtype == DType::kInt64) {
        if (static_cast<int64_t>(t->ints.size()) != t->num_elements()) {
          return Invalid(name(), "int64 tensor has the wrong number of values");
        }
        for (int64_t i = 0; i < t->num_elements(); ++i) out.data()[i] = static_cast<float>(t->ints[i]);
      } else {
        return Invalid(name(), absl::StrCat("feature '", key_, "' is string; numeric columns need numbers"));
      }
    } else {
      const auto& s = std::get<SparseTensor>(it->second);
      if (!default_value_.has_value()) {
        return Invalid(name(), absl::StrCat("feature '", key_,
                                            "' is sparse; a numeric column needs a dense tensor "
                                            "or a default_value"));
      }
      if (s.dtype == DType::kString) return Invalid(name(), "string feature; numeric columns need numbers");
      out = RowMatrixXf::Constant(s.batch_size, width_, *default_value_);
      for (int64_t k = 0; k < s.num_values(); ++k) {
        if (s.rows[k] < 0 || s.rows[k] >= s.batch_size || s.cols[k] < 0 || s.cols[k] >= width_) {
          return Invalid(name(), absl::StrCat("sparse entry (", s.rows[k], ", ", s.cols[k],
                                              ") outside [", s.batch_size, ", ", width_, "]"));
        }
        out(s.rows[k], s.cols[k]) =
            s.dtype == DType::kFloat ? s.floats[k] : static_cast<float>(s.ints[k]);
      }
    }
    return Normalize(std::move(out));
  }

 private:
  RowMatrixXf Normalize(RowMatrixXf out) const {
    if (normalizer_.has_value()) {
      const float mean = static_cast<float>(normalizer_->mean);
      const float stddev = static_cast<float>(normalizer_->stddev);
      out = ((out.array() - mean) / stddev).matrix();
    }
    return out;
  }

  std::string key_;
  std::vector<int64_t> shape_;
  int64_t width_;
  std::optional<float> default_value_;
  std::optional<Normalizer> normalizer_;
};

// ---------------------------------------------------------------- bucketized

class BucketizedColumnImpl : public FeatureColumn {
 public:
  BucketizedColumnImpl(ColumnPtr source, std::vector<float> boundaries)
      : FeatureColumn(ColumnType::kBucketized, absl::StrCat(source->name(), "_bucketized")),
        source_(std::move(source)),
        boundaries_(std::move(boundaries)) {}

  int64_t buckets_per_element() const { return static_cast<int64_t>(boundaries_.size()) + 1; }
  bool is_dense() const override { return true; }
  int64_t dense_width() const override { return source_->dense_width() * buckets_per_element(); }
  bool is_categorical() const override { return true; }
  int64_t num_buckets() const override { return dense_width(); }

  absl::StatusOr<RowMatrixXf> Dense(const FeatureMap& features,
                                    const EmbeddingTables* tables) const override {
    ASSIGN_OR_RETURN(RowMatrixXf x, source_->Dense(features, tables));
    RowMatrixXf out = RowMatrixXf::Zero(x.rows(), dense_width());
    for (int64_t r = 0; r < x.rows(); ++r) {
      for (int64_t j = 0; j < x.cols(); ++j) out(r, j * buckets_per_element() + Bucket(x(r, j))) = 1.0f;
    }
    return out;
  }

  absl::StatusOr<CategoricalIds> Ids(const FeatureMap& features) const override {
    ASSIGN_OR_RETURN(RowMatrixXf x, source_->Dense(features, nullptr));
    CategoricalIds ids;
    ids.batch_size = x.rows();
    ids.num_buckets = num_buckets();
    for (int64_t r = 0; r < x.rows(); ++r) {
      for (int64_t j = 0; j < x.cols(); ++j) {
        ids.rows.push_back(r);
        ids.ids.push_back(Bucket(x(r, j)) + j * buckets_per_element());
      }
    }
    return ids;
  }

 private:
  int64_t Bucket(float v) const {
    return std::upper_bound(boundaries_.begin(), boundaries_.end(), v) - boundaries_.begin();
  }

  ColumnPtr source_;
  std::vector<float> boundaries_;
};

// ---------------------------------------------------------------- categorical

// Base for columns whose ids come from one raw feature key.
class KeyedCategorical : public FeatureColumn {
 public:
  KeyedCategorical(ColumnType type, std::string key, int64_t num_buckets)
      : FeatureColumn(type, key), key_(std::move(key)), num_buckets_(num_buckets) {}
  bool is_categorical() const override { return true; }
  int64_t num_buckets() const override { return num_buckets_; }

  absl::StatusOr<CategoricalIds> Ids(const FeatureMap& features) const override {
    ASSIGN_OR_RETURN(RaggedFeature in, GetRagged(features, key_, Drop::kMissing, name()));
    CategoricalIds ids;
    ids.batch_size = in.batch_size;
    ids.num_buckets = num_buckets_;
    ids.rows = in.rows;
    ids.ids.resize(in.rows.size());
    if (in.dtype == DType::kFloat) {
      return Invalid(name(), absl::StrCat("feature '", key_,
                                          "' is float32; categorical columns need string or "
                                          "int64 values"));
    }
    for (int64_t k = 0; k < in.size(); ++k) {
      absl::StatusOr<int64_t> id =
          in.dtype == DType::kString ? IdOf(in.string_value(k)) : IdOf(in.int_value(k));
      if (!id.ok()) return id.status();
      ids.ids[k] = *id;
    }
    return ids;
  }

 protected:
  virtual absl::StatusOr<int64_t> IdOf(const std::string& v) const = 0;
  virtual absl::StatusOr<int64_t> IdOf(int64_t v) const = 0;
  const std::string& key() const { return key_; }

 private:
  std::string key_;
  int64_t num_buckets_;
};

class VocabularyColumnImpl : public KeyedCategorical {
 public:
  VocabularyColumnImpl(ColumnType type, std::string key, DType dtype,
                       std::vector<std::string> strings, std::vector<int64_t> ints,
                       int64_t num_oov_buckets, int64_t default_value)
      : KeyedCategorical(type, std::move(key),
                         static_cast<int64_t>(dtype == DType::kString ? strings.size() : ints.size()) +
                             num_oov_buckets),
        dtype_(dtype),
        vocab_size_(static_cast<int64_t>(dtype == DType::kString ? strings.size() : ints.size())),
        num_oov_buckets_(num_oov_buckets),
        default_value_(default_value) {
    for (size_t i = 0; i < strings.size(); ++i) string_ids_.emplace(strings[i], i);
    for (size_t i = 0; i < ints.size(); ++i) int_ids_.emplace(ints[i], i);
  }

 protected:
  absl::StatusOr<int64_t> IdOf(const std::string& v) const override {
    if (dtype_ != DType::kString) return WrongType("string");
    auto it = string_ids_.find(v);
    if (it != string_ids_.end()) return it->second;
    return Oov(v);
  }
  absl::StatusOr<int64_t> IdOf(int64_t v) const override {
    if (dtype_ != DType::kInt64) return WrongType("int64");
    auto it = int_ids_.find(v);
    if (it != int_ids_.end()) return it->second;
    return Oov(Int64ToHashString(v));
  }

 private:
  int64_t Oov(absl::string_view v) const {
    if (num_oov_buckets_ > 0) return vocab_size_ + StringToHashBucket(v, num_oov_buckets_);
    return default_value_;
  }
  absl::Status WrongType(absl::string_view got) const {
    return Invalid(name(), absl::StrCat("feature '", key(), "' is ", got, " but the vocabulary is ",
                                        DTypeName(dtype_)));
  }

  DType dtype_;
  int64_t vocab_size_;
  int64_t num_oov_buckets_;
  int64_t default_value_;
  std::unordered_map<std::string, int64_t> string_ids_;
  std::unordered_map<int64_t, int64_t> int_ids_;
};

class HashBucketColumnImpl : public KeyedCategorical {
 public:
  HashBucketColumnImpl(std::string key, int64_t size, DType dtype)
      : KeyedCategorical(ColumnType::kHashBucket, std::move(key), size), dtype_(dtype) {}

 protected:
  absl::StatusOr<int64_t> IdOf(const std::string& v) const override {
    if (dtype_ != DType::kString) return WrongType("string");
    return StringToHashBucket(v, num_buckets());
  }
  absl::StatusOr<int64_t> IdOf(int64_t v) const override {
    if (dtype_ != DType::kInt64) return WrongType("int64");
    return StringToHashBucket(Int64ToHashString(v), num_buckets());
  }

 private:
  absl::Status WrongType(absl::string_view got) const {
    return Invalid(name(), absl::StrCat("feature '", key(), "' is ", got, " but the column's dtype is ",
                                        DTypeName(dtype_)));
  }

  DType dtype_;
};

class IdentityColumnImpl : public KeyedCategorical {
 public:
  IdentityColumnImpl(std::string key, int64_t num_buckets, std::optional<int64_t> default_value)
      : KeyedCategorical(ColumnType::kIdentity, std::move(key), num_buckets),
        default_value_(default_value) {}

 protected:
  absl::StatusOr<int64_t> IdOf(const std::string&) const override {
    return Invalid(name(), absl::StrCat("feature '", key(),
                                        "' is string; categorical_column_with_identity needs "
                                        "int64 values"));
  }
  absl::StatusOr<int64_t> IdOf(int64_t v) const override {
    if (v >= 0 && v < num_buckets()) return v;
    // TF 2.15 replaces out-of-range values only when there is a default and
    // otherwise passes them through unchecked.
    return default_value_.has_value() ? *default_value_ : v;
  }

 private:
  std::optional<int64_t> default_value_;
};

// ---------------------------------------------------------------- crossed

class CrossedColumnImpl : public FeatureColumn {
 public:
  CrossedColumnImpl(std::string name, std::vector<CrossKey> leaves, int64_t size)
      : FeatureColumn(ColumnType::kCrossed, std::move(name)), leaves_(std::move(leaves)), size_(size) {}
  bool is_categorical() const override { return true; }
  int64_t num_buckets() const override { return size_; }
  const std::vector<CrossKey>& leaves() const { return leaves_; }

  absl::StatusOr<CategoricalIds> Ids(const FeatureMap& features) const override {
    // Per leaf: each entry's component hash, grouped by row.
    struct Leaf {
      std::vector<int64_t> rows;
      std::vector<uint64_t> hashes;
      bool dense = false;  // a raw key whose input is a dense Tensor
    };
    std::vector<Leaf> leaves;
    int64_t batch_size = -1;
    for (const CrossKey& key : leaves_) {
      Leaf leaf;
      int64_t leaf_batch = 0;
      if (const auto* raw = std::get_if<std::string>(&key)) {
        ASSIGN_OR_RETURN(RaggedFeature in, GetRagged(features, *raw, Drop::kNothing, name()));
        auto f = features.find(*raw);
        leaf.dense = f != features.end() && std::holds_alternative<Tensor>(f->second);
        leaf_batch = in.batch_size;
        leaf.rows = in.rows;
        for (int64_t k = 0; k < in.size(); ++k) {
          if (in.dtype == DType::kString) {
            leaf.hashes.push_back(CrossComponentHash(in.string_value(k)));
          } else if (in.dtype == DType::kInt64) {
            leaf.hashes.push_back(CrossComponentHash(in.int_value(k)));
          } else {
            return Invalid(name(), absl::StrCat("feature '", *raw,
                                                "' is float32; crossed columns need string or "
                                                "int64 values"));
          }
        }
      } else {
        ASSIGN_OR_RETURN(CategoricalIds ids, std::get<ColumnPtr>(key)->Ids(features));
        leaf_batch = ids.batch_size;
        leaf.rows = ids.rows;
        for (int64_t id : ids.ids) leaf.hashes.push_back(CrossComponentHash(id));
      }
      if (batch_size >= 0 && leaf_batch != batch_size) {
        return Invalid(name(), absl::StrCat("inputs have different batch sizes (", batch_size,
                                            " and ", leaf_batch, ")"));
      }
      batch_size = leaf_batch;
      leaves.push_back(std::move(leaf));
    }
    // TF's sparse_cross takes its sparse inputs first and its dense inputs
    // after them (each group in key order): a raw key fed by a dense tensor
    // moves behind every categorical column and every sparse raw input.
    std::stable_partition(leaves.begin(), leaves.end(), [](const Leaf& l) { return !l.dense; });
    CategoricalIds out;
    out.batch_size = batch_size;
    out.num_buckets = size_;
    const size_t n = leaves.size();
    std::vector<size_t> pos(n, 0);
    std::vector<std::pair<size_t, size_t>> span(n);  // [begin, end) of the row
    std::vector<size_t> it(n);
    for (int64_t r = 0; r < batch_size; ++r) {
      bool empty = false;
      for (size_t i = 0; i < n; ++i) {
        size_t b = pos[i];
        while (b < leaves[i].rows.size() && leaves[i].rows[b] < r) ++b;
        size_t e = b;
        while (e < leaves[i].rows.size() && leaves[i].rows[e] == r) ++e;
        span[i] = {b, e};
        pos[i] = e;
        if (b == e) empty = true;
      }
      if (empty) continue;
      for (size_t i = 0; i < n; ++i) it[i] = span[i].first;
      while (true) {
        uint64_t h = kCrossedColumnHashKey;
        for (size_t i = 0; i < n; ++i) h = FingerprintCat64(h, leaves[i].hashes[it[i]]);
        out.rows.push_back(r);
        out.ids.push_back(CrossHashToBucket(h, size_));
        // Odometer: the last key varies fastest.
        size_t i = n;
        while (i > 0) {
          --i;
          if (++it[i] < span[i].second) break;
          it[i] = span[i].first;
          if (i == 0) { i = n; break; }
        }
        if (i == n) break;
      }
    }
    return out;
  }

 private:
  std::vector<CrossKey> leaves_;
  int64_t size_;
};

// ---------------------------------------------------------------- weighted

class WeightedColumnImpl : public FeatureColumn {
 public:
  WeightedColumnImpl(ColumnPtr categorical, std::string weight_key)
      : FeatureColumn(ColumnType::kWeightedCategorical,
                      absl::StrCat(categorical->name(), "_weighted_by_", weight_key)),
        categorical_(std::move(categorical)),
        weight_key_(std::move(weight_key)) {}
  bool is_categorical() const override { return true; }
  int64_t num_buckets() const override { return categorical_->num_buckets(); }

  absl::StatusOr<CategoricalIds> Ids(const FeatureMap& features) const override {
    ASSIGN_OR_RETURN(CategoricalIds ids, categorical_->Ids(features));
    ASSIGN_OR_RETURN(RaggedFeature w, GetRagged(features, weight_key_, Drop::kZeroFloat, name()));
    if (w.dtype == DType::kString) {
      return Invalid(name(), absl::StrCat("weight feature '", weight_key_, "' is string"));
    }
    if (w.rows != ids.rows) {
      return Invalid(name(), absl::StrCat("weight feature '", weight_key_, "' has ", w.size(),
                                          " entries that do not pair with the ", ids.size(),
                                          " ids of '", categorical_->name(), "'"));
    }
    ids.weights.resize(ids.ids.size());
    for (int64_t k = 0; k < w.size(); ++k) {
      ids.weights[k] = w.dtype == DType::kFloat ? w.float_value(k) : static_cast<float>(w.int_value(k));
    }
    return ids;
  }

 private:
  ColumnPtr categorical_;
  std::string weight_key_;
};

// ---------------------------------------------------------------- indicator

class IndicatorColumnImpl : public FeatureColumn {
 public:
  explicit IndicatorColumnImpl(ColumnPtr categorical)
      : FeatureColumn(ColumnType::kIndicator, absl::StrCat(categorical->name(), "_indicator")),
        categorical_(std::move(categorical)) {}
  bool is_dense() const override { return true; }
  int64_t dense_width() const override { return categorical_->num_buckets(); }

  absl::StatusOr<RowMatrixXf> Dense(const FeatureMap& features,
                                    const EmbeddingTables*) const override {
    ASSIGN_OR_RETURN(CategoricalIds ids, categorical_->Ids(features));
    RowMatrixXf out = RowMatrixXf::Zero(ids.batch_size, dense_width());
    for (int64_t k = 0; k < ids.size(); ++k) {
      if (ids.ids[k] < 0 || ids.ids[k] >= dense_width()) continue;
      out(ids.rows[k], ids.ids[k]) += ids.weight(k);
    }
    return out;
  }

 private:
  ColumnPtr categorical_;
};

// ---------------------------------------------------------------- embedding

class EmbeddingColumnImpl : public FeatureColumn {
 public:
  explicit EmbeddingColumnImpl(EmbeddingSpec spec)
      : FeatureColumn(ColumnType::kEmbedding, absl::StrCat(spec.categorical->name(), "_embedding")),
        spec_(std::move(spec)) {}
  bool is_dense() const override { return true; }
  int64_t dense_width() const override { return spec_.dimension; }
  const EmbeddingSpec& spec() const { return spec_; }

  absl::StatusOr<RowMatrixXf> Dense(const FeatureMap& features,
                                    const EmbeddingTables* tables) const override {
    const RowMatrixXf* table = nullptr;
    if (tables != nullptr) {
      auto it = tables->find(name());
      if (it != tables->end()) table = &it->second;
    }
    if (table == nullptr) return Invalid(name(), "no embedding table given for this column");
    if (table->rows() != spec_.categorical->num_buckets() || table->cols() != spec_.dimension) {
      return Invalid(name(), absl::StrCat("embedding table is [", table->rows(), ", ", table->cols(),
                                          "], expected [", spec_.categorical->num_buckets(), ", ",
                                          spec_.dimension, "]"));
    }
    ASSIGN_OR_RETURN(CategoricalIds ids, spec_.categorical->Ids(features));
    return CombineEmbeddings(*table, ids, spec_.combiner, spec_.max_norm);
  }

 private:
  EmbeddingSpec spec_;
};

absl::Status RequireCategorical(const ColumnPtr& c, absl::string_view what) {
  if (c == nullptr) return absl::InvalidArgumentError(absl::StrCat(what, ": column is null"));
  if (!c->is_categorical()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": '", c->name(), "' is not a categorical column"));
  }
  return absl::OkStatus();
}

absl::Status CheckVocabArgs(absl::string_view key, int64_t size, int64_t num_oov_buckets,
                            int64_t default_value) {
  if (key.empty()) return absl::InvalidArgumentError("vocabulary column: key must not be empty");
  if (size < 1) return Invalid(key, "vocabulary must not be empty");
  if (num_oov_buckets < 0) return Invalid(key, "num_oov_buckets must be >= 0");
  if (num_oov_buckets > 0 && default_value != -1) {
    return Invalid(key, "can't set both num_oov_buckets and default_value");
  }
  if (default_value != -1 && (default_value < 0 || default_value >= size)) {
    return Invalid(key, absl::StrCat("default_value ", default_value, " is outside [0, ", size, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RowMatrixXf> FeatureColumn::Dense(const FeatureMap&, const EmbeddingTables*) const {
  return Invalid(name_, "is not a dense column; wrap it in an indicator or embedding column");
}

absl::StatusOr<CategoricalIds> FeatureColumn::Ids(const FeatureMap&) const {
  return Invalid(name_, "is not a categorical column");
}

absl::StatusOr<ColumnPtr> NumericColumn(std::string key, std::vector<int64_t> shape,
                                        std::optional<float> default_value,
                                        std::optional<Normalizer> normalizer) {
  if (key.empty()) return absl::InvalidArgumentError("numeric column: key must not be empty");
  if (shape.empty()) return Invalid(key, "shape must not be empty");
  int64_t width = 1;
  for (int64_t d : shape) {
    if (d < 1) return Invalid(key, "shape dimensions must be >= 1");
    width *= d;
  }
  if (normalizer.has_value() && !(normalizer->stddev != 0.0)) {
    return Invalid(key, "normalizer.stddev must not be 0");
  }
  return std::make_shared<NumericColumnImpl>(std::move(key), std::move(shape), width, default_value,
                                             normalizer);
}

absl::StatusOr<ColumnPtr> BucketizedColumn(ColumnPtr source, std::vector<float> boundaries) {
  if (source == nullptr || source->type() != ColumnType::kNumeric) {
    return absl::InvalidArgumentError("bucketized column: source must be a numeric column");
  }
  if (static_cast<const NumericColumnImpl&>(*source).shape().size() != 1) {
    return Invalid(source->name(), "a bucketized column needs a 1-D numeric source shape");
  }
  if (boundaries.empty()) return Invalid(source->name(), "boundaries must not be empty");
  for (size_t i = 1; i < boundaries.size(); ++i) {
    if (!(boundaries[i - 1] < boundaries[i])) {
      return Invalid(absl::StrCat(source->name(), "_bucketized"),
                     "boundaries must be sorted ascending without duplicates");
    }
  }
  return std::make_shared<BucketizedColumnImpl>(std::move(source), std::move(boundaries));
}

absl::StatusOr<ColumnPtr> VocabularyListColumn(std::string key, std::vector<std::string> vocabulary,
                                               int64_t num_oov_buckets, int64_t default_value) {
  RETURN_IF_ERROR(CheckVocabArgs(key, vocabulary.size(), num_oov_buckets, default_value));
  std::set<std::string> seen;
  for (const auto& v : vocabulary) {
    if (!seen.insert(v).second) return Invalid(key, absl::StrCat("duplicate vocabulary entry '", v, "'"));
  }
  return std::make_shared<VocabularyColumnImpl>(ColumnType::kVocabularyList, std::move(key),
                                                DType::kString, std::move(vocabulary),
                                                std::vector<int64_t>{}, num_oov_buckets,
                                                default_value);
}

absl::StatusOr<ColumnPtr> Int64VocabularyListColumn(std::string key, std::vector<int64_t> vocabulary,
                                                    int64_t num_oov_buckets, int64_t default_value) {
  RETURN_IF_ERROR(CheckVocabArgs(key, vocabulary.size(), num_oov_buckets, default_value));
  std::set<int64_t> seen;
  for (int64_t v : vocabulary) {
    if (!seen.insert(v).second) return Invalid(key, absl::StrCat("duplicate vocabulary entry ", v));
  }
  return std::make_shared<VocabularyColumnImpl>(ColumnType::kVocabularyList, std::move(key),
                                                DType::kInt64, std::vector<std::string>{},
                                                std::move(vocabulary), num_oov_buckets,
                                                default_value);
}

absl::StatusOr<ColumnPtr> VocabularyFileColumn(std::string key, const std::string& path,
                                               std::optional<int64_t> vocabulary_size,
                                               int64_t num_oov_buckets, int64_t default_value,
                                               DType dtype, const io::Env& env) {
  absl::StatusOr<std::string> text = io::ReadWholeFile(env, path);
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        absl::StrCat("feature column '", key, "': cannot read vocabulary_file '",
                                     path, "': ", text.status().message()));
  }
  std::vector<std::string> lines;
  for (size_t start = 0; start < text->size() &&
                         (!vocabulary_size.has_value() ||
                          static_cast<int64_t>(lines.size()) < *vocabulary_size);) {
    size_t end = text->find('\n', start);
    if (end == std::string::npos) end = text->size();
    std::string line = text->substr(start, end - start);
    start = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) {  // TF: "Invalid content in <file>: empty line found"
      return Invalid(key, absl::StrCat(path, ":", lines.size() + 1, ": empty line in vocabulary_file"));
    }
    lines.push_back(std::move(line));
  }
  if (vocabulary_size.has_value() && static_cast<int64_t>(lines.size()) < *vocabulary_size) {
    return Invalid(key, absl::StrCat("vocabulary_size ", *vocabulary_size, " but '", path,
                                     "' has only ", lines.size(), " lines"));
  }
  std::vector<std::string> strings;
  std::vector<int64_t> ints;
  if (dtype == DType::kInt64) {
    for (size_t i = 0; i < lines.size(); ++i) {
      int64_t v;
      if (!absl::SimpleAtoi(lines[i], &v)) {
        return Invalid(key, absl::StrCat(path, ":", i + 1, ": '", lines[i], "' is not an int64"));
      }
      ints.push_back(v);
    }
  } else if (dtype == DType::kString) {
    strings = std::move(lines);
  } else {
    return Invalid(key, "vocabulary dtype must be string or int64");
  }
  const int64_t size = dtype == DType::kString ? strings.size() : ints.size();
  RETURN_IF_ERROR(CheckVocabArgs(key, size, num_oov_buckets, default_value));
  return std::make_shared<VocabularyColumnImpl>(ColumnType::kVocabularyFile, std::move(key), dtype,
                                                std::move(strings), std::move(ints),
                                                num_oov_buckets, default_value);
}

absl::StatusOr<ColumnPtr> HashBucketColumn(std::string key, int64_t hash_bucket_size, DType dtype) {
  if (key.empty()) return absl::InvalidArgumentError("hash bucket column: key must not be empty");
  if (hash_bucket_size < 1) return Invalid(key, "hash_bucket_size must be >= 1");
  if (dtype == DType::kFloat) return Invalid(key, "hash bucket columns need string or int64 values");
  return std::make_shared<HashBucketColumnImpl>(std::move(key), hash_bucket_size, dtype);
}

absl::StatusOr<ColumnPtr> IdentityColumn(std::string key, int64_t num_buckets,
                                         std::optional<int64_t> default_value) {
  if (key.empty()) return absl::InvalidArgumentError("identity column: key must not be empty");
  if (num_buckets < 1) return Invalid(key, "num_buckets must be >= 1");
  if (default_value.has_value() && (*default_value < 0 || *default_value >= num_buckets)) {
    return Invalid(key, absl::StrCat("default_value ", *default_value, " is outside [0, ", num_buckets, ")"));
  }
  return std::make_shared<IdentityColumnImpl>(std::move(key), num_buckets, default_value);
}

absl::StatusOr<ColumnPtr> CrossedColumn(std::vector<CrossKey> keys, int64_t hash_bucket_size) {
  if (keys.size() < 2) return absl::InvalidArgumentError("crossed column: needs at least 2 keys");
  if (hash_bucket_size < 1) return absl::InvalidArgumentError("crossed column: hash_bucket_size must be >= 1");
  std::vector<CrossKey> leaves;
  std::vector<std::string> names;
  for (CrossKey& key : keys) {
    if (auto* raw = std::get_if<std::string>(&key)) {
      if (raw->empty()) return absl::InvalidArgumentError("crossed column: empty key");
      names.push_back(*raw);
      leaves.push_back(std::move(key));
      continue;
    }
    ColumnPtr c = std::get<ColumnPtr>(key);
    RETURN_IF_ERROR(RequireCategorical(c, "crossed column"));
    if (c->type() == ColumnType::kHashBucket) {
      return absl::InvalidArgumentError(absl::StrCat(
          "crossed column: hashed column '", c->name(),
          "' is not supported; use its key directly (as TensorFlow requires)"));
    }
    if (c->type() == ColumnType::kWeightedCategorical) {
      return absl::InvalidArgumentError(
          absl::StrCat("crossed column: weighted column '", c->name(), "' can't be crossed"));
    }
    names.push_back(c->name());
    leaves.push_back(std::move(key));
  }
  // A crossed key contributes its own leaves (TF's _collect_leaf_level_keys).
  std::vector<CrossKey> flat;
  for (CrossKey& key : leaves) {
    if (auto* c = std::get_if<ColumnPtr>(&key); c != nullptr && (*c)->type() == ColumnType::kCrossed) {
      const auto* inner = static_cast<const CrossedColumnImpl*>(c->get());
      for (const CrossKey& k : inner->leaves()) flat.push_back(k);
    } else {
      flat.push_back(std::move(key));
    }
  }
  std::sort(names.begin(), names.end());
  return std::make_shared<CrossedColumnImpl>(absl::StrJoin(names, "_X_"), std::move(flat),
                                             hash_bucket_size);
}

absl::StatusOr<ColumnPtr> IndicatorColumn(ColumnPtr categorical) {
  RETURN_IF_ERROR(RequireCategorical(categorical, "indicator column"));
  return std::make_shared<IndicatorColumnImpl>(std::move(categorical));
}

absl::StatusOr<ColumnPtr> EmbeddingColumn(ColumnPtr categorical, int64_t dimension, Combiner combiner,
                                          std::optional<float> max_norm, bool trainable) {
  RETURN_IF_ERROR(RequireCategorical(categorical, "embedding column"));
  if (dimension < 1) return Invalid(categorical->name() + "_embedding", "dimension must be >= 1");
  if (max_norm.has_value() && !(*max_norm > 0)) {
    return Invalid(categorical->name() + "_embedding", "max_norm must be > 0");
  }
  EmbeddingSpec spec;
  spec.categorical = std::move(categorical);
  spec.dimension = dimension;
  spec.combiner = combiner;
  spec.max_norm = max_norm;
  spec.trainable = trainable;
  return std::make_shared<EmbeddingColumnImpl>(std::move(spec));
}

const EmbeddingSpec* GetEmbeddingSpec(const FeatureColumn& column) {
  if (column.type() != ColumnType::kEmbedding) return nullptr;
  return &static_cast<const EmbeddingColumnImpl&>(column).spec();
}

absl::StatusOr<ColumnPtr> WeightedCategoricalColumn(ColumnPtr categorical,
                                                    std::string weight_feature_key) {
  RETURN_IF_ERROR(RequireCategorical(categorical, "weighted categorical column"));
  if (weight_feature_key.empty()) {
    return absl::InvalidArgumentError("weighted categorical column: weight_feature_key must not be empty");
  }
  if (categorical->type() == ColumnType::kWeightedCategorical) {
    return absl::InvalidArgumentError("weighted categorical column: source is already weighted");
  }
  return std::make_shared<WeightedColumnImpl>(std::move(categorical), std::move(weight_feature_key));
}

absl::StatusOr<std::vector<ColumnPtr>> SortedDenseColumns(std::vector<ColumnPtr> columns) {
  for (const ColumnPtr& c : columns) {
    if (c == nullptr) return absl::InvalidArgumentError("DenseFeatures: null column");
    if (!c->is_dense()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "DenseFeatures: '", c->name(),
          "' is categorical; wrap it in an indicator_column or embedding_column"));
    }
  }
  std::stable_sort(columns.begin(), columns.end(),
                   [](const ColumnPtr& a, const ColumnPtr& b) { return a->name() < b->name(); });
  for (size_t i = 1; i < columns.size(); ++i) {
    if (columns[i]->name() == columns[i - 1]->name()) {
      return absl::InvalidArgumentError(
          absl::StrCat("DenseFeatures: duplicate feature column name '", columns[i]->name(), "'"));
    }
  }
  return columns;
}

int64_t DenseFeaturesWidth(const std::vector<ColumnPtr>& columns) {
  int64_t w = 0;
  for (const ColumnPtr& c : columns) w += c->dense_width();
  return w;
}

absl::StatusOr<RowMatrixXf> DenseFeatures(const std::vector<ColumnPtr>& columns,
                                          const FeatureMap& features, const EmbeddingTables* tables) {
  ASSIGN_OR_RETURN(std::vector<ColumnPtr> sorted, SortedDenseColumns(columns));
  std::vector<RowMatrixXf> parts;
  int64_t batch = -1;
  for (const ColumnPtr& c : sorted) {
    ASSIGN_OR_RETURN(RowMatrixXf m, c->Dense(features, tables));
    if (batch >= 0 && m.rows() != batch) {
      return absl::InvalidArgumentError(absl::StrCat("DenseFeatures: column '", c->name(), "' has ",
                                                     m.rows(), " examples, others have ", batch));
    }
    batch = m.rows();
    parts.push_back(std::move(m));
  }
  RowMatrixXf out(std::max<int64_t>(batch, 0), DenseFeaturesWidth(sorted));
  int64_t col = 0;
  for (const RowMatrixXf& m : parts) {
    out.middleCols(col, m.cols()) = m;
    col += m.cols();
  }
  return out;
}

}  // namespace estuary
