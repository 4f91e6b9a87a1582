// UniqueFd: the one owner of a file descriptor (STYLE.md 3).
//
// Move-only; closes on destruction. close() is never retried on EINTR: on Linux
// the descriptor is released even when close() reports EINTR, and a retry could
// close a descriptor another thread has just been given (close(2), NOTES).
//
//   BERTH_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile("/proc/self/mountinfo", O_RDONLY));
//   read(fd.get(), ...);
#pragma once

#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }

  // Gives up ownership without closing.
  [[nodiscard]] int release() { return std::exchange(fd_, -1); }
  // Closes the held descriptor (if any) and takes `fd`.
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// open(2) with O_CLOEXEC always added.
absl::StatusOr<UniqueFd> OpenFile(absl::string_view path, int flags, int mode = 0);

}  // namespace berth
