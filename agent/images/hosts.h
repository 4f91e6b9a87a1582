// Where to fetch an image's registry from: mirrors in order, then the registry
// itself. Configured per registry host like containerd's certs.d/hosts.toml,
// one file per host: <dir>/<host>/hosts.toml (for Docker Hub: docker.io).
//
//   # /etc/berth/registries.d/docker.io/hosts.toml
//   server = "https://registry-1.docker.io"  # the upstream (default: https://<host>)
//   skip_upstream = false   # true: mirrors only; the upstream's name is never resolved
//   skip_verify = false     # upstream: https without certificate checks
//   ca = "/etc/ssl/my-ca.pem"
//
//   [[mirror]]              # tried in this order (an array keeps the order,
//   url = "http://10.0.0.5:5000"      #  where containerd's [host."..."] tables do not)
//   skip_verify = false
//   ca = ""
//   path_prefix = ""        # before the repository in the mirror's URLs
//
// With no file, the upstream alone. A registry on a loopback address (127.0.0.0/8,
// ::1, localhost) is reached over plain HTTP without configuration, as Docker
// does; any other plain-HTTP registry must say `http://` in `server` or `url`.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/images/registry.h"

namespace berth::images {

// Parses one hosts.toml for registry `host`. Errors name the file and the key.
absl::StatusOr<std::vector<RegistryEndpoint>> ParseHostsToml(const std::string& host,
                                                             absl::string_view text,
                                                             absl::string_view file = "hosts.toml");

// The endpoints for registry `host` ("docker.io", "127.0.0.1:5000"), reading
// <config_dir>/<host>/hosts.toml when it exists. Never empty unless the file
// says skip_upstream and lists no mirror (then FAILED_PRECONDITION).
absl::StatusOr<std::vector<RegistryEndpoint>> ResolveEndpoints(const std::string& config_dir,
                                                               const std::string& host);

bool IsLoopbackHost(absl::string_view host);

}  // namespace berth::images
