// What a streaming client sends berthd: the HTTP upgrade request, then SPDY/3.1
// frames (zlib-compressed header blocks included), read by the real
// connection code from a socket whose peer has hung up.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/time/clock.h"
#include "agent/streaming/http.h"
#include "agent/streaming/spdy.h"
#include "os/unique_fd.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool once = [] {
    signal(SIGPIPE, SIG_IGN);  // PING answers go to a closed peer
    return true;
  }();
  (void)once;
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)berth::streaming::ParseHttpRequest(text);
  {
    berth::streaming::HeaderDecoder decoder;
    (void)decoder.Decode(text);
  }
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return 0;
  close(fds[1]);
  berth::streaming::SpdyConn conn(berth::UniqueFd(fds[0]), text);
  const absl::Time deadline = absl::Now() + absl::Seconds(1);
  for (int events = 0; events < 1000; ++events) {
    absl::StatusOr<berth::streaming::SpdyEvent> e = conn.Next(deadline);
    if (!e.ok() || e->kind == berth::streaming::SpdyEvent::kClosed ||
        e->kind == berth::streaming::SpdyEvent::kTimeout) {
      break;
    }
  }
  return 0;
}
