// ExitMonitor: one thread that learns, for every live container, when its init
// exits - without a thread or a poll loop per container.
//
// For each watched container it opens a connection to the shim's socket and
// sends a WaitRequest; the shim answers that request when init exits, after
// writing the exit file (shim/server.cc). All those connections sit in one
// epoll set. When one becomes readable, the response is read and the callback
// runs on the monitor thread with the ExitStatus; when the shim goes away
// without answering (it crashed or was killed), the callback gets the error and
// the caller falls back to the exit file.
//
//   ExitMonitor monitor;
//   BERTH_RETURN_IF_ERROR(monitor.Watch(bundle + "/shim.sock", [](auto exit) { ... }));
//
// Callbacks must not block for long (they take a record's mu and write SQLite).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "os/unique_fd.h"
#include "shim/v1/shim.pb.h"

namespace berth::lifecycle {

class ExitMonitor {
 public:
  using Callback = std::function<void(absl::StatusOr<shim::v1::ExitStatus>)>;

  ExitMonitor();
  ~ExitMonitor();  // stops the thread; pending callbacks never run
  ExitMonitor(const ExitMonitor&) = delete;
  ExitMonitor& operator=(const ExitMonitor&) = delete;

  // Errors when the shim cannot be reached now (the caller decides what that
  // means: usually read the exit file).
  absl::Status Watch(const std::string& socket, Callback callback);

  size_t watching() const;

 private:
  void Loop();

  UniqueFd epoll_;
  UniqueFd wake_;  // eventfd: wakes the loop to stop
  mutable absl::Mutex mu_;
  std::map<int, std::pair<UniqueFd, Callback>> watches_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace berth::lifecycle
