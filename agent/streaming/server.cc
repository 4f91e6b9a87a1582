#include "agent/streaming/server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/listen_address.h"
#include "agent/streaming/http.h"
#include "agent/streaming/spdy.h"
#include "os/log.h"
#include "os/status.h"

namespace berth::streaming {
namespace {

// Server preference does not matter: the client's order decides (as
// apimachinery's httpstream.Handshake). v1 (channel.k8s.io) is not served: no
// client of this decade offers it alone.
constexpr absl::string_view kExecProtocols[] = {"v5.channel.k8s.io", "v4.channel.k8s.io",
                                                "v3.channel.k8s.io", "v2.channel.k8s.io"};
constexpr absl::string_view kPortForwardProtocol = "portforward.k8s.io";
// Sessions at once (each is a thread or more); more connections get 503.
constexpr size_t kMaxSessions = 256;
// A client has this long to send its request head.
constexpr absl::Duration kHeadTimeout = absl::Seconds(10);

std::string NewToken() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    // OpenSSL's generator failing is not something to run on.
    BERTH_LOG(ERROR) << "streaming: RAND_bytes failed";
    abort();
  }
  return absl::WebSafeBase64Escape(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<StreamingServer>> StreamingServer::Start(StreamingOptions options,
                                                                        StreamRuntime* runtime) {
  BERTH_ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(options.address));
  int port = 0;
  BERTH_ASSIGN_OR_RETURN(UniqueFd listener, ListenTcp(hp, &port));
  UniqueFd stop(::eventfd(0, EFD_CLOEXEC));
  if (!stop.valid()) return ErrnoStatus(errno, "eventfd", "streaming server");
  HostPort shown = hp;
  shown.port = port;
  // A wildcard address is not somewhere a client can go: name loopback.
  if (shown.host.empty() || shown.host == "0.0.0.0") shown.host = "127.0.0.1";
  if (shown.host == "::") shown.host = "::1";
  std::string base = absl::StrCat("http://", shown.GrpcAddress(), "/");
  return std::unique_ptr<StreamingServer>(new StreamingServer(
      std::move(options), runtime, std::move(listener), std::move(stop), std::move(base)));
}

StreamingServer::StreamingServer(StreamingOptions options, StreamRuntime* runtime,
                                 UniqueFd listener, UniqueFd stop, std::string base_url)
    : options_(std::move(options)),
      runtime_(runtime),
      listener_(std::move(listener)),
      stop_(std::move(stop)),
      base_url_(std::move(base_url)),
      thread_([this] { Loop(); }) {}

StreamingServer::~StreamingServer() {
  uint64_t one = 1;
  (void)!::write(stop_.get(), &one, sizeof(one));
  thread_.join();
  std::map<uint64_t, Session> sessions;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (auto& [id, s] : sessions_) {
      if (s.fd >= 0) ::shutdown(s.fd, SHUT_RDWR);
    }
    sessions.swap(sessions_);
  }
  for (auto& [id, s] : sessions) s.thread.join();
}

absl::StatusOr<std::string> StreamingServer::Insert(Target target, absl::string_view path) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  for (auto it = tokens_.begin(); it != tokens_.end();) {
    it = it->second.expires <= now ? tokens_.erase(it) : std::next(it);
  }
  if (tokens_.size() >= options_.max_tokens) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "streaming: ", tokens_.size(), " stream requests are waiting for their client (at most ",
        options_.max_tokens, "); try again later"));
  }
  std::string token = NewToken();
  tokens_[token] = Token{std::move(target), now + options_.token_ttl};
  return absl::StrCat(base_url_, path, "/", token);
}

absl::StatusOr<std::string> StreamingServer::ExecUrl(ExecTarget target) {
  return Insert(std::move(target), "exec");
}

absl::StatusOr<std::string> StreamingServer::AttachUrl(ExecTarget target) {
  target.attach = true;
  return Insert(std::move(target), "attach");
}

absl::StatusOr<std::string> StreamingServer::PortForwardUrl(PortForwardTarget target) {
  return Insert(std::move(target), "portforward");
}

bool StreamingServer::Take(const std::string& token, Target* target) {
  absl::MutexLock lock(&mu_);
  auto it = tokens_.find(token);
  if (it == tokens_.end()) return false;
  bool fresh = it->second.expires > absl::Now();
  if (fresh) *target = std::move(it->second.target);
  tokens_.erase(it);
  return fresh;
}

size_t StreamingServer::sessions() const {
  absl::MutexLock lock(&mu_);
  size_t n = 0;
  for (const auto& [id, s] : sessions_) n += s.done ? 0 : 1;
  return n;
}

