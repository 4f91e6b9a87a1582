#include "agent/images/registry_testing.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "agent/images/digest.h"
#include "nlohmann/json.hpp"
#include "os/files.h"
#include "os/status.h"
#include "tests/support/berthd_process.h"

extern char** environ;

namespace berth::images::testing {
namespace {

constexpr char kService[] = "berth-test-registry";
constexpr char kIssuer[] = "berth-test";

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

size_t CollectHeader(char* data, size_t size, size_t n, void* out) {
  absl::string_view line(data, size * n);
  auto* headers = static_cast<std::vector<std::string>*>(out);
  headers->emplace_back(absl::StripAsciiWhitespace(line));
  return size * n;
}

std::string Header(const std::vector<std::string>& headers, absl::string_view name) {
  for (const std::string& h : headers) {
    if (absl::StartsWithIgnoreCase(h, absl::StrCat(name, ":"))) {
      return std::string(absl::StripAsciiWhitespace(absl::string_view(h).substr(name.size() + 1)));
    }
  }
  return "";
}

// RS256 over `input` with the PEM key at `key_path`, base64url.
absl::StatusOr<std::string> SignRs256(const std::string& key_path, const std::string& input) {
  FILE* f = fopen(key_path.c_str(), "r");
  if (f == nullptr) return ErrnoStatus(errno, "fopen", key_path);
  EVP_PKEY* key = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  fclose(f);
  if (key == nullptr) return absl::InternalError("PEM_read_PrivateKey failed");
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  std::string sig;
  bool ok = EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                           input.size()) == 1;
  if (ok) {
    sig.resize(len);
    ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                        reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
    sig.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  if (!ok) return absl::InternalError("EVP_DigestSign failed");
  return absl::WebSafeBase64Escape(sig);
}

}  // namespace

absl::StatusOr<std::unique_ptr<TestRegistry>> TestRegistry::Start(
    const std::string& dir, const TestRegistryOptions& options) {
  std::unique_ptr<TestRegistry> r(new TestRegistry());
  r->dir_ = dir;
  r->storage_ = dir + "/storage";
  BERTH_RETURN_IF_ERROR(MakeDirs(r->storage_, 0755));
  r->port_ = berth::testing::PickFreePort();
  std::string auth;
  if (options.token_auth) {
    r->key_path_ = dir + "/token.key";
    if (berth::testing::Shell(absl::StrCat(
            "openssl req -x509 -newkey rsa:2048 -nodes -keyout ", r->key_path_, " -out ", dir,
            "/token.crt -days 1 -subj /CN=berth-test-token 2>/dev/null && openssl x509 -in ", dir,
            "/token.crt -outform DER -out ", dir, "/token.der")) != 0) {
      return absl::InternalError("openssl could not make the token key");
    }
    BERTH_ASSIGN_OR_RETURN(std::string der, ReadFile(dir + "/token.der"));
    nlohmann::json header = {{"alg", "RS256"}, {"typ", "JWT"}, {"x5c", {absl::Base64Escape(der)}}};
    r->jwt_header_b64_ = absl::WebSafeBase64Escape(header.dump());
    r->token_listener_.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (bind(r->token_listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        listen(r->token_listener_.get(), 16) != 0 ||
        getsockname(r->token_listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return ErrnoStatus(errno, "token endpoint");
    }
    r->token_port_ = ntohs(addr.sin_port);
    r->token_thread_ = std::thread([p = r.get()] { p->ServeTokens(); });
    auth = absl::StrCat("auth:\n  token:\n    realm: http://127.0.0.1:", r->token_port_,
                        "/token\n    service: ", kService, "\n    issuer: ", kIssuer,
                        "\n    rootcertbundle: ", dir, "/token.crt\n");
  }
  const std::string config = dir + "/config.yml";
  BERTH_RETURN_IF_ERROR(WriteFileAtomically(
      config, absl::StrCat("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n",
                           "    rootdirectory: ", r->storage_,
                           "\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:", r->port_,
                           "\n", auth)));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const std::string log = dir + "/registry.log";
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::string a0 = "docker-registry", a1 = "serve", a2 = config;
  char* argv[] = {a0.data(), a1.data(), a2.data(), nullptr};
  int err = posix_spawn(&r->pid_, "/usr/bin/docker-registry", &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) return ErrnoStatus(err, "posix_spawn", "/usr/bin/docker-registry");
  // Ready when /v2/ answers (200, or 401 asking for a token).
  for (int i = 0; i < 200; ++i) {
    if (waitpid(r->pid_, nullptr, WNOHANG) == r->pid_) {
      r->pid_ = -1;
      absl::StatusOr<std::string> text = ReadFile(log);
      return absl::InternalError(absl::StrCat("docker-registry exited: ", text.ok() ? *text : ""));
    }
    CURL* c = curl_easy_init();
    const std::string url = absl::StrCat("http://", r->host(), "/v2/");
    std::string sink;
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (status == 200 || status == 401) return r;
    usleep(50000);
  }
  return absl::DeadlineExceededError("docker-registry did not answer on /v2/ within 10 s");
}

TestRegistry::~TestRegistry() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  stop_ = true;
  if (token_listener_) shutdown(token_listener_.get(), SHUT_RDWR);
  if (token_thread_.joinable()) token_thread_.join();
}

absl::StatusOr<std::string> TestRegistry::MintToken(const std::string& scope,
                                                    const std::string& subject) {
  // "repository:<name>:<actions>" -> the registry's access claim.
  std::vector<std::string> parts = absl::StrSplit(scope, ':');
  nlohmann::json access = nlohmann::json::array();
  if (parts.size() == 3 && parts[0] == "repository") {
    access.push_back(
        {{"type", "repository"}, {"name", parts[1]}, {"actions", absl::StrSplit(parts[2], ',')}});
  }
  int64_t now = time(nullptr);
  nlohmann::json claims = {{"iss", kIssuer},
                           {"sub", subject},
                           {"aud", kService},
                           {"exp", now + 300},
                           {"nbf", now - 10},
                           {"iat", now},
                           {"jti", absl::StrCat(subject, "-", now, "-", ++jti_)},
                           {"access", access}};
  const std::string input = jwt_header_b64_ + "." + absl::WebSafeBase64Escape(claims.dump());
  BERTH_ASSIGN_OR_RETURN(std::string sig, SignRs256(key_path_, input));
  return input + "." + sig;
}

void TestRegistry::ServeTokens() {
  while (!stop_) {
    int fd = accept4(token_listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    UniqueFd conn(fd);
    std::string request;
    char buf[4096];
    while (!absl::StrContains(request, "\r\n\r\n")) {
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) break;
      request.append(buf, static_cast<size_t>(n));
    }
    ++token_requests_;
    // GET /token?scope=repository%3Alibrary%2Fbusybox%3Apull&service=... HTTP/1.1
    std::string scope;
    size_t q = request.find("scope=");
    if (q != std::string::npos) {
      std::string raw = request.substr(q + 6, request.find_first_of("& ", q) - q - 6);
      int n = 0;
      char* un = curl_easy_unescape(nullptr, raw.c_str(), static_cast<int>(raw.size()), &n);
      scope.assign(un, static_cast<size_t>(n));
      curl_free(un);
    }
    absl::StatusOr<std::string> token = MintToken(scope, "anonymous");
    std::string body =
        token.ok() ? nlohmann::json({{"token", *token}, {"expires_in", 300}}).dump() : "{}";
    std::string response = absl::StrCat(
        "HTTP/1.1 ", token.ok() ? "200 OK" : "500 Internal Server Error",
        "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: ", body.size(),
        "\r\n\r\n", body);
    (void)!write(fd, response.data(), response.size());
  }
}

absl::Status TestRegistry::Request(const std::string& method, const std::string& url,
                                   const std::string& content_type, const std::string& body,
                                   long want, std::string* location, std::string* digest) {
  CURL* c = curl_easy_init();
  struct curl_slist* headers = nullptr;
  if (!content_type.empty()) {
    headers = curl_slist_append(headers, ("Content-Type: " + content_type).c_str());
  }
  if (token_listener_) {
    // Pushes authenticate with a token we mint for the whole registry.
    std::string repo = url.substr(url.find("/v2/") + 4);
    for (const char* cut : {"/blobs/", "/manifests/"}) {
      if (size_t p = repo.find(cut); p != std::string::npos) repo = repo.substr(0, p);
    }
    BERTH_ASSIGN_OR_RETURN(std::string token,
                           MintToken(absl::StrCat("repository:", repo, ":pull,push"), "pusher"));
    headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
  }
  std::string response;
  std::vector<std::string> response_headers;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &response);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, CollectHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &response_headers);
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat(method, " ", url, ": ", curl_easy_strerror(rc)));
  }
  if (status != want) {
    return absl::InternalError(
        absl::StrCat(method, " ", url, ": HTTP ", status, " (want ", want, "): ", response));
  }
  if (location != nullptr) *location = Header(response_headers, "Location");
  if (digest != nullptr) *digest = Header(response_headers, "Docker-Content-Digest");
  return absl::OkStatus();
}

