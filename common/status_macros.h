// Early-return helpers for absl::Status / absl::StatusOr (abseil 2022-06 has
// none of its own).
#ifndef ESTUARY_COMMON_STATUS_MACROS_H_
#define ESTUARY_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define ESTUARY_CONCAT_INNER_(a, b) a##b
#define ESTUARY_CONCAT_(a, b) ESTUARY_CONCAT_INNER_(a, b)

// Returns the status of `expr` from the enclosing function if it is not OK.
#define RETURN_IF_ERROR(expr)                      \
  do {                                             \
    const absl::Status _estuary_status = (expr);   \
    if (!_estuary_status.ok()) return _estuary_status; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, MakeX());` declares/assigns x from a StatusOr or
// returns its error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(ESTUARY_CONCAT_(_estuary_statusor_, __LINE__), lhs, expr)

#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(tmp).value()

#endif  // ESTUARY_COMMON_STATUS_MACROS_H_
