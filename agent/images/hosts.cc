#include "agent/images/hosts.h"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "os/files.h"
#include "os/status.h"
#include "toml.hpp"

namespace berth::images {
namespace {

// "https://h:5000/x" -> host "h:5000", plain false; errors name `what`.
absl::Status ParseUrl(absl::string_view url, absl::string_view what, RegistryEndpoint* ep) {
  absl::string_view rest = url;
  if (absl::ConsumePrefix(&rest, "https://")) {
    ep->plain_http = false;
  } else if (absl::ConsumePrefix(&rest, "http://")) {
    ep->plain_http = true;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " `", url, "` must start with http:// or https://"));
  }
  size_t slash = rest.find('/');
  ep->host = std::string(rest.substr(0, slash));
  if (ep->host.empty())
    return absl::InvalidArgumentError(absl::StrCat(what, " `", url, "` has no host"));
  return absl::OkStatus();
}

RegistryEndpoint DefaultUpstream(const std::string& host) {
  RegistryEndpoint ep;
  // Docker Hub's API lives on registry-1.docker.io (what docker and containerd use).
  ep.host = host == "docker.io" ? "registry-1.docker.io" : host;
  ep.plain_http = IsLoopbackHost(host);
  return ep;
}

}  // namespace

bool IsLoopbackHost(absl::string_view host) {
  absl::string_view h = host;
  if (absl::ConsumePrefix(&h, "[")) {
    h = h.substr(0, h.find(']'));
  } else if (h.find(':') != absl::string_view::npos && h.find(':') == h.rfind(':')) {
    h = h.substr(0, h.find(':'));  // host:port
  }
  if (h == "localhost" || h == "::1") return true;
  // An IPv4 literal in 127.0.0.0/8, never a name that merely starts so
  // (`127.example.com` is anyone's host, and would get plain HTTP).
  struct in_addr a;
  return inet_pton(AF_INET, std::string(h).c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

// The byte offset of the first thing TOML forbids anywhere in a document -
// invalid UTF-8 or a control character other than tab, CR and LF - or -1.
// Checked before toml11 sees the text: Debian's toml11 reads past its buffer
// on such bytes inside a literal string (found by tests/fuzz/image_fuzzer).
static int64_t FirstBadByte(absl::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || i + n > text.size()) return static_cast<int64_t>(i);
    if (n == 1 && ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)) {
      return static_cast<int64_t>(i);
    }
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) return static_cast<int64_t>(i);
    }
    i += n;
  }
  return -1;
}

absl::StatusOr<std::vector<RegistryEndpoint>> ParseHostsToml(const std::string& host,
                                                             absl::string_view text,
                                                             absl::string_view file) {
  if (int64_t bad = FirstBadByte(text); bad >= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": byte ", bad,
                     " is not UTF-8 text TOML allows (invalid UTF-8 or a control "
                     "character)"));
  }
  toml::value root;
  try {
    std::istringstream in{std::string(text)};
    root = toml::parse(in, std::string(file));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", e.what()));
  }
  auto str = [&](const toml::value& t, const char* key, absl::string_view where,
                 std::string* out) -> absl::Status {
    if (!t.contains(key)) return absl::OkStatus();
    if (!t.at(key).is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(file, ": ", where, key, " is not a string"));
    }
    *out = t.at(key).as_string().str;
    return absl::OkStatus();
  };
  auto boolean = [&](const toml::value& t, const char* key, absl::string_view where,
                     bool* out) -> absl::Status {
    if (!t.contains(key)) return absl::OkStatus();
    if (!t.at(key).is_boolean()) {
      return absl::InvalidArgumentError(absl::StrCat(file, ": ", where, key, " is not a boolean"));
    }
    *out = t.at(key).as_boolean();
    return absl::OkStatus();
  };
  if (!root.is_table()) return absl::InvalidArgumentError(absl::StrCat(file, ": not a table"));
  std::vector<RegistryEndpoint> out;
  if (root.contains("mirror")) {
    if (!root.at("mirror").is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(file, ": mirror must be [[mirror]] tables"));
    }
    const toml::array& mirrors = root.at("mirror").as_array();
    for (size_t i = 0; i < mirrors.size(); ++i) {
      const std::string where = absl::StrCat("mirror[", i, "].");
      if (!mirrors[i].is_table()) {
        return absl::InvalidArgumentError(absl::StrCat(file, ": mirror[", i, "] is not a table"));
      }
      RegistryEndpoint ep;
      std::string url;
      BERTH_RETURN_IF_ERROR(str(mirrors[i], "url", where, &url));
      if (url.empty())
        return absl::InvalidArgumentError(absl::StrCat(file, ": ", where, "url is missing"));
      BERTH_RETURN_IF_ERROR(ParseUrl(url, absl::StrCat(file, ": ", where, "url"), &ep));
      BERTH_RETURN_IF_ERROR(boolean(mirrors[i], "skip_verify", where, &ep.skip_verify));
      BERTH_RETURN_IF_ERROR(str(mirrors[i], "ca", where, &ep.ca_file));
      BERTH_RETURN_IF_ERROR(str(mirrors[i], "path_prefix", where, &ep.path_prefix));
      if (!ep.path_prefix.empty() && !absl::EndsWith(ep.path_prefix, "/")) ep.path_prefix += "/";
      out.push_back(std::move(ep));
    }
  }
  bool skip_upstream = false;
  BERTH_RETURN_IF_ERROR(boolean(root, "skip_upstream", "", &skip_upstream));
  if (!skip_upstream) {
    RegistryEndpoint up = DefaultUpstream(host);
    std::string server;
    BERTH_RETURN_IF_ERROR(str(root, "server", "", &server));
    if (!server.empty())
      BERTH_RETURN_IF_ERROR(ParseUrl(server, absl::StrCat(file, ": server"), &up));
    BERTH_RETURN_IF_ERROR(boolean(root, "skip_verify", "", &up.skip_verify));
    BERTH_RETURN_IF_ERROR(str(root, "ca", "", &up.ca_file));
    out.push_back(std::move(up));
  }
  if (out.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(file, ": skip_upstream is set and no mirror is listed: nowhere to pull from"));
  }
  return out;
}

absl::StatusOr<std::vector<RegistryEndpoint>> ResolveEndpoints(const std::string& config_dir,
                                                               const std::string& host) {
  if (host.empty() || absl::StrContains(host, "/") || absl::StrContains(host, "..")) {
    return absl::InvalidArgumentError(absl::StrCat("registry host `", host, "` is not a host"));
  }
  const std::string file = absl::StrCat(config_dir, "/", host, "/hosts.toml");
  absl::StatusOr<std::string> text = ReadFile(file);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status()))
      return std::vector<RegistryEndpoint>{DefaultUpstream(host)};
    return text.status();
  }
  return ParseHostsToml(host, *text, file);
}

}  // namespace berth::images
