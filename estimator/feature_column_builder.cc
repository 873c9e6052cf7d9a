#include "estimator/feature_column_builder.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/did_you_mean.h"
#include "common/status_macros.h"

namespace estuary {

using nlohmann::json;
using Kind = FeatureColumnKind;

class FeatureColumnSetBuilder {
 public:
  explicit FeatureColumnSetBuilder(const std::vector<FeatureColumnConfig>& configs)
      : configs_(configs) {}

  absl::StatusOr<FeatureColumnSet> Build() {
    const size_t n = configs_.size();
    built_.assign(n, nullptr);
    state_.assign(n, 0);
    // Reference names known before building: explicit names and keys
    // (unique: ParseFeatureColumns checked).
    for (size_t i = 0; i < n; ++i) {
      const FeatureColumnConfig& c = configs_[i];
      const std::string& name = c.name.empty() ? c.key : c.name;
      if (!name.empty()) early_.emplace(name, i);
    }
    for (size_t i = 0; i < n; ++i) RETURN_IF_ERROR(BuildAt(i).status());
    FeatureColumnSet set;
    for (size_t i = 0; i < n; ++i) {
      std::string name = configs_[i].name.empty() ? built_[i]->name() : configs_[i].name;
      if (auto [it, inserted] = set.by_name_.emplace(name, built_[i]); !inserted) {
        return configs_[i].where.Key("name").Error(
            absl::StrCat("duplicate column name '", name, "'"));
      }
      set.columns_.push_back(built_[i]);
      set.names_.push_back(std::move(name));
    }
    return set;
  }

 private:
  std::vector<std::string> KnownNames() const {
    std::vector<std::string> names;
    for (const auto& [name, idx] : early_) names.push_back(name);
    for (size_t i = 0; i < built_.size(); ++i) {
      if (built_[i] != nullptr && configs_[i].name.empty()) names.push_back(built_[i]->name());
    }
    return names;
  }

  // The entry index a reference names, or -1.
  int64_t Resolve(const std::string& ref) const {
    if (auto it = early_.find(ref); it != early_.end()) return static_cast<int64_t>(it->second);
    for (size_t i = 0; i < built_.size(); ++i) {
      if (built_[i] != nullptr && configs_[i].name.empty() && built_[i]->name() == ref) {
        return static_cast<int64_t>(i);
      }
    }
    return -1;
  }

  absl::StatusOr<ColumnPtr> Reference(size_t i, absl::string_view field, const std::string& ref) {
    const JsonPath where = configs_[i].where.Key(field);
    const int64_t j = Resolve(ref);
    if (j < 0) {
      return where.Error(
          absl::StrCat("unknown feature column '", ref, "'", DidYouMean(ref, KnownNames())));
    }
    if (state_[j] == 1) {
      return where.Error(absl::StrCat("feature column '", ref, "' refers back to itself"));
    }
    return BuildAt(static_cast<size_t>(j));
  }

