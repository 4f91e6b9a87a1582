#include "agent/images/digest.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "os/status.h"
#include "os/unique_fd.h"

namespace berth::images {
namespace {

// Digests arrive from the network inside JSON: quote at most a line of one.
std::string Quote(absl::string_view text) {
  constexpr size_t kMax = 100;
  if (text.size() <= kMax) return absl::StrCat("\"", absl::CHexEscape(text), "\"");
  return absl::StrCat("\"", absl::CHexEscape(text.substr(0, kMax)), "\"...");
}

// go-digest's DigestRegexp: `[a-z0-9]+(?:[.+_-][a-z0-9]+)*`, for telling an
// unknown algorithm (UNIMPLEMENTED) from garbage (INVALID_ARGUMENT).
bool IsWellFormedAlgorithm(absl::string_view a) {
  bool after_separator = true;  // the first character, and each after a separator
  for (char c : a) {
    bool alnum = absl::ascii_islower(c) || absl::ascii_isdigit(c);
    if (alnum) {
      after_separator = false;
    } else if ((c == '.' || c == '+' || c == '_' || c == '-') && !after_separator) {
      after_separator = true;
    } else {
      return false;
    }
  }
  return !after_separator;
}

bool AlgorithmFromName(absl::string_view name, DigestAlgorithm* out) {
  for (DigestAlgorithm a :
       {DigestAlgorithm::kSha256, DigestAlgorithm::kSha384, DigestAlgorithm::kSha512}) {
    if (name == DigestAlgorithmName(a)) {
      *out = a;
      return true;
    }
  }
  return false;
}

absl::Status CheckHex(DigestAlgorithm algorithm, absl::string_view hex, absl::string_view whole) {
  size_t want = DigestHexLength(algorithm);
  if (hex.size() != want) {
    return absl::InvalidArgumentError(absl::StrCat("invalid digest ", Quote(whole), ": ",
                                                   DigestAlgorithmName(algorithm), " needs ", want,
                                                   " hex digits, got ", hex.size()));
  }
  for (size_t i = 0; i < hex.size(); ++i) {
    char c = hex[i];
    if (!absl::ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid digest ", Quote(whole), ": not lowercase hex at offset ", i));
    }
  }
  return absl::OkStatus();
}

const EVP_MD* EvpFor(DigestAlgorithm algorithm) {
  switch (algorithm) {
    case DigestAlgorithm::kSha256:
      return EVP_sha256();
    case DigestAlgorithm::kSha384:
      return EVP_sha384();
    case DigestAlgorithm::kSha512:
      return EVP_sha512();
  }
  return EVP_sha256();
}

[[noreturn]] void DieOpenSsl(const char* call) {
  // Only an allocation failure gets here (see digest.h).
  std::fprintf(stderr, "berth: %s failed (out of memory?)\n", call);
  std::abort();
}

std::string HexOf(const unsigned char* bytes, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kHex[bytes[i] >> 4];
    out[2 * i + 1] = kHex[bytes[i] & 0xf];
  }
  return out;
}

}  // namespace

absl::string_view DigestAlgorithmName(DigestAlgorithm algorithm) {
  switch (algorithm) {
    case DigestAlgorithm::kSha256:
      return "sha256";
    case DigestAlgorithm::kSha384:
      return "sha384";
    case DigestAlgorithm::kSha512:
      return "sha512";
  }
  return "sha256";
}

size_t DigestHexLength(DigestAlgorithm algorithm) {
  switch (algorithm) {
    case DigestAlgorithm::kSha256:
      return 64;
    case DigestAlgorithm::kSha384:
      return 96;
    case DigestAlgorithm::kSha512:
      return 128;
  }
  return 64;
}

absl::StatusOr<Digest> Digest::Parse(absl::string_view text) {
  size_t colon = text.find(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid digest ", Quote(text), ": want <algorithm>:<hex>"));
  }
  absl::string_view name = text.substr(0, colon);
  absl::string_view hex = text.substr(colon + 1);
  if (name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid digest ", Quote(text), ": missing algorithm"));
  }
  if (hex.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid digest ", Quote(text), ": missing hex"));
  }
  DigestAlgorithm algorithm;
  if (!AlgorithmFromName(name, &algorithm)) {
    if (IsWellFormedAlgorithm(name)) {
      return absl::UnimplementedError(absl::StrCat("unsupported digest algorithm ", Quote(name)));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("invalid digest ", Quote(text), ": malformed algorithm"));
  }
  if (absl::Status s = CheckHex(algorithm, hex, text); !s.ok()) return s;
  return Digest(algorithm, std::string(text));
}

absl::StatusOr<Digest> Digest::FromHex(DigestAlgorithm algorithm, absl::string_view hex) {
  std::string text = absl::StrCat(DigestAlgorithmName(algorithm), ":", hex);
  if (absl::Status s = CheckHex(algorithm, hex, text); !s.ok()) return s;
  return Digest(algorithm, std::move(text));
}

Hasher::Hasher(DigestAlgorithm algorithm) : algorithm_(algorithm) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) DieOpenSsl("EVP_MD_CTX_new");
  if (EVP_DigestInit_ex(ctx, EvpFor(algorithm), nullptr) != 1) DieOpenSsl("EVP_DigestInit_ex");
  ctx_ = ctx;
}

Hasher::~Hasher() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

Hasher::Hasher(Hasher&& other) noexcept
    : algorithm_(other.algorithm_), ctx_(std::exchange(other.ctx_, nullptr)) {}

Hasher& Hasher::operator=(Hasher&& other) noexcept {
  if (this != &other) {
    EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
    algorithm_ = other.algorithm_;
    ctx_ = std::exchange(other.ctx_, nullptr);
  }
  return *this;
}

void Hasher::Update(absl::string_view bytes) {
  if (bytes.empty()) return;
  if (EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), bytes.data(), bytes.size()) != 1) {
    DieOpenSsl("EVP_DigestUpdate");
  }
}

Digest Hasher::Finish() {
  auto* ctx = static_cast<EVP_MD_CTX*>(ctx_);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(ctx, md, &n) != 1) DieOpenSsl("EVP_DigestFinal_ex");
  if (EVP_DigestInit_ex(ctx, EvpFor(algorithm_), nullptr) != 1) DieOpenSsl("EVP_DigestInit_ex");
  return Digest(algorithm_, absl::StrCat(DigestAlgorithmName(algorithm_), ":", HexOf(md, n)));
}

Digest DigestOfBytes(absl::string_view bytes, DigestAlgorithm algorithm) {
  Hasher hasher(algorithm);
  hasher.Update(bytes);
  return hasher.Finish();
}

absl::StatusOr<Digest> DigestOfFile(const std::string& path, DigestAlgorithm algorithm) {
  BERTH_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_RDONLY));
  Hasher hasher(algorithm);
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read", path);
    }
    if (n == 0) break;
    hasher.Update(absl::string_view(buf.data(), static_cast<size_t>(n)));
  }
  return hasher.Finish();
}

}  // namespace berth::images
