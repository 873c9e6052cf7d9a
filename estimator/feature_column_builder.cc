#include "estimator/feature_column_builder.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/did_you_mean.h"
#include "common/status_macros.h"

namespace estuary {

using nlohmann::json;

class FeatureColumnSetBuilder {
 public:
  FeatureColumnSetBuilder(const json& specs, std::string base_dir, std::string path)
      : specs_(specs), base_dir_(std::move(base_dir)), path_(std::move(path)) {}

  absl::StatusOr<FeatureColumnSet> Build() {
    if (specs_.is_null()) return FeatureColumnSet();
    if (!specs_.is_array()) return absl::InvalidArgumentError(absl::StrCat(path_, ": expected an array"));
    const size_t n = specs_.size();
    built_.assign(n, nullptr);
    state_.assign(n, 0);
    // Reference names known before building: explicit names and keys.
    for (size_t i = 0; i < n; ++i) {
      const json& s = specs_[i];
      if (!s.is_object()) return Error(i, "", "expected an object");
      std::string name;
      if (s.contains("name") && s["name"].is_string()) {
        name = s["name"].get<std::string>();
        if (name.empty()) return Error(i, "name", "must not be empty");
      } else if (s.contains("key") && s["key"].is_string()) {
        name = s["key"].get<std::string>();
      } else {
        continue;
      }
      if (auto [it, inserted] = early_.emplace(name, i); !inserted) {
        return Error(i, s.contains("name") ? "name" : "key",
                     absl::StrCat("duplicate column name '", name, "' (also ", path_, "[",
                                  it->second, "])"));
      }
    }
    for (size_t i = 0; i < n; ++i) RETURN_IF_ERROR(BuildAt(i).status());
    FeatureColumnSet set;
    for (size_t i = 0; i < n; ++i) {
      std::string name = RefName(i);
      if (auto [it, inserted] = set.by_name_.emplace(name, built_[i]); !inserted) {
        return Error(i, "name", absl::StrCat("duplicate column name '", name, "'"));
      }
      set.columns_.push_back(built_[i]);
      set.names_.push_back(std::move(name));
    }
    return set;
  }

 private:
  std::string RefName(size_t i) const {
    const json& s = specs_[i];
    if (s.contains("name")) return s["name"].get<std::string>();
    return built_[i]->name();
  }

  absl::Status Error(size_t i, absl::string_view field, absl::string_view msg) const {
    std::string p = absl::StrCat(path_, "[", i, "]");
    if (!field.empty()) absl::StrAppend(&p, ".", field);
    return absl::InvalidArgumentError(absl::StrCat(p, ": ", msg));
  }

  // Wraps an error from a column factory with the entry's path.
  absl::Status Wrap(size_t i, const absl::Status& st) const {
    return absl::Status(st.code(), absl::StrCat(path_, "[", i, "]: ", st.message()));
  }

  std::vector<std::string> KnownNames() const {
    std::vector<std::string> names;
    for (const auto& [name, idx] : early_) names.push_back(name);
    for (size_t i = 0; i < built_.size(); ++i) {
      if (built_[i] != nullptr && !specs_[i].contains("name")) names.push_back(built_[i]->name());
    }
    return names;
  }

  // The entry index a reference names, or -1.
  int64_t Resolve(const std::string& ref) const {
    if (auto it = early_.find(ref); it != early_.end()) return static_cast<int64_t>(it->second);
    for (size_t i = 0; i < built_.size(); ++i) {
      if (built_[i] != nullptr && !specs_[i].contains("name") && built_[i]->name() == ref) {
        return static_cast<int64_t>(i);
      }
    }
    return -1;
  }

  absl::StatusOr<ColumnPtr> Reference(size_t i, const std::string& field, const std::string& ref) {
    const int64_t j = Resolve(ref);
    if (j < 0) {
      return Error(i, field, absl::StrCat("unknown feature column '", ref, "'",
                                          DidYouMean(ref, KnownNames())));
    }
    if (state_[j] == 1) {
      return Error(i, field, absl::StrCat("feature column '", ref, "' refers back to itself"));
    }
    return BuildAt(static_cast<size_t>(j));
  }

  absl::StatusOr<std::string> String(size_t i, const char* field, bool required = true) const {
    const json& s = specs_[i];
    if (!s.contains(field)) {
      if (required) return Error(i, field, "is required");
      return std::string();
    }
    if (!s[field].is_string()) return Error(i, field, "expected a string");
    return s[field].get<std::string>();
  }