  // A reference to a categorical column.
  absl::StatusOr<ColumnPtr> Categorical(size_t i, absl::string_view field,
                                        const std::string& ref) {
    ASSIGN_OR_RETURN(ColumnPtr c, Reference(i, field, ref));
    if (!c->is_categorical()) {
      return configs_[i].where.Key(field).Error(
          absl::StrCat("'", ref, "' is not a categorical column"));
    }
    return c;
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

  // A crossed column's key: a column (named explicitly, or a derived
  // bucketized/crossed column) or a raw feature key.
  absl::StatusOr<CrossKey> CrossKeyAt(size_t i, size_t k) {
    const std::string& ref = configs_[i].keys[k];
    const int64_t j = Resolve(ref);
    const bool is_column = j >= 0 && (configs_[j].name == ref ||
                                      configs_[j].kind == Kind::kBucketized ||
                                      configs_[j].kind == Kind::kCrossed);
    if (!is_column) return CrossKey(ref);
    const std::string field = absl::StrCat("keys[", k, "]");
    ASSIGN_OR_RETURN(ColumnPtr c, Categorical(i, field, ref));
    if (c->type() == ColumnType::kHashBucket) {
      return configs_[i].where.Key(field).Error(absl::StrCat(
          "'", ref, "' is a hash bucket column, which can't be crossed; cross its key '",
          c->name(), "' instead (as in TensorFlow)"));
    }
    return CrossKey(c);
  }

  absl::StatusOr<ColumnPtr> BuildEntry(size_t i) {
    const FeatureColumnConfig& c = configs_[i];
    absl::StatusOr<ColumnPtr> made;
    switch (c.kind) {
      case Kind::kNumeric: {
        std::optional<Normalizer> norm;
        if (c.normalizer.has_value()) norm = Normalizer{c.normalizer->mean, c.normalizer->stddev};
        made = NumericColumn(c.key, c.shape, c.default_value, norm);
        break;
      }
      case Kind::kBucketized: {
        ASSIGN_OR_RETURN(ColumnPtr source, Reference(i, "source_column", c.source_column));
        if (source->type() != ColumnType::kNumeric) {
          return c.where.Key("source_column")
              .Error(absl::StrCat("'", c.source_column, "' is not a numeric column"));
        }
        made = BucketizedColumn(source, c.boundaries);
        break;
      }
      case Kind::kVocabularyList:
        made = c.value_dtype == DType::kString
                   ? VocabularyListColumn(c.key, c.string_vocabulary, c.num_oov_buckets,
                                          c.default_id)
                   : Int64VocabularyListColumn(c.key, c.int_vocabulary, c.num_oov_buckets,
                                               c.default_id);
        break;
      case Kind::kVocabularyFile:
        made = VocabularyFileColumn(c.key, c.vocabulary_file, c.vocabulary_size,
                                    c.num_oov_buckets, c.default_id, c.value_dtype);
        break;
      case Kind::kHashBucket:
        made = HashBucketColumn(c.key, c.hash_bucket_size, c.value_dtype);
        break;
      case Kind::kIdentity:
        made = IdentityColumn(c.key, c.num_buckets, c.identity_default);
        break;
      case Kind::kCrossed: {
        std::vector<CrossKey> keys;
        for (size_t k = 0; k < c.keys.size(); ++k) {
          ASSIGN_OR_RETURN(CrossKey key, CrossKeyAt(i, k));
          keys.push_back(std::move(key));
        }
        made = CrossedColumn(keys, c.hash_bucket_size);
        break;
      }
      case Kind::kIndicator: {
        ASSIGN_OR_RETURN(ColumnPtr cat, Categorical(i, "categorical_column", c.categorical_column));
        made = IndicatorColumn(cat);
        break;
      }
      case Kind::kEmbedding: {
        ASSIGN_OR_RETURN(ColumnPtr cat, Categorical(i, "categorical_column", c.categorical_column));
        absl::StatusOr<Combiner> combiner = ParseCombiner(c.combiner);
        if (!combiner.ok()) return c.where.Key("combiner").Error(combiner.status().message());
        made = EmbeddingColumn(cat, c.dimension, *combiner, c.max_norm, c.trainable);
        break;
      }
      case Kind::kWeightedCategorical: {
        ASSIGN_OR_RETURN(ColumnPtr cat, Categorical(i, "categorical_column", c.categorical_column));
        made = WeightedCategoricalColumn(cat, c.weight_feature_key);
        break;
      }
    }
    if (!made.ok()) return c.where.Wrap(made.status());
    return *made;
  }

  const std::vector<FeatureColumnConfig>& configs_;
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

std::vector<ColumnPtr> FeatureColumnSet::LinearColumns() const {
  std::vector<ColumnPtr> out;
  for (const ColumnPtr& c : columns_) {
    if (GetEmbeddingSpec(*c) != nullptr || c->type() == ColumnType::kIndicator) continue;
    out.push_back(c);
  }
  return out;
}

absl::StatusOr<std::vector<ColumnPtr>> FeatureColumnSet::Select(
    const std::optional<std::vector<std::string>>& names, const JsonPath& where,
    std::vector<ColumnPtr> fallback) const {
  if (!names.has_value()) return fallback;
  std::vector<ColumnPtr> out;
  for (size_t i = 0; i < names->size(); ++i) {
    absl::StatusOr<ColumnPtr> c = Find((*names)[i]);
    if (!c.ok()) return where.Index(i).Error(c.status().message());
    out.push_back(*c);
  }
  return out;
}

absl::StatusOr<ColumnPtr> FeatureColumnSet::Find(absl::string_view name) const {
  auto it = by_name_.find(name);
  if (it != by_name_.end()) return it->second;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown feature column '", name, "'", DidYouMean(name, names_)));
}

absl::StatusOr<FeatureColumnSet> BuildFeatureColumns(
    const std::vector<FeatureColumnConfig>& configs) {
  return FeatureColumnSetBuilder(configs).Build();
}

absl::StatusOr<FeatureColumnSet> BuildFeatureColumns(const JobSpec& job) {
  return BuildFeatureColumns(job.feature_columns);
}

absl::StatusOr<FeatureColumnSet> BuildFeatureColumns(const json& specs, const std::string& base_dir,
                                                     const std::string& path) {
  ASSIGN_OR_RETURN(std::vector<FeatureColumnConfig> configs,
                   ParseFeatureColumns(specs, JsonPath("", path), base_dir));
  return BuildFeatureColumns(configs);
}

}  // namespace estuary
