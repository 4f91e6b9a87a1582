#include "agent/streaming/spdy_test_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace berth::streaming {
namespace {

uint32_t GetU32(const std::string& s, size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data() + at);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

bool SendAll(int fd, const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

std::string SpdyTestClient::Upgrade(const std::string& url,
                                    const std::vector<std::string>& protocols,
                                    const std::string& upgrade) {
  absl::string_view rest = url;
  int port = 0;
  size_t slash;
  if (!absl::ConsumePrefix(&rest, "http://127.0.0.1:") ||
      (slash = rest.find('/')) == absl::string_view::npos ||
      !absl::SimpleAtoi(rest.substr(0, slash), &port)) {
    return "";
  }
  fd_.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  struct sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd_.get(), reinterpret_cast<struct sockaddr*>(&a), sizeof(a)) != 0) return "";
  int one = 1;  // as Go's clients
  setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  std::string req = absl::StrCat("POST ", rest.substr(slash), " HTTP/1.1\r\nHost: x\r\n",
                                 "Connection: Upgrade\r\nUpgrade: ", upgrade, "\r\n");
  for (const std::string& p : protocols) {
    absl::StrAppend(&req, "X-Stream-Protocol-Version: ", p, "\r\n");
  }
  if (!SendAll(fd_.get(), req + "\r\n")) return "";
  while (in_.find("\r\n\r\n") == std::string::npos && Fill()) {
  }
  size_t end = in_.find("\r\n\r\n");
  if (end == std::string::npos) return in_;
  std::string head = in_.substr(0, end + 4);
  in_.erase(0, end + 4);
  if (!absl::StartsWith(head, "HTTP/1.1 101")) {
    while (Fill()) {
    }
    head += in_;  // the body
  }
  return head;
}

uint32_t SpdyTestClient::Open(const SpdyHeaders& headers) {
  uint32_t id = next_;
  next_ += 2;
  absl::StatusOr<std::string> block = enc_.Encode(headers);
  if (!block.ok()) return 0;
  SendAll(fd_.get(), SpdySynStreamFrame(id, 0, *block));
  return id;
}

bool SpdyTestClient::Send(uint32_t id, const std::string& bytes, bool fin) {
  return SendAll(fd_.get(), SpdyDataFrame(id, fin ? kSpdyFlagFin : 0, bytes));
}

bool SpdyTestClient::Fill() {
  struct pollfd p = {fd_.get(), POLLIN, 0};
  if (poll(&p, 1, 10000) <= 0) return false;
  char buf[65536];
  ssize_t n = read(fd_.get(), buf, sizeof(buf));
  if (n <= 0) return false;
  in_.append(buf, static_cast<size_t>(n));
  return true;
}

bool SpdyTestClient::ReadOne() {
  while (in_.size() < 8 || in_.size() < 8 + (GetU32(in_, 4) & 0xffffff)) {
    if (!Fill()) return false;
  }
  uint32_t w0 = GetU32(in_, 0), w1 = GetU32(in_, 4);
  size_t len = w1 & 0xffffff;
  std::string payload = in_.substr(8, len);
  in_.erase(0, 8 + len);
  bool fin = (w1 >> 24) & kSpdyFlagFin;
  if (w0 & 0x80000000u) {
    if ((w0 & 0xffff) == kSynReply && payload.size() >= 4) {
      uint32_t id = GetU32(payload, 0);
      replied.insert(id);
      if (!dec_.Decode(payload.substr(4)).ok()) return false;
      if (fin) fins.insert(id);
    }
    return true;
  }
  data[w0] += payload;
  if (fin) fins.insert(w0);
  return true;
}

bool SpdyTestClient::WaitFin(uint32_t id) {
  while (!fins.count(id)) {
    if (!ReadOne()) return false;
  }
  return true;
}

}  // namespace berth::streaming
