// SPDY/3.1 framing, the server's side: what Kubernetes' streaming clients
// (client-go remotecommand and portforward, over moby/spdystream) speak to a
// runtime's streaming server after an HTTP `Upgrade: SPDY/3.1`.
//
// Only what those clients use (research/cri-v1.md §5): the client opens
// streams (SYN_STREAM), the server answers each (SYN_REPLY), both send DATA and
// half-close with FIN, RST_STREAM aborts, PING is echoed, GOAWAY ends.
// Header blocks are zlib-compressed with the SPDY/3 dictionary, one
// compression context per direction for the whole connection (SPDY/3
// §2.6.10). SETTINGS and WINDOW_UPDATE are read and ignored: spdystream does no
// flow control (it never sends a WINDOW_UPDATE and drops the ones it gets), so
// honouring windows would stall every stream after 64 KiB.
//
//   SpdyConn conn(std::move(fd), leftover_bytes_after_the_http_request);
//   while (true) {
//     BERTH_ASSIGN_OR_RETURN(SpdyEvent e, conn.Next(deadline));
//     if (e.kind == SpdyEvent::kStream) conn.Reply(e.stream, {});
//     ...
//   }
//   conn.Data(id, "bytes", /*fin=*/true);   // any thread
#pragma once

#include <zlib.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "os/unique_fd.h"

namespace berth::streaming {

// Names are lower case on the wire (SPDY/3 §2.6.10); a name may repeat.
using SpdyHeaders = std::vector<std::pair<std::string, std::string>>;

// The first value of `name` (lower case), or "".
std::string HeaderValue(const SpdyHeaders& headers, absl::string_view name);

// The SPDY/3 header compression dictionary (§2.6.10.1), 1423 bytes.
const std::string& SpdyDictionary();

// One direction's header compression context.
class HeaderEncoder {
 public:
  HeaderEncoder();
  ~HeaderEncoder();
  HeaderEncoder(const HeaderEncoder&) = delete;
  HeaderEncoder& operator=(const HeaderEncoder&) = delete;
  absl::StatusOr<std::string> Encode(const SpdyHeaders& headers);

 private:
  z_stream z_ = {};
  bool ok_ = false;
};

class HeaderDecoder {
 public:
  HeaderDecoder();
  ~HeaderDecoder();
  HeaderDecoder(const HeaderDecoder&) = delete;
  HeaderDecoder& operator=(const HeaderDecoder&) = delete;
  // INVALID_ARGUMENT for a block that does not inflate or parse; the
  // connection cannot go on after that (the context is shared).
  absl::StatusOr<SpdyHeaders> Decode(absl::string_view block);

 private:
  z_stream z_ = {};
  bool ok_ = false;
};

// Frame types (SPDY/3 §2.6).
enum SpdyControlType : uint16_t {
  kSynStream = 1,
  kSynReply = 2,
  kRstStream = 3,
  kSettings = 4,
  kPing = 6,
  kGoAway = 7,
  kHeaders = 8,
  kWindowUpdate = 9,
};
inline constexpr uint8_t kSpdyFlagFin = 0x01;
// RST_STREAM status codes.
inline constexpr uint32_t kSpdyProtocolError = 1;
inline constexpr uint32_t kSpdyRefusedStream = 3;
inline constexpr uint32_t kSpdyCancel = 5;
inline constexpr uint32_t kSpdyInternalError = 6;

struct SpdyEvent {
  enum Kind {
    kStream,   // the peer opened `stream` with `headers` (fin: and half-closed it)
    kData,     // `data` on `stream`; fin: the peer half-closed it
    kReset,    // the peer reset `stream` (RST_STREAM; status in `status`)
    kClosed,   // the peer closed the connection or sent GOAWAY
    kTimeout,  // the deadline passed with no event
  };
  Kind kind = kClosed;
  uint32_t stream = 0;
  SpdyHeaders headers;
  std::string data;
  bool fin = false;
  uint32_t status = 0;
};

class SpdyConn {
 public:
  // `fd` is the upgraded connection; `pending` what was read past the HTTP
  // request.
  SpdyConn(UniqueFd fd, std::string pending);

  // Reader, one thread: the next event by `deadline`, or kTimeout early when
  // `wake` (an eventfd, -1: none) becomes readable (the caller reads it).
  // PING is answered and SETTINGS, WINDOW_UPDATE and HEADERS are consumed
  // here. An error is a protocol violation or a broken connection: the caller
  // ends the session.
  absl::StatusOr<SpdyEvent> Next(absl::Time deadline, int wake = -1);

  // Writers, any thread, serialized. A write to a connection the peer has
  // gone from fails (UNAVAILABLE) and later ones fail at once.
  absl::Status Reply(uint32_t stream, const SpdyHeaders& headers, bool fin = false);
  absl::Status Data(uint32_t stream, absl::string_view data, bool fin = false);
  absl::Status Reset(uint32_t stream, uint32_t status);
  absl::Status GoAway();

  // Wakes the reader (Next answers kClosed) and fails later writes; the
  // socket itself closes with the object. Any thread.
  void Shutdown();
  // True once the peer half-closed or the socket was shut down (a check
  // without reading, for threads waiting on something else).
  bool PeerGone() const;
  int fd() const { return fd_.get(); }

 private:
  absl::Status Write(absl::string_view frame) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::Status WriteControl(SpdyControlType type, uint8_t flags, absl::string_view payload)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);

  UniqueFd fd_;
  std::string in_;
  HeaderDecoder decoder_;                      // the reader's
  std::atomic<uint32_t> last_peer_stream_{0};  // GOAWAY, from any thread, names it
  absl::Mutex write_mu_;
  HeaderEncoder encoder_ ABSL_GUARDED_BY(write_mu_);
  bool broken_ ABSL_GUARDED_BY(write_mu_) = false;
};

// Frame builders, exposed for tests (they are what SpdyConn writes).
std::string SpdyControlFrame(SpdyControlType type, uint8_t flags, absl::string_view payload);
// A client's SYN_STREAM (no associated stream, priority 0) with a header
// block from the client's HeaderEncoder; SpdyConn never sends one.
std::string SpdySynStreamFrame(uint32_t stream, uint8_t flags, absl::string_view header_block);
std::string SpdyDataFrame(uint32_t stream, uint8_t flags, absl::string_view data);

}  // namespace berth::streaming
