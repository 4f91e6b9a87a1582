// Content digests: the names of everything in an image ("sha256:<64 hex>").
//
// A digest is `<algorithm>:<encoded>`, where the algorithm is one the OCI image
// spec registers (descriptor.md, "Registered algorithms": sha256, sha512; go-digest
// also accepts sha384, so do we) and the encoded part is the lowercase hex of the
// hash, exactly as long as that hash. Anything else is INVALID_ARGUMENT naming
// what is wrong; an unknown but well-formed algorithm is UNIMPLEMENTED.
//
//   BERTH_ASSIGN_OR_RETURN(Digest d, Digest::Parse(desc["digest"]));
//   d.algorithm_name();  // "sha256"
//   d.hex();             // "2c26b4...e7ae"
//   d.string();          // "sha256:2c26b4...e7ae"
//
//   Hasher hasher;                       // sha256 unless told otherwise
//   hasher.Update(chunk);  ...
//   Digest got = hasher.Finish();
//   if (got != want) ...
//
// Hashing is OpenSSL's EVP interface. Its calls fail only when memory runs out;
// like operator new, Hasher treats that as fatal rather than threading a Status
// through every byte.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::images {

enum class DigestAlgorithm { kSha256, kSha384, kSha512 };

// "sha256", "sha384", "sha512".
absl::string_view DigestAlgorithmName(DigestAlgorithm algorithm);
// Length of the hex encoding: 64, 96, 128.
size_t DigestHexLength(DigestAlgorithm algorithm);

class Digest {
 public:
  // An empty digest, which names nothing; `empty()` is true. Parse() never
  // returns one.
  Digest() = default;

  static absl::StatusOr<Digest> Parse(absl::string_view text);
  // From an algorithm and the lowercase hex of a hash (checked like Parse).
  static absl::StatusOr<Digest> FromHex(DigestAlgorithm algorithm, absl::string_view hex);

  bool empty() const { return text_.empty(); }
  DigestAlgorithm algorithm() const { return algorithm_; }
  absl::string_view algorithm_name() const { return DigestAlgorithmName(algorithm_); }
  // The encoded part, after the colon.
  absl::string_view hex() const {
    return empty() ? absl::string_view() : absl::string_view(text_).substr(hex_offset());
  }
  // The whole "<algorithm>:<hex>".
  const std::string& string() const { return text_; }

  friend bool operator==(const Digest& a, const Digest& b) { return a.text_ == b.text_; }
  friend bool operator!=(const Digest& a, const Digest& b) { return a.text_ != b.text_; }
  friend bool operator<(const Digest& a, const Digest& b) { return a.text_ < b.text_; }
  template <typename H>
  friend H AbslHashValue(H h, const Digest& d) {
    return H::combine(std::move(h), d.text_);
  }
  friend std::ostream& operator<<(std::ostream& os, const Digest& d) { return os << d.text_; }

 private:
  friend class Hasher;
  Digest(DigestAlgorithm algorithm, std::string text)
      : algorithm_(algorithm), text_(std::move(text)) {}
  size_t hex_offset() const { return DigestAlgorithmName(algorithm_).size() + 1; }

  DigestAlgorithm algorithm_ = DigestAlgorithm::kSha256;
  std::string text_;
};

// A streaming hash over OpenSSL EVP. Move-only.
class Hasher {
 public:
  explicit Hasher(DigestAlgorithm algorithm = DigestAlgorithm::kSha256);
  ~Hasher();
  Hasher(Hasher&& other) noexcept;
  Hasher& operator=(Hasher&& other) noexcept;
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  DigestAlgorithm algorithm() const { return algorithm_; }
  void Update(absl::string_view bytes);
  // The digest of everything given to Update() since construction or the
  // last Finish(); the hasher then starts over.
  Digest Finish();

 private:
  DigestAlgorithm algorithm_;
  void* ctx_ = nullptr;  // EVP_MD_CTX*, kept out of this header
};

Digest DigestOfBytes(absl::string_view bytes, DigestAlgorithm algorithm = DigestAlgorithm::kSha256);
// Reads the file at `path` in 1 MiB chunks. Errors name the call and the path.
absl::StatusOr<Digest> DigestOfFile(const std::string& path,
                                    DigestAlgorithm algorithm = DigestAlgorithm::kSha256);

}  // namespace berth::images
