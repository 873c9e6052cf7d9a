// Builds feature columns from a job file's `feature_columns` section, as
// common/job_config's ParseFeatureColumns typed and checked it.
//
// Each entry has a `type` and the fields of the matching tf.feature_column
// function (see feature_column.h and FeatureColumnTypes()). Entries reference each other by name:
// an entry's reference name is its `name` if set, else its TF name (the key
// for numeric and categorical columns, "<x>_indicator" etc. for derived ones).
//   bucketized.source_column         -> a numeric column
//   indicator/embedding/weighted_categorical.categorical_column
//                                    -> a categorical column
//   crossed.keys[i]                  -> a column by its `name`, or a derived
//                                       column (bucketized, crossed); any
//                                       other string is a raw feature key, as
//                                       a string key is in TF (a column's own
//                                       key means the raw feature too).
// References may point forward to named or keyed entries, and backward to
// any entry. What is left to check here needs the columns themselves: a
// reference that names no column (did-you-mean hint), one of the wrong kind,
// a cycle, two derived columns with one name, and the column factories' own
// rules (duplicate vocabulary entries). Errors are InvalidArgument from the
// entry's JsonPath: "job.json: $.feature_columns[3].source_column: ...".
//
// Integer vocabularies: `dtype` int64 (or int32) with `vocabulary_list`
// entries given as JSON integers or decimal strings.
#ifndef ESTUARY_ESTIMATOR_FEATURE_COLUMN_BUILDER_H_
#define ESTUARY_ESTIMATOR_FEATURE_COLUMN_BUILDER_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/job_spec.h"
#include "common/json_schema.h"
#include "estimator/feature_column.h"
#include "nlohmann/json.hpp"

namespace estuary {

class FeatureColumnSet {
 public:
  // Every column, in the order of the JSON array.
  const std::vector<ColumnPtr>& columns() const { return columns_; }
  // Reference names, parallel to columns().
  const std::vector<std::string>& names() const { return names_; }
  // The dense columns (numeric, bucketized, indicator, embedding) in JSON
  // order; DenseFeatures() sorts them into TF's order.
  std::vector<ColumnPtr> DenseColumns() const;
  // The linear (wide) part's default columns: categorical ones (incl.
  // bucketized and crossed) and plain numeric ones; indicator and embedding
  // wrappers feed the DNN.
  std::vector<ColumnPtr> LinearColumns() const;
  // A column by reference name; InvalidArgument with a did-you-mean hint.
  absl::StatusOr<ColumnPtr> Find(absl::string_view name) const;
  // The columns `names` selects by reference name (errors at where[i]), or
  // `fallback` when there is no list.
  absl::StatusOr<std::vector<ColumnPtr>> Select(
      const std::optional<std::vector<std::string>>& names, const JsonPath& where,
      std::vector<ColumnPtr> fallback) const;

 private:
  friend class FeatureColumnSetBuilder;
  std::vector<ColumnPtr> columns_;
  std::vector<std::string> names_;
  std::map<std::string, ColumnPtr, std::less<>> by_name_;
};

// Builds the columns of a parsed section.
absl::StatusOr<FeatureColumnSet> BuildFeatureColumns(
    const std::vector<FeatureColumnConfig>& configs);

// The job's feature_columns.
absl::StatusOr<FeatureColumnSet> BuildFeatureColumns(const JobSpec& job);

// For tools and tests: parses `specs` (a JSON array, or null for none) with
// ParseFeatureColumns, then builds. `path` roots error paths; a relative
// vocabulary_file is read relative to `base_dir` when that is not empty.
absl::StatusOr<FeatureColumnSet> BuildFeatureColumns(const nlohmann::json& specs,
                                                     const std::string& base_dir = "",
                                                     const std::string& path = "$.feature_columns");

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_FEATURE_COLUMN_BUILDER_H_
