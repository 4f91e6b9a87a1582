// Builds layer tars for the unpack tests with libarchive's writer (pax format,
// like the tars docker and buildkit write), plain or compressed.
//
//   LayerEntry file = File("etc/motd", "hello\n", 0644);
//   file.xattrs = {{"user.note", "x"}};
//   ASSERT_THAT(WriteLayer(dir.Join("layer.tgz"), Compression::kGzip,
//                          {Dir("etc"), file, Symlink("motd", "etc/motd")}), IsOk());
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace berth::images::testing {

enum class Compression { kNone, kGzip, kZstd };

struct LayerEntry {
  std::string path;
  mode_t type = 0;  // AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR, ...
  mode_t perm = 0644;
  std::string data;  // regular files
  std::string link;  // symlink target, or hardlink target when `hardlink`
  bool hardlink = false;
  int64_t uid = -1;  // -1: the test's own euid/egid, so unprivileged runs can chown
  int64_t gid = -1;
  int64_t mtime = 1600000000;
  int64_t mtime_nsec = 0;
  unsigned rdev_major = 0;
  unsigned rdev_minor = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

LayerEntry File(std::string path, std::string data, mode_t perm = 0644);
LayerEntry Dir(std::string path, mode_t perm = 0755);
LayerEntry Symlink(std::string path, std::string target);
LayerEntry Hardlink(std::string path, std::string target);
LayerEntry Node(std::string path, mode_t type, unsigned major, unsigned minor);

// Writes `entries` in order as a tar to `path`.
absl::Status WriteLayer(const std::string& path, Compression compression,
                        const std::vector<LayerEntry>& entries);

}  // namespace berth::images::testing
