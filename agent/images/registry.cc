#include "agent/images/registry.h"

#include <curl/curl.h>

#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"
#include "os/status.h"

namespace berth::images {

const char kManifestAccept[] =
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

namespace {

constexpr size_t kMaxBufferedBody = 8 << 20;  // manifests, tokens, error bodies

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Reads a token or a quoted-string (RFC 7230 3.2.6) at the front of `s`.
std::string TakeValue(absl::string_view& s) {
  std::string out;
  if (absl::ConsumePrefix(&s, "\"")) {
    while (!s.empty() && s.front() != '"') {
      if (s.front() == '\\' && s.size() > 1) s.remove_prefix(1);
      out.push_back(s.front());
      s.remove_prefix(1);
    }
    absl::ConsumePrefix(&s, "\"");
    return out;
  }
  size_t end = s.find_first_of(", ");
  out = std::string(s.substr(0, end));
  s.remove_prefix(end == absl::string_view::npos ? s.size() : end);
  return out;
}

struct Transfer {
  CURL* curl = nullptr;
  std::map<std::string, std::string>* headers = nullptr;
  std::string* body = nullptr;
  const std::function<bool(absl::string_view)>* sink = nullptr;
  bool sink_stopped = false;
};

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  absl::string_view line(data, size * n);
  if (absl::StartsWith(line, "HTTP/")) t->headers->clear();  // a new response (redirect)
  size_t colon = line.find(':');
  if (colon != absl::string_view::npos) {
    (*t->headers)[absl::AsciiStrToLower(line.substr(0, colon))] =
        std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  }
  return size * n;
}

// CURLOPT_XFERINFOFUNCTION: non-zero aborts with CURLE_ABORTED_BY_CALLBACK.
int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* cancelled = static_cast<const Cancelled*>(user);
  return (*cancelled)() ? 1 : 0;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  long status = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  absl::string_view chunk(data, size * n);
  if (t->sink != nullptr && status >= 200 && status < 300) {
    if (!(*t->sink)(chunk)) {
      t->sink_stopped = true;
      return 0;  // aborts the transfer
    }
    return chunk.size();
  }
  if (t->body->size() + chunk.size() > kMaxBufferedBody) return 0;
  t->body->append(chunk.data(), chunk.size());
  return chunk.size();
}

absl::Status HttpError(long status, const std::string& url, const std::string& body) {
  std::string msg = absl::StrCat("GET ", url, ": HTTP ", status);
  if (!body.empty()) absl::StrAppend(&msg, ": ", body.substr(0, 300));
  if (status == 401 || status == 403) return absl::PermissionDeniedError(msg);
  if (status == 404) return absl::NotFoundError(msg);
  if (status == 429) return absl::ResourceExhaustedError(msg);
  if (status >= 500) return absl::UnavailableError(msg);
  return absl::UnknownError(msg);
}

}  // namespace

absl::StatusOr<AuthChallenge> ParseAuthChallenge(absl::string_view header) {
  absl::string_view s = absl::StripAsciiWhitespace(header);
  size_t space = s.find(' ');
  AuthChallenge c;
  c.scheme = absl::AsciiStrToLower(s.substr(0, space));
  if (c.scheme.empty()) return absl::InvalidArgumentError("WWW-Authenticate: empty");
  s.remove_prefix(space == absl::string_view::npos ? s.size() : space);
  while (true) {
    s = absl::StripLeadingAsciiWhitespace(s);
    absl::ConsumePrefix(&s, ",");
    s = absl::StripLeadingAsciiWhitespace(s);
    if (s.empty()) break;
    size_t eq = s.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("WWW-Authenticate: bad parameter `", s, "`"));
    }
    std::string key = absl::AsciiStrToLower(absl::StripAsciiWhitespace(s.substr(0, eq)));
    s.remove_prefix(eq + 1);
    c.params[key] = TakeValue(s);
  }
  return c;
}

