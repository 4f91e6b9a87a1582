// A directory under /tmp that tests own, removed with everything in it when the
// test ends (even when it fails). Short paths: unix socket paths must stay under
// 108 bytes.
//
//   TempDir dir;  // /tmp/berth-test-Ab12Cd
//   std::string sock = dir.path() + "/berth.sock";
#pragma once

#include <string>

#include "os/unique_fd.h"

namespace berth::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A unix socket bound at `path` (listening or not): closing it without listen()
// leaves exactly what a crashed server leaves, a stale socket file.
UniqueFd BindUnixSocket(const std::string& path, bool listen);

// Writes `content` to `path`, replacing it; aborts the test binary on failure.
void WriteFileOrDie(const std::string& path, const std::string& content);

}  // namespace berth::testing
