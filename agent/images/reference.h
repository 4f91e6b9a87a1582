// Image references: what a pod spec's `image:` says, made canonical the way
// kubelet and containerd make it (github.com/distribution/reference,
// ParseNormalizedNamed followed by TagNameOnly):
//
//   busybox                   -> docker.io/library/busybox:latest
//   user/app:v1               -> docker.io/user/app:v1
//   index.docker.io/user/app  -> docker.io/user/app:latest
//   localhost:5000/x          -> localhost:5000/x:latest
//   quay.io/a/b@sha256:<hex>  -> quay.io/a/b@sha256:<hex>   (digested: no tag added)
//   a/b:1.0@sha256:<hex>      -> docker.io/a/b:1.0@sha256:<hex>   (both kept)
//
//   BERTH_ASSIGN_OR_RETURN(Reference ref, Reference::Parse(spec.image()));
//   ref.domain();    // "docker.io"
//   ref.path();      // "library/busybox"
//   ref.String();    // "docker.io/library/busybox:latest"
//   ref.Familiar();  // "busybox:latest", as `docker images` prints it
//
// Grammar (distribution/reference, reference.go):
//
//   reference        := name [ ":" tag ] [ "@" digest ]
//   name             := [domain '/'] path
//   domain           := host [':' port-number]
//   host             := domain-name | '[' IPv6address ']'
//   domain-name      := domain-component ['.' domain-component]*
//   domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//   port-number      := /[0-9]+/
//   path             := path-component ['/' path-component]*     (at most 255 bytes)
//   path-component   := /[a-z0-9]+/ [separator /[a-z0-9]+/]*
//   separator        := /[_.]|__|[-]+/
//   tag              := /[\w][\w.-]{0,127}/
//
// The first '/'-separated part is a domain only when it contains '.' or ':', is
// "localhost", or has an uppercase letter (normalize.go, splitDockerDomain);
// otherwise the image is on Docker Hub, and a one-part path there gets
// "library/". Paths must be lowercase; domains and tags need not be. A bare
// 64-hex string is an image ID, not a name, and is refused.
//
// One deliberate difference: where the first part looks like a domain but is not
// a valid one ("foo_bar.com/x"), Go's regexp falls back to reading it as a path
// with an empty domain, which no registry can serve; we refuse it instead.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/images/digest.h"

namespace berth::images {

inline constexpr absl::string_view kDefaultDomain = "docker.io";
inline constexpr absl::string_view kDefaultTag = "latest";

class Reference {
 public:
  // Every error is INVALID_ARGUMENT, quoting the input and naming the part at fault.
  static absl::StatusOr<Reference> Parse(absl::string_view text);

  const std::string& domain() const { return domain_; }  // "docker.io", "localhost:5000"
  const std::string& path() const { return path_; }      // "library/busybox"
  // Empty only for a reference with a digest and no tag.
  const std::string& tag() const { return tag_; }
  // Empty unless the reference has "@<digest>".
  const Digest& digest() const { return digest_; }
  bool has_digest() const { return !digest_.empty(); }

  // "docker.io/library/busybox": the repository, without tag or digest.
  std::string Name() const;
  // The canonical form: Name()[":" tag]["@" digest].
  std::string String() const;
  // Docker's short form: "docker.io/" and a one-level "library/" dropped
  // ("busybox:latest", "user/app:v1"). crictl prints String() instead.
  std::string Familiar() const;
  // "name:tag" for CRI's repo_tags, or "" without a tag.
  std::string RepoTag() const;
  // "name@digest" for CRI's repo_digests, or "" without a digest.
  std::string RepoDigest() const;
  // What containerd names the image (ParseDockerRef): with a digest, the tag is
  // dropped ("name@digest"); otherwise String().
  std::string DockerRef() const;

  friend bool operator==(const Reference& a, const Reference& b) {
    return a.domain_ == b.domain_ && a.path_ == b.path_ && a.tag_ == b.tag_ &&
           a.digest_ == b.digest_;
  }
  friend bool operator!=(const Reference& a, const Reference& b) { return !(a == b); }

 private:
  std::string domain_;
  std::string path_;
  std::string tag_;
  Digest digest_;
};

}  // namespace berth::images
