// A client for one registry endpoint: the OCI distribution API / Docker
// Registry HTTP API v2 over libcurl (distribution-spec spec.md; Docker's
// token authentication, docs/spec/auth/token.md).
//
//   RegistryEndpoint ep{.host = "127.0.0.1:5000", .plain_http = true};
//   RegistryClient client(ep, Credentials{});
//   BERTH_ASSIGN_OR_RETURN(FetchedManifest m,
//                          client.GetManifest("library/busybox", "latest", kManifestAccept));
//   BERTH_RETURN_IF_ERROR(client.FetchBlob("library/busybox", m.layer, [&](absl::string_view chunk)
//   {
//     return writer.Write(chunk);   // hashed and verified by the content store
//   }));
//
// Authentication: a request answered 401 with `WWW-Authenticate: Bearer
// realm=...,service=...,scope=...` gets a token from the realm (anonymously,
// with basic credentials, or with an identity token as refresh_token) and is
// retried once; `Basic` challenges are answered with the credentials. Tokens
// are kept per scope for their lifetime. Blob downloads follow redirects (to
// object storage); curl sends credentials only to the host they were meant for.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace berth::images {

// One place an image can be fetched from: the registry itself or a mirror.
struct RegistryEndpoint {
  std::string host;          // "registry-1.docker.io", "127.0.0.1:5000"
  bool plain_http = false;   // http:// (insecure registries and loopback)
  bool skip_verify = false;  // https without certificate checks (insecure)
  std::string ca_file;       // extra CA bundle for this host
  // For a mirror of another registry: the path prefix to put before
  // repositories ("" for most mirrors).
  std::string path_prefix;
};

// CRI AuthConfig, as far as a registry cares.
// Polled by long waits and transfers: true once the caller no longer wants
// the result (its client went, or its deadline passed). Null: never.
using Cancelled = std::function<bool()>;

struct Credentials {
  std::string username, password;
  std::string identity_token;  // OAuth2 refresh token
  std::string registry_token;  // a bearer token to use as is
};

// A parsed WWW-Authenticate header: scheme ("bearer", "basic", lowercase) and
// its parameters.
struct AuthChallenge {
  std::string scheme;
  std::map<std::string, std::string> params;
};
absl::StatusOr<AuthChallenge> ParseAuthChallenge(absl::string_view header);

// Accept header for manifests: OCI and Docker schema 2, indexes and lists.
extern const char kManifestAccept[];

struct FetchedManifest {
  std::string body;
  std::string media_type;     // Content-Type
  std::string digest_header;  // Docker-Content-Digest, if sent
};

class RegistryClient {
 public:
  RegistryClient(RegistryEndpoint endpoint, Credentials credentials);

  // GET /v2/<repo>/manifests/<reference> (a tag or a digest).
  absl::StatusOr<FetchedManifest> GetManifest(const std::string& repo, const std::string& reference,
                                              const std::string& accept = kManifestAccept);
  // GET /v2/<repo>/blobs/<digest>, streamed to `sink` (return false to stop).
  // The caller verifies the digest and size.
  absl::Status FetchBlob(const std::string& repo, const std::string& digest,
                         const std::function<bool(absl::string_view)>& sink);

  const RegistryEndpoint& endpoint() const { return endpoint_; }
  // Every transfer from now on ends with CANCELLED once `cancelled` says so
  // (libcurl's progress callback polls it at least once a second).
  void set_cancelled(Cancelled cancelled) { cancelled_ = std::move(cancelled); }
  const Cancelled& cancelled() const { return cancelled_; }

 private:
  struct Response {
    long status = 0;
    std::map<std::string, std::string> headers;  // lowercase names
    std::string body;                            // unless streamed
  };
  absl::StatusOr<Response> Get(const std::string& url, const std::string& accept,
                               const std::string& scope,
                               const std::function<bool(absl::string_view)>* sink);
  // How one request authenticates: a bearer token, or basic credentials, or neither.
  struct Auth {
    std::string bearer;
    std::string username, password;
  };
  absl::StatusOr<Response> Perform(const std::string& url, const std::string& accept,
                                   const Auth& auth,
                                   const std::function<bool(absl::string_view)>* sink);
  Auth BasicAuth() const { return Auth{"", credentials_.username, credentials_.password}; }
  absl::StatusOr<std::string> FetchToken(const AuthChallenge& challenge, const std::string& scope);
  std::string BaseUrl() const;

  RegistryEndpoint endpoint_;
  Credentials credentials_;
  Cancelled cancelled_;
  absl::Mutex mu_;
  struct Token {
    std::string value;
    absl::Time expires;
  };
  std::map<std::string, Token> tokens_ ABSL_GUARDED_BY(mu_);  // by scope
  bool basic_ ABSL_GUARDED_BY(mu_) = false;                   // the registry asked for Basic
};

}  // namespace berth::images
