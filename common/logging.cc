#include "common/logging.h"

#include "absl/strings/str_cat.h"
#include "spdlog/sinks/stdout_sinks.h"

namespace estuary {

void InitLogging(absl::string_view tag) {
  auto logger = spdlog::stderr_logger_mt(absl::StrCat("estuary-", tag));
  spdlog::set_default_logger(logger);
  const std::string label = tag.empty() ? std::string() : absl::StrCat("[", tag, "] ");
  spdlog::set_pattern(absl::StrCat("%Y-%m-%d %H:%M:%S.%e %L ", label, "%v"));
  spdlog::flush_on(spdlog::level::trace);
  spdlog::set_level(spdlog::level::info);
}

}  // namespace estuary
