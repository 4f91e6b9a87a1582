#include "shim/server.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "os/files.h"
#include "os/log.h"
#include "os/status.h"
#include "shim/exit_file.h"
#include "shim/protocol.h"

namespace berth::shim {
namespace {

enum Kind : uint32_t { kListen = 1, kSignal, kConn, kInitOut, kInitErr, kExecOut };

uint64_t Tag(uint32_t kind, int fd) { return (uint64_t{kind} << 32) | static_cast<uint32_t>(fd); }

int64_t MonotonicMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

v1::Response ErrorResponse(const absl::Status& status) {
  v1::Response r;
  r.set_code(static_cast<int>(status.code()));
  r.set_message(std::string(status.message()));
  return r;
}

constexpr uint64_t kDefaultMaxOutput = 16u << 20;
constexpr size_t kMaxConnFds = 3;

}  // namespace

void ReleaseCodePages() {
  absl::StatusOr<std::string> smaps = ReadFile("/proc/self/smaps");
  if (!smaps.ok()) return;
  uint64_t begin = 0, end = 0;
  bool candidate = false;
  for (absl::string_view line : absl::StrSplit(*smaps, '\n', absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&line, "Anonymous:")) {
      uint64_t kb = 1;
      if (candidate &&
          absl::SimpleAtoi(
              absl::StripAsciiWhitespace(absl::StripSuffix(absl::StripAsciiWhitespace(line), "kB")),
              &kb) &&
          kb == 0) {
        madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
      }
      candidate = false;
      continue;
    }
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() < 6 || f[0].find('-') == absl::string_view::npos) continue;
    std::pair<absl::string_view, absl::string_view> range = absl::StrSplit(f[0], '-');
    candidate = (f[1] == "r-xp" || f[1] == "r--p") && absl::EndsWith(f[5], "berth-shim") &&
                absl::SimpleHexAtoi(range.first, &begin) && absl::SimpleHexAtoi(range.second, &end);
  }
}

Server::Server(ServerOptions options, std::unique_ptr<Container> container,
               std::optional<CriLogWriter> log, UniqueFd listener)
    : options_(std::move(options)),
      container_(std::move(container)),
      log_(std::move(log)),
      listener_(std::move(listener)) {}

absl::Status Server::Watch(int fd, uint32_t kind, uint32_t events) {
  struct epoll_event ev = {};
  ev.events = events;
  ev.data.u64 = Tag(kind, fd);
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return ErrnoStatus(errno, "epoll_ctl");
  return absl::OkStatus();
}

void Server::Unwatch(int fd) { epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr); }

absl::Status Server::Run() {
  epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) return ErrnoStatus(errno, "epoll_create1");
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  signal_fd_.reset(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signal_fd_) return ErrnoStatus(errno, "signalfd");
  BERTH_RETURN_IF_ERROR(Watch(signal_fd_.get(), kSignal, EPOLLIN));
  BERTH_RETURN_IF_ERROR(Watch(listener_.get(), kListen, EPOLLIN));
  init_out_ = container_->TakeStdout();
  init_err_ = container_->TakeStderr();
  for (int fd : {init_out_.get(), init_err_.get()}) {
    fcntl(fd, F_SETFL, O_NONBLOCK);
  }
  BERTH_RETURN_IF_ERROR(Watch(init_out_.get(), kInitOut, EPOLLIN));
  BERTH_RETURN_IF_ERROR(Watch(init_err_.get(), kInitErr, EPOLLIN));
  // A SIGCHLD may have come before the signalfd existed (init failing fast).
  OnSignal();

  struct epoll_event events[16];
  while (!done_) {
    int n = epoll_wait(epoll_.get(), events, 16, NextTimeoutMs());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      uint32_t kind = static_cast<uint32_t>(events[i].data.u64 >> 32);
      int fd = static_cast<int>(events[i].data.u64 & 0xffffffff);
      switch (kind) {
        case kListen:
          OnAccept();
          break;
        case kSignal:
          OnSignal();
          break;
        case kConn:
          if (events[i].events & EPOLLOUT) {
            OnConnWritable(fd);
          } else {
            OnConnReadable(fd);
          }
          break;
        case kInitOut:
          OnInitOutput(fd, CriStream::kStdout);
          break;
        case kInitErr:
          OnInitOutput(fd, CriStream::kStderr);
          break;
        case kExecOut:
          OnExecOutput(fd);
          break;
      }
    }
    CheckDeadlines();
    if (release_code_) {
      release_code_ = false;
      ReleaseCodePages();
    }
  }
  return absl::OkStatus();
}

