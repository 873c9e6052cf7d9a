// Process-wide log set-up: spdlog to stderr, one line per event, flushed
// immediately (logs are usually a pipe to a launcher or kubectl), tagged
// with the task: "2026-11-25 18:20:01.123 I [worker:1] message".
#ifndef ESTUARY_COMMON_LOGGING_H_
#define ESTUARY_COMMON_LOGGING_H_

#include "absl/strings/string_view.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"  // IWYU pragma: export

// Debian's abseil has its own string_view type (not std::string_view): let
// fmt/spdlog print it like a string.
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<fmt::string_view> {
  template <typename Ctx>
  auto format(absl::string_view s, Ctx& ctx) const {
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(s.data(), s.size()), ctx);
  }
};

namespace estuary {

// Call once at the start of main. `tag` is usually the task ("worker:1").
void InitLogging(absl::string_view tag);

}  // namespace estuary

#endif  // ESTUARY_COMMON_LOGGING_H_
