#include "common/json_schema.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/did_you_mean.h"
#include "common/status_macros.h"

namespace estuary {
namespace {

using json = nlohmann::json;

std::string KindName(JsonKind k) {
  switch (k) {
    case JsonKind::kString: return "a string";
    case JsonKind::kInt: return "an integer";
    case JsonKind::kNumber: return "a number";
    case JsonKind::kBool: return "true or false";
    case JsonKind::kObject: return "an object";
    case JsonKind::kArray: return "an array";
    case JsonKind::kStringOrObject: return "a string or an object";
    case JsonKind::kAny: return "a value";
    case JsonKind::kStringOrInt: return "a string or an integer";
  }
  return "?";
}

bool HasKind(const json& v, JsonKind k) {
  switch (k) {
    case JsonKind::kString: return v.is_string();
    case JsonKind::kInt: return v.is_number_integer();
    case JsonKind::kNumber: return v.is_number();
    case JsonKind::kBool: return v.is_boolean();
    case JsonKind::kObject: return v.is_object();
    case JsonKind::kArray: return v.is_array();
    case JsonKind::kStringOrObject: return v.is_string() || v.is_object();
    case JsonKind::kAny: return true;
    case JsonKind::kStringOrInt: return v.is_string() || v.is_number_integer();
  }
  return false;
}

std::string RangeText(const JsonField& f) {
  const bool has_min = f.min != -std::numeric_limits<double>::infinity();
  const bool has_max = f.max != std::numeric_limits<double>::infinity();
  if (has_min && has_max) return absl::StrCat(" in [", f.min, ", ", f.max, "]");
  if (has_min) return absl::StrCat(" >= ", f.min);
  if (has_max) return absl::StrCat(" <= ", f.max);
  return "";
}

absl::Status ValidateScalar(const json& v, JsonKind kind, const JsonField& f,
                            const JsonPath& where) {
  if (!HasKind(v, kind)) {
    return where.Error(
        absl::StrCat("expected ", KindName(kind), RangeText(f), ", got ", DescribeJson(v)));
  }
  if (v.is_number()) {
    const double d = v.get<double>();
    if (d < f.min || d > f.max) {
      return where.Error(
          absl::StrCat("expected ", KindName(kind), RangeText(f), ", got ", v.dump()));
    }
  }
  if (v.is_string() && !f.one_of.empty() &&
      std::find(f.one_of.begin(), f.one_of.end(), v.get<std::string>()) == f.one_of.end()) {
    return where.Error(absl::StrCat("'", v.get<std::string>(), "' is not allowed",
                                    DidYouMean(v.get<std::string>(), f.one_of)));
  }
  if (v.is_object() && f.schema != nullptr) {
    return ValidateJson(v, *f.schema, where);
  }
  return absl::OkStatus();
}

}  // namespace

JsonPath JsonPath::Key(absl::string_view key) const {
  return JsonPath(source_, absl::StrCat(path_, ".", key));
}

JsonPath JsonPath::Index(size_t i) const {
  return JsonPath(source_, absl::StrCat(path_, "[", i, "]"));
}

std::string JsonPath::ToString() const {
  return source_.empty() ? path_ : absl::StrCat(source_, ": ", path_);
}

absl::Status JsonPath::Error(absl::string_view message) const {
  return absl::InvalidArgumentError(absl::StrCat(ToString(), ": ", message));
}

absl::Status JsonPath::Wrap(const absl::Status& status) const {
  return absl::Status(status.code(), absl::StrCat(ToString(), ": ", status.message()));
}

bool IsSet(const json& object, const char* key) {
  return object.is_object() && object.contains(key) && !object[key].is_null();
}

std::vector<std::string> FieldNames(const JsonSchema& schema) {
  std::vector<std::string> names;
  for (const JsonField& f : schema.fields) names.push_back(f.name);
  return names;
}

std::string DescribeJson(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return absl::StrCat("string ", v.dump());
    case json::value_t::boolean: return absl::StrCat("boolean ", v.dump());
    default: return absl::StrCat("number ", v.dump());
  }
}

absl::Status ValidateJson(const json& value, const JsonSchema& schema,
                          const JsonPath& where) {
  if (!value.is_object()) {
    return where.Error(absl::StrCat("expected an object, got ", DescribeJson(value)));
  }
  const std::vector<std::string> names = FieldNames(schema);
  for (auto it = value.begin(); it != value.end(); ++it) {
    if (std::find(names.begin(), names.end(), it.key()) == names.end()) {
      return where.Key(it.key()).Error(absl::StrCat("unknown key", DidYouMean(it.key(), names)));
    }
  }
  for (const JsonField& f : schema.fields) {
    const JsonPath p = where.Key(f.name);
    if (!IsSet(value, f.name.c_str())) {
      if (f.required) {
        return p.Error(absl::StrCat("is required (", KindName(f.kind),
                                    f.help.empty() ? "" : ": ", f.help, ")"));
      }
      continue;
    }
    const json& v = value[f.name];
    if (f.kind != JsonKind::kArray) {
      RETURN_IF_ERROR(ValidateScalar(v, f.kind, f, p));
      continue;
    }
    if (!v.is_array()) {
      const std::string of = f.element == JsonKind::kStringOrInt
                                 ? "strings or integers"
                                 : absl::StrCat(KindName(f.element).substr(2), "s");
      return p.Error(absl::StrCat("expected an array of ", of, ", got ", DescribeJson(v)));
    }
    for (size_t i = 0; i < v.size(); ++i) {
      RETURN_IF_ERROR(ValidateScalar(v[i], f.element, f, p.Index(i)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<json> ParseJsonText(absl::string_view text, absl::string_view source) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    int line = 1, column = 1;
    for (size_t i = 0; i + 1 < e.byte && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 2: x"
    const size_t colon = what.find(": ");
    if (colon != std::string::npos) what = what.substr(colon + 2);
    return absl::InvalidArgumentError(
        absl::StrCat(source, ":", line, ":", column, ": invalid JSON: ", what));
  } catch (const json::exception& e) {
    // out_of_range: a number beyond double's range, "1e309" (found by
    // fuzz/job_spec_fuzzer; it used to escape as an exception and abort).
    std::string what = e.what();
    // "[json.exception.out_of_range.406] number overflow parsing '1e309'"
    const size_t bracket = what.find("] ");
    if (bracket != std::string::npos) what = what.substr(bracket + 2);
    return absl::InvalidArgumentError(absl::StrCat(source, ": invalid JSON: ", what));
  }
}

}  // namespace estuary