void Server::OnAccept() {
  while (true) {
    int fd = accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    Conn& c = conns_[fd];
    c.fd.reset(fd);
    if (!Watch(fd, kConn, EPOLLIN).ok()) conns_.erase(fd);
  }
}

void Server::OnConnReadable(int fd) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  Conn& c = it->second;
  char buf[16384];
  while (true) {
    // A request may bring fds (an exec's stdio); at most a few are kept.
    struct iovec iov = {buf, sizeof(buf)};
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxConnFds)];
    struct msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (n >= 0 && (msg.msg_flags & MSG_CTRUNC)) c.fds_truncated = true;
    for (struct cmsghdr* h = CMSG_FIRSTHDR(&msg); n >= 0 && h != nullptr;
         h = CMSG_NXTHDR(&msg, h)) {
      if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int passed;
        memcpy(&passed, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
        if (c.fds.size() < kMaxConnFds) {
          c.fds.emplace_back(passed);
        } else {
          c.fds_truncated = true;
          close(passed);
        }
      }
    }
    if (n > 0) {
      c.in.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
    // EOF or error: before a whole request, or a client gone while waiting
    // for its answer (a wait, an exec). Either way it is gone.
    CloseConn(fd);
    return;
  }
  if (c.replying) return;
  v1::Request request;
  bool done = false;
  absl::Status s = TakeFrame(c.in, request, &done);
  if (!s.ok()) {
    Reply(fd, ErrorResponse(s));
  } else if (done) {
    c.replying = true;
    Dispatch(fd, request);
  }
}

void Server::Reply(int fd, const v1::Response& response) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  Conn& c = it->second;
  c.replying = true;
  c.out = EncodeFrame(response);
  struct epoll_event ev = {};
  ev.events = EPOLLOUT;
  ev.data.u64 = Tag(kConn, fd);
  epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
  OnConnWritable(fd);
}

void Server::OnConnWritable(int fd) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  Conn& c = it->second;
  while (c.written < c.out.size()) {
    ssize_t n = send(fd, c.out.data() + c.written, c.out.size() - c.written, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      break;
    }
    c.written += static_cast<size_t>(n);
  }
  CloseConn(fd);
}

void Server::CloseConn(int fd) {
  Unwatch(fd);
  conns_.erase(fd);
  waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), fd), waiters_.end());
  attachers_.erase(std::remove_if(attachers_.begin(), attachers_.end(),
                                  [fd](const Attacher& a) { return a.conn == fd; }),
                   attachers_.end());
  for (auto& e : execs_) {
    if (e->conn != fd) continue;
    e->conn = -1;
    // setsid made the exec its process group's leader.
    if (e->cancel_on_close && !e->reaped) ::kill(-e->pid, SIGKILL);
  }
}

void Server::Dispatch(int fd, const v1::Request& request) {
  v1::Response ok;
  absl::Status s;
  switch (request.kind_case()) {
    case v1::Request::kStart:
      s = container_->Start();
      release_code_ = true;
      break;
    case v1::Request::kKill:
      s = container_->Kill(request.kill().signal(), request.kill().all());
      break;
    case v1::Request::kState: {
      v1::StateResponse* st = ok.mutable_state();
      st->set_state(container_->state());
      st->set_init_pid(container_->init_pid());
      st->set_created_at_ns(container_->created_at_ns());
      st->set_started_at_ns(container_->started_at_ns());
      if (init_exited_) *st->mutable_exit() = container_->exit_status();
      break;
    }
    case v1::Request::kWait:
      if (!init_exited_) {
        waiters_.push_back(fd);
        return;
      }
      *ok.mutable_exit() = container_->exit_status();
      break;
    case v1::Request::kExec:
      HandleExec(fd, request.exec());
      return;
    case v1::Request::kUpdate:
      s = container_->Update(request.update().resources());
      break;
    case v1::Request::kPause:
      s = container_->Pause();
      break;
    case v1::Request::kResume:
      s = container_->Resume();
      break;
    case v1::Request::kReopenLog:
      s = log_ ? log_->Reopen() : absl::FailedPreconditionError("the container has no log path");
      break;
    case v1::Request::kDelete:
      HandleDelete(fd);
      return;
    case v1::Request::kAttach:
      HandleAttach(fd);
      return;
    case v1::Request::KIND_NOT_SET:
      s = absl::InvalidArgumentError("request has no kind (newer client?)");
      break;
  }
  Reply(fd, s.ok() ? ok : ErrorResponse(s));
}

