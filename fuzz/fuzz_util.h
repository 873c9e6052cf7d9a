// Helpers shared by the libFuzzer harnesses in fuzz/ (README "Fuzzing").
#ifndef ESTUARY_FUZZ_FUZZ_UTIL_H_
#define ESTUARY_FUZZ_FUZZ_UTIL_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/io/file.h"

namespace estuary {
namespace fuzz {

// The fuzz input as a string_view.
inline absl::string_view AsView(const uint8_t* data, size_t size) {
  return absl::string_view(reinterpret_cast<const char*>(data), size);
}

// Splits `input` at every `sep` (the parts, `sep` removed). The harnesses
// that take several pieces (records, files) use it; the separators are in
// the fuzzers' dictionaries.
inline std::vector<std::string> SplitAt(absl::string_view input, absl::string_view sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t at = input.find(sep, start);
    if (at == absl::string_view::npos) break;
    parts.emplace_back(input.substr(start, at - start));
    start = at + sep.size();
  }
  parts.emplace_back(input.substr(start));
  return parts;
}

// An InputStream over bytes in memory that hands them out in pieces of at
// most `piece` bytes (so readers see short reads, as from a pipe).
class MemoryInputStream : public io::InputStream {
 public:
  MemoryInputStream(std::string data, size_t piece)
      : data_(std::move(data)), piece_(std::max<size_t>(piece, 1)) {}

  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    const size_t take = std::min({n, piece_, data_.size() - pos_});
    if (take > 0) std::memcpy(buf, data_.data() + pos_, take);
    pos_ += take;
    return take;
  }
  const std::string& name() const override { return name_; }

 private:
  const std::string data_;
  const size_t piece_;
  size_t pos_ = 0;
  const std::string name_ = "fuzz-input";
};

}  // namespace fuzz
}  // namespace estuary

#endif  // ESTUARY_FUZZ_FUZZ_UTIL_H_
