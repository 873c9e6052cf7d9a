#include "common/did_you_mean.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace estuary {

// Optimal string alignment distance: Levenshtein plus adjacent
// transpositions ("kye" is one edit from "key"), the common typo.
int EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<int> prev2(b.size() + 1), prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = static_cast<int>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = static_cast<int>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const int subst = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, subst});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        cur[j] = std::min(cur[j], prev2[j - 2] + 1);
      }
    }
    std::swap(prev2, prev);
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string DidYouMean(absl::string_view name,
                       const std::vector<std::string>& candidates) {
  // A unique candidate that extends what was typed ("--hold" for
  // "hold_secs") beats edit distance.
  const std::string* prefixed = nullptr;
  int prefix_matches = 0;
  for (const std::string& c : candidates) {
    if (!name.empty() && absl::StartsWith(c, name)) {
      prefixed = &c;
      ++prefix_matches;
    }
  }
  if (prefix_matches == 1) return absl::StrCat("; did you mean '", *prefixed, "'?");
  const std::string* best = nullptr;
  int best_distance = 0;
  for (const std::string& c : candidates) {
    const int d = EditDistance(name, c);
    if (best == nullptr || d < best_distance) {
      best = &c;
      best_distance = d;
    }
  }
  const int limit = std::max<int>(2, static_cast<int>(name.size()) / 3);
  if (best != nullptr && best_distance <= limit) {
    return absl::StrCat("; did you mean '", *best, "'?");
  }
  return absl::StrCat("; expected one of: ", absl::StrJoin(candidates, ", "));
}

}  // namespace estuary