void Server::HandleExec(int fd, const v1::ExecRequest& request) {
  std::vector<UniqueFd> stdio = std::move(conns_[fd].fds);
  int passed[3];
  if (request.stdio_fds()) {
    if (stdio.size() != 3 || conns_[fd].fds_truncated) {
      Reply(fd, ErrorResponse(absl::InvalidArgumentError(absl::StrCat(
                    "exec: stdio_fds needs 3 fds with the request, got ", stdio.size()))));
      return;
    }
    for (int i = 0; i < 3; ++i) passed[i] = stdio[i].get();
  }
  // The child has its copies; ours close when `stdio` goes, so the peer sees
  // EOF when the process ends.
  absl::StatusOr<ExecChild> child =
      container_->Exec(request.process(), request.stdio_fds() ? passed : nullptr);
  if (!child.ok()) {
    Reply(fd, ErrorResponse(child.status()));
    return;
  }
  auto e = std::make_unique<Exec>();
  e->pid = child->pid;
  e->conn = fd;
  e->out_fd = std::move(child->stdout_fd);
  e->err_fd = std::move(child->stderr_fd);
  e->max = request.max_output_bytes() ? request.max_output_bytes() : kDefaultMaxOutput;
  if (request.stdio_fds()) {
    e->cancel_on_close = true;
    execs_.push_back(std::move(e));
    return;
  }
  if (request.timeout_ms() > 0) e->deadline_ms = MonotonicMs() + request.timeout_ms();
  for (int f : {e->out_fd.get(), e->err_fd.get()}) {
    fcntl(f, F_SETFL, O_NONBLOCK);
    (void)Watch(f, kExecOut, EPOLLIN);
  }
  execs_.push_back(std::move(e));
}

void Server::OnExecOutput(int fd) {
  for (auto& e : execs_) {
    bool is_out = e->out_fd.get() == fd;
    if (!is_out && e->err_fd.get() != fd) continue;
    std::string& buf = is_out ? e->out : e->err;
    bool& truncated = is_out ? e->out_truncated : e->err_truncated;
    char chunk[65536];
    while (true) {
      ssize_t n = read(fd, chunk, sizeof(chunk));
      if (n > 0) {
        size_t room = e->max > buf.size() ? e->max - buf.size() : 0;
        size_t take = std::min(room, static_cast<size_t>(n));
        buf.append(chunk, take);
        if (take < static_cast<size_t>(n)) truncated = true;  // keep draining
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      Unwatch(fd);
      (is_out ? e->out_fd : e->err_fd).reset();
      MaybeFinishExec(*e);
      return;
    }
  }
}

void Server::MaybeFinishExec(Exec& e) {
  if (!e.reaped) return;
  if (!e.timed_out && (e.out_fd || e.err_fd)) return;  // output still draining
  v1::Response r;
  v1::ExecResponse* x = r.mutable_exec();
  *x->mutable_exit() = ExitStatusFromWait(e.status, NowNs(), false);
  x->set_stdout(std::move(e.out));
  x->set_stderr(std::move(e.err));
  x->set_timed_out(e.timed_out);
  x->set_stdout_truncated(e.out_truncated);
  x->set_stderr_truncated(e.err_truncated);
  if (e.timed_out) {
    r.set_code(static_cast<int>(absl::StatusCode::kDeadlineExceeded));
    r.set_message("exec timed out; its processes were killed");
  }
  if (e.conn >= 0) Reply(e.conn, r);
  for (UniqueFd* f : {&e.out_fd, &e.err_fd}) {
    if (*f) {
      Unwatch(f->get());
      f->reset();
    }
  }
  execs_.erase(std::remove_if(execs_.begin(), execs_.end(),
                              [&](const std::unique_ptr<Exec>& p) { return p.get() == &e; }),
               execs_.end());
}

int Server::NextTimeoutMs() const {
  int64_t next = -1;
  int64_t now = MonotonicMs();
  for (const auto& e : execs_) {
    if (e->deadline_ms == 0 || e->timed_out) continue;
    int64_t left = std::max<int64_t>(0, e->deadline_ms - now);
    if (next < 0 || left < next) next = left;
  }
  return static_cast<int>(next);
}

void Server::CheckDeadlines() {
  int64_t now = MonotonicMs();
  for (auto& e : execs_) {
    if (e->deadline_ms == 0 || e->timed_out || e->reaped || now < e->deadline_ms) continue;
    e->timed_out = true;
    // The exec'd process leads its own process group (setsid in process.cc).
    kill(-e->pid, SIGKILL);
    kill(e->pid, SIGKILL);
  }
}

void Server::OnSignal() {
  struct signalfd_siginfo info;
  while (read(signal_fd_.get(), &info, sizeof(info)) == sizeof(info)) {
  }
  while (true) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    if (pid == container_->init_pid() && !init_exited_) {
      OnInitExit(status);
      continue;
    }
    for (auto& e : execs_) {
      if (e->pid == pid) {
        e->reaped = true;
        e->status = status;
        MaybeFinishExec(*e);
        break;
      }
    }
    // Anything else is an orphan we adopted as subreaper: reaped, forgotten.
  }
}

