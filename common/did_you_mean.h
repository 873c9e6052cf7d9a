// "Did you mean" hints for unknown names in user input.
#ifndef ESTUARY_COMMON_DID_YOU_MEAN_H_
#define ESTUARY_COMMON_DID_YOU_MEAN_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace estuary {

// Levenshtein distance between two strings.
int EditDistance(absl::string_view a, absl::string_view b);

// Returns "; did you mean 'x'?" for the only candidate that starts with
// `name`, else the closest one within an edit distance of max(2, len/3);
// otherwise "; expected one of: a, b, c".
std::string DidYouMean(absl::string_view name,
                       const std::vector<std::string>& candidates);

}  // namespace estuary

#endif  // ESTUARY_COMMON_DID_YOU_MEAN_H_