RegistryClient::RegistryClient(RegistryEndpoint endpoint, Credentials credentials)
    : endpoint_(std::move(endpoint)), credentials_(std::move(credentials)) {
  GlobalInit();
}

std::string RegistryClient::BaseUrl() const {
  return absl::StrCat(endpoint_.plain_http ? "http://" : "https://", endpoint_.host);
}

absl::StatusOr<FetchedManifest> RegistryClient::GetManifest(const std::string& repo,
                                                            const std::string& reference,
                                                            const std::string& accept) {
  const std::string url =
      absl::StrCat(BaseUrl(), "/v2/", endpoint_.path_prefix, repo, "/manifests/", reference);
  BERTH_ASSIGN_OR_RETURN(Response r,
                         Get(url, accept, absl::StrCat("repository:", repo, ":pull"), nullptr));
  FetchedManifest m;
  m.body = std::move(r.body);
  m.media_type = r.headers["content-type"];
  // Parameters such as "; charset=utf-8" are not part of the media type.
  m.media_type =
      std::string(absl::StripAsciiWhitespace(m.media_type.substr(0, m.media_type.find(';'))));
  m.digest_header = r.headers["docker-content-digest"];
  return m;
}

absl::Status RegistryClient::FetchBlob(const std::string& repo, const std::string& digest,
                                       const std::function<bool(absl::string_view)>& sink) {
  const std::string url =
      absl::StrCat(BaseUrl(), "/v2/", endpoint_.path_prefix, repo, "/blobs/", digest);
  return Get(url, "*/*", absl::StrCat("repository:", repo, ":pull"), &sink).status();
}

absl::StatusOr<RegistryClient::Response> RegistryClient::Get(
    const std::string& url, const std::string& accept, const std::string& scope,
    const std::function<bool(absl::string_view)>* sink) {
  std::string bearer = credentials_.registry_token;
  bool basic;
  {
    absl::MutexLock lock(&mu_);
    auto it = tokens_.find(scope);
    if (it != tokens_.end() && absl::Now() < it->second.expires) bearer = it->second.value;
    basic = basic_;
  }
  BERTH_ASSIGN_OR_RETURN(Response r,
                         Perform(url, accept, basic ? BasicAuth() : Auth{bearer, "", ""}, sink));
  if (r.status == 401 && r.headers.count("www-authenticate")) {
    BERTH_ASSIGN_OR_RETURN(AuthChallenge c, ParseAuthChallenge(r.headers["www-authenticate"]));
    if (c.scheme == "basic") {
      if (credentials_.username.empty()) {
        return absl::PermissionDeniedError(
            absl::StrCat("GET ", url, ": the registry asks for a username and password"));
      }
      {
        absl::MutexLock lock(&mu_);
        basic_ = true;
      }
      BERTH_ASSIGN_OR_RETURN(r, Perform(url, accept, BasicAuth(), sink));
    } else if (c.scheme == "bearer") {
      BERTH_ASSIGN_OR_RETURN(std::string token, FetchToken(c, scope));
      BERTH_ASSIGN_OR_RETURN(r, Perform(url, accept, Auth{token, "", ""}, sink));
    }
  }
  if (r.status < 200 || r.status >= 300) return HttpError(r.status, url, r.body);
  return r;
}

