#include "estimator/data/csv_parser.h"

#include <cerrno>
#include <cstdlib>
#include <limits>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace estuary {
namespace {

using json = nlohmann::json;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

absl::string_view Strip(absl::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Like TF's strings::safe_strto64: optional spaces, optional '-', digits.
bool ParseInt64(absl::string_view text, int64_t* out) {
  absl::string_view s = Strip(text);
  bool negative = false;
  if (!s.empty() && s.front() == '-') {
    negative = true;
    s.remove_prefix(1);
  }
  if (s.empty()) return false;
  uint64_t v = 0;
  const uint64_t limit = negative ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const uint64_t d = c - '0';
    if (v > (limit - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = negative ? static_cast<int64_t>(0 - v) : static_cast<int64_t>(v);
  return true;
}

bool ParseFloat(absl::string_view text, float* out) {
  const std::string s(Strip(text));
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const float v = strtof(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return false;
  *out = v;  // out of range: +-inf or a denormal/0, like TF's conversion
  return true;
}

std::string Quote(absl::string_view s) {
  constexpr size_t kMax = 40;
  if (s.size() > kMax) return absl::StrCat("'", s.substr(0, kMax), "...'");
  return absl::StrCat("'", s, "'");
}

const char* TypeWord(DType t) {
  switch (t) {
    case DType::kFloat: return "a float";
    case DType::kInt64: return "an int64";
    case DType::kString: return "a string";
  }
  return "?";
}

}  // namespace

CsvColumn CsvColumnFromDefault(std::string name, const CsvColumnDefault& d) {
  CsvColumn c;
  c.name = std::move(name);
  c.dtype = d.dtype;
  c.required = d.required;
  c.float_default = d.float_default;
  c.int_default = d.int_default;
  c.string_default = d.string_default;
  return c;
}

absl::StatusOr<CsvColumn> CsvColumnFromJson(const std::string& name, const json& value,
                                            const std::string& path) {
  ASSIGN_OR_RETURN(CsvColumnDefault d, ParseCsvColumnDefault(value, JsonPath("", path)));
  return CsvColumnFromDefault(name, d);
}

absl::Status SplitCsvRecordInto(absl::string_view record, char delim,
                                std::vector<std::string>* fields) {
  size_t count = 0;  // fields of this record so far; the rest of *fields is reused
  size_t i = 0;
  const size_t n = record.size();
  while (true) {
    const int index = static_cast<int>(count);
    if (count == fields->size()) fields->emplace_back();
    std::string& field = (*fields)[count++];
    field.clear();
    if (i < n && record[i] == '"') {
      ++i;
      while (true) {
        if (i >= n) {
          return absl::InvalidArgumentError(
              absl::StrCat("field ", index, ": quoted field is not closed"));
        }
        if (record[i] == '"') {
          if (i + 1 < n && record[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field.push_back(record[i++]);
      }
      if (i < n && record[i] != delim) {
        return absl::InvalidArgumentError(absl::StrCat(
            "field ", index, ": text after a closing quote (a quote inside a quoted field "
                             "must be doubled)"));
      }
    } else {
      const size_t begin = i;
      while (i < n && record[i] != delim) {
        const char c = record[i];
        if (c == '"' || c == '\n' || c == '\r') {
          return absl::InvalidArgumentError(absl::StrCat(
              "field ", index, ": unquoted field contains a ",
              c == '"' ? "quote" : "line break", " (quote the field; double inner quotes)"));
        }
        ++i;
      }
      field.assign(record.data() + begin, i - begin);
    }
    if (i >= n) break;
    ++i;  // the delimiter; a trailing one gives a last, empty field
  }
  fields->resize(count);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> SplitCsvRecord(absl::string_view record, char delim) {
  std::vector<std::string> fields;
  RETURN_IF_ERROR(SplitCsvRecordInto(record, delim, &fields));
  return fields;
}

absl::StatusOr<std::unique_ptr<CsvBatchParser>> CsvBatchParser::Create(CsvParserOptions options) {
  if (options.columns.empty()) return absl::InvalidArgumentError("CSV: no columns");
  std::set<std::string> names;
  for (const CsvColumn& c : options.columns) {
    if (c.name.empty()) return absl::InvalidArgumentError("CSV: empty column name");
    if (!names.insert(c.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("CSV: duplicate column name '", c.name, "'"));
    }
  }
  if (!options.label_key.empty() && names.count(options.label_key) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("CSV: label_key '", options.label_key, "' is not a column"));
  }
  return std::unique_ptr<CsvBatchParser>(new CsvBatchParser(std::move(options)));
}

absl::StatusOr<Batch> CsvBatchParser::Parse(const std::vector<std::string>& records,
                                            const std::vector<RecordOrigin>& origins) {
  const std::vector<CsvColumn>& cols = options_.columns;
  const size_t ncol = cols.size();
  std::vector<std::vector<float>> floats(ncol);
  std::vector<std::vector<int64_t>> ints(ncol);
  std::vector<std::vector<std::string>> strings(ncol);
  // One record's values, appended to the columns only if all of it parses.
  std::vector<float> row_f(ncol);
  std::vector<int64_t> row_i(ncol);
  std::vector<std::string> row_s(ncol);
  for (size_t j = 0; j < ncol; ++j) {
    switch (cols[j].dtype) {
      case DType::kFloat: floats[j].reserve(records.size()); break;
      case DType::kInt64: ints[j].reserve(records.size()); break;
      case DType::kString: strings[j].reserve(records.size()); break;
    }
  }
  std::vector<std::string> fields;  // one record's; reused (the hot path allocates little)
  fields.reserve(ncol);
  int64_t rows = 0;

  auto parse_record = [&](const std::string& record, const RecordOrigin& origin) -> absl::Status {
    auto where = [&] { return origin.ToString(); };  // only for an error
    absl::Status split = SplitCsvRecordInto(record, options_.field_delim, &fields);
    if (!split.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where(), ": ", split.message()));
    }
    if (fields.size() != ncol) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), ": expected ", ncol, " fields, got ", fields.size()));
    }
    for (size_t j = 0; j < ncol; ++j) {
      const CsvColumn& c = cols[j];
      std::string& f = fields[j];
      if (f.empty()) {
        if (c.required) {
          return absl::InvalidArgumentError(absl::StrCat(where(), ": column '", c.name, "' (", j,
                                                         "): required, but the field is empty"));
        }
        row_f[j] = c.float_default;
        row_i[j] = c.int_default;
        row_s[j] = c.string_default;
        continue;
      }
      bool ok = true;
      switch (c.dtype) {
        case DType::kFloat: ok = ParseFloat(f, &row_f[j]); break;
        case DType::kInt64: ok = ParseInt64(f, &row_i[j]); break;
        case DType::kString: row_s[j] = std::move(f); break;
      }
      if (!ok) {
        return absl::InvalidArgumentError(absl::StrCat(where(), ": column '", c.name, "' (", j,
                                                       "): expected ", TypeWord(c.dtype),
                                                       ", got ", Quote(f)));
      }
    }
    for (size_t j = 0; j < ncol; ++j) {
      switch (cols[j].dtype) {
        case DType::kFloat: floats[j].push_back(row_f[j]); break;
        case DType::kInt64: ints[j].push_back(row_i[j]); break;
        case DType::kString: strings[j].push_back(std::move(row_s[j])); break;
      }
    }
    ++rows;
    return absl::OkStatus();
  };

  for (size_t r = 0; r < records.size(); ++r) {
    absl::Status st = parse_record(records[r], origins[r]);
    if (st.ok()) continue;
    if (options_.bad_record_policy == BadRecordPolicy::kFail) return st;
    const int64_t skipped = ++skipped_;
    absl::MutexLock lock(&log_mu_);
    if (logged_ < options_.max_logged_bad_records) {
      ++logged_;
      spdlog::warn("skipping bad CSV record ({} skipped so far): {}", skipped, st.message());
      if (logged_ == options_.max_logged_bad_records) {
        spdlog::warn("not logging further skipped CSV records");
      }
    }
  }

  Batch batch;
  batch.batch_size = rows;
  for (size_t j = 0; j < ncol; ++j) {
    Tensor t;
    switch (cols[j].dtype) {
      case DType::kFloat: t = Tensor::Floats({rows}, std::move(floats[j])); break;
      case DType::kInt64: t = Tensor::Ints({rows}, std::move(ints[j])); break;
      case DType::kString: t = Tensor::Strings({rows}, std::move(strings[j])); break;
    }
    if (cols[j].name == options_.label_key) {
      batch.labels = std::move(t);
      batch.has_labels = true;
    } else {
      batch.features[cols[j].name] = std::move(t);
    }
  }
  return batch;
}

}  // namespace estuary
