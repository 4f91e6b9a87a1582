#include "agent/streaming/spdy.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "os/status.h"

namespace berth::streaming {
namespace {

// Limits on what a peer may send: a header block (inflated) and a frame.
constexpr size_t kMaxHeaderBlock = 1 << 20;
// spdystream writes what it is given as one frame; client-go copies in 32 KiB.
constexpr size_t kMaxFrame = 4 << 20;
constexpr uint16_t kVersion = 3;

void PutU32(std::string& out, uint32_t v) {
  char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
               static_cast<char>(v)};
  out.append(b, 4);
}

uint32_t GetU32(absl::string_view s, size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data() + at);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

std::string FrameHeader(uint32_t first_word, uint8_t flags, size_t length) {
  std::string out;
  PutU32(out, first_word);
  PutU32(out, (uint32_t{flags} << 24) | static_cast<uint32_t>(length));
  return out;
}

}  // namespace

std::string HeaderValue(const SpdyHeaders& headers, absl::string_view name) {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return "";
}

const std::string& SpdyDictionary() {
  // §2.6.10.1: these names, each after its 32-bit big-endian length, then the
  // status codes, reason phrases, dates and content types run together.
  static const std::string* dict = [] {
    static constexpr absl::string_view kWords[] = {"options",
                                                   "head",
                                                   "post",
                                                   "put",
                                                   "delete",
                                                   "trace",
                                                   "accept",
                                                   "accept-charset",
                                                   "accept-encoding",
                                                   "accept-language",
                                                   "accept-ranges",
                                                   "age",
                                                   "allow",
                                                   "authorization",
                                                   "cache-control",
                                                   "connection",
                                                   "content-base",
                                                   "content-encoding",
                                                   "content-language",
                                                   "content-length",
                                                   "content-location",
                                                   "content-md5",
                                                   "content-range",
                                                   "content-type",
                                                   "date",
                                                   "etag",
                                                   "expect",
                                                   "expires",
                                                   "from",
                                                   "host",
                                                   "if-match",
                                                   "if-modified-since",
                                                   "if-none-match",
                                                   "if-range",
                                                   "if-unmodified-since",
                                                   "last-modified",
                                                   "location",
                                                   "max-forwards",
                                                   "pragma",
                                                   "proxy-authenticate",
                                                   "proxy-authorization",
                                                   "range",
                                                   "referer",
                                                   "retry-after",
                                                   "server",
                                                   "te",
                                                   "trailer",
                                                   "transfer-encoding",
                                                   "upgrade",
                                                   "user-agent",
                                                   "vary",
                                                   "via",
                                                   "warning",
                                                   "www-authenticate",
                                                   "method",
                                                   "get",
                                                   "status",
                                                   "200 OK",
                                                   "version",
                                                   "HTTP/1.1",
                                                   "url",
                                                   "public",
                                                   "set-cookie",
                                                   "keep-alive",
                                                   "origin"};
    static constexpr absl::string_view kTail =
        "1001012012022052063003023033043053063074024054064074084094104114124134144154164175025045"
        "05203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401"
        " Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 S"
        "ervice UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, We"
        "d, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/xm"
        "l,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdc"
        "hcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";
    auto* d = new std::string;
    for (absl::string_view w : kWords) {
      PutU32(*d, static_cast<uint32_t>(w.size()));
      d->append(w.data(), w.size());
    }
    d->append(kTail.data(), kTail.size());
    return d;
  }();
  return *dict;
}

HeaderEncoder::HeaderEncoder() {
  const std::string& dict = SpdyDictionary();
  ok_ = deflateInit(&z_, Z_DEFAULT_COMPRESSION) == Z_OK &&
        deflateSetDictionary(&z_, reinterpret_cast<const Bytef*>(dict.data()),
                             static_cast<uInt>(dict.size())) == Z_OK;
}

HeaderEncoder::~HeaderEncoder() { deflateEnd(&z_); }

