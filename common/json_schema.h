// Declarative validation of user JSON (job files) with errors that carry the
// JSON path ("$.run_config.keep_checkpoint_max: expected an integer >= 0,
// got string \"5\"") and "did you mean" hints for unknown keys.
#ifndef ESTUARY_COMMON_JSON_SCHEMA_H_
#define ESTUARY_COMMON_JSON_SCHEMA_H_

#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace estuary {

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

// Validates `value` (an object) against `schema`. InvalidArgument naming the
// path (prefixed by `path`, e.g. "$") on the first problem found.
absl::Status ValidateJson(const nlohmann::json& value, const JsonSchema& schema,
                          const std::string& path);

// Parses JSON text; InvalidArgument "<source>:<line>:<column>: <what>" on a
// syntax error.
absl::StatusOr<nlohmann::json> ParseJsonText(absl::string_view text,
                                             absl::string_view source);

}  // namespace estuary

#endif  // ESTUARY_COMMON_JSON_SCHEMA_H_