absl::StatusOr<RegistryClient::Response> RegistryClient::Perform(
    const std::string& url, const std::string& accept, const Auth& auth,
    const std::function<bool(absl::string_view)>* sink) {
  Response r;
  Transfer t;
  t.curl = curl_easy_init();
  if (t.curl == nullptr) return absl::InternalError("curl_easy_init failed");
  t.headers = &r.headers;
  t.body = &r.body;
  t.sink = sink;
  CURL* c = t.curl;
  struct curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, absl::StrCat("Accept: ", accept).c_str());
  headers = curl_slist_append(headers, "User-Agent: berth/" BERTH_VERSION);
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  // A stalled download: under 1 kB/s for a minute.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  if (cancelled_) {
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, OnProgress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &cancelled_);
  }
  if (!endpoint_.ca_file.empty()) {
    // The registry's own CA on top of the system store (CAINFO alone would
    // replace the bundle; OpenSSL reads CAPATH as well).
    curl_easy_setopt(c, CURLOPT_CAINFO, endpoint_.ca_file.c_str());
    curl_easy_setopt(c, CURLOPT_CAPATH, "/etc/ssl/certs");
  }
  if (endpoint_.skip_verify) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  // curl sends these only to the host of `url`, not to a redirect's host.
  if (!auth.bearer.empty()) {
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
    curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, auth.bearer.c_str());
  } else if (!auth.username.empty()) {
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(c, CURLOPT_USERNAME, auth.username.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, auth.password.c_str());
  }
  CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  if (t.sink_stopped)
    return absl::AbortedError(absl::StrCat("GET ", url, ": stopped by the writer"));
  if (rc == CURLE_ABORTED_BY_CALLBACK) {
    return absl::CancelledError(absl::StrCat("GET ", url, ": cancelled by the client"));
  }
  if (rc != CURLE_OK) {
    absl::StatusCode code = rc == CURLE_OPERATION_TIMEDOUT ? absl::StatusCode::kDeadlineExceeded
                                                           : absl::StatusCode::kUnavailable;
    return absl::Status(code, absl::StrCat("GET ", url, ": ", curl_easy_strerror(rc)));
  }
  return r;
}

absl::StatusOr<std::string> RegistryClient::FetchToken(const AuthChallenge& challenge,
                                                       const std::string& scope) {
  auto realm = challenge.params.find("realm");
  if (realm == challenge.params.end() || realm->second.empty()) {
    return absl::PermissionDeniedError("bearer challenge without a realm");
  }
  CURL* esc = curl_easy_init();
  auto escape = [&](const std::string& v) {
    char* e = curl_easy_escape(esc, v.c_str(), static_cast<int>(v.size()));
    std::string out = e ? e : "";
    curl_free(e);
    return out;
  };
  auto service = challenge.params.find("service");
  auto asked = challenge.params.find("scope");
  const std::string& want = asked != challenge.params.end() ? asked->second : scope;
  std::string url = realm->second;
  absl::StrAppend(&url, absl::StrContains(url, '?') ? "&" : "?", "scope=", escape(want));
  if (service != challenge.params.end())
    absl::StrAppend(&url, "&service=", escape(service->second));
  curl_easy_cleanup(esc);
  // The token endpoint takes the credentials as basic auth (token.md); an
  // identity token goes as the password of the user "<token>", as docker does.
  Auth auth = BasicAuth();
  if (!credentials_.identity_token.empty()) auth = Auth{"", "<token>", credentials_.identity_token};
  absl::StatusOr<Response> r = Perform(url, "application/json", auth, nullptr);
  if (!r.ok()) return r.status();
  if (r->status != 200) return HttpError(r->status, url, r->body);
  nlohmann::json j = nlohmann::json::parse(r->body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::PermissionDeniedError(absl::StrCat("token from ", realm->second, ": not JSON"));
  }
  std::string token;
  for (const char* key : {"token", "access_token"}) {
    if (j.contains(key) && j[key].is_string() && !j[key].get<std::string>().empty()) {
      token = j[key].get<std::string>();
      break;
    }
  }
  if (token.empty()) {
    return absl::PermissionDeniedError(absl::StrCat("token from ", realm->second, ": no token"));
  }
  int64_t expires_in = 60;  // token.md: the default when absent
  if (j.contains("expires_in") && j["expires_in"].is_number_integer()) {
    expires_in = std::max<int64_t>(j["expires_in"].get<int64_t>(), 1);
  }
  absl::MutexLock lock(&mu_);
  tokens_[scope] = Token{token, absl::Now() + absl::Seconds(expires_in) - absl::Seconds(5)};
  return token;
}

}  // namespace berth::images