absl::StatusOr<std::string> HeaderEncoder::Encode(const SpdyHeaders& headers) {
  if (!ok_) return absl::InternalError("spdy: zlib deflate did not initialize");
  std::string plain;
  PutU32(plain, static_cast<uint32_t>(headers.size()));
  for (const auto& [name, value] : headers) {
    PutU32(plain, static_cast<uint32_t>(name.size()));
    plain.append(absl::AsciiStrToLower(name));
    PutU32(plain, static_cast<uint32_t>(value.size()));
    plain.append(value);
  }
  std::string out;
  z_.next_in = reinterpret_cast<Bytef*>(plain.data());
  z_.avail_in = static_cast<uInt>(plain.size());
  char buf[4096];
  do {
    z_.next_out = reinterpret_cast<Bytef*>(buf);
    z_.avail_out = sizeof(buf);
    // Each block ends on a byte boundary the peer can inflate up to (§2.6.10).
    int r = deflate(&z_, Z_SYNC_FLUSH);
    if (r != Z_OK && r != Z_BUF_ERROR) return absl::InternalError("spdy: deflate failed");
    out.append(buf, sizeof(buf) - z_.avail_out);
  } while (z_.avail_out == 0);
  return out;
}

HeaderDecoder::HeaderDecoder() { ok_ = inflateInit(&z_) == Z_OK; }

HeaderDecoder::~HeaderDecoder() { inflateEnd(&z_); }

absl::StatusOr<SpdyHeaders> HeaderDecoder::Decode(absl::string_view block) {
  if (!ok_) return absl::InternalError("spdy: zlib inflate did not initialize");
  std::string plain;
  z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(block.data()));
  z_.avail_in = static_cast<uInt>(block.size());
  char buf[4096];
  // Until the input is used up and zlib has nothing more to give (a full
  // output buffer may leave output pending).
  while (z_.avail_in > 0 || plain.empty() || z_.avail_out == 0) {
    z_.next_out = reinterpret_cast<Bytef*>(buf);
    z_.avail_out = sizeof(buf);
    int r = inflate(&z_, Z_SYNC_FLUSH);
    if (r == Z_NEED_DICT) {
      const std::string& dict = SpdyDictionary();
      r = inflateSetDictionary(&z_, reinterpret_cast<const Bytef*>(dict.data()),
                               static_cast<uInt>(dict.size()));
      if (r != Z_OK)
        return absl::InvalidArgumentError("spdy: header block wants another dictionary");
      continue;
    }
    if (r != Z_OK && r != Z_BUF_ERROR) {
      return absl::InvalidArgumentError(
          absl::StrCat("spdy: header block does not inflate: ", z_.msg ? z_.msg : "zlib error"));
    }
    plain.append(buf, sizeof(buf) - z_.avail_out);
    if (plain.size() > kMaxHeaderBlock) {
      return absl::InvalidArgumentError("spdy: header block over 1 MiB");
    }
    if (r == Z_BUF_ERROR || (z_.avail_in == 0 && z_.avail_out != 0)) break;
  }
  absl::string_view p = plain;
  auto take_u32 = [&p](uint32_t* v) {
    if (p.size() < 4) return false;
    *v = GetU32(p, 0);
    p.remove_prefix(4);
    return true;
  };
  auto take_str = [&](std::string* s) {
    uint32_t n;
    if (!take_u32(&n) || p.size() < n) return false;
    s->assign(p.data(), n);
    p.remove_prefix(n);
    return true;
  };
  uint32_t count;
  if (!take_u32(&count)) return absl::InvalidArgumentError("spdy: header block too short");
  SpdyHeaders headers;
  for (uint32_t i = 0; i < count; ++i) {
    std::string name, value;
    if (!take_str(&name) || !take_str(&value)) {
      return absl::InvalidArgumentError("spdy: header block truncated");
    }
    headers.emplace_back(std::move(name), std::move(value));
  }
  return headers;
}

