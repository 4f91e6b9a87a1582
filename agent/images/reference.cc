#include "agent/images/reference.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace berth::images {
namespace {

constexpr absl::string_view kLegacyDefaultDomain = "index.docker.io";
constexpr absl::string_view kOfficialRepoPrefix = "library/";
constexpr size_t kMaxPathLength = 255;
constexpr size_t kMaxTagLength = 128;

bool IsLowerAlnum(char c) { return absl::ascii_islower(c) || absl::ascii_isdigit(c); }
bool IsWordChar(char c) { return absl::ascii_isalnum(c) || c == '_'; }
bool HasUpper(absl::string_view s) {
  for (char c : s) {
    if (absl::ascii_isupper(c)) return true;
  }
  return false;
}

// domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
bool IsDomainComponent(absl::string_view c) {
  if (c.empty() || c.front() == '-' || c.back() == '-') return false;
  for (char ch : c) {
    if (!absl::ascii_isalnum(ch) && ch != '-') return false;
  }
  return true;
}

bool IsPort(absl::string_view p) {
  if (p.empty()) return false;
  for (char c : p) {
    if (!absl::ascii_isdigit(c)) return false;
  }
  return true;
}

// domain := (domain-name | '[' [a-fA-F0-9:]+ ']') [':' port-number]
bool IsDomain(absl::string_view d) {
  absl::string_view host = d;
  absl::string_view port;
  bool has_port = false;
  if (absl::StartsWith(d, "[")) {
    size_t close = d.find(']');
    if (close == absl::string_view::npos || close == 1) return false;
    for (char c : d.substr(1, close - 1)) {
      if (!absl::ascii_isxdigit(c) && c != ':') return false;
    }
    absl::string_view rest = d.substr(close + 1);
    if (rest.empty()) return true;
    if (rest.front() != ':') return false;
    return IsPort(rest.substr(1));
  }
  if (size_t colon = d.find(':'); colon != absl::string_view::npos) {
    host = d.substr(0, colon);
    port = d.substr(colon + 1);
    has_port = true;
  }
  for (absl::string_view component : absl::StrSplit(host, '.')) {
    if (!IsDomainComponent(component)) return false;
  }
  return !has_port || IsPort(port);
}

// path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | __ | -+
bool IsPathComponent(absl::string_view c) {
  size_t i = 0;
  const size_t n = c.size();
  for (;;) {
    size_t start = i;
    while (i < n && IsLowerAlnum(c[i])) ++i;
    if (i == start) return false;  // empty, or a separator not followed by alnum
    if (i == n) return true;
    if (c[i] == '.') {
      ++i;
    } else if (c[i] == '_') {
      ++i;
      if (i < n && c[i] == '_') ++i;
    } else if (c[i] == '-') {
      while (i < n && c[i] == '-') ++i;
    } else {
      return false;
    }
  }
}

bool IsTag(absl::string_view t) {
  if (t.empty() || t.size() > kMaxTagLength || !IsWordChar(t.front())) return false;
  for (char c : t) {
    if (!IsWordChar(c) && c != '.' && c != '-') return false;
  }
  return true;
}

bool IsImageId(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) return false;
  }
  return true;
}

// normalize.go, splitDockerDomain: {domain, path}.
std::pair<std::string, std::string> SplitDockerDomain(absl::string_view name) {
  std::string domain, path;
  size_t slash = name.find('/');
  absl::string_view first = slash == absl::string_view::npos ? name : name.substr(0, slash);
  if (slash == absl::string_view::npos) {
    domain = std::string(kDefaultDomain);
    path = std::string(name);
  } else if (first == "localhost" || absl::StrContains(first, '.') ||
             absl::StrContains(first, ':') || HasUpper(first)) {
    domain = std::string(first);
    path = std::string(name.substr(slash + 1));
  } else {
    domain = std::string(kDefaultDomain);
    path = std::string(name);
  }
  if (domain == kLegacyDefaultDomain) domain = std::string(kDefaultDomain);
  if (domain == kDefaultDomain && !absl::StrContains(path, '/')) {
    path = absl::StrCat(kOfficialRepoPrefix, path);
  }
  return {std::move(domain), std::move(path)};
}

}  // namespace

