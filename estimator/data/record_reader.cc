#include "estimator/data/record_reader.h"

#include "absl/strings/str_cat.h"

namespace estuary {

std::string RecordOrigin::ToString() const {
  if (line >= 0) return absl::StrCat(file, ":", line);
  std::string s = file;
  if (index >= 0) absl::StrAppend(&s, ": record ", index);
  if (offset >= 0) absl::StrAppend(&s, index >= 0 ? " at offset " : ": offset ", offset);
  return s;
}

}  // namespace estuary
