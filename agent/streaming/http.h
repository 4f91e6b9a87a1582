// Just enough HTTP/1.1 for the streaming server: one request head per
// connection, then an error answer or the 101 that hands the socket to SPDY.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace berth::streaming {

struct HttpRequest {
  std::string method;
  std::string path;                                          // without the query
  std::string query;                                         // after '?', undecoded
  std::vector<std::pair<std::string, std::string>> headers;  // names lower case

  // The first value of `name` (lower case), or "".
  std::string Header(absl::string_view name) const;
  // Every value of `name`, repeated lines and comma lists alike, trimmed.
  std::vector<std::string> HeaderList(absl::string_view name) const;
};

// Reads one request head (at most 16 KiB) by `deadline`; bytes after it go to
// *rest. INVALID_ARGUMENT for a malformed head, DEADLINE_EXCEEDED, UNAVAILABLE
// when the peer closes first.
absl::StatusOr<HttpRequest> ReadHttpRequest(int fd, absl::Time deadline, std::string* rest);

// Parses a head that ends with the blank line.
absl::StatusOr<HttpRequest> ParseHttpRequest(absl::string_view head);

// "HTTP/1.1 <code> <reason>" with `message` as a text/plain body; the
// connection is then closed by the caller.
void WriteHttpError(int fd, int code, absl::string_view message);

// False when the peer is gone.
bool WriteAllTo(int fd, absl::string_view bytes);

}  // namespace berth::streaming
