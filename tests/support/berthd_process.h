// BerthdProcess: the real berthd binary, started by a test on its own temp
// directory and socket, stopped (SIGTERM, then SIGKILL) and reaped when the test
// ends. Its stderr goes to a file the test can read.
//
//   TempDir dir;
//   BerthdProcess berthd(dir);                  // --socket=dir/run/berth.sock ...
//   ASSERT_THAT(berthd.Start(), IsOk());         // waits until the socket serves
//   auto channel = berthd.Channel();
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/channel.h>
#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/temp_dir.h"

namespace berth::testing {

class BerthdProcess {
 public:
  explicit BerthdProcess(const TempDir& dir, std::string name = "berthd");
  ~BerthdProcess();

  std::string socket_path() const { return dir_ + "/run/berth.sock"; }
  std::string root_dir() const { return dir_ + "/root"; }
  std::string state_dir() const { return dir_ + "/run"; }
  std::string log_path() const { return dir_ + "/" + name_ + ".log"; }
  pid_t pid() const { return pid_; }

  // Starts berthd with the default temp-dir flags plus `extra` (later flags win),
  // and waits up to `timeout` for the unix socket to accept connections.
  absl::Status Start(const std::vector<std::string>& extra = {},
                     absl::Duration timeout = absl::Seconds(20));
  // Starts berthd and waits for it to exit; returns its exit code. For flags
  // that must be refused.
  absl::StatusOr<int> RunToExit(const std::vector<std::string>& extra,
                                absl::Duration timeout = absl::Seconds(20));
  // Sends `signal` and waits for exit; returns the exit code (128+n if killed).
  absl::StatusOr<int> Stop(int signal, absl::Duration timeout = absl::Seconds(20));

  std::shared_ptr<grpc::Channel> Channel() const;
  std::string Log() const;

 private:
  absl::Status Spawn(const std::vector<std::string>& extra);
  absl::StatusOr<int> WaitExit(absl::Duration timeout);

  std::string dir_;
  std::string name_;
  pid_t pid_ = -1;
};

// A client-side grpc::Status as absl::Status (the codes are numbered alike).
absl::Status FromGrpcStatus(const grpc::Status& status);

// A TCP port on 127.0.0.1 that was free a moment ago.
int PickFreePort();

// GET http://127.0.0.1:<port><path> (HTTP/1.0); the whole response, headers
// included, or "" when nothing answers.
std::string HttpGet(int port, const std::string& path);
// Sends `request` as it is to 127.0.0.1:<port>; the whole response, or "".
std::string HttpRequest(int port, const std::string& request);

// Runs a shell command; returns its exit code.
int Shell(const std::string& command);

}  // namespace berth::testing