void StreamingServer::ReapDone() {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (it->second.done) {
      it->second.thread.join();  // it has returned, or is about to
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

void StreamingServer::Loop() {
  for (;;) {
    struct pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    // Finished sessions' threads are joined at least every second.
    int ready = ::poll(fds, 2, 1000);
    if (ready < 0) {
      if (errno == EINTR) continue;
      BERTH_LOG(ERROR) << ErrnoStatus(errno, "poll", "streaming listener");
      return;
    }
    if (fds[1].revents != 0) return;
    if (ready == 0) {
      absl::MutexLock lock(&mu_);
      ReapDone();
      continue;
    }
    UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) continue;
    // Frames are small and interactive: no Nagle delay behind the peer's
    // delayed ACK (40 ms per exchange otherwise). Go's clients do the same.
    int one = 1;
    ::setsockopt(conn.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    // A client that stops reading (or a peer gone without a FIN) fails our
    // writes after a while instead of holding a session's threads forever.
    struct timeval send_timeout = {30, 0};
    ::setsockopt(conn.get(), SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof(send_timeout));
    ::setsockopt(conn.get(), SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    absl::MutexLock lock(&mu_);
    ReapDone();
    if (stopping_) return;
    if (sessions_.size() >= kMaxSessions) {
      WriteHttpError(
          conn.get(), 503,
          absl::StrCat("streaming: ", kMaxSessions, " sessions already; try again later"));
      continue;
    }
    uint64_t id = next_session_++;
    Session& s = sessions_[id];
    s.fd = conn.get();
    const int raw = conn.release();
    try {
      s.thread = std::thread([this, id, raw] { Serve(id, UniqueFd(raw)); });
    } catch (const std::system_error& e) {
      // No thread to run it on (the process's limit): refuse this one.
      WriteHttpError(raw, 503, absl::StrCat("streaming: no thread for the session: ", e.what()));
      ::close(raw);
      sessions_.erase(id);
    }
  }
}

void StreamingServer::Serve(uint64_t id, UniqueFd fd) {
  const int raw = fd.get();
  std::string pending;
  absl::StatusOr<HttpRequest> request =
      ReadHttpRequest(raw, absl::Now() + std::min(kHeadTimeout, options_.stream_timeout), &pending);
  auto finish = [&] {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(id);  // gone when the destructor took them
    if (it != sessions_.end()) {
      it->second.fd = -1;
      it->second.done = true;
    }
  };
  if (!request.ok()) {
    WriteHttpError(raw, 400, request.status().message());
    finish();
    return;
  }
  absl::string_view path = request->path;
  const bool run = absl::ConsumePrefix(&path, "/exec/");
  const bool attach = !run && absl::ConsumePrefix(&path, "/attach/");
  const bool exec = run || attach;  // the same protocol
  const bool forward = !exec && absl::ConsumePrefix(&path, "/portforward/");
  Target target;
  if ((!exec && !forward) || !Take(std::string(path), &target) ||
      std::holds_alternative<ExecTarget>(target) != exec ||
      (exec && std::get<ExecTarget>(target).attach != attach)) {
    WriteHttpError(raw, 404, "no such stream: the URL is unknown, used or expired");
    finish();
    return;
  }
  const std::string upgrade = absl::AsciiStrToLower(request->Header("upgrade"));
  if (upgrade != "spdy/3.1" ||
      !absl::StrContains(absl::AsciiStrToLower(request->Header("connection")), "upgrade")) {
    WriteHttpError(
        raw, 400,
        upgrade == "websocket"
            ? "WebSocket streaming is not served; connect with SPDY/3.1 (crictl --transport spdy)"
            : "expected `Connection: Upgrade` and `Upgrade: SPDY/3.1`");
    finish();
    return;
  }
  std::vector<std::string> offered = request->HeaderList("x-stream-protocol-version");
  std::string protocol;
  for (const std::string& p : offered) {
    if (exec) {
      for (absl::string_view ours : kExecProtocols) {
        if (p == ours) protocol = p;
      }
    } else if (p == kPortForwardProtocol) {
      protocol = p;
    }
    if (!protocol.empty()) break;
  }
  if (protocol.empty() && !(forward && offered.empty())) {
    WriteHttpError(
        raw, 403,
        absl::StrCat("unable to upgrade: unable to negotiate protocol: client supports [",
                     absl::StrJoin(offered, " "), "], server supports [",
                     exec ? absl::StrJoin(kExecProtocols, " ") : std::string(kPortForwardProtocol),
                     "]"));
    finish();
    return;
  }
  std::string head =
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n";
  if (!protocol.empty()) absl::StrAppend(&head, "X-Stream-Protocol-Version: ", protocol, "\r\n");
  head += "\r\n";
  if (!WriteAllTo(raw, head)) {
    finish();
    return;
  }
  {
    SpdyConn conn(std::move(fd), std::move(pending));
    try {
      if (exec) {
        RunExecSession(conn, protocol, std::get<ExecTarget>(target), *runtime_, options_);
      } else {
        RunPortForwardSession(conn, std::get<PortForwardTarget>(target), *runtime_, options_);
      }
    } catch (const std::exception& e) {
      // A bug must not take berthd down with every container's stream.
      BERTH_LOG(ERROR) << "streaming session ended by an exception: " << e.what();
    }
    // The fd closes here: clear it first so a stop does not shut down a reused number.
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(id);
    if (it != sessions_.end()) it->second.fd = -1;
  }
  finish();
}

}  // namespace berth::streaming
