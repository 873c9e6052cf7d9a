// Test helper: validates Prometheus text exposition with Debian's promtool
// (package `prometheus`; scripts/setup.sh installs it).
#ifndef ESTUARY_COMMON_PROMTOOL_TESTING_H_
#define ESTUARY_COMMON_PROMTOOL_TESTING_H_

#include <optional>
#include <string>

#include "absl/status/status.h"

namespace estuary {
namespace testing {

// The path of promtool on PATH (or /usr/bin/promtool); nullopt when absent
// (tests then GTEST_SKIP).
std::optional<std::string> FindPromtool();

// Runs `promtool check metrics` on `text`. OK when it accepts it (lint
// warnings included in the message are failures too: promtool exits 1 for
// them); InvalidArgument with promtool's output otherwise; Internal when it
// cannot be run.
absl::Status PromtoolCheckMetrics(const std::string& promtool, const std::string& text);

}  // namespace testing
}  // namespace estuary

#endif  // ESTUARY_COMMON_PROMTOOL_TESTING_H_