void Server::OnInitOutput(int fd, CriStream stream) {
  char buf[16384];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0) {
      if (log_) {
        absl::Status s = log_->Write(stream, absl::string_view(buf, static_cast<size_t>(n)));
        if (!s.ok()) BERTH_LOG(WARNING) << "container log: " << s;
      }
      for (Attacher& a : attachers_) {
        UniqueFd& to = stream == CriStream::kStdout ? a.out : a.err;
        if (!to) continue;
        // Non-blocking: a full pipe drops this chunk for that attacher only.
        if (write(to.get(), buf, static_cast<size_t>(n)) < 0 && errno != EAGAIN) to.reset();
      }
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (log_) (void)log_->Flush(stream);
    Unwatch(fd);
    (stream == CriStream::kStdout ? init_out_ : init_err_).reset();
    return;
  }
}

void Server::OnInitExit(int status) {
  // Drain what init wrote before it died, so the log is complete first.
  if (init_out_) OnInitOutput(init_out_.get(), CriStream::kStdout);
  if (init_err_) OnInitOutput(init_err_.get(), CriStream::kStderr);
  const v1::ExitStatus& exit = container_->OnInitExit(status);
  init_exited_ = true;
  absl::Status s = WriteExitFile(options_.exit_file, exit);
  if (!s.ok()) BERTH_LOG(ERROR) << "exit file: " << s;
  v1::Response r;
  *r.mutable_exit() = exit;
  AnswerExit(r);
}

void Server::AnswerExit(const v1::Response& r) {
  std::vector<int> waiters;
  waiters.swap(waiters_);
  for (int fd : waiters) Reply(fd, r);
  std::vector<Attacher> attachers;
  attachers.swap(attachers_);
  for (Attacher& a : attachers) Reply(a.conn, r);  // their fds close here: EOF
}

void Server::HandleAttach(int fd) {
  Conn& c = conns_[fd];
  std::vector<UniqueFd> fds = std::move(c.fds);
  if (fds.size() != 2 || c.fds_truncated) {
    Reply(fd, ErrorResponse(absl::InvalidArgumentError(absl::StrCat(
                  "attach: needs 2 fds (stdout, stderr) with the request, got ", fds.size()))));
    return;
  }
  if (init_exited_) {
    v1::Response r;
    *r.mutable_exit() = container_->exit_status();
    Reply(fd, r);
    return;
  }
  for (const UniqueFd& f : fds) fcntl(f.get(), F_SETFL, fcntl(f.get(), F_GETFL) | O_NONBLOCK);
  attachers_.push_back(Attacher{fd, std::move(fds[0]), std::move(fds[1])});
}

void Server::HandleDelete(int fd) {
  absl::Status s = container_->Delete();
  if (!init_exited_ && container_->state() == v1::STOPPED) {
    init_exited_ = true;
    (void)WriteExitFile(options_.exit_file, container_->exit_status());
    v1::Response r;
    *r.mutable_exit() = container_->exit_status();
    AnswerExit(r);
  }
  if (!s.ok()) {
    Reply(fd, ErrorResponse(s));
    return;
  }
  for (auto& e : execs_) kill(-e->pid, SIGKILL);
  unlink(options_.socket_path.c_str());
  listener_.reset();
  Reply(fd, v1::Response());
  done_ = true;
}

}  // namespace berth::shim