  absl::StatusOr<int64_t> Int(size_t i, const char* field, std::optional<int64_t> def,
                              int64_t min) const {
    const json& s = specs_[i];
    if (!s.contains(field)) {
      if (!def.has_value()) return Error(i, field, "is required");
      return *def;
    }
    if (!s[field].is_number_integer()) return Error(i, field, "expected an integer");
    const int64_t v = s[field].get<int64_t>();
    if (v < min) return Error(i, field, absl::StrCat("must be >= ", min, ", got ", v));
    return v;
  }

  absl::StatusOr<DType> ValueDType(size_t i, DType def) const {
    const json& s = specs_[i];
    if (!s.contains("dtype")) return def;
    const std::string d = s["dtype"].is_string() ? s["dtype"].get<std::string>() : "";
    if (d == "string") return DType::kString;
    if (d == "int64" || d == "int32") return DType::kInt64;
    if (d == "float32" || d == "float64") return DType::kFloat;
    return Error(i, "dtype", absl::StrCat("unsupported dtype '", d, "'"));
  }

  absl::StatusOr<ColumnPtr> BuildAt(size_t i) {
    if (built_[i] != nullptr) return built_[i];
    state_[i] = 1;
    absl::StatusOr<ColumnPtr> c = BuildEntry(i);
    state_[i] = 2;
    if (!c.ok()) return c.status();
    built_[i] = *c;
    return *c;
  }