std::string SpdyControlFrame(SpdyControlType type, uint8_t flags, absl::string_view payload) {
  std::string out =
      FrameHeader(0x80000000u | (uint32_t{kVersion} << 16) | type, flags, payload.size());
  out.append(payload.data(), payload.size());
  return out;
}

std::string SpdySynStreamFrame(uint32_t stream, uint8_t flags, absl::string_view header_block) {
  std::string payload;
  PutU32(payload, stream & 0x7fffffffu);
  PutU32(payload, 0);       // associated-to stream
  payload.append(2, '\0');  // priority, slot
  payload.append(header_block.data(), header_block.size());
  return SpdyControlFrame(kSynStream, flags, payload);
}

std::string SpdyDataFrame(uint32_t stream, uint8_t flags, absl::string_view data) {
  std::string out = FrameHeader(stream & 0x7fffffffu, flags, data.size());
  out.append(data.data(), data.size());
  return out;
}

SpdyConn::SpdyConn(UniqueFd fd, std::string pending)
    : fd_(std::move(fd)), in_(std::move(pending)) {}

absl::StatusOr<SpdyEvent> SpdyConn::Next(absl::Time deadline, int wake) {
  while (true) {
    if (in_.size() >= 8) {
      uint32_t w0 = GetU32(in_, 0), w1 = GetU32(in_, 4);
      size_t length = w1 & 0xffffff;
      uint8_t flags = static_cast<uint8_t>(w1 >> 24);
      if (length > kMaxFrame) return absl::InvalidArgumentError("spdy: frame too large");
      if (in_.size() >= 8 + length) {
        std::string payload = in_.substr(8, length);
        in_.erase(0, 8 + length);
        SpdyEvent e;
        if (!(w0 & 0x80000000u)) {
          e.kind = SpdyEvent::kData;
          e.stream = w0 & 0x7fffffffu;
          e.data = std::move(payload);
          e.fin = flags & kSpdyFlagFin;
          return e;
        }
        uint16_t version = static_cast<uint16_t>((w0 >> 16) & 0x7fff);
        uint16_t type = static_cast<uint16_t>(w0 & 0xffff);
        if (version != kVersion) {
          return absl::InvalidArgumentError(absl::StrCat("spdy: version ", version, ", not 3"));
        }
        switch (type) {
          case kSynStream: {
            if (payload.size() < 10) return absl::InvalidArgumentError("spdy: short SYN_STREAM");
            e.kind = SpdyEvent::kStream;
            e.stream = GetU32(payload, 0) & 0x7fffffffu;
            e.fin = flags & kSpdyFlagFin;
            // Client streams are odd and increase (§2.3.2).
            if (e.stream % 2 == 0 || e.stream <= last_peer_stream_) {
              return absl::InvalidArgumentError(
                  absl::StrCat("spdy: bad stream id ", e.stream, " in SYN_STREAM"));
            }
            last_peer_stream_ = e.stream;
            BERTH_ASSIGN_OR_RETURN(e.headers,
                                   decoder_.Decode(absl::string_view(payload).substr(10)));
            return e;
          }
          case kHeaders:
          case kSynReply: {
            if (payload.size() < 4) return absl::InvalidArgumentError("spdy: short frame");
            // Decoded anyway: the compression context must advance.
            BERTH_RETURN_IF_ERROR(decoder_.Decode(absl::string_view(payload).substr(4)).status());
            continue;
          }
          case kRstStream:
            if (payload.size() < 8) return absl::InvalidArgumentError("spdy: short RST_STREAM");
            e.kind = SpdyEvent::kReset;
            e.stream = GetU32(payload, 0) & 0x7fffffffu;
            e.status = GetU32(payload, 4);
            return e;
          case kPing: {
            if (payload.size() < 4) return absl::InvalidArgumentError("spdy: short PING");
            // Ours would be even; a client's (odd) is echoed (§2.6.5).
            if (GetU32(payload, 0) % 2 == 1) {
              absl::MutexLock lock(&write_mu_);
              BERTH_RETURN_IF_ERROR(WriteControl(kPing, 0, payload));
            }
            continue;
          }
          case kGoAway:
            e.kind = SpdyEvent::kClosed;
            return e;
          default:  // SETTINGS, WINDOW_UPDATE, and any other: ignored (§2.2.1)
            continue;
        }
      }
    }
    // Need more bytes.
    absl::Duration left = deadline - absl::Now();
    int timeout_ms = deadline == absl::InfiniteFuture()
                         ? -1
                         : static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(left)));
    struct pollfd p[2] = {{fd_.get(), POLLIN, 0}, {wake, POLLIN, 0}};
    int n = poll(p, wake >= 0 ? 2 : 1, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "poll");
    }
    if (n == 0 || (p[0].revents == 0 && wake >= 0 && p[1].revents != 0)) {
      SpdyEvent e;
      e.kind = SpdyEvent::kTimeout;
      return e;
    }
    char buf[65536];
    ssize_t r = read(fd_.get(), buf, sizeof(buf));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      SpdyEvent e;
      e.kind = SpdyEvent::kClosed;
      return e;
    }
    in_.append(buf, static_cast<size_t>(r));
  }
}

