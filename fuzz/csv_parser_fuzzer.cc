// libFuzzer harness: CSV records (estimator/data/csv_parser.h). The input's
// lines are one batch of records for a parser with a column of each kind
// (a required float, an int64 and a string with defaults, a float label);
// its first byte picks the delimiter and the bad-record policy.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "estimator/data/csv_parser.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const absl::string_view text = estuary::fuzz::AsView(data + 1, size - 1);
  const char delim = "\t,;|"[mode & 3];
  (void)estuary::SplitCsvRecord(text, delim);

  estuary::CsvParserOptions options;
  options.field_delim = delim;
  options.bad_record_policy =
      (mode & 4) ? estuary::BadRecordPolicy::kSkip : estuary::BadRecordPolicy::kFail;
  options.max_logged_bad_records = 0;
  estuary::CsvColumn x{"x", estuary::DType::kFloat, /*required=*/true};
  estuary::CsvColumn n{"n", estuary::DType::kInt64};
  n.int_default = 7;
  estuary::CsvColumn s{"s", estuary::DType::kString};
  s.string_default = "none";
  estuary::CsvColumn y{"y", estuary::DType::kFloat};
  y.float_default = 0.5f;
  options.columns = {x, n, s, y};
  options.label_key = "y";
  auto parser = estuary::CsvBatchParser::Create(options);
  if (!parser.ok()) __builtin_trap();
  std::vector<std::string> records = estuary::fuzz::SplitAt(text, "\n");
  std::vector<estuary::RecordOrigin> origins(records.size());
  (void)(*parser)->Parse(records, origins);
  return 0;
}
