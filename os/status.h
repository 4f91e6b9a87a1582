// Errors: absl::Status at every boundary (STYLE.md 1).
//
// errno becomes a Status on the line of the syscall, naming the call and the
// path; callers add context on the way up and keep the code:
//
//   if (mkdir(path, 0700) != 0) return ErrnoStatus(errno, "mkdir", path);
//     // -> NOT_FOUND "mkdir `/run/x/y`: No such file or directory"
//   BERTH_RETURN_IF_ERROR(Annotate(MakeDirs(dir, 0700), "state dir"));
//   BERTH_ASSIGN_OR_RETURN(UniqueFd fd, OpenDir(path));
//
// Abseil 20220623 has neither RETURN_IF_ERROR nor ASSIGN_OR_RETURN; these are ours.
#pragma once

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth {

// `call `path`: strerror(err)` (or `call: strerror(err)` with no path), with the
// canonical code for err (ENOENT -> NOT_FOUND, EEXIST -> ALREADY_EXISTS, ...).
absl::Status ErrnoStatus(int err, absl::string_view call, absl::string_view path = {});

// "context: message", same code and payloads. OK stays OK.
absl::Status Annotate(const absl::Status& status, absl::string_view context);

namespace internal {
inline absl::Status AsStatus(absl::Status s) { return s; }
template <typename T>
absl::Status AsStatus(const absl::StatusOr<T>& s) {
  return s.status();
}
}  // namespace internal

}  // namespace berth

#define BERTH_STATUS_CONCAT_INNER_(a, b) a##b
#define BERTH_STATUS_CONCAT_(a, b) BERTH_STATUS_CONCAT_INNER_(a, b)

// Returns the Status of `expr` from the enclosing function unless it is OK.
#define BERTH_RETURN_IF_ERROR(expr)                                                            \
  do {                                                                                         \
    if (absl::Status berth_status_ = ::berth::internal::AsStatus(expr); !berth_status_.ok()) { \
      return berth_status_;                                                                    \
    }                                                                                          \
  } while (0)

// `BERTH_ASSIGN_OR_RETURN(auto x, F());` declares or assigns x from a StatusOr,
// returning its Status from the enclosing function when it is not OK.
#define BERTH_ASSIGN_OR_RETURN(lhs, expr) \
  BERTH_ASSIGN_OR_RETURN_IMPL_(BERTH_STATUS_CONCAT_(berth_statusor_, __LINE__), lhs, expr)
#define BERTH_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return std::move(tmp).status();     \
  lhs = std::move(tmp).value()
