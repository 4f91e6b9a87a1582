// The shim's event loop: one thread, one epoll set (STYLE.md 10).
//
// Sources: a signalfd for SIGCHLD (reap init, exec'd processes and orphans —
// the shim is a child subreaper), the listening socket and its connections
// (one Request, one Response each), init's stdout/stderr pipes (-> CRI log),
// exec'd processes' pipes (-> their Response). A wait request is answered when
// init has exited and its exit file is written; an exec when its process is
// reaped and its output drained, or at its deadline (then its process group is
// SIGKILLed first).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "os/unique_fd.h"
#include "shim/container.h"
#include "shim/cri_log.h"

namespace berth::shim {

struct ServerOptions {
  std::string bundle;  // exit file and socket live here
  std::string exit_file;
  std::string socket_path;
};

// Drops the shim's own read-only file pages (text, rodata) from its page
// tables. Creating and starting a container runs code that will not run again
// (spec parsing, cgroup setup, the mount plan, clone, exec); the kernel's
// fault-around mapped it in 64 kB runs and would keep it in the shim's RSS for
// the container's lifetime. The pages stay in the page cache, shared by every
// shim; what the loop touches later comes back as minor faults. Only mappings
// with no anonymous (written) page are dropped, so the result is exact
// (madvise(2): MADV_DONTNEED on a private file mapping rereads the file).
void ReleaseCodePages();

class Server {
 public:
  Server(ServerOptions options, std::unique_ptr<Container> container,
         std::optional<CriLogWriter> log, UniqueFd listener);
  // Runs until a delete request has been answered. The shim then exits.
  absl::Status Run();
  pid_t init_pid() const { return container_->init_pid(); }

 private:
  struct Conn {
    UniqueFd fd;
    std::string in;
    std::vector<UniqueFd> fds;   // passed with the request (SCM_RIGHTS)
    bool fds_truncated = false;  // more came than kMaxConnFds, or MSG_CTRUNC
    std::string out;
    size_t written = 0;
    bool replying = false;
  };
  struct Exec {
    pid_t pid = -1;
    int conn = -1;
    UniqueFd out_fd, err_fd;
    std::string out, err;
    uint64_t max = 0;
    bool out_truncated = false, err_truncated = false;
    bool reaped = false, timed_out = false;
    int status = 0;
    int64_t deadline_ms = 0;  // CLOCK_MONOTONIC; 0: none
    // Its stdio came from the client (a streaming exec): the client going
    // away cancels it, as containerd kills an exec whose stream is gone.
    bool cancel_on_close = false;
  };

  absl::Status Watch(int fd, uint32_t kind, uint32_t events);
  void Unwatch(int fd);
  void OnAccept();
  void OnConnReadable(int fd);
  void OnConnWritable(int fd);
  void Dispatch(int fd, const v1::Request& request);
  void Reply(int fd, const v1::Response& response);
  void CloseConn(int fd);
  void OnSignal();
  void OnInitExit(int status);
  void OnInitOutput(int fd, CriStream stream);
  void OnExecOutput(int fd);
  void MaybeFinishExec(Exec& exec);
  void CheckDeadlines();
  int NextTimeoutMs() const;
  void HandleExec(int fd, const v1::ExecRequest& request);
  void HandleDelete(int fd);
  void HandleAttach(int fd);
  // Replies to every wait and attach with init's exit; attachers' fds close.
  void AnswerExit(const v1::Response& r);

  ServerOptions options_;
  std::unique_ptr<Container> container_;
  std::optional<CriLogWriter> log_;
  UniqueFd listener_;
  UniqueFd epoll_;
  UniqueFd signal_fd_;
  UniqueFd init_out_, init_err_;
  std::map<int, Conn> conns_;
  std::vector<int> waiters_;
  struct Attacher {
    int conn = -1;
    UniqueFd out, err;
  };
  std::vector<Attacher> attachers_;
  std::vector<std::unique_ptr<Exec>> execs_;
  bool init_exited_ = false;
  bool done_ = false;
  bool release_code_ = false;  // after start: its one-time code can go
};

}  // namespace berth::shim