absl::StatusOr<std::string> TestRegistry::PushBlob(const std::string& repo,
                                                   const std::string& bytes) {
  const std::string digest = DigestOfBytes(bytes).string();
  const std::string base = "http://" + host();
  std::string location;
  BERTH_RETURN_IF_ERROR(Request("POST", absl::StrCat(base, "/v2/", repo, "/blobs/uploads/"), "", "",
                                202, &location, nullptr));
  if (absl::StartsWith(location, "/")) location = base + location;
  location += absl::StrContains(location, '?') ? "&" : "?";
  BERTH_RETURN_IF_ERROR(Request("PUT", location + "digest=" + digest, "application/octet-stream",
                                bytes, 201, nullptr, nullptr));
  return digest;
}

absl::StatusOr<std::string> TestRegistry::PushManifest(const std::string& repo,
                                                       const std::string& reference,
                                                       const std::string& media_type,
                                                       const std::string& body) {
  std::string digest;
  BERTH_RETURN_IF_ERROR(
      Request("PUT", absl::StrCat("http://", host(), "/v2/", repo, "/manifests/", reference),
              media_type, body, 201, nullptr, &digest));
  return digest.empty() ? DigestOfBytes(body).string() : digest;
}

absl::StatusOr<PushedImage> TestRegistry::PushImage(const std::string& repo, const std::string& tag,
                                                    const std::vector<std::string>& layers_tgz,
                                                    const std::string& arch) {
  std::vector<TestLayer> layers;
  for (const std::string& tgz : layers_tgz) layers.push_back({tgz, BlobCompression::kGzip});
  return PushImage(repo, tag, layers, PushOptions{.arch = arch});
}