absl::StatusOr<Reference> Reference::Parse(absl::string_view text) {
  constexpr size_t kMaxQuoted = 300;
  std::string quoted = absl::StrCat("\"", absl::CHexEscape(text.substr(0, kMaxQuoted)),
                                    text.size() > kMaxQuoted ? "\"..." : "\"");
  auto invalid = [&quoted](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("invalid image reference ", quoted, ": ", why));
  };
  if (text.empty()) return invalid("empty");
  if (IsImageId(text)) return invalid("a 64-hex-digit image ID is not a repository name");

  Reference ref;
  absl::string_view rest = text;
  if (size_t at = text.find('@'); at != absl::string_view::npos) {
    absl::StatusOr<Digest> digest = Digest::Parse(text.substr(at + 1));
    if (!digest.ok()) return invalid(digest.status().message());
    ref.digest_ = *std::move(digest);
    rest = text.substr(0, at);
  }
  // A tag follows the last ':' after the last '/': any earlier ':' is a port.
  size_t last_slash = rest.rfind('/');
  size_t colon = rest.find(':', last_slash == absl::string_view::npos ? 0 : last_slash + 1);
  if (colon != absl::string_view::npos) {
    absl::string_view tag = rest.substr(colon + 1);
    if (!IsTag(tag)) {
      return invalid(absl::StrCat("invalid tag \"", absl::CHexEscape(tag),
                                  "\": want [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"));
    }
    ref.tag_ = std::string(tag);
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return invalid("missing repository name");

  auto [domain, path] = SplitDockerDomain(rest);
  if (!IsDomain(domain)) {
    return invalid(absl::StrCat("invalid registry host \"", absl::CHexEscape(domain), "\""));
  }
  if (HasUpper(path)) return invalid("repository name must be lowercase");
  for (absl::string_view component : absl::StrSplit(path, '/')) {
    if (!IsPathComponent(component)) {
      return invalid(absl::StrCat("invalid repository name component \"",
                                  absl::CHexEscape(component),
                                  "\": want [a-z0-9]+ joined by '.', '_', '__' or '-'"));
    }
  }
  if (path.size() > kMaxPathLength) {
    return invalid(absl::StrCat("repository name is longer than ", kMaxPathLength, " characters"));
  }
  ref.domain_ = std::move(domain);
  ref.path_ = std::move(path);
  // TagNameOnly: a name with neither tag nor digest means ":latest".
  if (ref.tag_.empty() && ref.digest_.empty()) ref.tag_ = std::string(kDefaultTag);
  return ref;
}

std::string Reference::Name() const { return absl::StrCat(domain_, "/", path_); }

std::string Reference::String() const {
  std::string out = Name();
  if (!tag_.empty()) absl::StrAppend(&out, ":", tag_);
  if (has_digest()) absl::StrAppend(&out, "@", digest_.string());
  return out;
}

std::string Reference::Familiar() const {
  std::string out;
  if (domain_ == kDefaultDomain) {
    absl::string_view path = path_;
    if (absl::ConsumePrefix(&path, kOfficialRepoPrefix) && absl::StrContains(path, '/')) {
      path = path_;  // "library/a/b" stays whole (normalize.go, familiarizeName)
    }
    out = std::string(path);
  } else {
    out = Name();
  }
  if (!tag_.empty()) absl::StrAppend(&out, ":", tag_);
  if (has_digest()) absl::StrAppend(&out, "@", digest_.string());
  return out;
}

std::string Reference::RepoTag() const {
  return tag_.empty() ? std::string() : absl::StrCat(Name(), ":", tag_);
}

std::string Reference::RepoDigest() const {
  return has_digest() ? absl::StrCat(Name(), "@", digest_.string()) : std::string();
}

std::string Reference::DockerRef() const { return has_digest() ? RepoDigest() : String(); }

}  // namespace berth::images
