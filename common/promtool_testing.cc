#include "common/promtool_testing.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/subprocess.h"

namespace estuary {
namespace testing {

std::optional<std::string> FindPromtool() {
  const char* path = std::getenv("PATH");
  std::vector<std::string> dirs = absl::StrSplit(path != nullptr ? path : "", ':');
  dirs.push_back("/usr/bin");
  for (const std::string& dir : dirs) {
    if (dir.empty()) continue;
    const std::string candidate = absl::StrCat(dir, "/promtool");
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

absl::Status PromtoolCheckMetrics(const std::string& promtool, const std::string& text) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string file =
      absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/promtool_input_", getpid(), "_",
                   absl::ToUnixNanos(absl::Now()), ".prom");
  {
    std::ofstream out(file);
    out << text;
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", file));
  }
  absl::Mutex mu;
  std::vector<std::string> lines;
  SubprocessOptions o;
  o.argv = {"/bin/sh", "-c", absl::StrCat("exec '", promtool, "' check metrics < '", file, "'")};
  o.on_line = [&](const std::string& line, bool) {
    absl::MutexLock lock(&mu);
    lines.push_back(line);
  };
  absl::StatusOr<std::unique_ptr<Subprocess>> p = Subprocess::Start(std::move(o));
  if (!p.ok()) return p.status();
  absl::StatusOr<int> code = (*p)->Wait(absl::Seconds(120));
  if (!code.ok()) return code.status();
  absl::MutexLock lock(&mu);
  if (*code != 0 || !lines.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("promtool check metrics (exit ", *code,
                                                   "): ", absl::StrJoin(lines, "\n")));
  }
  return absl::OkStatus();
}

}  // namespace testing
}  // namespace estuary
