#include "distribute/collective_generation.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "distribute/keys.h"

namespace estuary {
namespace {

// How often a waiting rank looks whether training ended meanwhile.
constexpr absl::Duration kEndPollInterval = absl::Seconds(1);

absl::StatusOr<int64_t> PublishedGeneration(Store& store, absl::Time deadline) {
  absl::StatusOr<std::string> value = store.Get(kCollectiveGenerationKey, deadline);
  if (absl::IsNotFound(value.status())) return 0;
  RETURN_IF_ERROR(value.status());
  int64_t g = 0;
  if (!absl::SimpleAtoi(*value, &g) || g < 0) {
    return absl::InternalError(absl::StrCat(kCollectiveGenerationKey, " holds '", *value, "'"));
  }
  return g;
}

}  // namespace

std::string CollectiveMemberKey(int64_t generation, int rank) {
  return absl::StrCat(kCollectiveMemberPrefix, generation, "/", rank);
}

absl::StatusOr<int64_t> OpenCollectiveGeneration(Store& store, uint64_t incarnation,
                                                 absl::Time deadline) {
  ASSIGN_OR_RETURN(const int64_t last, PublishedGeneration(store, deadline));
  const int64_t g = last + 1;
  // The generation key first: a rank woken by the member key reads it next.
  RETURN_IF_ERROR(store.Set(kCollectiveGenerationKey, absl::StrCat(g), deadline));
  RETURN_IF_ERROR(store.Set(CollectiveMemberKey(g, 0), absl::StrCat(incarnation), deadline));
  return g;
}

absl::StatusOr<int64_t> JoinCollectiveGeneration(Store& store, int rank, uint64_t incarnation,
                                                 int64_t failed, absl::Time deadline) {
  const absl::Time start = absl::Now();
  const std::string mine = absl::StrCat(incarnation);
  int64_t g = failed + 1;
  for (;;) {
    if (store.Get(kFinalStepKey, deadline).ok()) return 0;
    absl::StatusOr<std::vector<std::string>> opened =
        store.Wait({CollectiveMemberKey(g, 0)}, std::min(deadline, absl::Now() + kEndPollInterval));
    if (absl::IsDeadlineExceeded(opened.status())) {
      if (absl::Now() < deadline) continue;
      return absl::DeadlineExceededError(absl::StrCat(
          "the chief opened no ring generation after ", failed, " within ",
          absl::ToDoubleSeconds(deadline - start), " s"));
    }
    RETURN_IF_ERROR(opened.status());
    ASSIGN_OR_RETURN(const int64_t newest, PublishedGeneration(store, deadline));
    if (newest > g) {  // joins the newest: the older ones are being abandoned
      g = newest;
      continue;
    }
    absl::StatusOr<std::string> recorded = store.Get(CollectiveMemberKey(g, rank), deadline);
    if (recorded.ok() && *recorded != mine) {
      // An earlier incarnation of this rank was part of generation g: the
      // chief abandons it once it notices; wait for the next one.
      ++g;
      continue;
    }
    if (!recorded.ok() && !absl::IsNotFound(recorded.status())) return recorded.status();
    RETURN_IF_ERROR(store.Set(CollectiveMemberKey(g, rank), mine, deadline));
    return g;
  }
}

}  // namespace estuary