namespace {

std::string LayerMediaType(BlobCompression c, bool docker) {
  static const char* kOci[] = {"application/vnd.oci.image.layer.v1.tar",
                               "application/vnd.oci.image.layer.v1.tar+gzip",
                               "application/vnd.oci.image.layer.v1.tar+zstd"};
  static const char* kDocker[] = {"application/vnd.docker.image.rootfs.diff.tar",
                                  "application/vnd.docker.image.rootfs.diff.tar.gzip",
                                  "application/vnd.docker.image.rootfs.diff.tar.zstd"};
  return (docker ? kDocker : kOci)[static_cast<int>(c)];
}

}  // namespace

absl::StatusOr<PushedImage> TestRegistry::PushImage(const std::string& repo, const std::string& tag,
                                                    const std::vector<TestLayer>& in,
                                                    const PushOptions& options) {
  PushedImage img;
  nlohmann::json layers = nlohmann::json::array();
  nlohmann::json diff_ids = nlohmann::json::array();
  for (const TestLayer& layer : in) {
    BERTH_ASSIGN_OR_RETURN(std::string digest, PushBlob(repo, layer.blob));
    // The diff ID is the digest of the uncompressed tar: decompress with the CLI.
    const std::string tmp = dir_ + "/layer.blob";
    BERTH_RETURN_IF_ERROR(WriteFileAtomically(tmp, layer.blob));
    static const char* kCat[] = {"cat", "gzip -dc", "zstd -q -dc"};
    if (berth::testing::Shell(absl::StrCat(kCat[static_cast<int>(layer.compression)], " ", tmp,
                                           " > ", tmp, ".tar")) != 0) {
      return absl::InternalError("decompressing a test layer failed");
    }
    BERTH_ASSIGN_OR_RETURN(Digest diff_id, DigestOfFile(tmp + ".tar"));
    img.layer_digests.push_back(digest);
    img.diff_ids.push_back(diff_id.string());
    layers.push_back({{"mediaType", LayerMediaType(layer.compression, options.docker)},
                      {"digest", digest},
                      {"size", layer.blob.size()}});
    diff_ids.push_back(diff_id.string());
  }
  nlohmann::json config = {
      {"architecture", options.arch},
      {"os", "linux"},
      {"config",
       {{"Env", {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
        {"Cmd", {"sh"}},
        {"User", "1000:1000"},
        {"WorkingDir", "/"}}},
      {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  const std::string config_json = config.dump();
  BERTH_ASSIGN_OR_RETURN(img.config_digest, PushBlob(repo, config_json));
  const std::string manifest_type = options.docker
                                        ? "application/vnd.docker.distribution.manifest.v2+json"
                                        : "application/vnd.oci.image.manifest.v1+json";
  nlohmann::json manifest = {
      {"schemaVersion", 2},
      {"mediaType", manifest_type},
      {"config",
       {{"mediaType", options.docker ? "application/vnd.docker.container.image.v1+json"
                                     : "application/vnd.oci.image.config.v1+json"},
        {"digest", img.config_digest},
        {"size", config_json.size()}}},
      {"layers", layers}};
  img.manifest = manifest.dump();
  BERTH_ASSIGN_OR_RETURN(img.manifest_digest, PushManifest(repo, tag, manifest_type, img.manifest));
  return img;
}

absl::StatusOr<std::string> TestRegistry::PushIndex(const std::string& repo, const std::string& tag,
                                                    const std::vector<PushedImage>& images,
                                                    const std::vector<std::string>& arches,
                                                    bool docker) {
  nlohmann::json manifests = nlohmann::json::array();
  for (size_t i = 0; i < images.size(); ++i) {
    manifests.push_back(
        {{"mediaType", docker ? "application/vnd.docker.distribution.manifest.v2+json"
                              : "application/vnd.oci.image.manifest.v1+json"},
         {"digest", images[i].manifest_digest},
         {"size", images[i].manifest.size()},
         {"platform", {{"architecture", arches[i]}, {"os", "linux"}}}});
  }
  const std::string type = docker ? "application/vnd.docker.distribution.manifest.list.v2+json"
                                  : "application/vnd.oci.image.index.v1+json";
  nlohmann::json index = {{"schemaVersion", 2}, {"mediaType", type}, {"manifests", manifests}};
  return PushManifest(repo, tag, type, index.dump());
}

absl::Status TestRegistry::CorruptBlob(const std::string& digest) {
  BERTH_ASSIGN_OR_RETURN(Digest d, Digest::Parse(digest));
  const std::string path = absl::StrCat(storage_, "/docker/registry/v2/blobs/sha256/",
                                        d.hex().substr(0, 2), "/", d.hex(), "/data");
  BERTH_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  if (bytes.empty()) return absl::FailedPreconditionError("empty blob");
  bytes[bytes.size() / 2] ^= 0x5a;
  return WriteFileAtomically(path, bytes);
}

}  // namespace berth::images::testing
