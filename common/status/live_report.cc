#include "common/status/live_report.h"

namespace estuary {

void LiveReport::Update(const Edit& edit) {
  absl::MutexLock l(&mu_);
  edit(&report_);
}

void LiveReport::AddSource(Edit source) {
  absl::MutexLock l(&mu_);
  sources_.push_back(std::move(source));
}

coordination::TaskReport LiveReport::Snapshot() const {
  coordination::TaskReport out;
  std::vector<Edit> sources;
  {
    absl::MutexLock l(&mu_);
    out = report_;
    sources = sources_;
  }
  for (const Edit& source : sources) source(&out);
  return out;
}

}  // namespace estuary
