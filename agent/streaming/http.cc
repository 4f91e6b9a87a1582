#include "agent/streaming/http.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "os/status.h"

namespace berth::streaming {
namespace {

constexpr size_t kMaxHead = 16 * 1024;

}  // namespace

std::string HttpRequest::Header(absl::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return "";
}

std::vector<std::string> HttpRequest::HeaderList(absl::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [n, v] : headers) {
    if (n != name) continue;
    for (absl::string_view part : absl::StrSplit(v, ',', absl::SkipWhitespace())) {
      out.emplace_back(absl::StripAsciiWhitespace(part));
    }
  }
  return out;
}

absl::StatusOr<HttpRequest> ParseHttpRequest(absl::string_view head) {
  std::vector<absl::string_view> lines = absl::StrSplit(head, "\r\n");
  if (lines.empty()) return absl::InvalidArgumentError("empty request");
  std::vector<absl::string_view> first = absl::StrSplit(lines[0], ' ');
  if (first.size() != 3 || !absl::StartsWith(first[2], "HTTP/1.")) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad request line `", absl::CHexEscape(lines[0].substr(0, 200)), "`"));
  }
  HttpRequest r;
  r.method = std::string(first[0]);
  std::pair<absl::string_view, absl::string_view> target =
      absl::StrSplit(first[1], absl::MaxSplits('?', 1));
  r.path = std::string(target.first);
  r.query = std::string(target.second);
  for (size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos || colon == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad header line `", absl::CHexEscape(lines[i].substr(0, 200)), "`"));
    }
    r.headers.emplace_back(absl::AsciiStrToLower(lines[i].substr(0, colon)),
                           std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1))));
  }
  return r;
}

absl::StatusOr<HttpRequest> ReadHttpRequest(int fd, absl::Time deadline, std::string* rest) {
  std::string in;
  while (true) {
    size_t end = in.find("\r\n\r\n");
    if (end != std::string::npos) {
      *rest = in.substr(end + 4);
      return ParseHttpRequest(absl::string_view(in).substr(0, end + 2));
    }
    if (in.size() > kMaxHead) return absl::InvalidArgumentError("request head over 16 KiB");
    int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    struct pollfd p = {fd, POLLIN, 0};
    int n = poll(&p, 1, static_cast<int>(std::clamp<int64_t>(left, 0, 1 << 30)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "poll");
    if (n == 0) return absl::DeadlineExceededError("no whole request head in time");
    char buf[4096];
    ssize_t r = read(fd, buf, sizeof(buf));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return absl::UnavailableError("the client closed before a whole request");
    in.append(buf, static_cast<size_t>(r));
  }
}

bool WriteAllTo(int fd, absl::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void WriteHttpError(int fd, int code, absl::string_view message) {
  absl::string_view reason = code == 400   ? "Bad Request"
                             : code == 403 ? "Forbidden"
                             : code == 404 ? "Not Found"
                             : code == 503 ? "Service Unavailable"
                                           : "Internal Server Error";
  std::string body = absl::StrCat(message, "\n");
  (void)WriteAllTo(fd,
                   absl::StrCat("HTTP/1.1 ", code, " ", reason,
                                "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ",
                                body.size(), "\r\nConnection: close\r\n\r\n", body));
}

}  // namespace berth::streaming