absl::Status SpdyConn::Write(absl::string_view frame) {
  if (broken_) return absl::UnavailableError("spdy: connection closed");
  size_t off = 0;
  while (off < frame.size()) {
    ssize_t n = send(fd_.get(), frame.data() + off, frame.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      broken_ = true;
      return absl::UnavailableError(absl::StrCat("spdy: write: ", strerror(errno)));
    }
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status SpdyConn::WriteControl(SpdyControlType type, uint8_t flags,
                                    absl::string_view payload) {
  return Write(SpdyControlFrame(type, flags, payload));
}

absl::Status SpdyConn::Reply(uint32_t stream, const SpdyHeaders& headers, bool fin) {
  absl::MutexLock lock(&write_mu_);
  BERTH_ASSIGN_OR_RETURN(std::string block, encoder_.Encode(headers));
  std::string payload;
  PutU32(payload, stream & 0x7fffffffu);
  payload.append(block);
  return WriteControl(kSynReply, fin ? kSpdyFlagFin : 0, payload);
}

absl::Status SpdyConn::Data(uint32_t stream, absl::string_view data, bool fin) {
  absl::MutexLock lock(&write_mu_);
  // Frames of at most 32 KiB, as spdystream writes them.
  constexpr size_t kChunk = 32 << 10;
  do {
    absl::string_view part = data.substr(0, kChunk);
    data.remove_prefix(part.size());
    BERTH_RETURN_IF_ERROR(
        Write(SpdyDataFrame(stream, fin && data.empty() ? kSpdyFlagFin : 0, part)));
  } while (!data.empty());
  return absl::OkStatus();
}

absl::Status SpdyConn::Reset(uint32_t stream, uint32_t status) {
  absl::MutexLock lock(&write_mu_);
  std::string payload;
  PutU32(payload, stream & 0x7fffffffu);
  PutU32(payload, status);
  return WriteControl(kRstStream, 0, payload);
}

absl::Status SpdyConn::GoAway() {
  absl::MutexLock lock(&write_mu_);
  std::string payload;
  PutU32(payload, last_peer_stream_);
  PutU32(payload, 0);  // OK
  return WriteControl(kGoAway, 0, payload);
}

bool SpdyConn::PeerGone() const {
  // POLLRDHUP: the peer's FIN, or our own shutdown (StreamingServer's stop).
  struct pollfd p = {fd_.get(), POLLRDHUP, 0};
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

void SpdyConn::Shutdown() {
  {
    absl::MutexLock lock(&write_mu_);
    broken_ = true;
  }
  shutdown(fd_.get(), SHUT_RDWR);
}

}  // namespace berth::streaming
