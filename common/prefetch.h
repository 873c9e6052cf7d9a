// Software prefetch for loops over rows scattered through a large row-major
// table (embedding lookups, sparse optimizer updates): the tables seldom fit
// in cache, and fetching a few entries ahead lets the misses overlap
// (bench/RESULTS.md, "The sparse step's hot loops").
#ifndef ESTUARY_COMMON_PREFETCH_H_
#define ESTUARY_COMMON_PREFETCH_H_

#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"

namespace estuary {

// How many entries ahead the loops fetch.
inline constexpr size_t kPrefetchAhead = 8;

// In a loop at entry i over `rows` of a table with `cols` floats per row at
// `base`: prefetches row rows[i + kPrefetchAhead] (for writing when
// `write`), if there is one and it is not negative (a dropped id).
template <bool write = false>
inline void PrefetchRowAhead(const float* base, absl::Span<const int64_t> rows, size_t i,
                             int64_t cols) {
  if (i + kPrefetchAhead < rows.size() && rows[i + kPrefetchAhead] >= 0) {
    __builtin_prefetch(base + rows[i + kPrefetchAhead] * cols, write ? 1 : 0);
  }
}

}  // namespace estuary

#endif  // ESTUARY_COMMON_PREFETCH_H_
