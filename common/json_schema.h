// Declarative validation of user JSON (job files) with errors that carry the
// file and the JSON path ("job.json: $.run_config.keep_checkpoint_max:
// expected an integer >= 0, got string \"5\"") and "did you mean" hints for
// unknown keys. JsonPath is the one way such errors are made, by the parse
// and by the consumers of what it produced.
#ifndef ESTUARY_COMMON_JSON_SCHEMA_H_
#define ESTUARY_COMMON_JSON_SCHEMA_H_

#include <limits>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace estuary {

// Where a value sits in a JSON document: the document's name (a file; may be
// empty) and a JSONPath ("$.feature_columns[3].key"). Copyable value.
class JsonPath {
 public:
  JsonPath() = default;
  explicit JsonPath(std::string source, std::string path = "$")
      : source_(std::move(source)), path_(std::move(path)) {}

  JsonPath Key(absl::string_view key) const;  // $.a -> $.a.key
  JsonPath Index(size_t i) const;             // $.a -> $.a[i]

  const std::string& source() const { return source_; }
  const std::string& path() const { return path_; }
  // "job.json: $.a.b", or "$.a.b" without a source.
  std::string ToString() const;

  // InvalidArgument "<source>: <path>: <message>" (no source: "<path>:
  // <message>"). The one error helper for job-file values.
  absl::Status Error(absl::string_view message) const;
  // `status` (not OK) re-rooted here: same code, message prefixed as Error's.
  absl::Status Wrap(const absl::Status& status) const;

 private:
  std::string source_;
  std::string path_ = "$";
};

// kAny accepts every value (the consumer checks it, e.g. CSV column defaults
// whose JSON type gives the column type).
enum class JsonKind {
  kString, kInt, kNumber, kBool, kObject, kArray, kStringOrObject, kStringOrInt, kAny
};

struct JsonSchema;

struct JsonField {
  std::string name;
  JsonKind kind = JsonKind::kString;
  bool required = false;
  // For kObject / kStringOrObject fields: the object's schema (null: any keys).
  // For kArray fields: the schema of object elements.
  const JsonSchema* schema = nullptr;
  // For kArray: the kind every element must have.
  JsonKind element = JsonKind::kString;
  // For kString: allowed values (empty: any).
  std::vector<std::string> one_of;
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  std::string help;  // one line, for error messages and docs
};

struct JsonSchema {
  std::vector<JsonField> fields;
};

// Describes a value for error messages: `string "x"`, `an array`, ...
std::string DescribeJson(const nlohmann::json& v);

// The names of a schema's fields (for did-you-mean hints).
std::vector<std::string> FieldNames(const JsonSchema& schema);

// Validates `value` (an object) against `schema`: unknown keys first (with a
// did-you-mean hint), then each field in schema order; a null value counts
// as absent. InvalidArgument from `where` on the first problem found.
absl::Status ValidateJson(const nlohmann::json& value, const JsonSchema& schema,
                          const JsonPath& where);

// Whether `object` has `key` with a non-null value (null means "not set", as
// None does in TensorFlow).
bool IsSet(const nlohmann::json& object, const char* key);

// Reads a validated field into *out when it is set; leaves *out otherwise.
template <typename T>
void ReadJson(const nlohmann::json& object, const char* key, T* out) {
  if (IsSet(object, key)) *out = object[key].get<T>();
}
template <typename T>
void ReadJson(const nlohmann::json& object, const char* key, std::optional<T>* out) {
  if (IsSet(object, key)) *out = object[key].get<T>();
}

// Parses JSON text; InvalidArgument "<source>:<line>:<column>: <what>" on a
// syntax error.
absl::StatusOr<nlohmann::json> ParseJsonText(absl::string_view text,
                                             absl::string_view source);

}  // namespace estuary

#endif  // ESTUARY_COMMON_JSON_SCHEMA_H_