  absl::StatusOr<ColumnPtr> BuildEntry(size_t i) {
    const json& s = specs_[i];
    ASSIGN_OR_RETURN(std::string type, String(i, "type"));
    absl::StatusOr<ColumnPtr> made;
    if (type == "numeric") {
      ASSIGN_OR_RETURN(std::string key, String(i, "key"));
      std::vector<int64_t> shape = {1};
      if (s.contains("shape")) {
        shape.clear();
        for (size_t d = 0; d < s["shape"].size(); ++d) {
          if (!s["shape"][d].is_number_integer() || s["shape"][d].get<int64_t>() < 1) {
            return Error(i, absl::StrCat("shape[", d, "]"), "expected an integer >= 1");
          }
          shape.push_back(s["shape"][d].get<int64_t>());
        }
        if (shape.empty()) return Error(i, "shape", "must not be empty");
      }
      std::optional<float> def;
      if (s.contains("default_value")) {
        if (!s["default_value"].is_number()) return Error(i, "default_value", "expected a number");
        def = s["default_value"].get<float>();
      }
      std::optional<Normalizer> norm;
      if (s.contains("normalizer")) {
        const json& nj = s["normalizer"];
        if (!nj.is_object()) return Error(i, "normalizer", "expected {\"mean\": m, \"stddev\": s}");
        for (const auto& [k, v] : nj.items()) {
          if (k != "mean" && k != "stddev") {
            return Error(i, absl::StrCat("normalizer.", k),
                         absl::StrCat("unknown key", DidYouMean(k, {"mean", "stddev"})));
          }
          if (!v.is_number()) return Error(i, absl::StrCat("normalizer.", k), "expected a number");
        }
        norm = Normalizer{nj.value("mean", 0.0), nj.value("stddev", 1.0)};
        if (norm->stddev == 0.0) return Error(i, "normalizer.stddev", "must not be 0");
      }
      made = NumericColumn(key, shape, def, norm);
    } else if (type == "bucketized") {
      ASSIGN_OR_RETURN(std::string src, String(i, "source_column"));
      ASSIGN_OR_RETURN(ColumnPtr source, Reference(i, "source_column", src));
      if (source->type() != ColumnType::kNumeric) {
        return Error(i, "source_column", absl::StrCat("'", src, "' is not a numeric column"));
      }
      if (!s.contains("boundaries")) return Error(i, "boundaries", "is required");
      std::vector<float> b;
      for (const json& v : s["boundaries"]) {
        if (!v.is_number()) return Error(i, "boundaries", "expected numbers");
        b.push_back(v.get<float>());
      }
      for (size_t k = 1; k < b.size(); ++k) {
        if (!(b[k - 1] < b[k])) {
          return Error(i, absl::StrCat("boundaries[", k, "]"), "boundaries must be sorted ascending");
        }
      }
      made = BucketizedColumn(source, b);
    } else if (type == "categorical_with_vocabulary_list" ||
               type == "categorical_with_vocabulary_file") {
      ASSIGN_OR_RETURN(std::string key, String(i, "key"));
      ASSIGN_OR_RETURN(int64_t oov, Int(i, "num_oov_buckets", 0, 0));
      ASSIGN_OR_RETURN(int64_t def, Int(i, "default_value", -1, -1));
      ASSIGN_OR_RETURN(DType dtype, ValueDType(i, DType::kString));
      if (dtype == DType::kFloat) return Error(i, "dtype", "a vocabulary needs string or int64 values");
      if (oov > 0 && def != -1) {
        return Error(i, "default_value", "can't set both num_oov_buckets and default_value");
      }
      if (type == "categorical_with_vocabulary_list") {
        if (!s.contains("vocabulary_list")) return Error(i, "vocabulary_list", "is required");
        const json& vl = s["vocabulary_list"];
        if (!vl.is_array() || vl.empty()) return Error(i, "vocabulary_list", "expected a non-empty array");
        if (dtype == DType::kString) {
          std::vector<std::string> vocab;
          for (size_t k = 0; k < vl.size(); ++k) {
            if (!vl[k].is_string()) return Error(i, absl::StrCat("vocabulary_list[", k, "]"), "expected a string");
            vocab.push_back(vl[k].get<std::string>());
          }
          made = VocabularyListColumn(key, vocab, oov, def);
        } else {
          std::vector<int64_t> vocab;
          for (size_t k = 0; k < vl.size(); ++k) {
            int64_t v = 0;
            if (vl[k].is_number_integer()) {
              v = vl[k].get<int64_t>();
            } else if (!vl[k].is_string() || !absl::SimpleAtoi(vl[k].get<std::string>(), &v)) {
              return Error(i, absl::StrCat("vocabulary_list[", k, "]"), "expected an int64");
            }
            vocab.push_back(v);
          }
          made = Int64VocabularyListColumn(key, vocab, oov, def);
        }
      } else {
        ASSIGN_OR_RETURN(std::string file, String(i, "vocabulary_file"));
        if (file.empty()) return Error(i, "vocabulary_file", "must not be empty");
        if (!base_dir_.empty() && file[0] != '/') file = absl::StrCat(base_dir_, "/", file);
        std::optional<int64_t> size;
        if (s.contains("vocabulary_size")) {
          ASSIGN_OR_RETURN(int64_t v, Int(i, "vocabulary_size", std::nullopt, 1));
          size = v;
        }
        made = VocabularyFileColumn(key, file, size, oov, def, dtype);
      }
    } else if (type == "categorical_with_hash_bucket") {
      ASSIGN_OR_RETURN(std::string key, String(i, "key"));
      ASSIGN_OR_RETURN(int64_t size, Int(i, "hash_bucket_size", std::nullopt, 1));
      ASSIGN_OR_RETURN(DType dtype, ValueDType(i, DType::kString));
      if (dtype == DType::kFloat) return Error(i, "dtype", "hash buckets need string or int64 values");
      made = HashBucketColumn(key, size, dtype);
    } else if (type == "categorical_with_identity") {
      ASSIGN_OR_RETURN(std::string key, String(i, "key"));
      ASSIGN_OR_RETURN(int64_t nb, Int(i, "num_buckets", std::nullopt, 1));
      std::optional<int64_t> def;
      if (s.contains("default_value")) {
        ASSIGN_OR_RETURN(int64_t v, Int(i, "default_value", std::nullopt, 0));
        if (v >= nb) return Error(i, "default_value", absl::StrCat("must be < num_buckets (", nb, ")"));
        def = v;
      }
      made = IdentityColumn(key, nb, def);
    } else if (type == "crossed") {
      if (!s.contains("keys") || !s["keys"].is_array() || s["keys"].size() < 2) {
        return Error(i, "keys", "expected an array of at least 2 keys");
      }
      ASSIGN_OR_RETURN(int64_t size, Int(i, "hash_bucket_size", std::nullopt, 1));
      std::vector<CrossKey> keys;
      for (size_t k = 0; k < s["keys"].size(); ++k) {
        const std::string field = absl::StrCat("keys[", k, "]");
        if (!s["keys"][k].is_string()) return Error(i, field, "expected a string");
        const std::string ref = s["keys"][k].get<std::string>();
        const int64_t j = Resolve(ref);
        bool is_column = false;
        if (j >= 0) {
          const json& sj = specs_[j];
          const bool named = sj.contains("name") && sj["name"] == ref;
          const std::string jt = sj.value("type", "");
          is_column = named || jt == "bucketized" || jt == "crossed";
        }
        if (!is_column) {
          keys.emplace_back(ref);
          continue;
        }
        ASSIGN_OR_RETURN(ColumnPtr c, Reference(i, field, ref));
        if (!c->is_categorical()) {
          return Error(i, field, absl::StrCat("'", ref, "' is not a categorical column"));
        }
        if (c->type() == ColumnType::kHashBucket) {
          return Error(i, field,
                       absl::StrCat("'", ref, "' is a hash bucket column, which can't be crossed; "
                                    "cross its key '", c->name(), "' instead (as in TensorFlow)"));
        }
        keys.emplace_back(c);
      }
      made = CrossedColumn(keys, size);
    } else if (type == "indicator" || type == "embedding" || type == "weighted_categorical") {
      ASSIGN_OR_RETURN(std::string ref, String(i, "categorical_column"));
      ASSIGN_OR_RETURN(ColumnPtr cat, Reference(i, "categorical_column", ref));
      if (!cat->is_categorical()) {
        return Error(i, "categorical_column", absl::StrCat("'", ref, "' is not a categorical column"));
      }
      if (type == "indicator") {
        made = IndicatorColumn(cat);
      } else if (type == "embedding") {
        ASSIGN_OR_RETURN(int64_t dim, Int(i, "dimension", std::nullopt, 1));
        Combiner combiner = Combiner::kMean;
        if (s.contains("combiner")) {
          ASSIGN_OR_RETURN(std::string cs, String(i, "combiner"));
          absl::StatusOr<Combiner> c = ParseCombiner(cs);
          if (!c.ok()) return Error(i, "combiner", c.status().message());
          combiner = *c;
        }
        std::optional<float> max_norm;
        if (s.contains("max_norm")) {
          if (!s["max_norm"].is_number() || s["max_norm"].get<double>() <= 0) {
            return Error(i, "max_norm", "expected a number > 0");
          }
          max_norm = s["max_norm"].get<float>();
        }
        bool trainable = true;
        if (s.contains("trainable")) {
          if (!s["trainable"].is_boolean()) return Error(i, "trainable", "expected true or false");
          trainable = s["trainable"].get<bool>();
        }
        made = EmbeddingColumn(cat, dim, combiner, max_norm, trainable);
      } else {
        ASSIGN_OR_RETURN(std::string wkey, String(i, "weight_feature_key"));
        if (wkey.empty()) return Error(i, "weight_feature_key", "must not be empty");
        made = WeightedCategoricalColumn(cat, wkey);
      }
    } else {
      return Error(i, "type", absl::StrCat("unknown feature column type '", type, "'"));
    }
    if (!made.ok()) return Wrap(i, made.status());
    return *made;
  }

