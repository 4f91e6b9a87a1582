// Directories, lock files and unix socket paths: the small file-system steps the
// agent takes at start, each returning a Status that names the call and the path.
#pragma once

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "os/unique_fd.h"

namespace berth {

// mkdir -p: creates `path` and its missing parents with `mode`. An existing
// directory is fine; an existing non-directory is FAILED_PRECONDITION.
absl::Status MakeDirs(absl::string_view path, mode_t mode);

// Takes an exclusive flock(2) on `path` (created 0600 if missing) without
// blocking and writes our pid into it. The lock lives as long as the fd; the
// kernel drops it when the process dies, so a crash leaves no stale lock.
// Held elsewhere: FAILED_PRECONDITION naming the holder's pid.
absl::StatusOr<UniqueFd> LockFile(absl::string_view path);

// What is at a unix socket path before we bind it.
enum class SocketProbe {
  kAbsent,  // nothing there
  kStale,   // a socket file nobody accepts on (ECONNREFUSED): a crash left it
  kLive,    // someone accepts connections on it
};
// A path holding something other than a socket is FAILED_PRECONDITION: we never
// delete a file we did not make.
absl::StatusOr<SocketProbe> ProbeUnixSocket(absl::string_view path);

// Reads a whole (small) file.
absl::StatusOr<std::string> ReadFile(absl::string_view path);

// Replaces `path` with `bytes` all at once: written to `path`.tmp, fsynced,
// renamed over `path`. A crash leaves the old file or the new one, never half.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view bytes,
                                 mode_t mode = 0644);

}  // namespace berth
