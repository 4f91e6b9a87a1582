// Parsing of HOST:PORT listener addresses and the loopback rule for plain TCP.
//
//   ParseHostPort("127.0.0.1:10010")  -> {"127.0.0.1", 10010}
//   ParseHostPort("[::1]:10010")      -> {"::1", 10010}
//   IsLoopbackHost("localhost")       -> true; IsLoopbackHost("0.0.0.0") -> false
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "os/unique_fd.h"

namespace berth {

struct HostPort {
  std::string host;  // without brackets
  int port = 0;      // 0..65535; 0 asks the kernel for a free port
  // The form gRPC's AddListeningPort takes: "host:port" or "[v6]:port".
  std::string GrpcAddress() const;
};

absl::StatusOr<HostPort> ParseHostPort(absl::string_view text);

// True for "localhost", 127.0.0.0/8 and ::1 (and ::ffff:127.x). Names other than
// localhost are not resolved: a name could point anywhere later.
bool IsLoopbackHost(absl::string_view host);

// A listening TCP socket (CLOEXEC, SO_REUSEADDR) on the first address `hp`
// resolves to; *port is the port bound (the kernel's pick for port 0).
absl::StatusOr<UniqueFd> ListenTcp(const HostPort& hp, int* port);

}  // namespace berth
