// Directories, lock files and unix socket paths: the small file-system steps the
// agent takes at start, each returning a Status that names the call and the path.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

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

// Removes `path` and everything under it, never following a symlink nor
// descending into another mount (nftw(3) FTW_PHYS|FTW_MOUNT|FTW_DEPTH); a mount
// point found inside makes it fail (EBUSY) rather than removing what the mount
// shows. OK when `path` does not exist.
absl::Status RemoveTree(const std::string& path);

// The names in directory `path`, without "." and "..", sorted.
absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path);

// Replaces `path` with `bytes` all at once: written to `path`.tmp and renamed
// over `path`, so a reader or a process crash sees the old file or the new one,
// never half. `durable` adds an fsync before the rename, for files that must
// also survive a power loss; runtime state under /run (pid and exit files, a
// shim's spec) does not need it, and on a disk it costs ~0.7 ms per file.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view bytes,
                                 mode_t mode = 0644, bool durable = false);

}  // namespace berth