  const json& specs_;
  std::string base_dir_;
  std::string path_;
  std::map<std::string, size_t> early_;
  std::vector<ColumnPtr> built_;
  std::vector<int> state_;  // 0 new, 1 building, 2 done
};

std::vector<ColumnPtr> FeatureColumnSet::DenseColumns() const {
  std::vector<ColumnPtr> out;
  for (const ColumnPtr& c : columns_) {
    if (c->is_dense()) out.push_back(c);
  }
  return out;
}

absl::StatusOr<ColumnPtr> FeatureColumnSet::Find(absl::string_view name) const {
  auto it = by_name_.find(name);
  if (it != by_name_.end()) return it->second;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown feature column '", name, "'", DidYouMean(name, names_)));
}

absl::StatusOr<FeatureColumnSet> BuildFeatureColumns(const json& specs, const std::string& base_dir,
                                                     const std::string& path) {
  return FeatureColumnSetBuilder(specs, base_dir, path).Build();
}

absl::StatusOr<FeatureColumnSet> BuildFeatureColumns(const JobSpec& job) {
  std::string base_dir;
  if (const size_t slash = job.source.rfind('/'); slash != std::string::npos) {
    base_dir = job.source.substr(0, slash == 0 ? 1 : slash);
  }
  absl::StatusOr<FeatureColumnSet> set = BuildFeatureColumns(job.feature_columns, base_dir);
  if (!set.ok() && !job.source.empty()) {
    return absl::Status(set.status().code(), absl::StrCat(job.source, ": ", set.status().message()));
  }
  return set;
}

}  // namespace estuary
