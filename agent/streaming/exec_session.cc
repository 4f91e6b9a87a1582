// An exec over SPDY: remotecommand v2..v5.channel.k8s.io (research/cri-v1.md §5).
//
// The client opens one stream per channel, each with a `streamtype` header:
// error, stdin, stdout, stderr (never with a terminal), resize (v3+, with a
// terminal). Once every stream the request asked for is there, the process
// starts in the container (shim exec with our pipes, or a pty's slave), and:
//   stdin data -> the process's stdin; stdin half-closed -> EOF (no terminal)
//   stdout/stderr -> their streams, half-closed at EOF
//   resize: JSON {"Width":w,"Height":h} objects -> TIOCSWINSZ on the master
// When it ends, the error stream gets the outcome (v4+: a metav1.Status, exit
// code in a cause; v2/v3: text when it failed), and the connection ends. A
// client that goes away closes the process's stdio: EOF, EPIPE, or SIGHUP on
// a terminal, as with any closed pipe or hung-up terminal.
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <functional>
#include <map>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/streaming/fd_writer.h"
#include "agent/streaming/server.h"
#include "agent/streaming/spdy.h"
#include "nlohmann/json.hpp"
#include "os/log.h"
#include "os/status.h"
#include "shim/client.h"

namespace berth::streaming {
namespace {

enum Channel { kStdin, kStdout, kStderr, kError, kResize, kChannels };

int ChannelOf(absl::string_view type) {
  if (type == "stdin") return kStdin;
  if (type == "stdout") return kStdout;
  if (type == "stderr") return kStderr;
  if (type == "error") return kError;
  if (type == "resize") return kResize;
  return -1;
}

int ProtocolVersion(absl::string_view protocol) {
  // "v4.channel.k8s.io" -> 4
  return protocol.size() > 1 && protocol[0] == 'v' ? protocol[1] - '0' : 1;
}

// What goes on the error stream at the end; empty: nothing.
std::string Outcome(int version, const absl::Status& failure, int exit_code) {
  if (version >= 4) {
    nlohmann::json status = {{"metadata", nlohmann::json::object()}};
    if (!failure.ok()) {
      status["status"] = "Failure";
      status["reason"] = "InternalError";
      status["message"] = std::string(failure.message());
    } else if (exit_code != 0) {
      status["status"] = "Failure";
      status["reason"] = "NonZeroExitCode";
      status["message"] = absl::StrCat("command terminated with non-zero exit code: ", exit_code);
      status["details"] = {
          {"causes", {{{"reason", "ExitCode"}, {"message", absl::StrCat(exit_code)}}}}};
    } else {
      status["status"] = "Success";
    }
    // Bytes that are not UTF-8 (a path in the message) are replaced, not thrown on.
    return status.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  if (!failure.ok()) return std::string(failure.message());
  if (exit_code != 0)
    return absl::StrCat("command terminated with non-zero exit code: ", exit_code);
  return "";
}

// Copies `fd` to `stream` until EOF (or EIO: a pty whose slaves are all
// closed), an error, or `stop` becoming readable.
void Pump(SpdyConn& conn, int fd, uint32_t stream, int stop) {
  char buf[32768];
  while (true) {
    struct pollfd p[2] = {{fd, POLLIN, 0}, {stop, POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[0].revents == 0) return;  // stopped
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return;
    if (!conn.Data(stream, absl::string_view(buf, static_cast<size_t>(n))).ok()) return;
  }
}

// Applies each whole {"Width":..,"Height":..} object in *buffer; anything
// else is skipped. The buffer is bounded: garbage without a '}' is dropped.
void ApplyResizes(std::string* buffer, int master) {
  size_t end;
  while ((end = buffer->find('}')) != std::string::npos) {
    nlohmann::json size = nlohmann::json::parse(buffer->substr(0, end + 1), nullptr, false);
    buffer->erase(0, end + 1);
    if (!size.is_object() || master < 0) continue;
    auto dimension = [&size](const char* key) -> uint16_t {
      auto it = size.find(key);
      if (it == size.end() || !it->is_number_unsigned()) return 0;
      return static_cast<uint16_t>(std::min<uint64_t>(it->get<uint64_t>(), 65535));
    };
    struct winsize ws = {};
    ws.ws_col = dimension("Width");
    ws.ws_row = dimension("Height");
    if (ioctl(master, TIOCSWINSZ, &ws) != 0) {
      BERTH_LOG(WARNING) << ErrnoStatus(errno, "TIOCSWINSZ", "exec terminal");
    }
  }
  if (buffer->size() > 4096) buffer->clear();
}

struct Stdio {
  UniqueFd child[3];      // what the process gets
  UniqueFd in, out, err;  // ours; on a terminal `out` is the master and `in` a dup of it
};

absl::StatusOr<Stdio> MakeStdio(const ExecTarget& t, StreamRuntime& runtime) {
  Stdio s;
  if (t.tty) {
    // The container's devpts when it has one; the slave comes from the master
    // itself (TIOCGPTPEER), never by a path inside the container.
    absl::StatusOr<UniqueFd> own = runtime.OpenTerminal(t);
    UniqueFd master =
        own.ok() ? std::move(*own) : UniqueFd(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!master.valid()) return ErrnoStatus(errno, "posix_openpt");
    if (unlockpt(master.get()) != 0) return ErrnoStatus(errno, "unlockpt");
    UniqueFd slave(ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!slave.valid()) return ErrnoStatus(errno, "TIOCGPTPEER");
    const char* name = "pty slave";
    for (auto& c : s.child) {
      c.reset(fcntl(slave.get(), F_DUPFD_CLOEXEC, 3));
      if (!c.valid()) return ErrnoStatus(errno, "dup", name);
    }
    s.in.reset(fcntl(master.get(), F_DUPFD_CLOEXEC, 3));
    if (!s.in.valid()) return ErrnoStatus(errno, "dup", "pty master");
    s.out = std::move(master);
    return s;
  }
  BERTH_ASSIGN_OR_RETURN(UniqueFd null, OpenFile("/dev/null", O_RDWR));
  const bool want[3] = {t.in, t.out, t.err};
  UniqueFd* ours[3] = {&s.in, &s.out, &s.err};
  for (int i = 0; i < 3; ++i) {
    if (!want[i]) {
      s.child[i].reset(fcntl(null.get(), F_DUPFD_CLOEXEC, 3));
      if (!s.child[i].valid()) return ErrnoStatus(errno, "dup", "/dev/null");
      continue;
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
    s.child[i].reset(i == 0 ? p[0] : p[1]);
    ours[i]->reset(i == 0 ? p[1] : p[0]);
  }
  return s;
}

}  // namespace

void RunExecSession(SpdyConn& conn, const std::string& protocol, const ExecTarget& t,
                    StreamRuntime& runtime, const StreamingOptions& options) {
  const int version = ProtocolVersion(protocol);
  bool expect[kChannels] = {t.in, t.out, t.err && !t.tty, true, t.tty && version >= 3};
  uint32_t ids[kChannels] = {};
  int missing = 0;
  for (bool e : expect) missing += e ? 1 : 0;
  // 1. The client's streams.
  const absl::Time streams_by = absl::Now() + options.stream_timeout;
  while (missing > 0) {
    absl::StatusOr<SpdyEvent> e = conn.Next(streams_by);
    if (!e.ok() || e->kind == SpdyEvent::kClosed || e->kind == SpdyEvent::kTimeout) {
      BERTH_LOG(INFO) << "exec " << t.container_id << ": client gone before its streams ("
                      << (e.ok() ? "closed or timed out" : e.status().ToString()) << ")";
      return;
    }
    if (e->kind != SpdyEvent::kStream) continue;  // data before the start: dropped
    int ch = ChannelOf(HeaderValue(e->headers, "streamtype"));
    if (ch < 0 || !expect[ch] || ids[ch] != 0) {
      (void)conn.Reset(e->stream, kSpdyRefusedStream);
      continue;
    }
    ids[ch] = e->stream;
    --missing;
    if (!conn.Reply(e->stream, {}).ok()) return;
  }
  auto finish = [&](const absl::Status& failure, int exit_code) {
    for (int ch : {kStdout, kStderr}) {
      if (ids[ch] != 0) (void)conn.Data(ids[ch], "", /*fin=*/true);
    }
    std::string outcome = Outcome(version, failure, exit_code);
    (void)conn.Data(ids[kError], outcome, /*fin=*/true);
    (void)conn.GoAway();
    // Let the client read to the end and close; then ours closes.
    shutdown(conn.fd(), SHUT_WR);
    const absl::Time until = absl::Now() + absl::Seconds(5);
    while (true) {
      absl::StatusOr<SpdyEvent> e = conn.Next(until);
      if (!e.ok() || e->kind == SpdyEvent::kClosed || e->kind == SpdyEvent::kTimeout) break;
    }
  };
  // 2. The process.
  absl::StatusOr<Stdio> stdio = MakeStdio(t, runtime);
  absl::StatusOr<UniqueFd> shim_conn = absl::InternalError("no stdio");
  if (!stdio.ok()) {
    shim_conn = stdio.status();
  } else {
    const int child[3] = {stdio->child[0].get(), stdio->child[1].get(), stdio->child[2].get()};
    shim_conn = t.attach ? runtime.StartAttach(t, child) : runtime.StartExec(t, child);
    for (auto& c : stdio->child) c.reset();  // the process has its own
  }
  if (!shim_conn.ok()) {
    BERTH_LOG(INFO) << "exec " << t.container_id << " `" << absl::StrJoin(t.cmd, " ")
                    << "`: " << shim_conn.status();
    finish(shim_conn.status(), 0);
    return;
  }
  // 3. Copy until it ends or the client goes.
  UniqueFd wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  UniqueFd stop_pumps(eventfd(0, EFD_CLOEXEC));
  std::atomic<bool> exited{false};
  std::atomic<int> pumps_left{0};
  int exit_code = 0;
  absl::Status wait_failure;
  std::vector<std::thread> pumps;
  auto signal = [](int fd) {
    uint64_t one = 1;
    (void)!write(fd, &one, sizeof(one));
  };
  std::pair<int, int> outputs[] = {{stdio->out.get(), kStdout}, {stdio->err.get(), kStderr}};
  for (auto [fd, ch] : outputs) {
    if (fd < 0 || ids[ch] == 0) continue;
    ++pumps_left;
    pumps.emplace_back([&, fd = fd, id = ids[ch]] {
      Pump(conn, fd, id, stop_pumps.get());
      if (--pumps_left == 0) signal(wake.get());
    });
  }
  std::thread waiter([&] {
    absl::StatusOr<shim::v1::Response> r = shim::ReceiveShimResponse(*shim_conn);
    if (!r.ok()) {
      wait_failure = r.status();
    } else {
      exit_code = r->exec().exit().exit_code();
    }
    exited = true;
    signal(wake.get());
  });
  // The process's stdin is written on a thread of its own: a process that
  // does not read must not stop this loop from seeing the client or the exit.
  std::optional<FdWriter> stdin_writer;
  if (stdio->in.valid()) {
    stdin_writer.emplace(
        stdio->in.get(), /*socket=*/false, size_t{1} << 20,
        t.tty ? std::function<void()>() : std::function<void()>([&] { stdio->in.reset(); }));
  }
  auto give_up = [&] { return exited.load() || conn.PeerGone(); };
  bool client_gone = false;
  std::string resize;
  absl::Time drain_until = absl::InfiniteFuture();
  while (true) {
    if (exited && pumps_left == 0) break;
    if (exited && drain_until == absl::InfiniteFuture()) {
      drain_until = absl::Now() + options.drain_timeout;
    }
    if (absl::Now() >= drain_until) break;  // a background child holds the output open
    absl::StatusOr<SpdyEvent> e = conn.Next(drain_until, wake.get());
    if (!e.ok() || e->kind == SpdyEvent::kClosed) {
      client_gone = true;
      break;
    }
    if (e->kind == SpdyEvent::kTimeout) {
      uint64_t n;
      (void)!read(wake.get(), &n, sizeof(n));
      continue;
    }
    if (e->kind == SpdyEvent::kReset) {
      if (e->stream == ids[kError] || e->stream == ids[kStdout] || e->stream == ids[kStderr]) {
        client_gone = true;
        break;
      }
      if (e->stream == ids[kStdin] && stdin_writer) stdin_writer->Stop();
      continue;
    }
    if (e->kind == SpdyEvent::kStream) {
      (void)conn.Reset(e->stream, kSpdyRefusedStream);
      continue;
    }
    // Data.
    if (e->stream == ids[kStdin] && ids[kStdin] != 0) {
      if (stdin_writer && !e->data.empty()) (void)stdin_writer->Push(e->data, give_up);
      // EOF once what came is written; a terminal has no half-close.
      if (e->fin && stdin_writer && !t.tty) stdin_writer->Finish();
    } else if (e->stream == ids[kResize] && ids[kResize] != 0) {
      resize += e->data;
      ApplyResizes(&resize, t.tty ? stdio->out.get() : -1);
    }
  }
  // 4. The end.
  signal(stop_pumps.get());
  for (std::thread& p : pumps) p.join();
  if (stdin_writer) stdin_writer->Stop();
  if (client_gone) {
    // Close its stdio (EOF / EPIPE / SIGHUP) and stop waiting for its exit:
    // the shim reaps it.
    stdio->in.reset();
    stdio->out.reset();
    stdio->err.reset();
    shutdown(shim_conn->get(), SHUT_RDWR);
    waiter.join();
    BERTH_LOG(INFO) << "exec " << t.container_id << ": the client went away";
    return;
  }
  waiter.join();
  // An attach ends with its container; the container's exit code is its own
  // (ContainerStatus), not the session's outcome.
  finish(wait_failure, t.attach ? 0 : exit_code);
}

}  // namespace berth::streaming
