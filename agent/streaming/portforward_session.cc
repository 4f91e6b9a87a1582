// A port-forward over SPDY: portforward.k8s.io (research/cri-v1.md §5).
//
// For each forwarded connection the client opens two streams with the same
// `requestid` and `port` headers: `streamtype: error` (which it half-closes
// at once) and `streamtype: data`. Once both are there, the runtime dials
// localhost:port inside the pod's network namespace and bytes flow both ways:
//   data from the client -> the socket (a writer thread per connection, so a
//   pod server that does not read stalls only its own connection); the
//   client's FIN -> shutdown(SHUT_WR) once that is written
//   the socket -> data; its EOF -> FIN on data, then (after at most a second
//   for the client's side, as containerd) FIN on error and the socket closes
// A dial that fails puts its message on the error stream. A stream whose pair
// does not come within stream_timeout is answered with an error. The session
// ends when the client closes the connection, or after idle_timeout with no
// byte either way.
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "agent/streaming/fd_writer.h"
#include "agent/streaming/server.h"
#include "agent/streaming/spdy.h"
#include "os/log.h"

namespace berth::streaming {
namespace {

// Connections in flight on one session; more are refused (RST_STREAM).
constexpr size_t kMaxPairs = 1000;

struct Pair {
  uint32_t error = 0, data = 0;
  uint16_t port = 0;
  absl::Time opened;
  UniqueFd socket;
  std::optional<FdWriter> writer;  // to the socket
  std::thread pump;                // from the socket
  absl::Mutex mu;
  bool client_done ABSL_GUARDED_BY(mu) = false;  // the client's FIN or reset on data
  std::atomic<bool> finished{false};             // the pump is through; reap it
};

void Signal(int fd) {
  uint64_t one = 1;
  (void)!write(fd, &one, sizeof(one));
}

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

// The socket to the client until EOF; then the ends of both streams.
void PumpToClient(SpdyConn& conn, Pair& p, int wake, std::atomic<int64_t>& active_ms) {
  char buf[32768];
  while (true) {
    ssize_t n = read(p.socket.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    active_ms = NowMs();
    if (!conn.Data(p.data, absl::string_view(buf, static_cast<size_t>(n))).ok()) break;
  }
  (void)conn.Data(p.data, "", /*fin=*/true);
  {
    // The other way gets a second to finish (socat's default, as containerd).
    absl::MutexLock lock(&p.mu);
    p.mu.AwaitWithTimeout(absl::Condition(&p.client_done), absl::Seconds(1));
  }
  (void)conn.Data(p.error, "", /*fin=*/true);
  shutdown(p.socket.get(), SHUT_RDWR);
  p.finished = true;
  Signal(wake);
}

}  // namespace

void RunPortForwardSession(SpdyConn& conn, const PortForwardTarget& target, StreamRuntime& runtime,
                           const StreamingOptions& options) {
  UniqueFd wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  std::atomic<int64_t> active_ms{NowMs()};
  std::map<std::string, std::unique_ptr<Pair>> pairs;  // by request id
  std::map<uint32_t, Pair*> by_data;                   // data stream -> its pair
  auto give_up = [&conn] { return conn.PeerGone(); };
  auto reap = [&](bool all) {
    if (all) {
      // Every connection is told first, so none waits out its second in turn.
      for (auto& [id, p] : pairs) {
        if (p->writer) p->writer->Stop();
        if (p->socket.valid()) shutdown(p->socket.get(), SHUT_RDWR);
        absl::MutexLock lock(&p->mu);
        p->client_done = true;
      }
    }
    for (auto it = pairs.begin(); it != pairs.end();) {
      Pair& p = *it->second;
      const bool stale =
          !p.pump.joinable() && !p.finished && absl::Now() - p.opened > options.stream_timeout;
      if (p.pump.joinable() && (all || p.finished)) p.pump.join();
      if (all || p.finished || stale) {
        if (stale && p.error != 0) {
          (void)conn.Data(p.error, "timed out waiting for the data stream", /*fin=*/true);
        } else if (stale) {
          (void)conn.Reset(p.data, kSpdyCancel);
        }
        if (p.writer) p.writer->Stop();
        by_data.erase(p.data);
        it = pairs.erase(it);
      } else {
        ++it;
      }
    }
  };
  while (true) {
    // Wake at least every second: lone streams time out, idleness is counted.
    absl::StatusOr<SpdyEvent> e = conn.Next(absl::Now() + absl::Seconds(1), wake.get());
    if (!e.ok() || e->kind == SpdyEvent::kClosed) break;
    if (e->kind == SpdyEvent::kTimeout) {
      uint64_t n = 0;
      (void)!read(wake.get(), &n, sizeof(n));
      reap(false);
      if (absl::FromUnixMillis(active_ms) + options.idle_timeout < absl::Now()) break;
      continue;
    }
    active_ms = NowMs();
    if (e->kind == SpdyEvent::kStream) {
      const std::string type = HeaderValue(e->headers, "streamtype");
      std::string request = HeaderValue(e->headers, "requestid");
      // Clients before requestID (kubelet's rule): the data stream follows its
      // error stream, so both are known by the error stream's id.
      if (request.empty()) request = absl::StrCat(type == "data" ? e->stream - 2 : e->stream);
      uint32_t port = 0;
      if ((type != "error" && type != "data") ||
          !absl::SimpleAtoi(HeaderValue(e->headers, "port"), &port) || port == 0 || port > 65535 ||
          (pairs.size() >= kMaxPairs && !pairs.count(request))) {
        (void)conn.Reset(e->stream, kSpdyProtocolError);
        continue;
      }
      if (!conn.Reply(e->stream, {}).ok()) break;
      std::unique_ptr<Pair>& slot = pairs[request];
      if (!slot) {
        slot = std::make_unique<Pair>();
        slot->opened = absl::Now();
        slot->port = static_cast<uint16_t>(port);
      }
      Pair& p = *slot;
      uint32_t& id = type == "error" ? p.error : p.data;
      if (id != 0 || p.port != port) {
        (void)conn.Reset(e->stream, kSpdyProtocolError);
        continue;
      }
      id = e->stream;
      if (type == "data") by_data[id] = &p;
      if (p.error == 0 || p.data == 0) continue;
      absl::StatusOr<UniqueFd> socket = runtime.DialPod(target.sandbox_id, p.port);
      if (!socket.ok()) {
        (void)conn.Data(p.error,
                        absl::StrCat("error forwarding port ", p.port, " to pod ",
                                     target.sandbox_id, ": ", socket.status().message()),
                        /*fin=*/true);
        (void)conn.Data(p.data, "", /*fin=*/true);
        p.finished = true;
        reap(false);
        continue;
      }
      p.socket = std::move(*socket);
      const int fd = p.socket.get();
      p.writer.emplace(fd, /*socket=*/true, size_t{1} << 20, [fd] { shutdown(fd, SHUT_WR); });
      p.pump = std::thread(
          [&conn, &p, &active_ms, w = wake.get()] { PumpToClient(conn, p, w, active_ms); });
      continue;
    }
    auto it = by_data.find(e->stream);
    if (it == by_data.end()) continue;  // the error stream, or one already done
    Pair& p = *it->second;
    if (e->kind == SpdyEvent::kData && p.writer && !e->data.empty()) {
      (void)p.writer->Push(e->data, give_up);
    }
    if (e->kind == SpdyEvent::kReset || e->fin) {
      if (p.writer) {
        if (e->fin) {
          p.writer->Finish();  // shutdown(SHUT_WR) once written
        } else {
          p.writer->Stop();
          shutdown(p.socket.get(), SHUT_RDWR);
        }
      }
      absl::MutexLock lock(&p.mu);
      p.client_done = true;
    }
  }
  reap(/*all=*/true);
}

}  // namespace berth::streaming
