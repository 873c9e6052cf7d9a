#include "distribute/checkpoint_lease.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace estuary {
namespace {

constexpr char kDeleting[] = "1";
constexpr char kNotDeleting[] = "0";

}  // namespace

std::string CheckpointLeases::ReadersKey(int64_t step) {
  return absl::StrCat(kLeaseKeyPrefix, step, "/readers");
}

std::string CheckpointLeases::DeletingKey(int64_t step) {
  return absl::StrCat(kLeaseKeyPrefix, step, "/deleting");
}

absl::Status CheckpointLeases::Acquire(int64_t step, absl::Time deadline) {
  RETURN_IF_ERROR(store_->Add(ReadersKey(step), 1, deadline).status());
  absl::StatusOr<std::string> deleting = store_->Get(DeletingKey(step), deadline);
  if (deleting.ok() && *deleting != kDeleting) return absl::OkStatus();
  if (!deleting.ok() && absl::IsNotFound(deleting.status())) return absl::OkStatus();
  // Deleting, or we could not tell: back off.
  absl::Status undo = store_->Add(ReadersKey(step), -1, deadline).status();
  if (!undo.ok()) {
    spdlog::warn("checkpoint lease: could not back off from step {}: {}", step, undo.ToString());
  }
  if (!deleting.ok()) return deleting.status();
  return absl::NotFoundError(
      absl::StrCat("checkpoint of step ", step, " is being deleted (superseded)"));
}

absl::Status CheckpointLeases::Release(int64_t step, absl::Time deadline) {
  return store_->Add(ReadersKey(step), -1, deadline).status();
}

bool CheckpointLeases::MayDelete(int64_t step, absl::Time deadline) {
  absl::Status st = store_->Set(DeletingKey(step), kDeleting, deadline);
  if (!st.ok()) {
    spdlog::warn("checkpoint lease: keeping step {}: {}", step, st.ToString());
    return false;
  }
  absl::StatusOr<std::string> readers = store_->Get(ReadersKey(step), deadline);
  int64_t n = 0;
  if (readers.ok() && !absl::SimpleAtoi(*readers, &n)) {
    readers = absl::InternalError(absl::StrCat("lease counter holds '", *readers, "'"));
  }
  if (!readers.ok() && !absl::IsNotFound(readers.status())) {
    spdlog::warn("checkpoint lease: keeping step {}: {}", step, readers.status().ToString());
  } else if (n <= 0) {
    return true;
  }
  // Leased (or unknown): back off so that later leases of it succeed.
  st = store_->Set(DeletingKey(step), kNotDeleting, deadline);
  if (!st.ok()) {
    spdlog::warn("checkpoint lease: step {} stays marked deleting: {}", step, st.ToString());
  }
  return false;
}

}  // namespace estuary
